"""The in-memory store: the Store port over Python dicts, for fast unit and property tests.

A use case runs synchronously inside :meth:`MemoryStore.run`, with no ``await`` between its
requests, so it is atomic on the event loop like a serializable database transaction. Every
change goes through :meth:`MemoryStore._put` / :meth:`MemoryStore._drop`, which record the
previous value in an undo journal; when the use case (or an executor's assertion) raises, the
journal is replayed backwards and the store is exactly as it was before the run.

The tables mirror the migrations (``migrations/versions/``): the same unique keys, ids
counting from 1, the same CHECK constraints (a violation is an ``AssertionError`` and rolls
back), and JSON columns kept as text, so a caller never shares a mutable dict with the store.
The back-office and operator-transfer tables live in :mod:`gamewallet.store.admin_memory` and
:mod:`gamewallet.store.transfer_memory`, journalled through this store the same way.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any, Final, TypeVar, cast

from gamewallet.core.ledger import Balance, Bucket, Entry, OwnerKind, check_balanced
from gamewallet.core.states import OpState
from gamewallet.store import ops
from gamewallet.store.admin_memory import MemoryAdmin
from gamewallet.store.port import UseCase
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
from gamewallet.store.transfer_memory import MemoryTransfers

T = TypeVar("T")
K = TypeVar("K")
V = TypeVar("V")

_MISSING: Final = object()  # "no value under this key" in the undo journal

OUTBOX_STATES = frozenset({"pending", "done", "dead"})
_OPEN_STATES = (OpState.HELD, OpState.PENDING)
_UNPOSTED_STATES = frozenset({OpState.HELD, OpState.PENDING, OpState.ROLLED_BACK})
_POSTED_STATES = frozenset({OpState.CONFIRMED, OpState.COMPLETED})


def _dump(value: Mapping[str, Any]) -> str:
    """A JSON column's text, as the SQL stores write it."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _load(text: str) -> dict[str, Any]:
    value = json.loads(text)
    assert isinstance(value, dict)
    return value


# --- rows: one frozen dataclass per table, changed only by replacing it ---------------------


@dataclass(frozen=True, slots=True)
class _Client:
    id: int
    protocol: str
    name: str
    username: str | None
    secret_hash: str | None
    currency: str | None
    credit_limit_minor: int | None
    shards: int
    config: str
    created_at_ms: int
    disabled: bool = False


@dataclass(frozen=True, slots=True)
class _Player:
    id: int
    client_id: int
    external_id: str
    currency: str
    nickname: str
    created_at_ms: int
    blocked: bool = False
    locked: bool = False
    closed: bool = False
    game_type: str | None = None
    game_since_ms: int | None = None
    game_left_at_ms: int | None = None
    game_left_type: str | None = None


AccountKey = tuple[str, int, str, str, int]  # (owner_kind, owner_id, currency, bucket, shard)


@dataclass(frozen=True, slots=True)
class _Account:
    id: int
    owner_kind: str
    owner_id: int
    currency: str
    bucket: str
    shard: int
    no_overdraft: bool
    posted_minor: int = 0
    held_minor: int = 0
    pending_minor: int = 0

    @property
    def key(self) -> AccountKey:
        return (self.owner_kind, self.owner_id, self.currency, self.bucket, self.shard)

    def describe(self) -> str:
        return f"{self.owner_kind} {self.owner_id} {self.currency} {self.bucket}/{self.shard}"


@dataclass(frozen=True, slots=True)
class _Operation:
    id: int
    client_id: int
    ns: str
    ext_id: str
    kind: str
    player_id: int
    currency: str
    amount_minor: int
    free_minor: int
    state: OpState
    created_at_ms: int
    updated_at_ms: int
    detail: str


@dataclass(frozen=True, slots=True)
class _Posting:
    id: int
    operation_id: int
    account_id: int
    currency: str
    amount_minor: int
    created_at_ms: int


@dataclass(frozen=True, slots=True)
class _Outbox:
    id: int
    topic: str
    client_id: int | None
    operation_id: int | None
    payload: str
    created_at_ms: int
    due_at_ms: int
    attempts: int = 0
    state: str = "pending"
    last_error: str | None = None
    lease_owner: str | None = None
    lease_until_ms: int | None = None
    first_attempt_at_ms: int | None = None
    done_at_ms: int | None = None


def _check_account(row: _Account) -> None:
    """The accounts table's CHECK constraints."""
    assert row.held_minor >= 0, f"accounts_pending_nonneg violated by account {row.id}"
    assert row.pending_minor >= 0, f"accounts_pending_nonneg violated by account {row.id}"
    assert not row.no_overdraft or row.posted_minor - row.held_minor >= 0, (
        f"accounts_no_overdraft violated by account {row.id} ({row.describe()}):"
        f" posted {row.posted_minor} - held {row.held_minor} < 0"
    )


@dataclass(frozen=True, slots=True)
class _Settlement:
    id: int
    wallet: str
    ext_id: str
    kind: str
    token: str
    amount_minor: int
    currency: str
    created_at_ms: int
    detail: str
    decision: str | None = None
    reason: str | None = None
    outcome: str | None = None
    decided_at_ms: int | None = None
    settled_at_ms: int | None = None


def _check_settlement(row: _Settlement) -> None:
    """The game_settlements table's CHECK constraints."""
    assert row.kind in ("withdraw", "deposit"), "game_settlements_kind violated"
    assert row.decision in (None, "confirm", "rollback"), "game_settlements_decision violated"
    assert row.outcome in (None, "confirmed", "rolled_back"), "game_settlements_outcome violated"
    assert row.amount_minor > 0, "game_settlements_amount violated"


def _check_client(row: _Client) -> None:
    """The clients table's CHECK constraints."""
    assert 1 <= row.shards <= 256, "clients_shards_check violated"
    assert row.credit_limit_minor is None or row.credit_limit_minor >= 0, (
        "clients_credit_limit_check violated"
    )


def _page(rows: list[V], offset: int, limit: int) -> tuple[list[V], int]:
    return rows[offset : offset + limit], len(rows)


class MemoryStore:
    """The Store port in memory (``memory://``): every use case atomic, nothing persisted."""

    kind = "memory"

    def __init__(self) -> None:
        self._meta: dict[str, str] = {}
        self._clients: dict[int, _Client] = {}
        self._client_keys: dict[tuple[str, str], int] = {}
        self._players: dict[int, _Player] = {}
        self._player_keys: dict[tuple[int, str], int] = {}
        self._accounts: dict[int, _Account] = {}
        self._account_keys: dict[AccountKey, int] = {}
        self._operations: dict[int, _Operation] = {}
        self._operation_keys: dict[tuple[int, str, str], int] = {}
        self._postings: dict[int, _Posting] = {}
        self._sessions: dict[str, SessionRecord] = {}
        self._idempotency: dict[tuple[int, str, str], IdempotencyRecord] = {}
        self._outbox: dict[int, _Outbox] = {}
        self._reconciliations: dict[int, ReconciliationRecord] = {}
        self._settlements: dict[int, _Settlement] = {}
        self._settlement_keys: dict[tuple[str, str], int] = {}
        self._last_ids: dict[str, int] = {}
        # (table, key, previous value or _MISSING), newest last; emptied after every run.
        self._journal: list[tuple[dict[Any, Any], Any, Any]] = []
        self._running = False
        self._executors: dict[type[ops.Op[Any]], Callable[[Any], Any]] = {
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
        # The back-office tables and requests (journalled through this store's _put).
        self._admin = MemoryAdmin(self)
        self._executors.update(self._admin.handlers())
        # The operator-side transfer records of the HRG/JDB clients (journalled alike).
        self._transfers = MemoryTransfers(self)
        self._executors.update(self._transfers.handlers())

    # --- the port ------------------------------------------------------------------------

    async def start(self) -> None:
        """Nothing to open."""

    async def close(self) -> None:
        """Nothing to release."""

    async def run(self, use_case: UseCase[T]) -> T:
        """Run ``use_case`` to completion; undo all of its changes if it raises."""
        assert not self._running, "memory use cases never nest"
        self._running = True
        try:
            return self._drive(use_case)
        except BaseException:
            self._undo()
            raise
        finally:
            self._journal.clear()
            self._running = False

    def _drive(self, use_case: UseCase[T]) -> T:
        try:
            op = next(use_case)
            while True:
                executor = self._executors.get(type(op))
                if executor is None:
                    use_case.close()
                    raise TypeError(f"not a store request: {op!r}")
                try:
                    result = executor(op)
                except BaseException:
                    use_case.close()  # the use case's own cleanup runs, as on a database error
                    raise
                op = use_case.send(result)
        except StopIteration as stop:
            return cast(T, stop.value)

    # --- the undo journal ----------------------------------------------------------------

    def _put(self, table: dict[K, V], key: K, value: V) -> None:
        self._journal.append((table, key, table.get(key, _MISSING)))
        table[key] = value

    def _drop(self, table: dict[K, V], key: K) -> None:
        self._journal.append((table, key, table[key]))
        del table[key]

    def _undo(self) -> None:
        while self._journal:
            table, key, previous = self._journal.pop()
            if previous is _MISSING:
                table.pop(key, None)
            else:
                table[key] = previous

    def _new_id(self, table: str) -> int:
        value = self._last_ids.get(table, 0) + 1
        self._put(self._last_ids, table, value)
        return value

    # --- records -------------------------------------------------------------------------

    def _client_record(self, row: _Client) -> ClientRecord:
        return ClientRecord(
            id=row.id,
            protocol=row.protocol,
            name=row.name,
            username=row.username,
            secret_hash=row.secret_hash,
            currency=row.currency,
            credit_limit_minor=row.credit_limit_minor,
            shards=row.shards,
            config=_load(row.config),
            created_at_ms=row.created_at_ms,
            disabled=row.disabled,
        )

    @staticmethod
    def _account_record(row: _Account) -> AccountRecord:
        return AccountRecord(
            id=row.id,
            currency=row.currency,
            bucket=Bucket(row.bucket),
            balance=Balance(row.posted_minor, row.held_minor, row.pending_minor),
        )

    def _player_account(self, row: _Player, bucket: Bucket) -> AccountRecord:
        key: AccountKey = (OwnerKind.PLAYER.value, row.id, row.currency, bucket.value, 0)
        return self._account_record(self._accounts[self._account_keys[key]])

    def _player_record(self, row: _Player) -> PlayerRecord:
        return PlayerRecord(
            id=row.id,
            client_id=row.client_id,
            external_id=row.external_id,
            currency=row.currency,
            nickname=row.nickname,
            blocked=row.blocked,
            locked=row.locked,
            closed=row.closed,
            game_type=row.game_type,
            game_since_ms=row.game_since_ms,
            game_left_at_ms=row.game_left_at_ms,
            game_left_type=row.game_left_type,
            created_at_ms=row.created_at_ms,
            cash=self._player_account(row, Bucket.CASH),
            free=self._player_account(row, Bucket.FREE),
        )

    @staticmethod
    def _operation_record(row: _Operation) -> OperationRecord:
        return OperationRecord(
            id=row.id,
            client_id=row.client_id,
            ns=row.ns,
            ext_id=row.ext_id,
            kind=row.kind,
            player_id=row.player_id,
            currency=row.currency,
            amount_minor=row.amount_minor,
            free_minor=row.free_minor,
            state=row.state,
            created_at_ms=row.created_at_ms,
            updated_at_ms=row.updated_at_ms,
            detail=_load(row.detail),
        )

    @staticmethod
    def _outbox_record(row: _Outbox) -> OutboxRecord:
        return OutboxRecord(
            id=row.id,
            topic=row.topic,
            client_id=row.client_id,
            operation_id=row.operation_id,
            payload=_load(row.payload),
            created_at_ms=row.created_at_ms,
            due_at_ms=row.due_at_ms,
            attempts=row.attempts,
            state=row.state,
            last_error=row.last_error,
            lease_owner=row.lease_owner,
            lease_until_ms=row.lease_until_ms,
            first_attempt_at_ms=row.first_attempt_at_ms,
            done_at_ms=row.done_at_ms,
        )

    # --- clients -------------------------------------------------------------------------

    def _insert_client(self, op: ops.InsertClient) -> ClientRecord | None:
        row = _Client(
            id=0,
            protocol=op.protocol,
            name=op.name,
            username=op.username,
            secret_hash=op.secret_hash,
            currency=op.currency,
            credit_limit_minor=op.credit_limit_minor,
            shards=op.shards,
            config=_dump(op.config),
            created_at_ms=op.now_ms,
        )
        _check_client(row)
        key = (op.protocol, op.name)
        if key in self._client_keys:
            return None
        row = replace(row, id=self._new_id("clients"))
        self._put(self._clients, row.id, row)
        self._put(self._client_keys, key, row.id)
        return self._client_record(row)

    def _update_client(self, op: ops.UpdateClient) -> ClientRecord | None:
        assert set(op.changes) <= ops.CLIENT_FIELDS, f"unknown client fields: {set(op.changes)}"
        row = self._clients.get(op.client_id)
        if row is None:
            return None
        changes = dict(op.changes)
        if "config" in changes:
            changes["config"] = _dump(changes["config"])
        row = replace(row, **changes)
        _check_client(row)
        self._put(self._clients, row.id, row)
        return self._client_record(row)

    def _get_client(self, op: ops.GetClient) -> ClientRecord | None:
        if op.client_id is not None:
            row = self._clients.get(op.client_id)
        else:
            assert op.protocol is not None, "GetClient needs an id or (protocol, name)"
            assert op.name is not None, "GetClient needs an id or (protocol, name)"
            client_id = self._client_keys.get((op.protocol, op.name))
            row = None if client_id is None else self._clients[client_id]
        return None if row is None else self._client_record(row)

    def _list_clients(self, op: ops.ListClients) -> list[ClientRecord]:
        return [
            self._client_record(row)
            for _, row in sorted(self._clients.items())
            if op.protocol is None or row.protocol == op.protocol
        ]

    # --- players -------------------------------------------------------------------------

    def _insert_player(self, op: ops.InsertPlayer) -> PlayerRecord | None:
        assert op.client_id in self._clients, "players_client_id_fkey violated"
        key = (op.client_id, op.external_id)
        if key in self._player_keys:
            return None
        row = _Player(
            id=self._new_id("players"),
            client_id=op.client_id,
            external_id=op.external_id,
            currency=op.currency,
            nickname=op.nickname,
            created_at_ms=op.now_ms,
        )
        self._put(self._players, row.id, row)
        self._put(self._player_keys, key, row.id)
        for bucket in (Bucket.CASH, Bucket.FREE):
            self._insert_account(
                (OwnerKind.PLAYER.value, row.id, op.currency, bucket.value, 0), no_overdraft=True
            )
        return self._player_record(row)

    def _get_player(self, op: ops.GetPlayer) -> PlayerRecord | None:
        if op.player_id is not None:
            row = self._players.get(op.player_id)
        else:
            assert op.client_id is not None, "GetPlayer needs an id or (client, external id)"
            assert op.external_id is not None, "GetPlayer needs an id or (client, external id)"
            player_id = self._player_keys.get((op.client_id, op.external_id))
            row = None if player_id is None else self._players[player_id]
        return None if row is None else self._player_record(row)

    def _update_player(self, op: ops.UpdatePlayer) -> None:
        assert set(op.changes) <= ops.PLAYER_FIELDS, f"unknown player fields: {set(op.changes)}"
        row = self._players.get(op.player_id)
        if row is not None and op.changes:
            self._put(self._players, row.id, replace(row, **op.changes))

    def _list_players(self, op: ops.ListPlayers) -> tuple[list[PlayerRecord], int]:
        wanted = None if op.external_ids is None else set(op.external_ids)
        needle = None if not op.search else op.search.lower()
        records: list[PlayerRecord] = []
        for _, row in sorted(self._players.items()):
            if op.client_id is not None and row.client_id != op.client_id:
                continue
            if wanted is not None and row.external_id not in wanted:
                continue
            if op.in_game and row.game_type is None:
                continue
            if needle is not None and not (
                needle in row.external_id.lower() or needle in row.nickname.lower()
            ):
                continue
            record = self._player_record(row)
            if op.non_zero and not (
                record.cash.balance.posted_minor or record.free.balance.posted_minor
            ):
                continue
            records.append(record)
        return _page(records, op.offset, op.limit)

    # --- accounts and postings -----------------------------------------------------------

    def _insert_account(self, key: AccountKey, *, no_overdraft: bool) -> _Account:
        assert key not in self._account_keys, "accounts_owner_key violated"
        owner_kind, owner_id, currency, bucket, shard = key
        row = _Account(
            id=self._new_id("accounts"),
            owner_kind=owner_kind,
            owner_id=owner_id,
            currency=currency,
            bucket=bucket,
            shard=shard,
            no_overdraft=no_overdraft,
        )
        self._put(self._accounts, row.id, row)
        self._put(self._account_keys, key, row.id)
        return row

    def _get_owner_accounts(self, op: ops.GetOwnerAccounts) -> list[AccountRecord]:
        assert op.owner_kind in (OwnerKind.CLIENT, OwnerKind.HOUSE), "not a sharded owner"
        if op.shard is None:
            shards: Iterable[int] = range(op.shards)
        else:
            assert 0 <= op.shard < op.shards, f"shard {op.shard} of {op.shards}"
            shards = (op.shard,)
        rows: list[_Account] = []
        for shard in shards:
            key: AccountKey = (str(op.owner_kind), op.owner_id, op.currency, str(op.bucket), shard)
            account_id = self._account_keys.get(key)
            if account_id is None:
                rows.append(self._insert_account(key, no_overdraft=False))
            else:
                rows.append(self._accounts[account_id])
        return [self._account_record(row) for row in rows]

    def _apply(self, op: ops.Apply) -> None:
        assert op.operation_id in self._operations, "postings_operation_id_fkey violated"
        posted = [
            Entry(d.account_id, d.currency, d.posted_minor) for d in op.deltas if d.posted_minor
        ]
        if posted:
            check_balanced(posted)
        touched: dict[int, _Account] = {}
        for delta in op.deltas:
            row = touched.get(delta.account_id) or self._accounts.get(delta.account_id)
            assert row is not None, f"no account {delta.account_id}"
            assert row.currency == delta.currency, (
                f"a {delta.currency} delta on {row.currency} account {row.id}"
            )
            touched[row.id] = replace(
                row,
                posted_minor=row.posted_minor + delta.posted_minor,
                held_minor=row.held_minor + delta.held_minor,
                pending_minor=row.pending_minor + delta.pending_minor,
            )
        for row in touched.values():
            _check_account(row)
            self._put(self._accounts, row.id, row)
        for entry in posted:
            posting = _Posting(
                id=self._new_id("postings"),
                operation_id=op.operation_id,
                account_id=entry.account_id,
                currency=entry.currency,
                amount_minor=entry.amount_minor,
                created_at_ms=op.now_ms,
            )
            self._put(self._postings, posting.id, posting)

    # --- operations ----------------------------------------------------------------------

    def _insert_operation(self, op: ops.InsertOperation) -> OperationRecord | None:
        assert op.amount_minor >= 0, "operations_amounts violated"
        assert op.free_minor >= 0, "operations_amounts violated"
        assert op.client_id in self._clients, "operations_client_id_fkey violated"
        assert op.player_id in self._players, "operations_player_id_fkey violated"
        key = (op.client_id, op.ns, op.ext_id)
        if key in self._operation_keys:
            return None
        row = _Operation(
            id=self._new_id("operations"),
            client_id=op.client_id,
            ns=op.ns,
            ext_id=op.ext_id,
            kind=op.kind,
            player_id=op.player_id,
            currency=op.currency,
            amount_minor=op.amount_minor,
            free_minor=op.free_minor,
            state=OpState(op.state),
            created_at_ms=op.now_ms,
            updated_at_ms=op.now_ms,
            detail=_dump(op.detail),
        )
        self._put(self._operations, row.id, row)
        self._put(self._operation_keys, key, row.id)
        return self._operation_record(row)

    def _get_operation(self, op: ops.GetOperation) -> OperationRecord | None:
        if op.operation_id is not None:
            row = self._operations.get(op.operation_id)
        else:
            assert op.client_id is not None, "GetOperation needs an id or a caller id"
            assert op.ext_id is not None, "GetOperation needs an id or a caller id"
            operation_id = self._operation_keys.get((op.client_id, op.ns, op.ext_id))
            row = None if operation_id is None else self._operations[operation_id]
        return None if row is None else self._operation_record(row)

    def _update_operation(self, op: ops.UpdateOperation) -> None:
        row = self._operations.get(op.operation_id)
        assert row is not None, f"update of unknown operation {op.operation_id}"
        detail = {**_load(row.detail), **op.detail}
        self._put(
            self._operations,
            row.id,
            replace(row, state=OpState(op.state), updated_at_ms=op.now_ms, detail=_dump(detail)),
        )

    def _list_operations(self, op: ops.ListOperations) -> tuple[list[OperationRecord], int]:
        kinds = None if op.kinds is None else set(op.kinds)
        states = None if op.states is None else {OpState(s) for s in op.states}

        def matches(row: _Operation) -> bool:
            return (
                (op.client_id is None or row.client_id == op.client_id)
                and (op.player_id is None or row.player_id == op.player_id)
                and (op.ns is None or row.ns == op.ns)
                and (kinds is None or row.kind in kinds)
                and (states is None or row.state in states)
                and (op.since_ms is None or row.created_at_ms >= op.since_ms)
                and (op.until_ms is None or row.created_at_ms < op.until_ms)
                and (op.updated_before_ms is None or row.updated_at_ms < op.updated_before_ms)
            )

        rows = sorted(
            (row for row in self._operations.values() if matches(row)),
            key=lambda row: (row.created_at_ms, row.id),
            reverse=not op.oldest_first,
        )
        page, total = _page(rows, op.offset, op.limit)
        return [self._operation_record(row) for row in page], total

    # --- sessions ------------------------------------------------------------------------

    def _insert_session(self, op: ops.InsertSession) -> None:
        session = op.session
        assert session.token not in self._sessions, "sessions_pkey violated"
        assert session.client_id in self._clients, "sessions_client_id_fkey violated"
        assert session.player_id in self._players, "sessions_player_id_fkey violated"
        self._put(self._sessions, session.token, session)

    def _get_session(self, op: ops.GetSession) -> SessionRecord | None:
        return self._sessions.get(op.token)

    def _mark_session_used(self, op: ops.MarkSessionUsed) -> bool:
        session = self._sessions.get(op.token)
        if session is None or session.used_at_ms is not None:
            return False
        self._put(self._sessions, op.token, replace(session, used_at_ms=op.now_ms))
        return True

    # --- idempotency ---------------------------------------------------------------------

    def _get_idempotency(self, op: ops.GetIdempotency) -> IdempotencyRecord | None:
        return self._idempotency.get((op.client_id, op.scope, op.key))

    def _save_idempotency(self, op: ops.SaveIdempotency) -> None:
        key = (op.client_id, op.scope, op.key)
        if key not in self._idempotency:
            record = IdempotencyRecord(op.fingerprint, bytes(op.response), op.now_ms)
            self._put(self._idempotency, key, record)

    def _purge_idempotency(self, op: ops.PurgeIdempotency) -> int:
        old = sorted(
            (record.created_at_ms, key)
            for key, record in self._idempotency.items()
            if record.created_at_ms < op.before_ms
        )
        for _, key in old[: max(op.limit, 0)]:
            self._drop(self._idempotency, key)
        return min(len(old), max(op.limit, 0))

    def _try_lock_key(self, op: ops.TryLockKey) -> bool:
        return True  # a memory use case never overlaps another

    # --- outbox --------------------------------------------------------------------------

    def _enqueue(self, op: ops.Enqueue) -> int:
        row = _Outbox(
            id=self._new_id("outbox"),
            topic=op.topic,
            client_id=op.client_id,
            operation_id=op.operation_id,
            payload=_dump(op.payload),
            created_at_ms=op.now_ms,
            due_at_ms=op.due_at_ms,
        )
        self._put(self._outbox, row.id, row)
        return row.id

    def _claim_outbox(self, op: ops.ClaimOutbox) -> list[OutboxRecord]:
        topics = None if op.topics is None else set(op.topics)
        due = sorted(
            (
                row
                for row in self._outbox.values()
                if row.state == "pending"
                and row.due_at_ms <= op.now_ms
                and (row.lease_until_ms is None or row.lease_until_ms <= op.now_ms)
                and (topics is None or row.topic in topics)
            ),
            key=lambda row: (row.due_at_ms, row.id),
        )
        claimed: list[OutboxRecord] = []
        for row in due[: max(op.limit, 0)]:
            leased = replace(
                row,
                lease_owner=op.owner,
                lease_until_ms=op.now_ms + op.lease_ms,
                attempts=row.attempts + 1,
                first_attempt_at_ms=(
                    op.now_ms if row.first_attempt_at_ms is None else row.first_attempt_at_ms
                ),
            )
            self._put(self._outbox, row.id, leased)
            claimed.append(self._outbox_record(leased))
        return claimed

    def _finish_outbox(self, op: ops.FinishOutbox) -> bool:
        assert op.state in OUTBOX_STATES, f"unknown outbox state {op.state!r}"
        assert op.state != "pending" or op.due_at_ms is not None, "a retry needs its due time"
        row = self._outbox.get(op.outbox_id)
        if row is None or row.state != "pending" or row.lease_owner != op.owner:
            return False
        finished = replace(
            row,
            state=op.state,
            due_at_ms=row.due_at_ms if op.due_at_ms is None else op.due_at_ms,
            last_error=op.error,
            done_at_ms=None if op.state == "pending" else op.now_ms,
            lease_owner=None,
            lease_until_ms=None,
        )
        self._put(self._outbox, row.id, finished)
        return True

    def _list_outbox(self, op: ops.ListOutbox) -> tuple[list[OutboxRecord], int]:
        rows = [
            row
            for _, row in sorted(self._outbox.items(), reverse=True)
            if op.state is None or row.state == op.state
        ]
        page, total = _page(rows, op.offset, op.limit)
        return [self._outbox_record(row) for row in page], total

    def _retry_outbox(self, op: ops.RetryOutbox) -> bool:
        row = self._outbox.get(op.outbox_id)
        if row is None or row.state == "done":
            return False
        retried = replace(
            row,
            state="pending",
            due_at_ms=op.now_ms,
            lease_owner=None,
            lease_until_ms=None,
            done_at_ms=None,
        )
        self._put(self._outbox, row.id, retried)
        return True

    # --- reconciliation decisions (wallet side) and settlements (game side) ---------------

    def _insert_reconciliation(self, op: ops.InsertReconciliation) -> int:
        assert op.client_id in self._clients, "reconciliation_decisions_client_id_fkey violated"
        assert op.operation_id in self._operations, (
            "reconciliation_decisions_operation_id_fkey violated"
        )
        record = ReconciliationRecord(
            id=self._new_id("reconciliation_decisions"),
            client_id=op.client_id,
            operation_id=op.operation_id,
            ext_id=op.ext_id,
            kind=op.kind,
            asked_at_ms=op.asked_at_ms,
            answer=op.answer,
            action=op.action,
            error=op.error,
        )
        self._put(self._reconciliations, record.id, record)
        return record.id

    def _list_reconciliations(
        self, op: ops.ListReconciliations
    ) -> tuple[list[ReconciliationRecord], int]:
        rows = [
            record
            for _, record in sorted(self._reconciliations.items(), reverse=True)
            if (op.client_id is None or record.client_id == op.client_id)
            and (op.operation_id is None or record.operation_id == op.operation_id)
        ]
        return _page(rows, op.offset, op.limit)

    @staticmethod
    def _settlement_record(row: _Settlement) -> SettlementRecord:
        return SettlementRecord(
            id=row.id,
            wallet=row.wallet,
            ext_id=row.ext_id,
            kind=row.kind,
            token=row.token,
            amount_minor=row.amount_minor,
            currency=row.currency,
            decision=row.decision,
            reason=row.reason,
            outcome=row.outcome,
            created_at_ms=row.created_at_ms,
            decided_at_ms=row.decided_at_ms,
            settled_at_ms=row.settled_at_ms,
            detail=_load(row.detail),
        )

    def _insert_settlement(self, op: ops.InsertSettlement) -> SettlementRecord | None:
        row = _Settlement(
            id=0,
            wallet=op.wallet,
            ext_id=op.ext_id,
            kind=op.kind,
            token=op.token,
            amount_minor=op.amount_minor,
            currency=op.currency,
            created_at_ms=op.now_ms,
            detail=_dump(op.detail),
        )
        _check_settlement(row)
        key = (op.wallet, op.ext_id)
        if key in self._settlement_keys:
            return None
        row = replace(row, id=self._new_id("game_settlements"))
        self._put(self._settlements, row.id, row)
        self._put(self._settlement_keys, key, row.id)
        return self._settlement_record(row)

    def _get_settlement(self, op: ops.GetSettlement) -> SettlementRecord | None:
        if op.settlement_id is not None:
            row = self._settlements.get(op.settlement_id)
        else:
            assert op.wallet is not None, "GetSettlement needs an id or (wallet, ext_id)"
            assert op.ext_id is not None, "GetSettlement needs an id or (wallet, ext_id)"
            settlement_id = self._settlement_keys.get((op.wallet, op.ext_id))
            row = None if settlement_id is None else self._settlements[settlement_id]
        return None if row is None else self._settlement_record(row)

    def _update_settlement(self, op: ops.UpdateSettlement) -> SettlementRecord:
        assert set(op.changes) <= ops.SETTLEMENT_FIELDS, (
            f"unknown settlement fields: {set(op.changes)}"
        )
        row = self._settlements.get(op.settlement_id)
        assert row is not None, f"update of unknown settlement {op.settlement_id}"
        changes = dict(op.changes)
        if "detail" in changes:
            changes["detail"] = _dump({**_load(row.detail), **changes["detail"]})
        row = replace(row, **changes)
        _check_settlement(row)
        self._put(self._settlements, row.id, row)
        return self._settlement_record(row)

    # --- checks --------------------------------------------------------------------------

    def _audit(self, op: ops.Audit) -> list[str]:
        return [
            *self._audit_zero_sum(),
            *self._audit_account_limits(),
            *self._audit_operation_postings(),
            *self._audit_posted_totals(),
            *self._audit_open_operations(),
            *self._audit_posting_states(),
        ]

    def _audit_zero_sum(self) -> list[str]:
        """1. Per currency, posted balances sum to zero."""
        sums: dict[str, int] = defaultdict(int)
        for row in self._accounts.values():
            sums[row.currency] += row.posted_minor
        return [
            f"currency {currency}: posted balances sum to {total}, not 0"
            for currency, total in sorted(sums.items())
            if total
        ]

    def _audit_account_limits(self) -> list[str]:
        """2. No negative hold or pending credit; no no-overdraft account below zero."""
        lines: list[str] = []
        for _, row in sorted(self._accounts.items()):
            if row.held_minor < 0 or row.pending_minor < 0:
                lines.append(
                    f"account {row.id} ({row.describe()}): negative hold or pending credit"
                    f" (held {row.held_minor}, pending {row.pending_minor})"
                )
            if row.no_overdraft and row.posted_minor - row.held_minor < 0:
                lines.append(
                    f"account {row.id} ({row.describe()}): no-overdraft account below zero"
                    f" (posted {row.posted_minor} - held {row.held_minor})"
                )
        return lines

    def _audit_operation_postings(self) -> list[str]:
        """3. Each operation's postings sum to zero per currency."""
        sums: dict[tuple[int, str], int] = defaultdict(int)
        for posting in self._postings.values():
            sums[(posting.operation_id, posting.currency)] += posting.amount_minor
        return [
            f"operation {operation_id}: postings in {currency} sum to {total}, not 0"
            for (operation_id, currency), total in sorted(sums.items())
            if total
        ]

    def _audit_posted_totals(self) -> list[str]:
        """4. Each account's posted balance is the sum of its postings."""
        sums: dict[int, int] = defaultdict(int)
        for posting in self._postings.values():
            sums[posting.account_id] += posting.amount_minor
        lines = [
            f"account {row.id} ({row.describe()}): posted balance {row.posted_minor}"
            f" but its postings sum to {sums[row.id]}"
            for _, row in sorted(self._accounts.items())
            if row.posted_minor != sums[row.id]
        ]
        lines.extend(
            f"postings of unknown account {account_id} sum to {total}"
            for account_id, total in sorted(sums.items())
            if account_id not in self._accounts
        )
        return lines

    def _audit_open_operations(self) -> list[str]:
        """5. A player account's hold and pending credit equal its open operations' amounts."""
        # (player_id, currency, bucket) -> [held, pending] according to the operations
        expected: dict[tuple[int, str, str], list[int]] = defaultdict(lambda: [0, 0])
        for operation in self._operations.values():
            if operation.state in _OPEN_STATES:
                slot = 0 if operation.state is OpState.HELD else 1
                owner = (operation.player_id, operation.currency)
                expected[(*owner, Bucket.CASH.value)][slot] += operation.amount_minor
                expected[(*owner, Bucket.FREE.value)][slot] += operation.free_minor
        lines: list[str] = []
        seen: set[tuple[int, str, str]] = set()
        for _, row in sorted(self._accounts.items()):
            if row.owner_kind != OwnerKind.PLAYER.value:
                continue
            key = (row.owner_id, row.currency, row.bucket)
            seen.add(key)
            held, pending = expected.get(key, (0, 0))
            if (row.held_minor, row.pending_minor) != (held, pending):
                lines.append(
                    f"account {row.id} ({row.describe()}): held {row.held_minor} / pending"
                    f" {row.pending_minor}, but its open operations hold {held} / credit {pending}"
                )
        lines.extend(
            f"player {player_id} has open {currency} {bucket} operations (held {held} /"
            f" pending {pending}) but no such account"
            for (player_id, currency, bucket), (held, pending) in sorted(expected.items())
            if (player_id, currency, bucket) not in seen and (held or pending)
        )
        return lines

    def _audit_posting_states(self) -> list[str]:
        """6. Unposted operations have no postings; posted ones with an amount have some."""
        counts: dict[int, int] = defaultdict(int)
        for posting in self._postings.values():
            counts[posting.operation_id] += 1
        lines: list[str] = []
        for _, row in sorted(self._operations.items()):
            count = counts[row.id]
            if row.state in _UNPOSTED_STATES and count:
                lines.append(f"operation {row.id} in state {row.state} has {count} postings")
            elif row.state in _POSTED_STATES and row.amount_minor + row.free_minor and not count:
                lines.append(
                    f"operation {row.id} in state {row.state} moved"
                    f" {row.amount_minor}+{row.free_minor} but has no postings"
                )
        lines.extend(
            f"{count} postings of unknown operation {operation_id}"
            for operation_id, count in sorted(counts.items())
            if operation_id not in self._operations
        )
        return lines

    # --- meta ----------------------------------------------------------------------------

    def _get_meta(self, op: ops.GetMeta) -> str | None:
        return self._meta.get(op.key)

    def _set_meta_if_absent(self, op: ops.SetMetaIfAbsent) -> str:
        if op.key not in self._meta:
            self._put(self._meta, op.key, op.value)
        return self._meta[op.key]
