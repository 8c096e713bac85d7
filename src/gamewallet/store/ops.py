"""The store's vocabulary: the operations a use case may ask of one database transaction.

Use cases are written once, sans I/O, as generators that ``yield`` these requests and get
the results back (see :mod:`gamewallet.store.port`). Each store adapter has one executor
that answers every request type; the contract suite runs the same use cases against all of
them. Requests are frozen dataclasses; ``Op[R]`` records the result type ``R`` for typing.

Locking: ``lock=True`` means "lock this row until the end of the database transaction"
(``SELECT … FOR UPDATE`` on PostgreSQL; SQLite serializes all writers anyway). Use cases take
locks in one order — player rows, then operation rows, then client account shards in
ascending shard order — so that concurrent transactions cannot deadlock.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from gamewallet.core.states import OpState
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

R = TypeVar("R")


class Op(Generic[R]):
    """Base of every request; ``R`` is what the executor answers."""

    __slots__ = ()


# --- clients -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class InsertClient(Op[ClientRecord | None]):
    """Create a client; None if (protocol, name) already exists."""

    protocol: str
    name: str
    username: str | None
    secret_hash: str | None
    currency: str | None
    credit_limit_minor: int | None
    shards: int
    config: Mapping[str, Any]
    now_ms: int


CLIENT_FIELDS = frozenset(
    {"secret_hash", "credit_limit_minor", "config", "disabled", "username", "currency"}
)


@dataclass(frozen=True, slots=True)
class UpdateClient(Op[ClientRecord | None]):
    """Change fields of a client (names in :data:`CLIENT_FIELDS`)."""

    client_id: int
    changes: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class GetClient(Op[ClientRecord | None]):
    """One client by id, or by (protocol, name)."""

    client_id: int | None = None
    protocol: str | None = None
    name: str | None = None


@dataclass(frozen=True, slots=True)
class ListClients(Op[list[ClientRecord]]):
    """All clients, optionally of one protocol, ordered by id."""

    protocol: str | None = None


# --- players -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class InsertPlayer(Op[PlayerRecord | None]):
    """Create a player with its cash and free-credit accounts; None if it exists."""

    client_id: int
    external_id: str
    currency: str
    nickname: str
    now_ms: int


@dataclass(frozen=True, slots=True)
class GetPlayer(Op[PlayerRecord | None]):
    """One player by id, or by (client_id, external_id); ``lock`` locks the player row."""

    player_id: int | None = None
    client_id: int | None = None
    external_id: str | None = None
    lock: bool = False


PLAYER_FIELDS = frozenset(
    {
        "nickname",
        "blocked",
        "locked",
        "closed",
        "game_type",
        "game_since_ms",
        "game_left_at_ms",
        "game_left_type",
    }
)


@dataclass(frozen=True, slots=True)
class UpdatePlayer(Op[None]):
    """Change fields of a player (names in :data:`PLAYER_FIELDS`)."""

    player_id: int
    changes: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class ListPlayers(Op[tuple[list[PlayerRecord], int]]):
    """A page of a client's players and the total matching count, ordered by id.

    ``external_ids`` restricts to those ids; ``non_zero`` keeps players with a non-zero
    posted cash or free balance; ``in_game`` keeps players currently in a game;
    ``search`` is a case-insensitive substring of the external id or nickname.
    """

    client_id: int | None
    external_ids: tuple[str, ...] | None = None
    non_zero: bool = False
    in_game: bool = False
    search: str | None = None
    offset: int = 0
    limit: int = 100


# --- accounts and postings ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class GetOwnerAccounts(Op[list[AccountRecord]]):
    """The shard rows of a client's (or the house's) account in one currency and bucket,
    creating missing rows. ``shard`` None = all shards in ascending order (used to check a
    credit limit); ``lock`` locks the returned rows."""

    owner_kind: str  # OwnerKind.CLIENT or OwnerKind.HOUSE
    owner_id: int
    currency: str
    shards: int
    bucket: str = "cash"
    shard: int | None = None
    lock: bool = False


@dataclass(frozen=True, slots=True)
class Delta:
    """A change to one account: posted, held and pending-credit amounts added."""

    account_id: int
    currency: str
    posted_minor: int = 0
    held_minor: int = 0
    pending_minor: int = 0


@dataclass(frozen=True, slots=True)
class Apply(Op[None]):
    """Apply balance changes for ``operation_id``; every non-zero posted change becomes a
    posting row. The posted changes must balance per currency (the executor asserts it),
    and no-overdraft accounts must stay at or above zero available (the database checks it).
    """

    operation_id: int
    deltas: tuple[Delta, ...]
    now_ms: int


# --- operations --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class InsertOperation(Op[OperationRecord | None]):
    """Claim a caller id: None if (client_id, ns, ext_id) exists (the unique key decides)."""

    client_id: int
    ns: str
    ext_id: str
    kind: str
    player_id: int
    currency: str
    amount_minor: int
    free_minor: int
    state: OpState
    now_ms: int
    detail: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class GetOperation(Op[OperationRecord | None]):
    """One operation by id or by (client_id, ns, ext_id); ``lock`` locks its row."""

    operation_id: int | None = None
    client_id: int | None = None
    ns: str = "wire"
    ext_id: str | None = None
    lock: bool = False


@dataclass(frozen=True, slots=True)
class UpdateOperation(Op[None]):
    """Move an operation to ``state`` and merge ``detail`` into its detail."""

    operation_id: int
    state: OpState
    now_ms: int
    detail: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ListOperations(Op[tuple[list[OperationRecord], int]]):
    """A page of operations and the total count, newest first unless ``oldest_first``."""

    client_id: int | None = None
    player_id: int | None = None
    ns: str | None = None
    kinds: tuple[str, ...] | None = None
    states: tuple[OpState, ...] | None = None
    since_ms: int | None = None  # created_at_ms >= since_ms
    until_ms: int | None = None  # created_at_ms < until_ms
    updated_before_ms: int | None = None
    offset: int = 0
    limit: int = 100
    oldest_first: bool = False


# --- sessions ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class InsertSession(Op[None]):
    """Store a new session token or launch ticket."""

    session: SessionRecord


@dataclass(frozen=True, slots=True)
class GetSession(Op[SessionRecord | None]):
    """A session or ticket by token."""

    token: str


@dataclass(frozen=True, slots=True)
class MarkSessionUsed(Op[bool]):
    """Mark a one-time ticket used; False if it was already used."""

    token: str
    now_ms: int


# --- idempotency -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class GetIdempotency(Op[IdempotencyRecord | None]):
    """The stored answer for (client_id, scope, key), if any."""

    client_id: int
    scope: str
    key: str


@dataclass(frozen=True, slots=True)
class SaveIdempotency(Op[None]):
    """Store the answer for (client_id, scope, key); the first one stored wins."""

    client_id: int
    scope: str
    key: str
    fingerprint: str
    response: bytes
    now_ms: int


@dataclass(frozen=True, slots=True)
class PurgeIdempotency(Op[int]):
    """Delete up to ``limit`` idempotency records created before ``before_ms``; never
    touches ledger history. Returns how many were deleted."""

    before_ms: int
    limit: int


@dataclass(frozen=True, slots=True)
class TryLockKey(Op[bool]):
    """Try to take a lock on ``key`` for the rest of this database transaction without
    waiting; False if another transaction holds it (used for JDB 6012)."""

    key: str


# --- outbox ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Enqueue(Op[int]):
    """Queue a message, in the same database transaction as the change that causes it."""

    topic: str
    client_id: int | None
    operation_id: int | None
    payload: Mapping[str, Any]
    due_at_ms: int
    now_ms: int


@dataclass(frozen=True, slots=True)
class ClaimOutbox(Op[list[OutboxRecord]]):
    """Lease up to ``limit`` due pending messages to ``owner`` until now + lease_ms.
    A message whose lease has run out may be claimed again."""

    owner: str
    limit: int
    lease_ms: int
    now_ms: int
    topics: tuple[str, ...] | None = None


@dataclass(frozen=True, slots=True)
class FinishOutbox(Op[bool]):
    """Record an attempt of a leased message: ``state`` "done", "dead", or "pending" with
    the next ``due_at_ms``. False if ``owner`` no longer holds the lease."""

    outbox_id: int
    owner: str
    state: str
    now_ms: int
    due_at_ms: int | None = None
    error: str | None = None


@dataclass(frozen=True, slots=True)
class ListOutbox(Op[tuple[list[OutboxRecord], int]]):
    """A page of messages (optionally of one state), newest first, and the total."""

    state: str | None = None
    offset: int = 0
    limit: int = 100


@dataclass(frozen=True, slots=True)
class RetryOutbox(Op[bool]):
    """Make a dead or pending message due now again (back-office "retry now")."""

    outbox_id: int
    now_ms: int


# --- reconciliation (wallet side) -----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class InsertReconciliation(Op[int]):
    """Record one reconciler decision (see :class:`ReconciliationRecord`); returns its id."""

    client_id: int
    operation_id: int
    ext_id: str
    kind: str
    asked_at_ms: int
    answer: str | None
    action: str
    error: str | None = None


@dataclass(frozen=True, slots=True)
class ListReconciliations(Op[tuple[list[ReconciliationRecord], int]]):
    """A page of reconciler decisions, newest first (by id), and the total matching count."""

    client_id: int | None = None
    operation_id: int | None = None
    offset: int = 0
    limit: int = 100


# --- settlements (game side of the seamless protocol) ---------------------------------------

#: Columns an UpdateSettlement may set (``detail`` is merged into the stored detail).
SETTLEMENT_FIELDS = frozenset(
    {"decision", "reason", "decided_at_ms", "outcome", "settled_at_ms", "detail"}
)


@dataclass(frozen=True, slots=True)
class InsertSettlement(Op[SettlementRecord | None]):
    """Record a seamless call the game opens; None if (wallet, ext_id) exists (unique key)."""

    wallet: str
    ext_id: str
    kind: str  # "withdraw" | "deposit"
    token: str
    amount_minor: int
    currency: str
    now_ms: int
    detail: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class GetSettlement(Op[SettlementRecord | None]):
    """One settlement by id or by (wallet, ext_id); ``lock`` locks its row."""

    settlement_id: int | None = None
    wallet: str | None = None
    ext_id: str | None = None
    lock: bool = False


@dataclass(frozen=True, slots=True)
class UpdateSettlement(Op[SettlementRecord]):
    """Change fields of a settlement (names in :data:`SETTLEMENT_FIELDS`); returns the row."""

    settlement_id: int
    changes: Mapping[str, Any]


# --- checks ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Audit(Op[list[str]]):
    """Verify every ledger invariant; returns one line per violation (empty = clean).

    1. per currency, the posted balances of all accounts sum to zero;
    2. no account has a negative hold or pending credit, and no no-overdraft account has
       posted − held below zero;
    3. every operation's postings sum to zero per currency;
    4. every account's posted balance equals the sum of its postings;
    5. every player account's held amount equals the sum of its operations in state
       ``held`` (cash account: ``amount_minor``; free account: ``free_minor``), and its
       pending credit the sum of those in state ``pending`` — so each hold is resolved at
       most once and none is lost;
    6. operations in state held, pending or rolled_back have no postings; every operation in
       state confirmed or completed with a non-zero amount has postings.
    """


@dataclass(frozen=True, slots=True)
class GetMeta(Op[str | None]):
    """A value of the installation's key/value table."""

    key: str


@dataclass(frozen=True, slots=True)
class SetMetaIfAbsent(Op[str]):
    """Store ``value`` under ``key`` unless a value exists; returns the stored value."""

    key: str
    value: str
