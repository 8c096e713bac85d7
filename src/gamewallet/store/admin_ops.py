"""The back-office's store vocabulary: staff users, API tokens, web sessions, the trail of
staff actions, and the read-only aggregates behind the dashboard.

These requests are kept apart from :mod:`gamewallet.store.ops` because none of them is on
the money path: they never touch a balance. Every store answers them all (the SQL stores
through :mod:`gamewallet.store.admin_sql`, the memory store through
:mod:`gamewallet.store.admin_memory`) and the contract suite checks each one. Secrets never
reach the store in clear: passwords arrive as argon2 hashes, tokens and session cookies as
keyed hashes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from gamewallet.store.ops import Op
from gamewallet.store.records import OperationRecord

#: The two staff roles: viewers read, operators also change things.
ROLES = ("viewer", "operator")


# --- records -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AdminUserRecord:
    """A member of staff who signs in to the back-office with a password."""

    id: int
    name: str
    role: str  # "viewer" | "operator"
    password_hash: str  # argon2
    created_at_ms: int
    disabled: bool = False
    failed_logins: int = 0  # consecutive failures since the last success
    locked_until_ms: int | None = None  # sign-in refused until then (too many failures)
    last_login_at_ms: int | None = None


@dataclass(frozen=True, slots=True)
class AdminTokenRecord:
    """An API token for scripts (``Authorization: Bearer``), stored as a keyed hash."""

    id: int
    name: str
    role: str
    token_hash: str
    created_at_ms: int
    created_by: str
    last_used_at_ms: int | None = None
    revoked_at_ms: int | None = None


@dataclass(frozen=True, slots=True)
class AdminSessionRecord:
    """A signed-in browser: the cookie's keyed hash, its user and its CSRF token."""

    session_hash: str
    user_id: int
    csrf_token: str
    created_at_ms: int
    expires_at_ms: int


@dataclass(frozen=True, slots=True)
class AdminEventRecord:
    """One staff action (sign-in, block, adjustment, retry…): who, what, on what, and why."""

    id: int
    at_ms: int
    actor: str
    action: str
    target: str
    detail: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class BalanceTotal:
    """Sums of one group of accounts: players of a client, a client's own account (all of
    its shards), or the house, in one currency and bucket."""

    owner_kind: str  # "player" | "client" | "house"
    client_id: int | None  # the players' client, or the client itself; None for the house
    currency: str
    bucket: str
    posted_minor: int
    held_minor: int
    pending_minor: int
    accounts: int


@dataclass(frozen=True, slots=True)
class OperationCount:
    """How many operations a client opened in one time bucket."""

    start_ms: int
    client_id: int
    count: int


@dataclass(frozen=True, slots=True)
class PlayerFlow:
    """Money posted on players' cash accounts for one client in one time bucket:
    ``debit_minor`` left players (stakes, withdrawals), ``credit_minor`` reached them."""

    start_ms: int
    client_id: int
    currency: str
    debit_minor: int
    credit_minor: int


@dataclass(frozen=True, slots=True)
class OpenTotal:
    """Open operations (state held or pending) of one client, currency, state and kind."""

    client_id: int
    currency: str
    state: str
    kind: str
    count: int
    amount_minor: int
    free_minor: int
    oldest_ms: int


# --- staff users ---------------------------------------------------------------------------

#: Columns an UpdateAdminUser may change.
ADMIN_USER_FIELDS = frozenset(
    {"role", "password_hash", "disabled", "failed_logins", "locked_until_ms", "last_login_at_ms"}
)


@dataclass(frozen=True, slots=True)
class InsertAdminUser(Op[AdminUserRecord | None]):
    """Create a staff user; None if the name is taken."""

    name: str
    role: str
    password_hash: str
    now_ms: int


@dataclass(frozen=True, slots=True)
class GetAdminUser(Op[AdminUserRecord | None]):
    """One staff user by id or by name."""

    user_id: int | None = None
    name: str | None = None


@dataclass(frozen=True, slots=True)
class ListAdminUsers(Op[list[AdminUserRecord]]):
    """Every staff user, ordered by id."""


@dataclass(frozen=True, slots=True)
class UpdateAdminUser(Op[AdminUserRecord | None]):
    """Change fields of a staff user (names in :data:`ADMIN_USER_FIELDS`); the new row."""

    user_id: int
    changes: Mapping[str, Any]


# --- API tokens ----------------------------------------------------------------------------

#: Columns an UpdateAdminToken may change.
ADMIN_TOKEN_FIELDS = frozenset({"last_used_at_ms", "revoked_at_ms"})


@dataclass(frozen=True, slots=True)
class InsertAdminToken(Op[AdminTokenRecord | None]):
    """Store a new API token's hash; None if the name (or the hash) is taken."""

    name: str
    role: str
    token_hash: str
    created_by: str
    now_ms: int


@dataclass(frozen=True, slots=True)
class GetAdminToken(Op[AdminTokenRecord | None]):
    """A token by its keyed hash, or by name."""

    token_hash: str | None = None
    name: str | None = None


@dataclass(frozen=True, slots=True)
class ListAdminTokens(Op[list[AdminTokenRecord]]):
    """Every token (revoked ones too), ordered by id."""


@dataclass(frozen=True, slots=True)
class UpdateAdminToken(Op[None]):
    """Change fields of a token (names in :data:`ADMIN_TOKEN_FIELDS`)."""

    token_id: int
    changes: Mapping[str, Any]


# --- web sessions --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class InsertAdminSession(Op[None]):
    """Store a new signed-in session."""

    session: AdminSessionRecord


@dataclass(frozen=True, slots=True)
class GetAdminSession(Op[AdminSessionRecord | None]):
    """A session by the keyed hash of its cookie (expired ones too: the caller decides)."""

    session_hash: str


@dataclass(frozen=True, slots=True)
class DeleteAdminSessions(Op[int]):
    """Delete one session, every session of a user, or up to ``limit`` sessions that
    expired before a time; exactly one criterion. Returns how many were deleted."""

    session_hash: str | None = None
    user_id: int | None = None
    expired_before_ms: int | None = None
    limit: int = 1000


# --- the trail of staff actions ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class InsertAdminEvent(Op[int]):
    """Record a staff action; returns its id."""

    actor: str
    action: str
    target: str
    detail: Mapping[str, Any]
    now_ms: int


@dataclass(frozen=True, slots=True)
class ListAdminEvents(Op[tuple[list[AdminEventRecord], int]]):
    """A page of staff actions, newest first, and the total matching count."""

    actor: str | None = None
    action: str | None = None
    offset: int = 0
    limit: int = 100


# --- read-only aggregates ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BalanceTotals(Op[list[BalanceTotal]]):
    """Balance sums per owner kind, client, currency and bucket (reads every account)."""


@dataclass(frozen=True, slots=True)
class CountOperations(Op[list[OperationCount]]):
    """Operations opened per client and time bucket of ``bucket_ms``, for operations of
    ``client_ids`` in namespace ``ns`` created in [since_ms, until_ms). Buckets start at
    multiples of ``bucket_ms`` since the epoch; empty buckets are left out."""

    client_ids: tuple[int, ...]
    since_ms: int
    until_ms: int
    bucket_ms: int
    ns: str = "wire"


@dataclass(frozen=True, slots=True)
class PlayerFlows(Op[list[PlayerFlow]]):
    """Posted money on players' cash accounts per client, currency and time bucket, for
    operations of ``client_ids`` in namespace ``ns`` created in [since_ms, until_ms) (each
    posting counts in the bucket of its operation's creation)."""

    client_ids: tuple[int, ...]
    since_ms: int
    until_ms: int
    bucket_ms: int
    ns: str = "wire"


@dataclass(frozen=True, slots=True)
class OpenOperationTotals(Op[list[OpenTotal]]):
    """Counts and sums of the operations in state held or pending, grouped."""


@dataclass(frozen=True, slots=True)
class ListTombstones(Op[tuple[list[OperationRecord], int]]):
    """A page of tombstones (state rolled_back with nothing held: amount and free credit
    zero), newest first, and the total matching count."""

    client_id: int | None = None
    offset: int = 0
    limit: int = 100
