"""The embedded default store: SQLite in WAL mode, one writer thread, group commit.

Every use case runs on one dedicated thread that owns the process's only connection, so
SQLite's single-writer rule is kept without lock contention inside a process; server
processes that share the file take a fair write turn from BEGIN to COMMIT
(store/sqlite_writelock.py) instead of sleeping in SQLite's busy handler. The thread
drains its queue in batches: one database transaction per batch, each use case inside its
own SAVEPOINT, so a refused or failed use case rolls back alone while the others commit
together (group commit). Results are handed back to the event loop only after COMMIT
returns, so nothing is acknowledged before it is durable (``synchronous=FULL`` by default).

WAL checkpoints never run inside the writer's COMMIT (``wal_autocheckpoint=0``): a
checkpointer thread with its own connection does them (store/sqlite_checkpoint.py), and the
writer only starts the WAL over between two batches when it has grown past its bound.

The schema is applied by Alembic at :meth:`SqliteStore.start`.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import queue
import sqlite3
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from gamewallet.core.ledger import Bucket, Entry, check_balanced
from gamewallet.store import admin_sql, ops, transfer_sql
from gamewallet.store.audit import run_audit
from gamewallet.store.fastpath import FastOffer
from gamewallet.store.migrate import upgrade
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
from gamewallet.store.sqlite_checkpoint import IDLE_S, INTERVAL_S, RESTART_FRAMES, WalCheckpointer
from gamewallet.store.sqlite_fastpath import DECLINE, SqliteFastPath
from gamewallet.store.sqlite_writelock import WriteTurn

T = TypeVar("T")

log = logging.getLogger(__name__)

#: How many queued use cases one database transaction may commit together.
BATCH_MAX = 64
#: Prepared statements kept by the writer's connection (sqlite3's default is 128).
STATEMENT_CACHE = 512
#: The largest page cache of the writer's connection, in KiB (see cache_kib).
CACHE_MAX_KIB = 16 * 1024
#: The values of ``PRAGMA synchronous`` (GAMEWALLET_SQLITE_SYNCHRONOUS).
SYNCHRONOUS_LEVELS = ("OFF", "NORMAL", "FULL", "EXTRA")
#: Bytes a WAL file is cut back to when it starts over (``PRAGMA journal_size_limit``): twice
#: the restart bound of 4 KiB pages, above the file's high-water mark under load. A limit below
#: that mark (it was 64 MiB with a 64 MiB bound) cut the file back at every restart, and the
#: first commit after it, growing the file again, took 59-65 ms instead of 1-5 (measured).
WAL_SIZE_LIMIT = 2 * RESTART_FRAMES * 4096


def cache_kib(file_bytes: int) -> int:
    """The writer's page cache in KiB for a database file of ``file_bytes`` at start.

    About the interior pages of its b-trees (a leaf's fanout is ~100-250 keys, so ~1/256 of
    the file): random keys in a big database then cost one leaf read each, not a walk from
    the root. Never below SQLite's default (2000 KiB, so small databases keep their flat RSS)
    nor above CACHE_MAX_KIB. On the 4.8 GB benchmark database (scenario 7), 16 MiB took the
    server's CPU per call from 1.33x to 1.16x of the small database's (docs/performance.md).
    """
    return max(2000, min(file_bytes // 256 // 1024, CACHE_MAX_KIB))


def synchronous_level(value: str) -> str:
    """``value`` as one of SQLite's ``PRAGMA synchronous`` levels; anything else is refused."""
    level = value.strip().upper()
    if level not in SYNCHRONOUS_LEVELS:
        raise ValueError(
            f"SQLite synchronous must be one of {', '.join(SYNCHRONOUS_LEVELS)}, not {value!r}"
        )
    return level


def path_of(url: str) -> str:
    """The file path of a ``sqlite:///path`` URL (``sqlite:///:memory:`` stays as is)."""
    assert url.startswith("sqlite:///")
    return url[len("sqlite:///") :]


@dataclass(slots=True)
class _Job:
    use_case: UseCase[Any]
    #: The caller's future, completed in the caller's event loop (``loop``).
    future: asyncio.Future[Any]
    loop: asyncio.AbstractEventLoop


def _deliver(outcomes: list[tuple[asyncio.Future[Any], bool, Any]]) -> None:
    """Complete a batch's futures in their event loop: one wake-up per batch, not per call.

    A future already done was cancelled by its caller meanwhile; its outcome is dropped (the
    work itself was committed, exactly as when a caller goes away after COMMIT).
    """
    for future, ok, value in outcomes:
        if future.done():
            continue
        if ok:
            future.set_result(value)
        else:
            future.set_exception(value)


class SqliteStore:
    """The Store port on SQLite (``sqlite:///./gamewallet.db``)."""

    kind = "sqlite"

    def __init__(
        self,
        url: str,
        *,
        synchronous: str = "FULL",
        busy_timeout_ms: int = 10_000,
        fast_path: bool = True,
        checkpoint_interval_s: float = INTERVAL_S,
        wal_restart_frames: int = RESTART_FRAMES,
        wal_idle_s: float = IDLE_S,
    ):
        self.url = url
        #: Run fast offers (the seamless two-phase calls) as plain functions on the writer
        #: thread (store/sqlite_fastpath.py) instead of driving their generic use cases.
        self.fast_path = fast_path
        self.path = path_of(url)
        self._synchronous = synchronous_level(synchronous)
        self._busy_timeout_ms = busy_timeout_ms
        self._queue: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._started = threading.Event()
        self._start_error: BaseException | None = None
        self._new_checkpointer = functools.partial(
            WalCheckpointer,
            self.path,
            interval_s=checkpoint_interval_s,
            restart_frames=wal_restart_frames,
            idle_s=wal_idle_s,
        )
        #: Checkpoints the WAL off the writer thread while started (none for ``:memory:``).
        self.checkpointer: WalCheckpointer | None = None
        #: The writer connection's PRAGMAs as SQLite reports them once it is open.
        self.pragmas: dict[str, int] = {}
        #: The write turn this store's writer takes across processes (store/sqlite_writelock.py;
        #: none for ``:memory:``, which no other connection can open).
        self.turn: WriteTurn | None = None
        #: Transactions the writer thread ran and the calls they carried (for /metrics; written
        #: by that thread only).
        self.batches = 0
        self.batched_calls = 0

    # --- lifecycle ---------------------------------------------------------------------

    async def start(self) -> None:
        """Apply migrations, then start the writer thread."""
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            await asyncio.to_thread(upgrade, self.url)
        self._thread = threading.Thread(target=self._serve, name="gamewallet-sqlite", daemon=True)
        self._thread.start()
        await asyncio.to_thread(self._started.wait)
        if self._start_error is not None:
            raise StoreError(f"cannot open the SQLite database: {self._start_error}")
        if self.path != ":memory:":
            self.checkpointer = self._new_checkpointer()
            self.checkpointer.start()

    async def close(self) -> None:
        """Stop the checkpointer, finish queued work and close the connection.

        The writer's connection closes last: SQLite checkpoints what is left and removes the
        WAL file when no other connection (another process) has the database open.
        """
        if self.checkpointer is not None:
            await asyncio.to_thread(self.checkpointer.stop)
            self.checkpointer = None
        if self._thread is not None:
            self._queue.put(None)
            await asyncio.to_thread(self._thread.join)
            self._thread = None

    def pool_stats(self) -> dict[str, int]:
        """The one connection (for /metrics), and the use cases queued for the writer."""
        running = int(self._thread is not None)
        return {"max": 1, "open": running, "queued": self._queue.qsize()}

    def commit_stats(self) -> dict[str, int]:
        """Group commit since start (for /metrics): the writer's transactions, the calls they
        carried, the time it waited for its write turn, the WAL checkpoints of this process by
        mode and the time its checkpointer spent flushing the file before restarts."""
        stats = {"batches": self.batches, "batched_calls": self.batched_calls}
        if self.turn is not None:
            stats["write_turn_wait_us"] = int(self.turn.wait_s * 1_000_000)
        checkpointer = self.checkpointer
        if checkpointer is not None:
            stats.update({f"wal_{mode.lower()}": n for mode, n in checkpointer.runs.items()})
            stats["flush_before_restart_us"] = int(checkpointer.flush_s * 1_000_000)
        return stats

    async def run(self, use_case: UseCase[T]) -> T:
        """Run ``use_case`` on the writer thread in one (group-committed) transaction."""
        if self._thread is None:
            use_case.close()
            raise StoreError("the store is not started")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._queue.put(_Job(use_case, future, loop))
        return await future

    # --- the writer thread -------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        # Every SQL text of the store (generic, fast path, back-office) stays prepared: the
        # default cache of 128 statements is smaller than that set.
        conn = sqlite3.connect(
            self.path,
            isolation_level=None,
            check_same_thread=False,
            cached_statements=STATEMENT_CACHE,
        )
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(f"PRAGMA synchronous={self._synchronous}")
        # Checkpoints run on the checkpointer's thread (store/sqlite_checkpoint.py), never
        # inside a commit of the writer; a WAL file that grew is cut back when it starts over.
        conn.execute("PRAGMA wal_autocheckpoint=0")
        conn.execute(f"PRAGMA journal_size_limit={WAL_SIZE_LIMIT}")
        # Temporary b-trees in memory (costless for durability). The page cache: see
        # cache_kib (a fixed 32 MiB grew the server's RSS by 25 MiB over the first minute of
        # a benchmark on a small database, for no measured gain there).
        conn.execute("PRAGMA temp_store=MEMORY")
        if self.path != ":memory:":
            conn.execute(f"PRAGMA cache_size=-{cache_kib(Path(self.path).stat().st_size)}")
        conn.execute(f"PRAGMA busy_timeout={int(self._busy_timeout_ms)}")
        conn.execute("PRAGMA foreign_keys=ON")
        if self.path == ":memory:":
            _create_schema_in_memory(conn)
        self.pragmas = {
            name: int(conn.execute(f"PRAGMA {name}").fetchone()[0])
            for name in ("synchronous", "wal_autocheckpoint", "journal_size_limit", "cache_size")
        }
        return conn

    def _serve(self) -> None:
        turn = None if self.path == ":memory:" else WriteTurn(self.path)
        try:
            if turn is not None:
                turn.open()  # the lock files first: nothing to close if they cannot be made
            conn = self._connect()
        except Exception as exc:  # noqa: BLE001 - reported to start(); the thread ends
            if turn is not None:
                turn.close()
            self._start_error = exc
            self._started.set()
            return
        self.turn = turn
        self._started.set()
        executor = _Executor(conn)
        fast = SqliteFastPath(conn) if self.fast_path else None
        stopping = False
        while not stopping:
            batch: list[_Job] = []
            job = self._queue.get()
            checkpointer = self.checkpointer
            if checkpointer is not None and checkpointer.restart_due:
                self._restart_wal(conn, checkpointer)
            while job is not None:
                batch.append(job)
                if len(batch) >= BATCH_MAX:
                    break
                try:
                    job = self._queue.get_nowait()
                except queue.Empty:
                    break
            if job is None:
                stopping = True
            if batch:
                self._run_batch(conn, executor, fast, batch)
        conn.close()
        if self.turn is not None:
            self.turn.close()

    def _restart_wal(self, conn: sqlite3.Connection, checkpointer: WalCheckpointer) -> None:
        # The WAL outgrew the checkpointer's bound: start it over before the next batch
        # (store/sqlite_checkpoint.py). A failure leaves the WAL as it was; batches go on.
        try:
            with self._write_turn():
                checkpointer.restart(conn, self._busy_timeout_ms)
        except (sqlite3.Error, OSError):
            log.exception("the SQLite WAL could not be started over")

    def _run_batch(
        self,
        conn: sqlite3.Connection,
        executor: _Executor,
        fast: SqliteFastPath | None,
        batch: list[_Job],
    ) -> None:
        # A caller cancelled before its job started (a client gone, a shutdown) is skipped:
        # nothing of it runs. (Reading another thread's future state is a plain attribute
        # read; one cancelled later still runs, and _deliver drops its outcome.)
        for job in batch:
            if job.future.cancelled():
                job.use_case.close()
        batch = [job for job in batch if not job.future.cancelled()]
        if not batch:
            return
        self.batches += 1
        self.batched_calls += len(batch)
        outcomes: list[tuple[bool, Any]]
        try:
            with self._write_turn():
                outcomes = _transaction(conn, executor, fast, batch)
        except OSError as exc:
            # The turn could not be taken (its release never raises): nothing of the batch
            # ran, its callers get an error and the writer goes on with the next batch.
            error = StoreError(f"SQLite write turn not taken: {exc}")
            outcomes = [(False, error)] * len(batch)
        _answer(batch, outcomes)

    def _write_turn(self) -> contextlib.AbstractContextManager[None]:
        """The write turn across processes, held from BEGIN to COMMIT (none in memory)."""
        return contextlib.nullcontext() if self.turn is None else self.turn.held()


def _transaction(
    conn: sqlite3.Connection,
    executor: _Executor,
    fast: SqliteFastPath | None,
    batch: list[_Job],
) -> list[tuple[bool, Any]]:
    """Run a batch in one transaction, each use case in its own SAVEPOINT: the outcomes."""
    outcomes: list[tuple[bool, Any]] = []
    try:
        conn.execute("BEGIN IMMEDIATE")
        for job in batch:
            conn.execute("SAVEPOINT uc")
            try:
                value = _execute(conn, executor, fast, job.use_case)
            except Exception as exc:  # noqa: BLE001 - re-raised in the caller
                conn.execute("ROLLBACK TO uc")
                conn.execute("RELEASE uc")
                outcomes.append((False, _translate(exc)))
            else:
                conn.execute("RELEASE uc")
                outcomes.append((True, value))
        conn.execute("COMMIT")
    except sqlite3.Error as exc:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        error = StoreError(f"SQLite transaction failed: {exc}")
        outcomes = [(False, error)] * len(batch)
    return outcomes


def _answer(batch: list[_Job], outcomes: list[tuple[bool, Any]]) -> None:
    """Hand a committed (or failed) batch's outcomes to their callers' event loops."""
    by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[Any], bool, Any]]] = {}
    for job, (ok, value) in zip(batch, outcomes, strict=True):
        by_loop.setdefault(job.loop, []).append((job.future, ok, value))
    for loop, items in by_loop.items():
        # A closed loop (RuntimeError) has nobody waiting any more.
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(_deliver, items)


def _execute(
    conn: sqlite3.Connection,
    executor: _Executor,
    fast: SqliteFastPath | None,
    use_case: UseCase[T],
) -> T:
    """Run one use case inside the current SAVEPOINT: a fast offer as one plain function when
    the fast path handles it, anything else (or a declined offer) as its generic use case."""
    if fast is not None and type(use_case) is FastOffer:
        request = use_case.request
        call = fast.call_for(request)
        if call is not None:
            try:
                answer = call(request)
            except BaseException:
                use_case.close()
                raise
            if answer is not DECLINE:
                use_case.close()
                if use_case.finish is not None:  # the answer is the finish's data (JDB)
                    finished: T = use_case.finish(answer)  # type: ignore[arg-type]
                    return finished
                value: T = answer  # type: ignore[assignment]  # an offer without finish: bytes
                return value
            # Whatever the declined attempt wrote is undone; the generic path starts afresh.
            conn.execute("ROLLBACK TO uc")
    return executor.drive(use_case)


def _translate(exc: BaseException) -> BaseException:
    """Driver errors become StoreError; a violated CHECK is a broken invariant."""
    if isinstance(exc, sqlite3.IntegrityError) and "CHECK constraint" in str(exc):
        return AssertionError(f"ledger invariant violated: {exc}")
    if isinstance(exc, sqlite3.Error):
        return StoreError(f"SQLite error: {exc}")
    return exc


def _create_schema_in_memory(conn: sqlite3.Connection) -> None:
    """``sqlite:///:memory:`` cannot be migrated from another connection: copy the DDL."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/schema.db"
        upgrade(url)
        src = sqlite3.connect(path_of(url))
        ddl = [row[0] for row in src.execute("SELECT sql FROM sqlite_master WHERE sql IS NOT NULL")]
        src.close()
    for statement in ddl:
        conn.execute(statement)


# --- the executor ------------------------------------------------------------------------

_PLAYER_SQL = """
SELECT p.*, c.id AS c_id, c.posted_minor AS c_posted, c.held_minor AS c_held,
       c.pending_minor AS c_pending, f.id AS f_id, f.posted_minor AS f_posted,
       f.held_minor AS f_held, f.pending_minor AS f_pending
FROM players p
JOIN accounts c ON c.owner_kind = 'player' AND c.owner_id = p.id AND c.bucket = 'cash'
                 AND c.currency = p.currency AND c.shard = 0
JOIN accounts f ON f.owner_kind = 'player' AND f.owner_id = p.id AND f.bucket = 'free'
                 AND f.currency = p.currency AND f.shard = 0
"""


def _where(clauses: Iterable[tuple[bool, str]]) -> str:
    parts = [sql for used, sql in clauses if used]
    return (" WHERE " + " AND ".join(parts)) if parts else ""


class _Executor:
    """Answers every request of :mod:`gamewallet.store.ops` on one SQLite connection."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self.handlers: dict[type[Any], Callable[[Any], Any]] = {
            ops.InsertClient: self.insert_client,
            ops.UpdateClient: self.update_client,
            ops.GetClient: self.get_client,
            ops.ListClients: self.list_clients,
            ops.InsertPlayer: self.insert_player,
            ops.GetPlayer: self.get_player,
            ops.UpdatePlayer: self.update_player,
            ops.ListPlayers: self.list_players,
            ops.GetOwnerAccounts: self.get_owner_accounts,
            ops.Apply: self.apply,
            ops.InsertOperation: self.insert_operation,
            ops.GetOperation: self.get_operation,
            ops.UpdateOperation: self.update_operation,
            ops.ListOperations: self.list_operations,
            ops.InsertSession: self.insert_session,
            ops.GetSession: self.get_session,
            ops.MarkSessionUsed: self.mark_session_used,
            ops.GetIdempotency: self.get_idempotency,
            ops.SaveIdempotency: self.save_idempotency,
            ops.PurgeIdempotency: self.purge_idempotency,
            ops.TryLockKey: lambda op: True,  # one writer: use cases never overlap
            ops.Enqueue: self.enqueue,
            ops.ClaimOutbox: self.claim_outbox,
            ops.FinishOutbox: self.finish_outbox,
            ops.ListOutbox: self.list_outbox,
            ops.RetryOutbox: self.retry_outbox,
            ops.InsertReconciliation: self.insert_reconciliation,
            ops.ListReconciliations: self.list_reconciliations,
            ops.InsertSettlement: self.insert_settlement,
            ops.GetSettlement: self.get_settlement,
            ops.UpdateSettlement: self.update_settlement,
            ops.Audit: self.audit,
            ops.GetMeta: self.get_meta,
            ops.SetMetaIfAbsent: self.set_meta_if_absent,
        }
        # The back-office requests (staff users, sessions, aggregates) live with their SQL.
        self.handlers.update(admin_sql.sqlite_handlers(conn))
        # The operator-side transfer records of the HRG/JDB clients.
        self.handlers.update(transfer_sql.sqlite_handlers(conn))

    def drive(self, use_case: UseCase[T]) -> T:
        """Run a use case to completion, answering each request it yields."""
        try:
            op = next(use_case)
            while True:
                result = self.handlers[type(op)](op)
                op = use_case.send(result)
        except StopIteration as stop:
            value: T = stop.value
            return value

    def one(self, sql: str, params: Sequence[Any] = ()) -> sqlite3.Row | None:
        row: sqlite3.Row | None = self.conn.execute(sql, params).fetchone()
        return row

    def all(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        return list(self.conn.execute(sql, params).fetchall())

    # clients

    def insert_client(self, op: ops.InsertClient) -> ClientRecord | None:
        row = self.one(
            "INSERT INTO clients (protocol, name, username, secret_hash, currency,"
            " credit_limit_minor, shards, config, created_at_ms) VALUES (?,?,?,?,?,?,?,?,?)"
            " ON CONFLICT (protocol, name) DO NOTHING RETURNING *",
            (
                op.protocol,
                op.name,
                op.username,
                op.secret_hash,
                op.currency,
                op.credit_limit_minor,
                op.shards,
                to_json(op.config),
                op.now_ms,
            ),
        )
        return client_from(row) if row else None

    def update_client(self, op: ops.UpdateClient) -> ClientRecord | None:
        assert set(op.changes) <= ops.CLIENT_FIELDS, "unknown client field"
        if op.changes:
            values = [to_json(v) if k == "config" else v for k, v in op.changes.items()]
            sets = ", ".join(f"{k} = ?" for k in op.changes)
            self.conn.execute(f"UPDATE clients SET {sets} WHERE id = ?", (*values, op.client_id))
        return self.get_client(ops.GetClient(client_id=op.client_id))

    def get_client(self, op: ops.GetClient) -> ClientRecord | None:
        if op.client_id is not None:
            row = self.one("SELECT * FROM clients WHERE id = ?", (op.client_id,))
        else:
            row = self.one(
                "SELECT * FROM clients WHERE protocol = ? AND name = ?", (op.protocol, op.name)
            )
        return client_from(row) if row else None

    def list_clients(self, op: ops.ListClients) -> list[ClientRecord]:
        if op.protocol is None:
            rows = self.all("SELECT * FROM clients ORDER BY id")
        else:
            rows = self.all("SELECT * FROM clients WHERE protocol = ? ORDER BY id", (op.protocol,))
        return [client_from(r) for r in rows]

    # players

    def insert_player(self, op: ops.InsertPlayer) -> PlayerRecord | None:
        row = self.one(
            "INSERT INTO players (client_id, external_id, currency, nickname, created_at_ms)"
            " VALUES (?,?,?,?,?) ON CONFLICT (client_id, external_id) DO NOTHING RETURNING id",
            (op.client_id, op.external_id, op.currency, op.nickname, op.now_ms),
        )
        if row is None:
            return None
        for bucket in (Bucket.CASH, Bucket.FREE):
            self.conn.execute(
                "INSERT INTO accounts (owner_kind, owner_id, currency, bucket, shard,"
                " no_overdraft) VALUES ('player', ?, ?, ?, 0, 1)",
                (row["id"], op.currency, bucket.value),
            )
        return self.get_player(ops.GetPlayer(player_id=row["id"]))

    def get_player(self, op: ops.GetPlayer) -> PlayerRecord | None:
        if op.player_id is not None:
            row = self.one(_PLAYER_SQL + " WHERE p.id = ?", (op.player_id,))
        else:
            row = self.one(
                _PLAYER_SQL + " WHERE p.client_id = ? AND p.external_id = ?",
                (op.client_id, op.external_id),
            )
        return player_from(row) if row else None

    def update_player(self, op: ops.UpdatePlayer) -> None:
        assert set(op.changes) <= ops.PLAYER_FIELDS, "unknown player field"
        if op.changes:
            sets = ", ".join(f"{k} = ?" for k in op.changes)
            self.conn.execute(
                f"UPDATE players SET {sets} WHERE id = ?",
                (*op.changes.values(), op.player_id),
            )

    def list_players(self, op: ops.ListPlayers) -> tuple[list[PlayerRecord], int]:
        params: list[Any] = []
        clauses: list[tuple[bool, str]] = []
        if op.client_id is not None:
            clauses.append((True, "p.client_id = ?"))
            params.append(op.client_id)
        if op.external_ids is not None:
            marks = ",".join("?" * len(op.external_ids)) or "NULL"
            clauses.append((True, f"p.external_id IN ({marks})"))
            params.extend(op.external_ids)
        clauses.append((op.non_zero, "(c.posted_minor <> 0 OR f.posted_minor <> 0)"))
        clauses.append((op.in_game, "p.game_type IS NOT NULL"))
        if op.search:
            pattern = (
                "%"
                + op.search.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
                + "%"
            )
            clauses.append(
                (
                    True,
                    (
                        "(lower(p.external_id) LIKE ? ESCAPE '\\' OR lower(p.nickname) LIKE ?"
                        " ESCAPE '\\')"
                    ),
                )
            )
            params.extend([pattern, pattern])
        where = _where(clauses)
        total_row = self.one("SELECT count(*) FROM (" + _PLAYER_SQL + where + ")", params)
        assert total_row is not None
        rows = self.all(
            _PLAYER_SQL + where + " ORDER BY p.id LIMIT ? OFFSET ?",
            [*params, op.limit, op.offset],
        )
        return [player_from(r) for r in rows], int(total_row[0])

    # accounts

    def get_owner_accounts(self, op: ops.GetOwnerAccounts) -> list[AccountRecord]:
        shards = range(op.shards) if op.shard is None else (op.shard,)
        base = (
            "SELECT * FROM accounts WHERE owner_kind = ? AND owner_id = ? AND currency = ?"
            " AND bucket = ?"
        )
        key = (op.owner_kind, op.owner_id, op.currency, op.bucket)
        if op.shard is None:
            rows = self.all(base + " AND shard < ? ORDER BY shard", (*key, op.shards))
        else:
            rows = self.all(base + " AND shard = ?", (*key, op.shard))
        if len(rows) < len(shards):
            self.conn.executemany(
                "INSERT INTO accounts (owner_kind, owner_id, currency, bucket, shard,"
                " no_overdraft) VALUES (?,?,?,?,?,0) ON CONFLICT DO NOTHING",
                [(*key, shard) for shard in shards],
            )
            return self.get_owner_accounts(op)
        return [account_from(r) for r in rows]

    def apply(self, op: ops.Apply) -> None:
        posted = [
            Entry(d.account_id, d.currency, d.posted_minor) for d in op.deltas if d.posted_minor
        ]
        if posted:
            check_balanced(posted)
        self.conn.executemany(
            "UPDATE accounts SET posted_minor = posted_minor + ?, held_minor = held_minor + ?,"
            " pending_minor = pending_minor + ? WHERE id = ?",
            [(d.posted_minor, d.held_minor, d.pending_minor, d.account_id) for d in op.deltas],
        )
        self.conn.executemany(
            "INSERT INTO postings (operation_id, account_id, currency, amount_minor,"
            " created_at_ms) VALUES (?,?,?,?,?)",
            [
                (op.operation_id, e.account_id, e.currency, e.amount_minor, op.now_ms)
                for e in posted
            ],
        )

    # operations

    def insert_operation(self, op: ops.InsertOperation) -> OperationRecord | None:
        row = self.one(
            "INSERT INTO operations (client_id, ns, ext_id, kind, player_id, currency,"
            " amount_minor, free_minor, state, created_at_ms, updated_at_ms, detail)"
            " VALUES (?,?,?,?,?,?,?,?,?,?,?,?) ON CONFLICT (client_id, ns, ext_id) DO NOTHING"
            " RETURNING *",
            (
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
                op.now_ms,
                to_json(op.detail),
            ),
        )
        return operation_from(row) if row else None

    def get_operation(self, op: ops.GetOperation) -> OperationRecord | None:
        if op.operation_id is not None:
            row = self.one("SELECT * FROM operations WHERE id = ?", (op.operation_id,))
        else:
            row = self.one(
                "SELECT * FROM operations WHERE client_id = ? AND ns = ? AND ext_id = ?",
                (op.client_id, op.ns, op.ext_id),
            )
        return operation_from(row) if row else None

    def update_operation(self, op: ops.UpdateOperation) -> None:
        row = self.one("SELECT detail FROM operations WHERE id = ?", (op.operation_id,))
        assert row is not None, "update of an unknown operation"
        detail = {**from_json(row["detail"]), **op.detail}
        self.conn.execute(
            "UPDATE operations SET state = ?, updated_at_ms = ?, detail = ? WHERE id = ?",
            (op.state.value, op.now_ms, to_json(detail), op.operation_id),
        )

    def list_operations(self, op: ops.ListOperations) -> tuple[list[OperationRecord], int]:
        params: list[Any] = []
        clauses: list[tuple[bool, str]] = []

        def add(value: object, sql: str) -> None:
            if value is not None:
                clauses.append((True, sql))
                params.append(value)

        add(op.client_id, "client_id = ?")
        add(op.player_id, "player_id = ?")
        add(op.ns, "ns = ?")
        add(op.since_ms, "created_at_ms >= ?")
        add(op.until_ms, "created_at_ms < ?")
        add(op.updated_before_ms, "updated_at_ms < ?")
        if op.kinds is not None:
            clauses.append((True, f"kind IN ({','.join('?' * len(op.kinds)) or 'NULL'})"))
            params.extend(op.kinds)
        if op.states is not None:
            clauses.append((True, f"state IN ({','.join('?' * len(op.states)) or 'NULL'})"))
            params.extend(s.value for s in op.states)
        where = _where(clauses)
        order = "ASC" if op.oldest_first else "DESC"
        total_row = self.one("SELECT count(*) FROM operations" + where, params)
        assert total_row is not None
        rows = self.all(
            "SELECT * FROM operations"
            + where
            + f" ORDER BY created_at_ms {order}, id {order} LIMIT ? OFFSET ?",
            [*params, op.limit, op.offset],
        )
        return [operation_from(r) for r in rows], int(total_row[0])

    # sessions

    def insert_session(self, op: ops.InsertSession) -> None:
        s = op.session
        self.conn.execute(
            "INSERT INTO sessions (token, client_id, player_id, kind, expires_at_ms,"
            " created_at_ms, used_at_ms) VALUES (?,?,?,?,?,?,?)",
            (
                s.token,
                s.client_id,
                s.player_id,
                s.kind,
                s.expires_at_ms,
                s.created_at_ms,
                s.used_at_ms,
            ),
        )

    def get_session(self, op: ops.GetSession) -> SessionRecord | None:
        row = self.one("SELECT * FROM sessions WHERE token = ?", (op.token,))
        return session_from(row) if row else None

    def mark_session_used(self, op: ops.MarkSessionUsed) -> bool:
        cur = self.conn.execute(
            "UPDATE sessions SET used_at_ms = ? WHERE token = ? AND used_at_ms IS NULL",
            (op.now_ms, op.token),
        )
        return cur.rowcount == 1

    # idempotency

    def get_idempotency(self, op: ops.GetIdempotency) -> IdempotencyRecord | None:
        row = self.one(
            "SELECT fingerprint, response, created_at_ms FROM idempotency"
            " WHERE client_id = ? AND scope = ? AND key = ?",
            (op.client_id, op.scope, op.key),
        )
        if row is None:
            return None
        return IdempotencyRecord(row["fingerprint"], bytes(row["response"]), row["created_at_ms"])

    def save_idempotency(self, op: ops.SaveIdempotency) -> None:
        self.conn.execute(
            "INSERT INTO idempotency (client_id, scope, key, fingerprint, response,"
            " created_at_ms) VALUES (?,?,?,?,?,?) ON CONFLICT DO NOTHING",
            (op.client_id, op.scope, op.key, op.fingerprint, op.response, op.now_ms),
        )

    def purge_idempotency(self, op: ops.PurgeIdempotency) -> int:
        cur = self.conn.execute(
            "DELETE FROM idempotency WHERE rowid IN (SELECT rowid FROM idempotency"
            " WHERE created_at_ms < ? LIMIT ?)",
            (op.before_ms, op.limit),
        )
        return cur.rowcount

    # outbox

    def enqueue(self, op: ops.Enqueue) -> int:
        row = self.one(
            "INSERT INTO outbox (topic, client_id, operation_id, payload, created_at_ms,"
            " due_at_ms) VALUES (?,?,?,?,?,?) RETURNING id",
            (
                op.topic,
                op.client_id,
                op.operation_id,
                to_json(op.payload),
                op.now_ms,
                op.due_at_ms,
            ),
        )
        assert row is not None
        return int(row["id"])

    def claim_outbox(self, op: ops.ClaimOutbox) -> list[OutboxRecord]:
        topic_sql = ""
        params: list[Any] = [op.now_ms, op.now_ms]
        if op.topics is not None:
            topic_sql = f" AND topic IN ({','.join('?' * len(op.topics)) or 'NULL'})"
            params.extend(op.topics)
        rows = self.all(
            "UPDATE outbox SET lease_owner = ?, lease_until_ms = ?, attempts = attempts + 1,"
            " first_attempt_at_ms = coalesce(first_attempt_at_ms, ?) WHERE id IN ("
            " SELECT id FROM outbox WHERE state = 'pending' AND due_at_ms <= ?"
            " AND (lease_until_ms IS NULL OR lease_until_ms <= ?)"
            + topic_sql
            + " ORDER BY due_at_ms, id LIMIT ?) RETURNING *",
            [op.owner, op.now_ms + op.lease_ms, op.now_ms, *params, op.limit],
        )
        return sorted((outbox_from(r) for r in rows), key=lambda r: (r.due_at_ms, r.id))

    def finish_outbox(self, op: ops.FinishOutbox) -> bool:
        assert op.state in {"done", "dead", "pending"}
        assert op.state != "pending" or op.due_at_ms is not None
        done_at = op.now_ms if op.state in {"done", "dead"} else None
        cur = self.conn.execute(
            "UPDATE outbox SET state = ?, due_at_ms = coalesce(?, due_at_ms), last_error = ?,"
            " done_at_ms = ?, lease_owner = NULL, lease_until_ms = NULL"
            " WHERE id = ? AND lease_owner = ? AND state = 'pending'",
            (op.state, op.due_at_ms, op.error, done_at, op.outbox_id, op.owner),
        )
        return cur.rowcount == 1

    def list_outbox(self, op: ops.ListOutbox) -> tuple[list[OutboxRecord], int]:
        where, params = ("WHERE state = ?", [op.state]) if op.state else ("", [])
        total = self.one(f"SELECT count(*) FROM outbox {where}", params)
        assert total is not None
        rows = self.all(
            f"SELECT * FROM outbox {where} ORDER BY id DESC LIMIT ? OFFSET ?",
            [*params, op.limit, op.offset],
        )
        return [outbox_from(r) for r in rows], int(total[0])

    def retry_outbox(self, op: ops.RetryOutbox) -> bool:
        cur = self.conn.execute(
            "UPDATE outbox SET state = 'pending', due_at_ms = ?, lease_owner = NULL,"
            " lease_until_ms = NULL, done_at_ms = NULL WHERE id = ? AND state <> 'done'",
            (op.now_ms, op.outbox_id),
        )
        return cur.rowcount == 1

    # reconciliation

    def insert_reconciliation(self, op: ops.InsertReconciliation) -> int:
        row = self.one(
            "INSERT INTO reconciliation_decisions (client_id, operation_id, ext_id, kind,"
            " asked_at_ms, answer, action, error) VALUES (?,?,?,?,?,?,?,?) RETURNING id",
            (
                op.client_id,
                op.operation_id,
                op.ext_id,
                op.kind,
                op.asked_at_ms,
                op.answer,
                op.action,
                op.error,
            ),
        )
        assert row is not None
        return int(row["id"])

    def list_reconciliations(
        self, op: ops.ListReconciliations
    ) -> tuple[list[ReconciliationRecord], int]:
        params: list[Any] = []
        clauses: list[tuple[bool, str]] = []
        for value, sql in ((op.client_id, "client_id = ?"), (op.operation_id, "operation_id = ?")):
            if value is not None:
                clauses.append((True, sql))
                params.append(value)
        where = _where(clauses)
        total = self.one("SELECT count(*) FROM reconciliation_decisions" + where, params)
        assert total is not None
        rows = self.all(
            "SELECT * FROM reconciliation_decisions" + where + " ORDER BY id DESC LIMIT ? OFFSET ?",
            [*params, op.limit, op.offset],
        )
        return [reconciliation_from(r) for r in rows], int(total[0])

    # settlements (game side)

    def insert_settlement(self, op: ops.InsertSettlement) -> SettlementRecord | None:
        row = self.one(
            "INSERT INTO game_settlements (wallet, ext_id, kind, token, amount_minor, currency,"
            " created_at_ms, detail) VALUES (?,?,?,?,?,?,?,?)"
            " ON CONFLICT (wallet, ext_id) DO NOTHING RETURNING *",
            (
                op.wallet,
                op.ext_id,
                op.kind,
                op.token,
                op.amount_minor,
                op.currency,
                op.now_ms,
                to_json(op.detail),
            ),
        )
        return settlement_from(row) if row else None

    def get_settlement(self, op: ops.GetSettlement) -> SettlementRecord | None:
        if op.settlement_id is not None:
            row = self.one("SELECT * FROM game_settlements WHERE id = ?", (op.settlement_id,))
        else:
            row = self.one(
                "SELECT * FROM game_settlements WHERE wallet = ? AND ext_id = ?",
                (op.wallet, op.ext_id),
            )
        return settlement_from(row) if row else None

    def update_settlement(self, op: ops.UpdateSettlement) -> SettlementRecord:
        assert set(op.changes) <= ops.SETTLEMENT_FIELDS, "unknown settlement field"
        current = self.get_settlement(ops.GetSettlement(settlement_id=op.settlement_id))
        assert current is not None, "update of an unknown settlement"
        changes = dict(op.changes)
        if "detail" in changes:
            changes["detail"] = to_json({**current.detail, **changes["detail"]})
        if changes:
            sets = ", ".join(f"{k} = ?" for k in changes)
            self.conn.execute(
                f"UPDATE game_settlements SET {sets} WHERE id = ?",
                (*changes.values(), op.settlement_id),
            )
        updated = self.get_settlement(ops.GetSettlement(settlement_id=op.settlement_id))
        assert updated is not None
        return updated

    # checks

    def audit(self, op: ops.Audit) -> list[str]:
        return run_audit(lambda sql: [tuple(r) for r in self.all(sql)])

    def get_meta(self, op: ops.GetMeta) -> str | None:
        row = self.one("SELECT value FROM meta WHERE key = ?", (op.key,))
        return str(row["value"]) if row else None

    def set_meta_if_absent(self, op: ops.SetMetaIfAbsent) -> str:
        self.conn.execute(
            "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT DO NOTHING",
            (op.key, op.value),
        )
        value = self.get_meta(ops.GetMeta(op.key))
        assert value is not None
        return value
