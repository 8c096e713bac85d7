"""The back-office requests (:mod:`gamewallet.store.admin_ops`) on SQLite and PostgreSQL.

Each request is answered by a *plan*: a generator that yields ``(mode, sql, params)`` and
receives the rows, so one text of SQL (with ``?`` placeholders, which the PostgreSQL driver
turns into ``$1``, ``$2``…) serves both databases. :func:`sqlite_handlers` runs plans
synchronously on the SQLite writer thread; :func:`postgres_executors` awaits each statement
on the use case's asyncpg connection, inside the same database transaction as the rest of
the use case. Every value is a bound parameter; SQL is assembled from constant fragments.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Generator
from functools import lru_cache
from typing import Any, Protocol, TypeVar

from gamewallet.core.states import OpState
from gamewallet.store import admin_ops as a
from gamewallet.store.records import OperationRecord
from gamewallet.store.rows import from_json, operation_from, to_json

R = TypeVar("R")


class Row(Protocol):
    """What both drivers' rows offer: columns by name."""

    def __getitem__(self, key: str) -> Any: ...


#: ``("one" | "all" | "count", sql, params)``: "count" answers how many rows changed.
Query = tuple[str, str, tuple[Any, ...]]
Plan = Generator[Query, Any, R]


def _one(sql: str, *params: Any) -> Plan[Row | None]:
    row: Row | None = yield ("one", sql, params)
    return row


def _all(sql: str, *params: Any) -> Plan[list[Row]]:
    rows: list[Row] = yield ("all", sql, params)
    return rows


def _count(sql: str, *params: Any) -> Plan[int]:
    changed: int = yield ("count", sql, params)
    return changed


def _marks(n: int) -> str:
    assert n > 0
    return ",".join("?" * n)


# --- rows ----------------------------------------------------------------------------------


def _user(row: Row) -> a.AdminUserRecord:
    return a.AdminUserRecord(
        id=row["id"],
        name=row["name"],
        role=row["role"],
        password_hash=row["password_hash"],
        created_at_ms=row["created_at_ms"],
        disabled=bool(row["disabled"]),
        failed_logins=row["failed_logins"],
        locked_until_ms=row["locked_until_ms"],
        last_login_at_ms=row["last_login_at_ms"],
    )


def _token(row: Row) -> a.AdminTokenRecord:
    return a.AdminTokenRecord(
        id=row["id"],
        name=row["name"],
        role=row["role"],
        token_hash=row["token_hash"],
        created_at_ms=row["created_at_ms"],
        created_by=row["created_by"],
        last_used_at_ms=row["last_used_at_ms"],
        revoked_at_ms=row["revoked_at_ms"],
    )


def _session(row: Row) -> a.AdminSessionRecord:
    return a.AdminSessionRecord(
        session_hash=row["session_hash"],
        user_id=row["user_id"],
        csrf_token=row["csrf_token"],
        created_at_ms=row["created_at_ms"],
        expires_at_ms=row["expires_at_ms"],
    )


def _event(row: Row) -> a.AdminEventRecord:
    return a.AdminEventRecord(
        id=row["id"],
        at_ms=row["at_ms"],
        actor=row["actor"],
        action=row["action"],
        target=row["target"],
        detail=from_json(row["detail"]),
    )


def _check_page(offset: int, limit: int) -> None:
    assert offset >= 0, "paging needs offset >= 0"
    assert limit >= 0, "paging needs limit >= 0"


# --- staff users ---------------------------------------------------------------------------


def insert_admin_user(op: a.InsertAdminUser) -> Plan[a.AdminUserRecord | None]:
    """Insert a staff user unless the name is taken."""
    assert op.role in a.ROLES, f"unknown role {op.role!r}"
    row = yield from _one(
        "INSERT INTO admin_users (name, role, password_hash, created_at_ms) VALUES (?,?,?,?)"
        " ON CONFLICT (name) DO NOTHING RETURNING *",
        op.name,
        op.role,
        op.password_hash,
        op.now_ms,
    )
    return _user(row) if row is not None else None


def get_admin_user(op: a.GetAdminUser) -> Plan[a.AdminUserRecord | None]:
    """A staff user by id or name."""
    if op.user_id is not None:
        row = yield from _one("SELECT * FROM admin_users WHERE id = ?", op.user_id)
    else:
        assert op.name is not None, "GetAdminUser needs an id or a name"
        row = yield from _one("SELECT * FROM admin_users WHERE name = ?", op.name)
    return _user(row) if row is not None else None


def list_admin_users(op: a.ListAdminUsers) -> Plan[list[a.AdminUserRecord]]:
    """Every staff user by id."""
    rows = yield from _all("SELECT * FROM admin_users ORDER BY id")
    return [_user(r) for r in rows]


def update_admin_user(op: a.UpdateAdminUser) -> Plan[a.AdminUserRecord | None]:
    """Change whitelisted columns of a staff user."""
    assert set(op.changes) <= a.ADMIN_USER_FIELDS, "unknown admin user field"
    assert op.changes.get("role", "viewer") in a.ROLES, "unknown role"
    if op.changes:
        sets = ", ".join(f"{name} = ?" for name in op.changes)
        yield from _count(
            f"UPDATE admin_users SET {sets} WHERE id = ?", *op.changes.values(), op.user_id
        )
    return (yield from get_admin_user(a.GetAdminUser(user_id=op.user_id)))


# --- API tokens ----------------------------------------------------------------------------


def insert_admin_token(op: a.InsertAdminToken) -> Plan[a.AdminTokenRecord | None]:
    """Insert a token unless its name or hash is taken."""
    assert op.role in a.ROLES, f"unknown role {op.role!r}"
    row = yield from _one(
        "INSERT INTO admin_tokens (name, role, token_hash, created_at_ms, created_by)"
        " VALUES (?,?,?,?,?) ON CONFLICT DO NOTHING RETURNING *",
        op.name,
        op.role,
        op.token_hash,
        op.now_ms,
        op.created_by,
    )
    return _token(row) if row is not None else None


def get_admin_token(op: a.GetAdminToken) -> Plan[a.AdminTokenRecord | None]:
    """A token by hash or name."""
    if op.token_hash is not None:
        row = yield from _one("SELECT * FROM admin_tokens WHERE token_hash = ?", op.token_hash)
    else:
        assert op.name is not None, "GetAdminToken needs a hash or a name"
        row = yield from _one("SELECT * FROM admin_tokens WHERE name = ?", op.name)
    return _token(row) if row is not None else None


def list_admin_tokens(op: a.ListAdminTokens) -> Plan[list[a.AdminTokenRecord]]:
    """Every token by id."""
    rows = yield from _all("SELECT * FROM admin_tokens ORDER BY id")
    return [_token(r) for r in rows]


def update_admin_token(op: a.UpdateAdminToken) -> Plan[None]:
    """Change whitelisted columns of a token."""
    assert set(op.changes) <= a.ADMIN_TOKEN_FIELDS, "unknown admin token field"
    if op.changes:
        sets = ", ".join(f"{name} = ?" for name in op.changes)
        yield from _count(
            f"UPDATE admin_tokens SET {sets} WHERE id = ?", *op.changes.values(), op.token_id
        )


# --- web sessions --------------------------------------------------------------------------


def insert_admin_session(op: a.InsertAdminSession) -> Plan[None]:
    """Insert a session row."""
    s = op.session
    yield from _count(
        "INSERT INTO admin_sessions (session_hash, user_id, csrf_token, created_at_ms,"
        " expires_at_ms) VALUES (?,?,?,?,?)",
        s.session_hash,
        s.user_id,
        s.csrf_token,
        s.created_at_ms,
        s.expires_at_ms,
    )


def get_admin_session(op: a.GetAdminSession) -> Plan[a.AdminSessionRecord | None]:
    """A session by cookie hash."""
    row = yield from _one("SELECT * FROM admin_sessions WHERE session_hash = ?", op.session_hash)
    return _session(row) if row is not None else None


def delete_admin_sessions(op: a.DeleteAdminSessions) -> Plan[int]:
    """Delete by exactly one criterion."""
    given = [op.session_hash, op.user_id, op.expired_before_ms]
    assert sum(v is not None for v in given) == 1, "DeleteAdminSessions takes one criterion"
    if op.session_hash is not None:
        return (
            yield from _count("DELETE FROM admin_sessions WHERE session_hash = ?", op.session_hash)
        )
    if op.user_id is not None:
        return (yield from _count("DELETE FROM admin_sessions WHERE user_id = ?", op.user_id))
    return (
        yield from _count(
            "DELETE FROM admin_sessions WHERE session_hash IN (SELECT session_hash FROM"
            " admin_sessions WHERE expires_at_ms < ? ORDER BY expires_at_ms LIMIT ?)",
            op.expired_before_ms,
            op.limit,
        )
    )


# --- the trail of staff actions ------------------------------------------------------------


def insert_admin_event(op: a.InsertAdminEvent) -> Plan[int]:
    """Append one staff action."""
    row = yield from _one(
        "INSERT INTO admin_events (at_ms, actor, action, target, detail) VALUES (?,?,?,?,?)"
        " RETURNING id",
        op.now_ms,
        op.actor,
        op.action,
        op.target,
        to_json(op.detail),
    )
    assert row is not None
    return int(row["id"])


def list_admin_events(op: a.ListAdminEvents) -> Plan[tuple[list[a.AdminEventRecord], int]]:
    """A page of staff actions, newest first."""
    _check_page(op.offset, op.limit)
    clauses: list[str] = []
    params: list[Any] = []
    if op.actor is not None:
        clauses.append("actor = ?")
        params.append(op.actor)
    if op.action is not None:
        clauses.append("action = ?")
        params.append(op.action)
    where = (" WHERE " + " AND ".join(clauses)) if clauses else ""
    total = yield from _one("SELECT count(*) AS n FROM admin_events" + where, *params)
    assert total is not None
    rows = yield from _all(
        "SELECT * FROM admin_events" + where + " ORDER BY id DESC LIMIT ? OFFSET ?",
        *params,
        op.limit,
        op.offset,
    )
    return [_event(r) for r in rows], int(total["n"])


# --- read-only aggregates ------------------------------------------------------------------


def balance_totals(op: a.BalanceTotals) -> Plan[list[a.BalanceTotal]]:
    """Sums of every account, grouped by owner kind, client, currency and bucket."""
    rows = yield from _all(
        "SELECT a.owner_kind, CASE a.owner_kind WHEN 'player' THEN p.client_id"
        " WHEN 'client' THEN a.owner_id END AS client_id, a.currency, a.bucket,"
        " sum(a.posted_minor) AS posted, sum(a.held_minor) AS held,"
        " sum(a.pending_minor) AS pending, count(*) AS n"
        " FROM accounts a LEFT JOIN players p ON a.owner_kind = 'player' AND p.id = a.owner_id"
        " GROUP BY a.owner_kind, CASE a.owner_kind WHEN 'player' THEN p.client_id"
        " WHEN 'client' THEN a.owner_id END, a.currency, a.bucket"
        " ORDER BY 1, 2, 3, 4"
    )
    return [
        a.BalanceTotal(
            owner_kind=r["owner_kind"],
            client_id=r["client_id"],
            currency=r["currency"],
            bucket=r["bucket"],
            posted_minor=int(r["posted"]),
            held_minor=int(r["held"]),
            pending_minor=int(r["pending"]),
            accounts=int(r["n"]),
        )
        for r in rows
    ]


def count_operations(op: a.CountOperations) -> Plan[list[a.OperationCount]]:
    """Operations opened per client and time bucket (uses operations_client_created)."""
    assert op.bucket_ms > 0
    if not op.client_ids or op.until_ms <= op.since_ms:
        return []
    rows = yield from _all(
        "SELECT (created_at_ms / ?) * ? AS start_ms, client_id, count(*) AS n"
        f" FROM operations WHERE client_id IN ({_marks(len(op.client_ids))})"
        " AND created_at_ms >= ? AND created_at_ms < ? AND ns = ?"
        " GROUP BY 1, client_id ORDER BY 1, client_id",
        op.bucket_ms,
        op.bucket_ms,
        *op.client_ids,
        op.since_ms,
        op.until_ms,
        op.ns,
    )
    return [a.OperationCount(int(r["start_ms"]), r["client_id"], int(r["n"])) for r in rows]


def player_flows(op: a.PlayerFlows) -> Plan[list[a.PlayerFlow]]:
    """Posted player cash per client, currency and bucket of the operation's creation."""
    assert op.bucket_ms > 0
    if not op.client_ids or op.until_ms <= op.since_ms:
        return []
    rows = yield from _all(
        "SELECT (o.created_at_ms / ?) * ? AS start_ms, o.client_id, p.currency,"
        " sum(CASE WHEN p.amount_minor < 0 THEN -p.amount_minor ELSE 0 END) AS debit,"
        " sum(CASE WHEN p.amount_minor > 0 THEN p.amount_minor ELSE 0 END) AS credit"
        " FROM operations o JOIN postings p ON p.operation_id = o.id"
        " JOIN accounts ac ON ac.id = p.account_id AND ac.owner_kind = 'player'"
        " AND ac.bucket = 'cash'"
        f" WHERE o.client_id IN ({_marks(len(op.client_ids))})"
        " AND o.created_at_ms >= ? AND o.created_at_ms < ? AND o.ns = ?"
        " GROUP BY 1, o.client_id, p.currency ORDER BY 1, o.client_id, p.currency",
        op.bucket_ms,
        op.bucket_ms,
        *op.client_ids,
        op.since_ms,
        op.until_ms,
        op.ns,
    )
    return [
        a.PlayerFlow(
            int(r["start_ms"]), r["client_id"], r["currency"], int(r["debit"]), int(r["credit"])
        )
        for r in rows
    ]


def open_operation_totals(op: a.OpenOperationTotals) -> Plan[list[a.OpenTotal]]:
    """Open operations grouped (uses operations_state_updated)."""
    rows = yield from _all(
        "SELECT client_id, currency, state, kind, count(*) AS n, sum(amount_minor) AS amount,"
        " sum(free_minor) AS free, min(created_at_ms) AS oldest FROM operations"
        " WHERE state IN (?, ?) GROUP BY client_id, currency, state, kind"
        " ORDER BY client_id, currency, state, kind",
        OpState.HELD.value,
        OpState.PENDING.value,
    )
    return [
        a.OpenTotal(
            client_id=r["client_id"],
            currency=r["currency"],
            state=r["state"],
            kind=r["kind"],
            count=int(r["n"]),
            amount_minor=int(r["amount"]),
            free_minor=int(r["free"]),
            oldest_ms=int(r["oldest"]),
        )
        for r in rows
    ]


def list_tombstones(op: a.ListTombstones) -> Plan[tuple[list[OperationRecord], int]]:
    """A page of tombstones, newest first."""
    _check_page(op.offset, op.limit)
    where = " WHERE state = ? AND amount_minor = 0 AND free_minor = 0"
    params: list[Any] = [OpState.ROLLED_BACK.value]
    if op.client_id is not None:
        where += " AND client_id = ?"
        params.append(op.client_id)
    total = yield from _one("SELECT count(*) AS n FROM operations" + where, *params)
    assert total is not None
    rows = yield from _all(
        "SELECT * FROM operations" + where + " ORDER BY created_at_ms DESC, id DESC"
        " LIMIT ? OFFSET ?",
        *params,
        op.limit,
        op.offset,
    )
    return [operation_from(r) for r in rows], int(total["n"])


#: Every back-office request and the plan that answers it.
PLANS: dict[type[Any], Callable[[Any], Plan[Any]]] = {
    a.InsertAdminUser: insert_admin_user,
    a.GetAdminUser: get_admin_user,
    a.ListAdminUsers: list_admin_users,
    a.UpdateAdminUser: update_admin_user,
    a.InsertAdminToken: insert_admin_token,
    a.GetAdminToken: get_admin_token,
    a.ListAdminTokens: list_admin_tokens,
    a.UpdateAdminToken: update_admin_token,
    a.InsertAdminSession: insert_admin_session,
    a.GetAdminSession: get_admin_session,
    a.DeleteAdminSessions: delete_admin_sessions,
    a.InsertAdminEvent: insert_admin_event,
    a.ListAdminEvents: list_admin_events,
    a.BalanceTotals: balance_totals,
    a.CountOperations: count_operations,
    a.PlayerFlows: player_flows,
    a.OpenOperationTotals: open_operation_totals,
    a.ListTombstones: list_tombstones,
}


# --- drivers -------------------------------------------------------------------------------


class SqliteConnection(Protocol):
    """The part of :class:`sqlite3.Connection` the plans need."""

    def execute(self, sql: str, parameters: Any = ..., /) -> Any: ...


def _run_sqlite(conn: SqliteConnection, plan: Plan[R]) -> R:
    try:
        mode, sql, params = next(plan)
        while True:
            cursor = conn.execute(sql, params)
            if mode == "one":
                result: Any = cursor.fetchone()
            elif mode == "all":
                result = cursor.fetchall()
            else:
                result = cursor.rowcount
            mode, sql, params = plan.send(result)
    except StopIteration as stop:
        value: R = stop.value
        return value


def sqlite_handlers(conn: SqliteConnection) -> dict[type[Any], Callable[[Any], Any]]:
    """Handlers for the SQLite executor's table: each runs its plan on ``conn``."""

    def handler(make: Callable[[Any], Plan[Any]]) -> Callable[[Any], Any]:
        return lambda op: _run_sqlite(conn, make(op))

    return {kind: handler(make) for kind, make in PLANS.items()}


_PLACEHOLDER = re.compile(r"\?")


@lru_cache(maxsize=256)
def to_postgres(sql: str) -> str:
    """``?`` placeholders as ``$1``, ``$2``… (the SQL texts here have no ``?`` literal)."""
    counter = iter(range(1, 10_000))
    return _PLACEHOLDER.sub(lambda _: f"${next(counter)}", sql)


class PostgresConnection(Protocol):
    """The part of an asyncpg connection the plans need."""

    async def fetchrow(self, query: str, *args: Any) -> Any: ...

    async def fetch(self, query: str, *args: Any) -> Any: ...

    async def execute(self, query: str, *args: Any) -> str: ...


async def _run_postgres(conn: PostgresConnection, plan: Plan[R]) -> R:
    try:
        mode, sql, params = next(plan)
        while True:
            text = to_postgres(sql)
            if mode == "one":
                result: Any = await conn.fetchrow(text, *params)
            elif mode == "all":
                result = list(await conn.fetch(text, *params))
            else:
                status = await conn.execute(text, *params)  # e.g. "DELETE 3"
                result = int(status.rsplit(" ", 1)[-1])
            mode, sql, params = plan.send(result)
    except StopIteration as stop:
        value: R = stop.value
        return value


def postgres_executors() -> dict[type[Any], Callable[[Any, Any], Awaitable[Any]]]:
    """Executors for the PostgreSQL store's table: ``(connection, op)`` → result."""

    def executor(make: Callable[[Any], Plan[Any]]) -> Callable[[Any, Any], Awaitable[Any]]:
        async def run(conn: Any, op: Any) -> Any:
            return await _run_postgres(conn, make(op))

        return run

    return {kind: executor(make) for kind, make in PLANS.items()}
