"""The production store: PostgreSQL through an asyncpg connection pool.

:meth:`PostgresStore.run` takes one pooled connection, opens one database transaction
(READ COMMITTED) and answers each request the use case yields by awaiting one executor,
looked up in a table built once per store. The transaction commits when the use case
returns and rolls back when it raises; the use case's exception propagates unchanged.

Boundaries: driver failures (``asyncpg.PostgresError``, ``InterfaceError``, ``OSError`` and
timeouts) become :class:`~gamewallet.store.port.StoreError` with a message that names only
the error class and SQLSTATE, never a value or the URL; a violated CHECK constraint (the
database's own overdraft and non-negative guards) is a broken invariant and becomes an
``AssertionError``. Either way the transaction rolls back.

Round trips: every executor is one statement except on rare paths (creating missing shard
rows, merging an operation's detail, counting past the last page). SQL texts are module
constants, or are assembled from constant fragments only, so asyncpg's per-connection
statement cache prepares each text once. Migrations are not applied here: ``gamewallet db
upgrade`` does that.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any, TypeAlias, TypeVar

import asyncpg

from gamewallet.core.ledger import Balance, Bucket, Entry, OwnerKind, check_balanced
from gamewallet.store import admin_sql, ops, transfer_sql
from gamewallet.store.audit import AUDIT_CHECKS
from gamewallet.store.port import StoreError, UseCase
from gamewallet.store.records import (
    AccountRecord,
    ClientRecord,
    IdempotencyRecord,
    OperationRecord,
    OutboxRecord,
    PlayerRecord,
    ReconciliationRecord,
    SessionRecord,
    SettlementRecord,
)
from gamewallet.store.rows import (
    account_from,
    client_from,
    from_json,
    operation_from,
    outbox_from,
    player_from,
    reconciliation_from,
    session_from,
    settlement_from,
    to_json,
)

T = TypeVar("T")

if TYPE_CHECKING:
    from asyncpg.pool import PoolConnectionProxy

    _Conn: TypeAlias = PoolConnectionProxy[asyncpg.Record]
    _Executor: TypeAlias = Callable[[_Conn, Any], Awaitable[Any]]

#: What the driver raises when the database (or the way to it) fails.
_DRIVER_ERRORS: tuple[type[Exception], ...] = (
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    asyncpg.exceptions.InternalClientError,
    OSError,  # includes TimeoutError (command_timeout_s, pool acquire)
)

#: Client columns an UpdateClient may change (ops.UpdateClient's docstring).
#: Outbox states a FinishOutbox may set.
_FINISH_STATES = frozenset({"done", "dead", "pending"})


def _plain(value: Any) -> Any:
    """``sum()`` of bigints is numeric in PostgreSQL and reaches us as ``Decimal('1.0E+5')``:
    show integral amounts as the integers they are."""
    if isinstance(value, Decimal) and value == value.to_integral_value():
        return int(value)
    return value


def _store_error(exc: BaseException) -> StoreError:
    """A StoreError that says what failed without repeating the driver's message (which may
    quote values or connection details)."""
    sqlstate = getattr(exc, "sqlstate", None)
    if sqlstate:
        return StoreError(f"PostgreSQL error {sqlstate} ({type(exc).__name__})")
    return StoreError(f"PostgreSQL unavailable ({type(exc).__name__})")


class _UseCaseFailed(Exception):
    """Carries an exception raised by the use case past the driver-error translation."""

    def __init__(self, error: Exception) -> None:
        super().__init__()
        self.error = error


# --- records ---------------------------------------------------------------------------------


# --- SQL -------------------------------------------------------------------------------------
# Constants (or constant fragments joined by the filter builders below): never a value.

_CLIENT_INSERT = """
INSERT INTO clients (protocol, name, username, secret_hash, currency, credit_limit_minor,
                     shards, config, created_at_ms)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
ON CONFLICT (protocol, name) DO NOTHING
RETURNING *"""
_CLIENT_BY_ID = "SELECT * FROM clients WHERE id = $1"
_CLIENT_BY_NAME = "SELECT * FROM clients WHERE protocol = $1 AND name = $2"
_CLIENTS_ALL = "SELECT * FROM clients ORDER BY id"
_CLIENTS_OF_PROTOCOL = "SELECT * FROM clients WHERE protocol = $1 ORDER BY id"

# A player and both of its accounts in one row; the accounts' unique key is fully given.
_PLAYER_COLUMNS = """
p.*, c.id AS c_id, c.posted_minor AS c_posted, c.held_minor AS c_held,
c.pending_minor AS c_pending, f.id AS f_id, f.posted_minor AS f_posted,
f.held_minor AS f_held, f.pending_minor AS f_pending"""
_PLAYER_FROM = """
FROM players p
JOIN accounts c ON c.owner_kind = 'player' AND c.owner_id = p.id AND c.currency = p.currency
               AND c.bucket = 'cash' AND c.shard = 0
JOIN accounts f ON f.owner_kind = 'player' AND f.owner_id = p.id AND f.currency = p.currency
               AND f.bucket = 'free' AND f.shard = 0"""
_PLAYER_SELECT = "SELECT" + _PLAYER_COLUMNS + _PLAYER_FROM
# FOR UPDATE OF all three: the player row and its two account rows are locked together, in
# the same plan order by every transaction (player first), before any posting touches them.
_LOCK_PLAYER = " FOR UPDATE OF p, c, f"
_PLAYER_BY_ID = _PLAYER_SELECT + " WHERE p.id = $1"
_PLAYER_BY_ID_LOCK = _PLAYER_BY_ID + _LOCK_PLAYER
_PLAYER_BY_EXT = _PLAYER_SELECT + " WHERE p.client_id = $1 AND p.external_id = $2"
_PLAYER_BY_EXT_LOCK = _PLAYER_BY_EXT + _LOCK_PLAYER

# The player and its two accounts in one statement; no row comes back if it existed.
_PLAYER_INSERT = """
WITH p AS (
    INSERT INTO players (client_id, external_id, currency, nickname, created_at_ms)
    VALUES ($1, $2, $3, $4, $5)
    ON CONFLICT (client_id, external_id) DO NOTHING
    RETURNING *
), a AS (
    INSERT INTO accounts (owner_kind, owner_id, currency, bucket, shard, no_overdraft)
    SELECT 'player', p.id, p.currency, b.bucket, 0, true
    FROM p CROSS JOIN (VALUES ('cash'), ('free')) AS b (bucket)
    RETURNING id, bucket
)
SELECT p.*,
       (SELECT id FROM a WHERE bucket = 'cash') AS c_id,
       (SELECT id FROM a WHERE bucket = 'free') AS f_id
FROM p"""

_OWNER_ACCOUNTS = """
SELECT id, currency, bucket, posted_minor, held_minor, pending_minor FROM accounts
WHERE owner_kind = $1 AND owner_id = $2 AND currency = $3 AND bucket = $4
  AND shard = ANY($5::int[])
ORDER BY shard"""
# Row locks are taken as rows leave the sort: in ascending shard order, as ops.py requires.
_OWNER_ACCOUNTS_LOCK = _OWNER_ACCOUNTS + " FOR UPDATE"
_OWNER_ACCOUNTS_CREATE = """
INSERT INTO accounts (owner_kind, owner_id, currency, bucket, shard, no_overdraft)
SELECT $1, $2, $3, $4, s, false FROM unnest($5::int[]) AS s
ON CONFLICT (owner_kind, owner_id, currency, bucket, shard) DO NOTHING"""

# One round trip for a whole posting. ``l`` locks the touched accounts in ascending id order
# (rows are locked as they leave the sort, and an account is updated only after its ``l`` row
# came out), so two postings that share accounts cannot deadlock whatever order their deltas
# were listed in. The UPDATE also checks each delta's currency against its account's.
_APPLY = """
WITH d AS (
    SELECT * FROM unnest($1::bigint[], $2::text[], $3::bigint[], $4::bigint[], $5::bigint[])
        AS d (account_id, currency, posted_minor, held_minor, pending_minor)
), l AS (
    SELECT id FROM accounts WHERE id = ANY($1::bigint[]) ORDER BY id FOR UPDATE
), u AS (
    UPDATE accounts a
    SET posted_minor = a.posted_minor + d.posted_minor,
        held_minor = a.held_minor + d.held_minor,
        pending_minor = a.pending_minor + d.pending_minor
    FROM d JOIN l ON l.id = d.account_id
    WHERE a.id = d.account_id AND a.currency = d.currency
    RETURNING a.id
), p AS (
    INSERT INTO postings (operation_id, account_id, currency, amount_minor, created_at_ms)
    SELECT $6, e.account_id, e.currency, e.amount_minor, $7
    FROM unnest($8::bigint[], $9::text[], $10::bigint[]) AS e (account_id, currency, amount_minor)
    RETURNING 1
)
SELECT (SELECT count(*) FROM u) AS updated, (SELECT count(*) FROM p) AS posted"""

_OPERATION_INSERT = """
INSERT INTO operations (client_id, ns, ext_id, kind, player_id, currency, amount_minor,
                        free_minor, state, created_at_ms, updated_at_ms, detail)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10, $11)
ON CONFLICT (client_id, ns, ext_id) DO NOTHING
RETURNING *"""
_OPERATION_BY_ID = "SELECT * FROM operations WHERE id = $1"
_OPERATION_BY_ID_LOCK = _OPERATION_BY_ID + " FOR UPDATE"
_OPERATION_BY_EXT = "SELECT * FROM operations WHERE client_id = $1 AND ns = $2 AND ext_id = $3"
_OPERATION_BY_EXT_LOCK = _OPERATION_BY_EXT + " FOR UPDATE"
_OPERATION_DETAIL_LOCK = "SELECT detail FROM operations WHERE id = $1 FOR UPDATE"
_OPERATION_UPDATE = "UPDATE operations SET state = $2, updated_at_ms = $3 WHERE id = $1"
_OPERATION_UPDATE_DETAIL = """
UPDATE operations SET state = $2, updated_at_ms = $3, detail = $4 WHERE id = $1"""

_SESSION_INSERT = """
INSERT INTO sessions (token, client_id, player_id, kind, expires_at_ms, created_at_ms,
                      used_at_ms)
VALUES ($1, $2, $3, $4, $5, $6, $7)"""
_SESSION_GET = "SELECT * FROM sessions WHERE token = $1"
_SESSION_MARK_USED = """
UPDATE sessions SET used_at_ms = $2 WHERE token = $1 AND used_at_ms IS NULL RETURNING 1"""

_IDEMPOTENCY_GET = """
SELECT fingerprint, response, created_at_ms FROM idempotency
WHERE client_id = $1 AND scope = $2 AND key = $3"""
_IDEMPOTENCY_SAVE = """
INSERT INTO idempotency (client_id, scope, key, fingerprint, response, created_at_ms)
VALUES ($1, $2, $3, $4, $5, $6)
ON CONFLICT (client_id, scope, key) DO NOTHING"""
# By primary key rather than ctid, which distributed PostgreSQL engines don't offer. SKIP
# LOCKED lets two purgers run at once without waiting for (or double-counting) each other.
_IDEMPOTENCY_PURGE = """
WITH gone AS (
    DELETE FROM idempotency
    WHERE (client_id, scope, key) IN (
        SELECT client_id, scope, key FROM idempotency WHERE created_at_ms < $1
        ORDER BY created_at_ms LIMIT $2 FOR UPDATE SKIP LOCKED)
    RETURNING 1
)
SELECT count(*) FROM gone"""

_TRY_LOCK = "SELECT pg_try_advisory_xact_lock(hashtextextended($1, 0))"

_OUTBOX_ENQUEUE = """
INSERT INTO outbox (topic, client_id, operation_id, payload, created_at_ms, due_at_ms)
VALUES ($1, $2, $3, $4, $5, $6)
RETURNING id"""
_OUTBOX_CLAIM = """
UPDATE outbox
SET lease_owner = $1, lease_until_ms = $2 + $3, attempts = attempts + 1,
    first_attempt_at_ms = coalesce(first_attempt_at_ms, $2)
WHERE id IN (
    SELECT id FROM outbox
    WHERE state = 'pending' AND due_at_ms <= $2
      AND (lease_until_ms IS NULL OR lease_until_ms <= $2){topics}
    ORDER BY due_at_ms, id
    LIMIT $4
    FOR UPDATE SKIP LOCKED)
RETURNING *"""
_OUTBOX_CLAIM_ANY = _OUTBOX_CLAIM.format(topics="")
_OUTBOX_CLAIM_TOPICS = _OUTBOX_CLAIM.format(topics=" AND topic = ANY($5::text[])")
_OUTBOX_FINISH = """
UPDATE outbox
SET state = $3, due_at_ms = coalesce($4, due_at_ms), last_error = $5, done_at_ms = $6,
    lease_owner = NULL, lease_until_ms = NULL
WHERE id = $1 AND lease_owner = $2 AND state = 'pending'
RETURNING 1"""
_OUTBOX_RETRY = """
UPDATE outbox
SET state = 'pending', due_at_ms = $2, lease_owner = NULL, lease_until_ms = NULL,
    done_at_ms = NULL
WHERE id = $1 AND state <> 'done'
RETURNING 1"""

_RECONCILIATION_INSERT = """
INSERT INTO reconciliation_decisions (client_id, operation_id, ext_id, kind, asked_at_ms,
                                      answer, action, error)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
RETURNING id"""

_SETTLEMENT_INSERT = """
INSERT INTO game_settlements (wallet, ext_id, kind, token, amount_minor, currency,
                              created_at_ms, detail)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
ON CONFLICT (wallet, ext_id) DO NOTHING
RETURNING *"""
_SETTLEMENT_BY_ID = "SELECT * FROM game_settlements WHERE id = $1"
_SETTLEMENT_BY_ID_LOCK = _SETTLEMENT_BY_ID + " FOR UPDATE"
_SETTLEMENT_BY_KEY = "SELECT * FROM game_settlements WHERE wallet = $1 AND ext_id = $2"
_SETTLEMENT_BY_KEY_LOCK = _SETTLEMENT_BY_KEY + " FOR UPDATE"
# One statement whatever the changes: a column keeps its value unless its flag says "set";
# detail is merged (jsonb ||) with what is stored.
_SETTLEMENT_UPDATE = """
UPDATE game_settlements SET
    decision = CASE WHEN $2 THEN $3 ELSE decision END,
    reason = CASE WHEN $4 THEN $5 ELSE reason END,
    decided_at_ms = CASE WHEN $6 THEN $7::bigint ELSE decided_at_ms END,
    outcome = CASE WHEN $8 THEN $9 ELSE outcome END,
    settled_at_ms = CASE WHEN $10 THEN $11::bigint ELSE settled_at_ms END,
    detail = CASE WHEN $12 THEN (detail::jsonb || $13::jsonb)::text ELSE detail END
WHERE id = $1
RETURNING *"""

_META_GET = "SELECT value FROM meta WHERE key = $1"
_META_SET_IF_ABSENT = """
WITH ins AS (
    INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING RETURNING value
)
SELECT value FROM ins UNION ALL SELECT value FROM meta WHERE key = $1"""


class _Filter:
    """A WHERE clause built from constant fragments, values passed as parameters."""

    def __init__(self) -> None:
        self.clauses: list[str] = []
        self.args: list[Any] = []

    def add(self, fragment: str, *values: Any) -> None:
        """Add ``fragment`` whose ``{0}``, ``{1}``… stand for ``values``."""
        first = len(self.args) + 1
        self.clauses.append(fragment.format(*(f"${first + i}" for i in range(len(values)))))
        self.args.extend(values)

    def where(self) -> str:
        return (" WHERE " + " AND ".join(self.clauses)) if self.clauses else ""

    def next_param(self) -> int:
        return len(self.args) + 1


def _like_pattern(text: str) -> str:
    """An ILIKE pattern matching ``text`` anywhere, with its own wildcards escaped."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


_Page = ops.ListPlayers | ops.ListOperations | ops.ListOutbox


def _check_page(offset: int, limit: int) -> None:
    assert offset >= 0, "paging needs offset >= 0"
    assert limit >= 0, "paging needs limit >= 0"


class PostgresStore:
    """The Store port on PostgreSQL (``postgresql://user@host/db``)."""

    kind = "postgresql"

    def __init__(
        self,
        url: str,
        *,
        min_size: int = 1,
        max_size: int = 4,
        command_timeout_s: float = 10.0,
    ) -> None:
        assert 0 <= min_size <= max_size, "pool sizes"
        assert max_size >= 1, "pool sizes"
        assert command_timeout_s > 0
        self.url = url
        self.min_size = min_size
        self.max_size = max_size
        self.command_timeout_s = command_timeout_s
        self._pool: asyncpg.Pool[asyncpg.Record] | None = None
        self._executors: dict[type[Any], _Executor] = {
            ops.InsertClient: self._insert_client,
            ops.UpdateClient: self._update_client,
            ops.GetClient: self._get_client,
            ops.ListClients: self._list_clients,
            ops.InsertPlayer: self._insert_player,
            ops.GetPlayer: self._get_player,
            ops.UpdatePlayer: self._update_player,
            ops.ListPlayers: self._list_players,
            ops.GetOwnerAccounts: self._get_owner_accounts,
            ops.Apply: self._apply,
            ops.InsertOperation: self._insert_operation,
            ops.GetOperation: self._get_operation,
            ops.UpdateOperation: self._update_operation,
            ops.ListOperations: self._list_operations,
            ops.InsertSession: self._insert_session,
            ops.GetSession: self._get_session,
            ops.MarkSessionUsed: self._mark_session_used,
            ops.GetIdempotency: self._get_idempotency,
            ops.SaveIdempotency: self._save_idempotency,
            ops.PurgeIdempotency: self._purge_idempotency,
            ops.TryLockKey: self._try_lock_key,
            ops.Enqueue: self._enqueue,
            ops.ClaimOutbox: self._claim_outbox,
            ops.FinishOutbox: self._finish_outbox,
            ops.ListOutbox: self._list_outbox,
            ops.RetryOutbox: self._retry_outbox,
            ops.Audit: self._audit,
            ops.GetMeta: self._get_meta,
            ops.SetMetaIfAbsent: self._set_meta_if_absent,
            ops.InsertReconciliation: self._insert_reconciliation,
            ops.ListReconciliations: self._list_reconciliations,
            ops.InsertSettlement: self._insert_settlement,
            ops.GetSettlement: self._get_settlement,
            ops.UpdateSettlement: self._update_settlement,
        }
        # The back-office requests (staff users, sessions, aggregates) live with their SQL.
        self._executors.update(admin_sql.postgres_executors())
        # The operator-side transfer records of the HRG/JDB clients.
        self._executors.update(transfer_sql.postgres_executors())

    def __repr__(self) -> str:  # never show the URL: it may hold a password
        return f"<PostgresStore max_size={self.max_size}>"

    def pool_stats(self) -> dict[str, int]:
        """This process's connections (for /metrics): ``max``, ``open`` and ``in_use``."""
        pool = self._pool
        if pool is None:
            return {"max": self.max_size, "open": 0, "in_use": 0}
        return {
            "max": pool.get_max_size(),
            "open": pool.get_size(),
            "in_use": pool.get_size() - pool.get_idle_size(),
        }

    @property
    def handled_ops(self) -> frozenset[type[Any]]:
        """Every request type this store answers."""
        return frozenset(self._executors)

    # --- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        """Open the connection pool (the schema must already be migrated)."""
        if self._pool is not None:
            return
        try:
            self._pool = await asyncpg.create_pool(
                self.url,
                min_size=self.min_size,
                max_size=self.max_size,
                command_timeout=self.command_timeout_s,
                timeout=self.command_timeout_s,  # connecting
                server_settings={"application_name": "gamewallet"},
            )
        except _DRIVER_ERRORS as exc:
            raise _store_error(exc) from exc

    async def close(self) -> None:
        """Close the pool, waiting for connections in use to be released."""
        pool, self._pool = self._pool, None
        if pool is not None:
            try:
                await pool.close()
            except _DRIVER_ERRORS as exc:
                raise _store_error(exc) from exc

    async def run(self, use_case: UseCase[T]) -> T:
        """Run ``use_case`` in one database transaction and return its result."""
        pool = self._pool
        if pool is None:
            use_case.close()
            raise StoreError("the store is not started")
        failure: Exception | None = None
        try:
            async with pool.acquire(timeout=self.command_timeout_s) as conn, conn.transaction():
                return await self._drive(conn, use_case)
        except _UseCaseFailed as carrier:
            failure = carrier.error
        except _DRIVER_ERRORS as exc:
            raise _store_error(exc) from exc
        finally:
            use_case.close()
        # Re-raised outside the handler so the use case's exception keeps its own context.
        assert failure is not None  # the only way here is the use case raising
        raise failure

    async def _drive(self, conn: _Conn, use_case: UseCase[T]) -> T:
        try:
            op = next(use_case)
        except StopIteration as stop:
            value: T = stop.value
            return value
        except Exception as exc:
            raise _UseCaseFailed(exc) from exc
        while True:
            result = await self._execute(conn, op)
            try:
                op = use_case.send(result)
            except StopIteration as stop:
                done: T = stop.value
                return done
            except Exception as exc:
                raise _UseCaseFailed(exc) from exc

    async def _execute(self, conn: _Conn, op: ops.Op[Any]) -> Any:
        executor = self._executors.get(type(op))
        if executor is None:
            raise TypeError(f"PostgresStore cannot answer {type(op).__name__}")
        try:
            return await executor(conn, op)
        except asyncpg.CheckViolationError as exc:
            raise AssertionError(
                f"the database refused a broken invariant ({exc.constraint_name})"
            ) from exc
        except _DRIVER_ERRORS as exc:
            raise _store_error(exc) from exc

    # --- clients ---------------------------------------------------------------------------

    async def _insert_client(self, conn: _Conn, op: ops.InsertClient) -> ClientRecord | None:
        row = await conn.fetchrow(
            _CLIENT_INSERT,
            op.protocol,
            op.name,
            op.username,
            op.secret_hash,
            op.currency,
            op.credit_limit_minor,
            op.shards,
            to_json(op.config),
            op.now_ms,
        )
        return client_from(row) if row is not None else None

    async def _update_client(self, conn: _Conn, op: ops.UpdateClient) -> ClientRecord | None:
        assert set(op.changes) <= ops.CLIENT_FIELDS, f"unknown client fields {set(op.changes)}"
        if not op.changes:
            return await self._get_client(conn, ops.GetClient(client_id=op.client_id))
        names = sorted(op.changes)  # a stable text per field set, for the statement cache
        values = [to_json(op.changes[n]) if n == "config" else op.changes[n] for n in names]
        sets = ", ".join(f"{name} = ${i}" for i, name in enumerate(names, start=2))
        row = await conn.fetchrow(
            f"UPDATE clients SET {sets} WHERE id = $1 RETURNING *",
            op.client_id,
            *values,
        )
        return client_from(row) if row is not None else None

    async def _get_client(self, conn: _Conn, op: ops.GetClient) -> ClientRecord | None:
        if op.client_id is not None:
            row = await conn.fetchrow(_CLIENT_BY_ID, op.client_id)
        else:
            assert op.protocol is not None, "GetClient needs an id or a protocol and name"
            assert op.name is not None, "GetClient needs an id or a protocol and name"
            row = await conn.fetchrow(_CLIENT_BY_NAME, op.protocol, op.name)
        return client_from(row) if row is not None else None

    async def _list_clients(self, conn: _Conn, op: ops.ListClients) -> list[ClientRecord]:
        if op.protocol is None:
            rows = await conn.fetch(_CLIENTS_ALL)
        else:
            rows = await conn.fetch(_CLIENTS_OF_PROTOCOL, op.protocol)
        return [client_from(r) for r in rows]

    # --- players ---------------------------------------------------------------------------

    async def _insert_player(self, conn: _Conn, op: ops.InsertPlayer) -> PlayerRecord | None:
        row = await conn.fetchrow(
            _PLAYER_INSERT, op.client_id, op.external_id, op.currency, op.nickname, op.now_ms
        )
        if row is None:
            return None
        zero = Balance()
        return PlayerRecord(
            id=row["id"],
            client_id=row["client_id"],
            external_id=row["external_id"],
            currency=row["currency"],
            nickname=row["nickname"],
            blocked=row["blocked"],
            locked=row["locked"],
            closed=row["closed"],
            game_type=row["game_type"],
            game_since_ms=row["game_since_ms"],
            game_left_at_ms=row["game_left_at_ms"],
            game_left_type=row["game_left_type"],
            created_at_ms=row["created_at_ms"],
            cash=AccountRecord(row["c_id"], row["currency"], Bucket.CASH, zero),
            free=AccountRecord(row["f_id"], row["currency"], Bucket.FREE, zero),
        )

    async def _get_player(self, conn: _Conn, op: ops.GetPlayer) -> PlayerRecord | None:
        if op.player_id is not None:
            sql = _PLAYER_BY_ID_LOCK if op.lock else _PLAYER_BY_ID
            row = await conn.fetchrow(sql, op.player_id)
        else:
            assert op.client_id is not None, "GetPlayer needs an id or a client and external id"
            assert op.external_id is not None, "GetPlayer needs an id or a client and external id"
            sql = _PLAYER_BY_EXT_LOCK if op.lock else _PLAYER_BY_EXT
            row = await conn.fetchrow(sql, op.client_id, op.external_id)
        return player_from(row) if row is not None else None

    async def _update_player(self, conn: _Conn, op: ops.UpdatePlayer) -> None:
        assert set(op.changes) <= ops.PLAYER_FIELDS, f"unknown player fields {set(op.changes)}"
        if not op.changes:
            return
        names = sorted(op.changes)
        sets = ", ".join(f"{name} = ${i}" for i, name in enumerate(names, start=2))
        await conn.execute(
            f"UPDATE players SET {sets} WHERE id = $1",
            op.player_id,
            *(op.changes[n] for n in names),
        )

    async def _list_players(
        self, conn: _Conn, op: ops.ListPlayers
    ) -> tuple[list[PlayerRecord], int]:
        _check_page(op.offset, op.limit)
        where = _Filter()
        if op.client_id is not None:
            where.add("p.client_id = {0}", op.client_id)
        if op.external_ids is not None:
            where.add("p.external_id = ANY({0}::text[])", list(op.external_ids))
        if op.non_zero:
            where.add("(c.posted_minor <> 0 OR f.posted_minor <> 0)")
        if op.in_game:
            where.add("p.game_type IS NOT NULL")
        if op.search:
            where.add(
                "(p.external_id ILIKE {0} ESCAPE '\\' OR p.nickname ILIKE {0} ESCAPE '\\')",
                _like_pattern(op.search),
            )
        n = where.next_param()
        rows = await conn.fetch(
            "SELECT"
            + _PLAYER_COLUMNS
            + ", count(*) OVER () AS total"
            + _PLAYER_FROM
            + where.where()
            + f" ORDER BY p.id OFFSET ${n} LIMIT ${n + 1}",
            *where.args,
            op.offset,
            op.limit,
        )
        total = await self._total(conn, rows, op, "SELECT count(*)" + _PLAYER_FROM, where)
        return [player_from(r) for r in rows], total

    async def _total(
        self,
        conn: _Conn,
        rows: Sequence[asyncpg.Record],
        page: _Page,
        count_sql: str,
        where: _Filter,
    ) -> int:
        """The window total of a page, or a count when the page came back empty although
        rows might match (past the end, or a zero limit)."""
        if rows:
            return int(rows[0]["total"])
        if page.offset == 0 and page.limit > 0:
            return 0
        return int(await conn.fetchval(count_sql + where.where(), *where.args))

    # --- accounts and postings ---------------------------------------------------------------

    async def _get_owner_accounts(
        self, conn: _Conn, op: ops.GetOwnerAccounts
    ) -> list[AccountRecord]:
        assert op.owner_kind in (OwnerKind.CLIENT, OwnerKind.HOUSE), "not a shared account"
        assert op.shards >= 1
        if op.shard is None:
            shards = list(range(op.shards))
        else:
            assert 0 <= op.shard < op.shards, "shard out of range"
            shards = [op.shard]
        key = (str(op.owner_kind), op.owner_id, op.currency, str(op.bucket), shards)
        sql = _OWNER_ACCOUNTS_LOCK if op.lock else _OWNER_ACCOUNTS
        rows = await conn.fetch(sql, *key)
        if len(rows) < len(shards):  # first use of this account (or of a new shard)
            await conn.execute(_OWNER_ACCOUNTS_CREATE, *key)
            rows = await conn.fetch(sql, *key)
        assert len(rows) == len(shards), "owner account rows missing"
        return [account_from(r) for r in rows]

    async def _apply(self, conn: _Conn, op: ops.Apply) -> None:
        posted = [
            Entry(d.account_id, d.currency, d.posted_minor) for d in op.deltas if d.posted_minor
        ]
        if posted:
            check_balanced(posted)
        # One update per account: UPDATE … FROM applies only one joined row to each target.
        totals: dict[tuple[int, str], list[int]] = {}
        for d in op.deltas:
            total = totals.setdefault((d.account_id, d.currency), [0, 0, 0])
            total[0] += d.posted_minor
            total[1] += d.held_minor
            total[2] += d.pending_minor
        if not totals:
            return
        assert len({account for account, _ in totals}) == len(totals), "one currency per account"
        row = await conn.fetchrow(
            _APPLY,
            [a for a, _ in totals],
            [c for _, c in totals],
            [t[0] for t in totals.values()],
            [t[1] for t in totals.values()],
            [t[2] for t in totals.values()],
            op.operation_id,
            op.now_ms,
            [e.account_id for e in posted],
            [e.currency for e in posted],
            [e.amount_minor for e in posted],
        )
        assert row is not None
        assert row["updated"] == len(totals), "unknown account or currency mismatch"
        assert row["posted"] == len(posted)

    # --- operations ------------------------------------------------------------------------

    async def _insert_operation(
        self, conn: _Conn, op: ops.InsertOperation
    ) -> OperationRecord | None:
        row = await conn.fetchrow(
            _OPERATION_INSERT,
            op.client_id,
            op.ns,
            op.ext_id,
            op.kind,
            op.player_id,
            op.currency,
            op.amount_minor,
            op.free_minor,
            op.state.value,
            op.now_ms,
            to_json(op.detail),
        )
        return operation_from(row) if row is not None else None

    async def _get_operation(self, conn: _Conn, op: ops.GetOperation) -> OperationRecord | None:
        if op.operation_id is not None:
            sql = _OPERATION_BY_ID_LOCK if op.lock else _OPERATION_BY_ID
            row = await conn.fetchrow(sql, op.operation_id)
        else:
            assert op.client_id is not None, "GetOperation needs an id or a client and ext id"
            assert op.ext_id is not None, "GetOperation needs an id or a client and ext id"
            sql = _OPERATION_BY_EXT_LOCK if op.lock else _OPERATION_BY_EXT
            row = await conn.fetchrow(sql, op.client_id, op.ns, op.ext_id)
        return operation_from(row) if row is not None else None

    async def _update_operation(self, conn: _Conn, op: ops.UpdateOperation) -> None:
        if not op.detail:
            status = await conn.execute(
                _OPERATION_UPDATE, op.operation_id, op.state.value, op.now_ms
            )
            assert status == "UPDATE 1", "update of an unknown operation"
            return
        # Merged in Python (not jsonb ||): jsonb refuses some valid JSON text (\u0000).
        current = await conn.fetchval(_OPERATION_DETAIL_LOCK, op.operation_id)
        assert current is not None, "update of an unknown operation"
        detail = {**from_json(current), **op.detail}
        await conn.execute(
            _OPERATION_UPDATE_DETAIL,
            op.operation_id,
            op.state.value,
            op.now_ms,
            to_json(detail),
        )

    async def _list_operations(
        self, conn: _Conn, op: ops.ListOperations
    ) -> tuple[list[OperationRecord], int]:
        _check_page(op.offset, op.limit)
        where = _Filter()
        for fragment, value in (
            ("client_id = {0}", op.client_id),
            ("player_id = {0}", op.player_id),
            ("ns = {0}", op.ns),
            ("created_at_ms >= {0}", op.since_ms),
            ("created_at_ms < {0}", op.until_ms),
            ("updated_at_ms < {0}", op.updated_before_ms),
        ):
            if value is not None:
                where.add(fragment, value)
        if op.kinds is not None:
            where.add("kind = ANY({0}::text[])", list(op.kinds))
        if op.states is not None:
            where.add("state = ANY({0}::text[])", [s.value for s in op.states])
        order = "ASC" if op.oldest_first else "DESC"
        n = where.next_param()
        rows = await conn.fetch(
            "SELECT *, count(*) OVER () AS total FROM operations"
            + where.where()
            + f" ORDER BY created_at_ms {order}, id {order} OFFSET ${n} LIMIT ${n + 1}",
            *where.args,
            op.offset,
            op.limit,
        )
        total = await self._total(conn, rows, op, "SELECT count(*) FROM operations", where)
        return [operation_from(r) for r in rows], total

    # --- sessions --------------------------------------------------------------------------

    async def _insert_session(self, conn: _Conn, op: ops.InsertSession) -> None:
        s = op.session
        await conn.execute(
            _SESSION_INSERT,
            s.token,
            s.client_id,
            s.player_id,
            s.kind,
            s.expires_at_ms,
            s.created_at_ms,
            s.used_at_ms,
        )

    async def _get_session(self, conn: _Conn, op: ops.GetSession) -> SessionRecord | None:
        row = await conn.fetchrow(_SESSION_GET, op.token)
        return session_from(row) if row is not None else None

    async def _mark_session_used(self, conn: _Conn, op: ops.MarkSessionUsed) -> bool:
        return await conn.fetchval(_SESSION_MARK_USED, op.token, op.now_ms) is not None

    # --- idempotency -----------------------------------------------------------------------

    async def _get_idempotency(
        self, conn: _Conn, op: ops.GetIdempotency
    ) -> IdempotencyRecord | None:
        row = await conn.fetchrow(_IDEMPOTENCY_GET, op.client_id, op.scope, op.key)
        if row is None:
            return None
        return IdempotencyRecord(row["fingerprint"], bytes(row["response"]), row["created_at_ms"])

    async def _save_idempotency(self, conn: _Conn, op: ops.SaveIdempotency) -> None:
        await conn.execute(
            _IDEMPOTENCY_SAVE,
            op.client_id,
            op.scope,
            op.key,
            op.fingerprint,
            op.response,
            op.now_ms,
        )

    async def _purge_idempotency(self, conn: _Conn, op: ops.PurgeIdempotency) -> int:
        assert op.limit >= 0
        return int(await conn.fetchval(_IDEMPOTENCY_PURGE, op.before_ms, op.limit))

    async def _try_lock_key(self, conn: _Conn, op: ops.TryLockKey) -> bool:
        return bool(await conn.fetchval(_TRY_LOCK, op.key))

    # --- outbox ----------------------------------------------------------------------------

    async def _enqueue(self, conn: _Conn, op: ops.Enqueue) -> int:
        return int(
            await conn.fetchval(
                _OUTBOX_ENQUEUE,
                op.topic,
                op.client_id,
                op.operation_id,
                to_json(op.payload),
                op.now_ms,
                op.due_at_ms,
            )
        )

    async def _claim_outbox(self, conn: _Conn, op: ops.ClaimOutbox) -> list[OutboxRecord]:
        assert op.limit >= 0
        assert op.lease_ms > 0
        args = (op.owner, op.now_ms, op.lease_ms, op.limit)
        if op.topics is None:
            rows = await conn.fetch(_OUTBOX_CLAIM_ANY, *args)
        else:
            rows = await conn.fetch(_OUTBOX_CLAIM_TOPICS, *args, list(op.topics))
        return sorted((outbox_from(r) for r in rows), key=lambda r: (r.due_at_ms, r.id))

    async def _finish_outbox(self, conn: _Conn, op: ops.FinishOutbox) -> bool:
        assert op.state in _FINISH_STATES, f"unknown outbox state {op.state!r}"
        assert op.state != "pending" or op.due_at_ms is not None, "a retry needs due_at_ms"
        done_at = op.now_ms if op.state != "pending" else None
        changed = await conn.fetchval(
            _OUTBOX_FINISH, op.outbox_id, op.owner, op.state, op.due_at_ms, op.error, done_at
        )
        return changed is not None

    async def _list_outbox(self, conn: _Conn, op: ops.ListOutbox) -> tuple[list[OutboxRecord], int]:
        _check_page(op.offset, op.limit)
        where = _Filter()
        if op.state is not None:
            where.add("state = {0}", op.state)
        n = where.next_param()
        rows = await conn.fetch(
            "SELECT *, count(*) OVER () AS total FROM outbox"
            + where.where()
            + f" ORDER BY id DESC OFFSET ${n} LIMIT ${n + 1}",
            *where.args,
            op.offset,
            op.limit,
        )
        total = await self._total(conn, rows, op, "SELECT count(*) FROM outbox", where)
        return [outbox_from(r) for r in rows], total

    async def _retry_outbox(self, conn: _Conn, op: ops.RetryOutbox) -> bool:
        return await conn.fetchval(_OUTBOX_RETRY, op.outbox_id, op.now_ms) is not None

    # --- reconciliation decisions (wallet side) and settlements (game side) ----------------

    async def _insert_reconciliation(self, conn: _Conn, op: ops.InsertReconciliation) -> int:
        return int(
            await conn.fetchval(
                _RECONCILIATION_INSERT,
                op.client_id,
                op.operation_id,
                op.ext_id,
                op.kind,
                op.asked_at_ms,
                op.answer,
                op.action,
                op.error,
            )
        )

    async def _list_reconciliations(
        self, conn: _Conn, op: ops.ListReconciliations
    ) -> tuple[list[ReconciliationRecord], int]:
        _check_page(op.offset, op.limit)
        where = _Filter()
        if op.client_id is not None:
            where.add("client_id = {0}", op.client_id)
        if op.operation_id is not None:
            where.add("operation_id = {0}", op.operation_id)
        n = where.next_param()
        total = await conn.fetchval(
            "SELECT count(*) FROM reconciliation_decisions" + where.where(), *where.args
        )
        rows = await conn.fetch(
            "SELECT * FROM reconciliation_decisions"
            + where.where()
            + f" ORDER BY id DESC OFFSET ${n} LIMIT ${n + 1}",
            *where.args,
            op.offset,
            op.limit,
        )
        return [reconciliation_from(r) for r in rows], int(total)

    async def _insert_settlement(
        self, conn: _Conn, op: ops.InsertSettlement
    ) -> SettlementRecord | None:
        row = await conn.fetchrow(
            _SETTLEMENT_INSERT,
            op.wallet,
            op.ext_id,
            op.kind,
            op.token,
            op.amount_minor,
            op.currency,
            op.now_ms,
            to_json(op.detail),
        )
        return settlement_from(row) if row is not None else None

    async def _get_settlement(self, conn: _Conn, op: ops.GetSettlement) -> SettlementRecord | None:
        if op.settlement_id is not None:
            sql = _SETTLEMENT_BY_ID_LOCK if op.lock else _SETTLEMENT_BY_ID
            row = await conn.fetchrow(sql, op.settlement_id)
        else:
            assert op.wallet is not None, "GetSettlement needs an id or (wallet, ext_id)"
            assert op.ext_id is not None, "GetSettlement needs an id or (wallet, ext_id)"
            sql = _SETTLEMENT_BY_KEY_LOCK if op.lock else _SETTLEMENT_BY_KEY
            row = await conn.fetchrow(sql, op.wallet, op.ext_id)
        return settlement_from(row) if row is not None else None

    async def _update_settlement(self, conn: _Conn, op: ops.UpdateSettlement) -> SettlementRecord:
        assert set(op.changes) <= ops.SETTLEMENT_FIELDS, f"unknown fields {set(op.changes)}"
        c = op.changes
        detail = c.get("detail")
        row = await conn.fetchrow(
            _SETTLEMENT_UPDATE,
            op.settlement_id,
            "decision" in c,
            c.get("decision"),
            "reason" in c,
            c.get("reason"),
            "decided_at_ms" in c,
            c.get("decided_at_ms"),
            "outcome" in c,
            c.get("outcome"),
            "settled_at_ms" in c,
            c.get("settled_at_ms"),
            detail is not None,
            to_json(detail) if detail is not None else None,
        )
        assert row is not None, f"update of unknown settlement {op.settlement_id}"
        return settlement_from(row)

    # --- checks ----------------------------------------------------------------------------

    async def _audit(self, conn: _Conn, op: ops.Audit) -> list[str]:
        # The checks shared with SQLite (store/audit.py); each is one statement, so each sees
        # one consistent snapshot even while postings go on.
        lines: list[str] = []
        for sql, text in AUDIT_CHECKS:
            lines.extend(text.format(*map(_plain, row)) for row in await conn.fetch(sql))
        return lines

    async def _get_meta(self, conn: _Conn, op: ops.GetMeta) -> str | None:
        value = await conn.fetchval(_META_GET, op.key)
        return None if value is None else str(value)

    async def _set_meta_if_absent(self, conn: _Conn, op: ops.SetMetaIfAbsent) -> str:
        value = await conn.fetchval(_META_SET_IF_ABSENT, op.key, op.value)
        if value is None:
            # A concurrent transaction inserted the key after this statement's snapshot was
            # taken (ON CONFLICT waited for it): a new statement sees its committed value.
            value = await conn.fetchval(_META_GET, op.key)
        assert value is not None
        return str(value)
