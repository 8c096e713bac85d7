"""Rows as the use cases see them: frozen, typed, storage-neutral.

Every store adapter returns these records, so a use case never sees a driver's row type.
Times are integer milliseconds since the Unix epoch, UTC; money is integer minor units.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from gamewallet.core.ledger import Balance, Bucket
from gamewallet.core.states import OpState


@dataclass(frozen=True, slots=True)
class ClientRecord:
    """A calling integration: a seamless game backend, an HRG agent or a JDB domain."""

    id: int
    protocol: str  # "seamless" | "hrg" | "jdb"
    name: str  # seamless client name, HRG agentId, JDB dc
    username: str | None  # seamless Basic user, HRG client_id; None for JDB
    secret_hash: str | None  # keyed hash of the Basic password / client secret
    currency: str | None  # the agent's currency (HRG, JDB); None for seamless
    credit_limit_minor: int | None  # how far below zero its account may go; None = no limit
    shards: int  # rows its per-currency account is split into
    config: Mapping[str, Any] = field(default_factory=dict)
    created_at_ms: int = 0
    disabled: bool = False


@dataclass(frozen=True, slots=True)
class AccountRecord:
    """One account row with its balances."""

    id: int
    currency: str
    bucket: Bucket
    balance: Balance


@dataclass(frozen=True, slots=True)
class PlayerRecord:
    """A player of one client, with both of its accounts."""

    id: int
    client_id: int
    external_id: str
    currency: str
    nickname: str
    blocked: bool  # seamless "blocked" and JDB "suspended": no withdrawals
    locked: bool
    closed: bool
    game_type: str | None  # set while the player is in a game (JDB action 11 .. 17)
    game_since_ms: int | None
    game_left_at_ms: int | None
    game_left_type: str | None
    created_at_ms: int
    cash: AccountRecord
    free: AccountRecord


@dataclass(frozen=True, slots=True)
class OperationRecord:
    """One caller id's effect on the ledger (``ns`` separates wire ids from internal ones)."""

    id: int
    client_id: int
    ns: str
    ext_id: str
    kind: str
    player_id: int
    currency: str
    amount_minor: int  # cash part, always >= 0; ``kind`` says the direction
    free_minor: int  # free-credit part, always >= 0
    state: OpState
    created_at_ms: int
    updated_at_ms: int
    detail: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class SessionRecord:
    """A player's game session token, or a one-time launch ticket."""

    token: str
    client_id: int
    player_id: int
    kind: str  # "session" | "ticket"
    expires_at_ms: int
    created_at_ms: int
    used_at_ms: int | None = None


@dataclass(frozen=True, slots=True)
class IdempotencyRecord:
    """The stored answer to a caller's request, kept for the retention window."""

    fingerprint: str
    response: bytes
    created_at_ms: int


@dataclass(frozen=True, slots=True)
class OutboxRecord:
    """A message to deliver later (payment callback, settlement), with its attempts."""

    id: int
    topic: str
    client_id: int | None
    operation_id: int | None
    payload: Mapping[str, Any]
    created_at_ms: int
    due_at_ms: int
    attempts: int
    state: str  # "pending" | "done" | "dead"
    last_error: str | None = None
    lease_owner: str | None = None
    lease_until_ms: int | None = None
    first_attempt_at_ms: int | None = None
    done_at_ms: int | None = None


@dataclass(frozen=True, slots=True)
class ReconciliationRecord:
    """One question the wallet's reconciler asked a game, the answer, and what it did."""

    id: int
    client_id: int
    operation_id: int
    ext_id: str
    kind: str  # the operation's kind: "withdraw" | "deposit"
    asked_at_ms: int
    answer: str | None  # "CONFIRMED" | "ROLLED_BACK" | "NOT_FOUND"; None = no usable answer
    action: str  # "confirm" | "rollback" | "none"
    error: str | None = None


@dataclass(frozen=True, slots=True)
class SettlementRecord:
    """Game side: a seamless withdraw/deposit the game opened, and its decision about it.

    ``decision`` is what the game wants ("confirm" | "rollback"; None while undecided);
    ``outcome`` is what the wallet finally answered ("confirmed" | "rolled_back"; None while
    the decision is still being delivered).
    """

    id: int
    wallet: str
    ext_id: str
    kind: str  # "withdraw" | "deposit"
    token: str
    amount_minor: int
    currency: str
    decision: str | None
    reason: str | None
    outcome: str | None
    created_at_ms: int
    decided_at_ms: int | None = None
    settled_at_ms: int | None = None
    detail: Mapping[str, Any] = field(default_factory=dict)
