"""The operator transfer records (:mod:`gamewallet.store.transfer_ops`) on SQLite and PostgreSQL.

Each request is answered by one statement (two for a page: the rows and the count), written
once with ``?`` placeholders and turned into ``$1``, ``$2``… for asyncpg. :func:`sqlite_handlers`
runs them on the SQLite writer thread's connection; :func:`postgres_executors` awaits them on
the use case's asyncpg connection, inside the same database transaction. Every value is a bound
parameter; the SQL is assembled from constant fragments only.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable, Mapping
from functools import lru_cache
from typing import Any, Protocol

from gamewallet.store import transfer_ops as t

__all__ = ["postgres_executors", "sqlite_handlers"]


class Row(Protocol):
    """What both drivers' rows offer: columns by name."""

    def __getitem__(self, key: str) -> Any: ...


def _json(value: Mapping[str, Any]) -> str:
    return json.dumps(dict(value), separators=(",", ":"), sort_keys=True, ensure_ascii=False)


def record(row: Row) -> t.OperatorTransferRecord:
    """A row of ``operator_transfers`` as a record."""
    result = row["result"]
    return t.OperatorTransferRecord(
        id=row["id"],
        protocol=row["protocol"],
        counterparty=row["counterparty"],
        transfer_id=row["transfer_id"],
        user_id=row["user_id"],
        kind=row["kind"],
        amount_minor=row["amount_minor"],
        free_minor=row["free_minor"],
        remark=row["remark"],
        state=row["state"],
        attempts=row["attempts"],
        last_error=row["last_error"],
        result=json.loads(result) if result is not None else None,
        created_at_ms=row["created_at_ms"],
        updated_at_ms=row["updated_at_ms"],
        last_sent_at_ms=row["last_sent_at_ms"],
    )


INSERT = (
    "INSERT INTO operator_transfers (protocol, counterparty, transfer_id, user_id, kind,"
    " amount_minor, free_minor, remark, state, attempts, created_at_ms, updated_at_ms)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'pending', 0, ?, ?)"
    " ON CONFLICT (protocol, counterparty, transfer_id) DO NOTHING RETURNING *"
)
GET_BY_ID = "SELECT * FROM operator_transfers WHERE id = ?"
GET_BY_KEY = (
    "SELECT * FROM operator_transfers WHERE protocol = ? AND counterparty = ? AND transfer_id = ?"
)
# The compare-and-set of a pending record: a settled row is never matched.
UPDATE = (
    "UPDATE operator_transfers SET state = ?, attempts = attempts + ?,"
    " last_sent_at_ms = coalesce(?, last_sent_at_ms), last_error = coalesce(?, last_error),"
    " result = coalesce(?, result), updated_at_ms = ?"
    " WHERE id = ? AND state = 'pending' RETURNING *"
)


def _insert_params(op: t.InsertOperatorTransfer) -> tuple[Any, ...]:
    assert op.kind in t.TRANSFER_KINDS, f"unknown transfer kind {op.kind!r}"
    return (
        op.protocol,
        op.counterparty,
        op.transfer_id,
        op.user_id,
        op.kind,
        op.amount_minor,
        op.free_minor,
        op.remark,
        op.now_ms,
        op.now_ms,
    )


def _get(op: t.GetOperatorTransfer) -> tuple[str, tuple[Any, ...]]:
    if op.record_id is not None:
        return GET_BY_ID, (op.record_id,)
    assert op.protocol, "a record by id or by its key"
    assert op.counterparty
    assert op.transfer_id
    return GET_BY_KEY, (op.protocol, op.counterparty, op.transfer_id)


def _update_params(op: t.UpdateOperatorTransfer) -> tuple[Any, ...]:
    assert op.state in t.TRANSFER_STATES, f"unknown transfer state {op.state!r}"
    return (
        op.state,
        1 if op.sent else 0,
        op.now_ms if op.sent else None,
        op.last_error,
        _json(op.result) if op.result is not None else None,
        op.now_ms,
        op.record_id,
    )


def _list(op: t.ListOperatorTransfers) -> tuple[str, tuple[Any, ...], str, tuple[Any, ...]]:
    """The page's SQL and parameters, then the count's."""
    assert op.limit >= 0
    assert op.after_id >= 0
    clauses: list[str] = []
    params: list[Any] = []
    for column, value in (
        ("protocol", op.protocol),
        ("counterparty", op.counterparty),
        ("user_id", op.user_id),
    ):
        if value is not None:
            clauses.append(f"{column} = ?")
            params.append(value)
    if op.states is not None:
        assert all(s in t.TRANSFER_STATES for s in op.states)
        clauses.append(f"state IN ({', '.join('?' * len(op.states)) or 'NULL'})")
        params.extend(op.states)
    where = " AND ".join(clauses) or "TRUE"
    # Only constant fragments and placeholders are joined here; every value is a parameter.
    page = f"SELECT * FROM operator_transfers WHERE {where} AND id > ? ORDER BY id LIMIT ?"  # noqa: S608
    count = f"SELECT count(*) AS n FROM operator_transfers WHERE {where}"  # noqa: S608
    return page, (*params, op.after_id, op.limit), count, tuple(params)


# --- SQLite --------------------------------------------------------------------------------


class SqliteConnection(Protocol):
    """The part of a ``sqlite3.Connection`` the handlers need."""

    def execute(self, sql: str, parameters: Any = ..., /) -> Any: ...


def sqlite_handlers(conn: SqliteConnection) -> dict[type[Any], Callable[[Any], Any]]:
    """Handlers for the SQLite executor's table, each on ``conn``."""

    def one(sql: str, params: tuple[Any, ...]) -> t.OperatorTransferRecord | None:
        row = conn.execute(sql, params).fetchone()
        return record(row) if row is not None else None

    def insert(op: t.InsertOperatorTransfer) -> t.OperatorTransferRecord | None:
        return one(INSERT, _insert_params(op))

    def get(op: t.GetOperatorTransfer) -> t.OperatorTransferRecord | None:
        return one(*_get(op))

    def update(op: t.UpdateOperatorTransfer) -> t.OperatorTransferRecord | None:
        return one(UPDATE, _update_params(op))

    def page(op: t.ListOperatorTransfers) -> tuple[list[t.OperatorTransferRecord], int]:
        sql, params, count_sql, count_params = _list(op)
        rows = conn.execute(sql, params).fetchall()
        total = conn.execute(count_sql, count_params).fetchone()
        return [record(r) for r in rows], int(total[0])

    return {
        t.InsertOperatorTransfer: insert,
        t.GetOperatorTransfer: get,
        t.UpdateOperatorTransfer: update,
        t.ListOperatorTransfers: page,
    }


# --- PostgreSQL ----------------------------------------------------------------------------

_PLACEHOLDER = re.compile(r"\?")


@lru_cache(maxsize=64)
def to_postgres(sql: str) -> str:
    """``?`` placeholders as ``$1``, ``$2``… (these SQL texts hold no literal ``?``)."""
    counter = iter(range(1, 10_000))
    return _PLACEHOLDER.sub(lambda _: f"${next(counter)}", sql)


class PostgresConnection(Protocol):
    """The part of an asyncpg connection the executors need."""

    async def fetchrow(self, query: str, *args: Any) -> Any: ...

    async def fetch(self, query: str, *args: Any) -> Any: ...

    async def fetchval(self, query: str, *args: Any) -> Any: ...


Executor = Callable[[Any, Any], Awaitable[Any]]


def postgres_executors() -> dict[type[Any], Executor]:
    """Executors for the PostgreSQL store's table: ``(connection, op)`` → result."""

    async def one(
        conn: PostgresConnection, sql: str, params: tuple[Any, ...]
    ) -> t.OperatorTransferRecord | None:
        row = await conn.fetchrow(to_postgres(sql), *params)
        return record(row) if row is not None else None

    async def insert(
        conn: PostgresConnection, op: t.InsertOperatorTransfer
    ) -> t.OperatorTransferRecord | None:
        return await one(conn, INSERT, _insert_params(op))

    async def get(
        conn: PostgresConnection, op: t.GetOperatorTransfer
    ) -> t.OperatorTransferRecord | None:
        return await one(conn, *_get(op))

    async def update(
        conn: PostgresConnection, op: t.UpdateOperatorTransfer
    ) -> t.OperatorTransferRecord | None:
        return await one(conn, UPDATE, _update_params(op))

    async def page(
        conn: PostgresConnection, op: t.ListOperatorTransfers
    ) -> tuple[list[t.OperatorTransferRecord], int]:
        sql, params, count_sql, count_params = _list(op)
        rows = await conn.fetch(to_postgres(sql), *params)
        total = await conn.fetchval(to_postgres(count_sql), *count_params)
        return [record(r) for r in rows], int(total)

    return {
        t.InsertOperatorTransfer: insert,
        t.GetOperatorTransfer: get,
        t.UpdateOperatorTransfer: update,
        t.ListOperatorTransfers: page,
    }
