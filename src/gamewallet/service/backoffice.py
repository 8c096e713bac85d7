"""Back-office use cases: staff sign-in, API tokens, the staff-action trail, and the queries
and changes the admin API and pages offer (players, operations, holds, outbox, dashboard).

Every change a member of staff makes is written together with its entry in the trail
(``admin_events``: actor, action, target, reason) in one database transaction, so the trail
cannot miss a change nor record one that did not happen. Secrets never reach a use case in
clear: passwords are argon2-hashed, and API tokens and session cookies keyed-hashed, by the
helpers here before the store sees them. Password hashing is slow on purpose, so callers
run :func:`hash_password` / :func:`verify_password` off the event loop and outside any
database transaction.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from gamewallet.core.errors import ErrorCode, WalletError
from gamewallet.core.ledger import Bucket
from gamewallet.core.states import OpState
from gamewallet.service import admin, jdb
from gamewallet.service.common import hash_secret
from gamewallet.store import admin_ops as a
from gamewallet.store import ops
from gamewallet.store.port import UseCase, do
from gamewallet.store.records import (
    ClientRecord,
    OperationRecord,
    OutboxRecord,
    PlayerRecord,
    ReconciliationRecord,
)

ROLES = a.ROLES
VIEWER, OPERATOR = ROLES
#: API tokens start with this, so a leaked one is easy to recognise (and to scan for).
TOKEN_PREFIX = "gwa_"  # noqa: S105 - a public prefix, not a secret
#: How stale a token's "last used" may get before a call writes it again (no write per call).
TOKEN_TOUCH_MS = 60_000
#: The idempotency scope of manual adjustments (keyed by the form's or caller's request id).
SCOPE_ADJUST = "admin/adjust"
#: Open operations: a seamless hold (withdraw) or pending credit (deposit).
OPEN_STATES = (OpState.HELD, OpState.PENDING)
#: Dashboard windows.
MINUTE_MS = 60_000
DAY_MS = 86_400_000

_hasher = PasswordHasher()
# Compared against when the user name is unknown, so that both paths cost one argon2 check.
_DUMMY_HASH = _hasher.hash("gamewallet: no such user")


# --- secrets -------------------------------------------------------------------------------


def hash_password(password: str) -> str:
    """An argon2id hash of a staff password (slow: call it off the event loop)."""
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    """Whether ``password`` matches; an unknown user (None) costs the same time and fails."""
    try:
        _hasher.verify(password_hash or _DUMMY_HASH, password)
    except (VerificationError, InvalidHashError):
        return False
    return password_hash is not None


def new_password() -> str:
    """A generated password for a new user who was given none (20 URL-safe characters)."""
    return secrets.token_urlsafe(15)


def new_api_token() -> str:
    """A new API token: the prefix and 256 random bits."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def new_session_secret() -> str:
    """A new session cookie value or CSRF token (256 random bits)."""
    return secrets.token_urlsafe(32)


def secret_hash(value: str, key: bytes) -> str:
    """The keyed hash under which a token or session cookie is stored and looked up."""
    return hash_secret(value, key)


# --- who is calling ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Principal:
    """A signed-in member of staff or an API token, and what it may do."""

    actor: str  # the user's name, or "token:<name>"
    role: str
    via: str  # "session" | "token"
    user_id: int | None = None
    csrf_token: str | None = None  # sessions only: forms and cookie-authenticated API calls

    @property
    def can_change(self) -> bool:
        """Operators change things; viewers only read."""
        return self.role == OPERATOR


def require_operator(principal: Principal) -> None:
    """Refuse a change asked for by a viewer (a broken guard, so an assertion)."""
    assert principal.can_change, "a viewer reached a use case that changes things"


def _event(actor: str, action: str, target: str, now_ms: int, **detail: Any) -> UseCase[int]:
    return (yield from do(a.InsertAdminEvent(actor, action, target, detail, now_ms)))


# --- staff users and tokens ----------------------------------------------------------------


def create_user(
    name: str, role: str, password_hash: str, now_ms: int, *, actor: str
) -> UseCase[a.AdminUserRecord]:
    """Add a member of staff; refuses a taken name."""
    if role not in ROLES:
        raise WalletError(ErrorCode.INVALID_REQUEST, f"role must be one of {', '.join(ROLES)}")
    if not name or len(name) > 64 or not name.isprintable():
        raise WalletError(ErrorCode.INVALID_REQUEST, "a user name is 1-64 printable characters")
    user = yield from do(a.InsertAdminUser(name, role, password_hash, now_ms))
    if user is None:
        raise WalletError(ErrorCode.INVALID_REQUEST, f"user {name} exists")
    yield from _event(actor, "user.create", f"user:{name}", now_ms, role=role)
    return user


def set_password(name: str, password_hash: str, now_ms: int, *, actor: str) -> UseCase[None]:
    """Replace a user's password, unlock them, and end their sessions."""
    user = yield from do(a.GetAdminUser(name=name))
    if user is None:
        raise WalletError(ErrorCode.INVALID_REQUEST, f"no user {name}")
    yield from do(
        a.UpdateAdminUser(
            user.id, {"password_hash": password_hash, "failed_logins": 0, "locked_until_ms": None}
        )
    )
    yield from do(a.DeleteAdminSessions(user_id=user.id))
    yield from _event(actor, "user.password", f"user:{name}", now_ms)


def create_token(
    name: str, role: str, token_hash: str, now_ms: int, *, actor: str
) -> UseCase[a.AdminTokenRecord]:
    """Store a new API token's hash; refuses a taken name."""
    if role not in ROLES:
        raise WalletError(ErrorCode.INVALID_REQUEST, f"role must be one of {', '.join(ROLES)}")
    if not name or len(name) > 64 or not name.isprintable():
        raise WalletError(ErrorCode.INVALID_REQUEST, "a token name is 1-64 printable characters")
    token = yield from do(a.InsertAdminToken(name, role, token_hash, actor, now_ms))
    if token is None:
        raise WalletError(ErrorCode.INVALID_REQUEST, f"token {name} exists")
    yield from _event(actor, "token.create", f"token:{name}", now_ms, role=role)
    return token


def revoke_token(name: str, now_ms: int, *, actor: str) -> UseCase[None]:
    """Revoke an API token by name (it stops working at once)."""
    token = yield from do(a.GetAdminToken(name=name))
    if token is None:
        raise WalletError(ErrorCode.INVALID_REQUEST, f"no token {name}")
    yield from do(a.UpdateAdminToken(token.id, {"revoked_at_ms": now_ms}))
    yield from _event(actor, "token.revoke", f"token:{name}", now_ms)


# --- signing in ----------------------------------------------------------------------------


def find_user(name: str) -> UseCase[a.AdminUserRecord | None]:
    """The user trying to sign in (read before the slow password check)."""
    return (yield from do(a.GetAdminUser(name=name)))


@dataclass(frozen=True, slots=True)
class LoginPolicy:
    """How sign-in failures are limited, and how long sessions last."""

    failures_max: int
    lockout_ms: int
    session_ttl_ms: int


@dataclass(frozen=True, slots=True)
class LoginResult:
    """The outcome of a sign-in: a session (and its CSRF token) or the reason it failed."""

    ok: bool
    reason: str = ""  # "bad" | "locked"
    session: a.AdminSessionRecord | None = None
    user: a.AdminUserRecord | None = None


def finish_login(
    user_id: int,
    password_ok: bool,
    session_hash: str,
    csrf_token: str,
    policy: LoginPolicy,
    now_ms: int,
    *,
    address: str,
) -> UseCase[LoginResult]:
    """Record a sign-in attempt of a known user whose password was checked.

    A locked or disabled user fails whatever the password. A failure counts towards the
    lock-out; a success resets the count, opens the session and records the sign-in.
    """
    user = yield from do(a.GetAdminUser(user_id=user_id))
    if user is None or user.disabled:
        return LoginResult(False, "bad")
    if user.locked_until_ms is not None and user.locked_until_ms > now_ms:
        yield from _event(user.name, "login.refused", f"user:{user.name}", now_ms, ip=address)
        return LoginResult(False, "locked")
    if not password_ok:
        failures = user.failed_logins + 1
        changes: dict[str, Any] = {"failed_logins": failures}
        if failures >= policy.failures_max:
            changes = {"failed_logins": 0, "locked_until_ms": now_ms + policy.lockout_ms}
        yield from do(a.UpdateAdminUser(user.id, changes))
        yield from _event(
            user.name, "login.failed", f"user:{user.name}", now_ms, ip=address, failures=failures
        )
        return LoginResult(False, "locked" if "locked_until_ms" in changes else "bad")
    user = yield from do(
        a.UpdateAdminUser(
            user.id, {"failed_logins": 0, "locked_until_ms": None, "last_login_at_ms": now_ms}
        )
    )
    assert user is not None
    session = a.AdminSessionRecord(
        session_hash, user.id, csrf_token, now_ms, now_ms + policy.session_ttl_ms
    )
    yield from do(a.InsertAdminSession(session))
    # Expired sessions are swept a few at a time by the sign-ins themselves.
    yield from do(a.DeleteAdminSessions(expired_before_ms=now_ms, limit=100))
    yield from _event(user.name, "login", f"user:{user.name}", now_ms, ip=address)
    return LoginResult(True, session=session, user=user)


def logout(session_hash: str, now_ms: int, *, actor: str) -> UseCase[None]:
    """End one session."""
    if (yield from do(a.DeleteAdminSessions(session_hash=session_hash))):
        yield from _event(actor, "logout", f"user:{actor}", now_ms)


def session_principal(session_hash: str, now_ms: int) -> UseCase[Principal | None]:
    """The signed-in user of a session cookie, if the session is live and the user enabled."""
    session = yield from do(a.GetAdminSession(session_hash))
    if session is None or session.expires_at_ms <= now_ms:
        return None
    user = yield from do(a.GetAdminUser(user_id=session.user_id))
    if user is None or user.disabled:
        return None
    return Principal(user.name, user.role, "session", user.id, session.csrf_token)


def token_principal(token_hash: str, now_ms: int) -> UseCase[Principal | None]:
    """The API token with this hash, if not revoked; notes its use at most once a minute."""
    token = yield from do(a.GetAdminToken(token_hash=token_hash))
    if token is None or token.revoked_at_ms is not None:
        return None
    if token.last_used_at_ms is None or now_ms - token.last_used_at_ms >= TOKEN_TOUCH_MS:
        yield from do(a.UpdateAdminToken(token.id, {"last_used_at_ms": now_ms}))
    return Principal(f"token:{token.name}", token.role, "token")


# --- clients -------------------------------------------------------------------------------


def list_clients() -> UseCase[list[ClientRecord]]:
    """Every client, by id."""
    return (yield from do(ops.ListClients()))


def get_client(client_id: int) -> UseCase[ClientRecord]:
    """A client by id, or CLIENT_NOT_FOUND."""
    client = yield from do(ops.GetClient(client_id=client_id))
    if client is None:
        raise WalletError(ErrorCode.CLIENT_NOT_FOUND)
    return client


def create_client(
    new: admin.NewClient, now_ms: int, key: bytes, principal: Principal
) -> UseCase[ClientRecord]:
    """Add a client (its secret is hashed) and record who did it."""
    require_operator(principal)
    client = yield from admin.create_client(new, now_ms, key)
    yield from _event(
        principal.actor,
        "client.create",
        f"client:{client.id}",
        now_ms,
        protocol=client.protocol,
        name=client.name,
    )
    return client


def rotate_secret(
    client_id: int, changes: Mapping[str, Any], now_ms: int, principal: Principal
) -> UseCase[ClientRecord]:
    """Store a client's new credentials (already hashed or, for JDB keys, in its config)."""
    require_operator(principal)
    client = yield from get_client(client_id)
    updated = yield from do(ops.UpdateClient(client.id, changes))
    assert updated is not None
    yield from _event(
        principal.actor,
        "client.rotate_secret",
        f"client:{client.id}",
        now_ms,
        protocol=client.protocol,
        name=client.name,
    )
    return updated


# --- players -------------------------------------------------------------------------------


def search_players(
    client_id: int | None, text: str | None, offset: int, limit: int
) -> UseCase[tuple[list[PlayerRecord], int]]:
    """Players whose id or nickname contains ``text`` (all players when it is empty)."""
    return (
        yield from do(ops.ListPlayers(client_id, search=text or None, offset=offset, limit=limit))
    )


@dataclass(frozen=True, slots=True)
class PlayerDetail:
    """A player, its client, and a page of its operations (newest first)."""

    player: PlayerRecord
    client: ClientRecord
    operations: list[OperationRecord]
    operations_total: int


def player_detail(player_id: int, offset: int, limit: int) -> UseCase[PlayerDetail]:
    """A player with its client and history."""
    player = yield from do(ops.GetPlayer(player_id=player_id))
    if player is None:
        raise WalletError(ErrorCode.PLAYER_NOT_FOUND)
    client = yield from do(ops.GetClient(client_id=player.client_id))
    assert client is not None
    history, total = yield from do(
        ops.ListOperations(player_id=player.id, offset=offset, limit=limit)
    )
    return PlayerDetail(player, client, history, total)


def set_blocked(
    player_id: int, blocked: bool, now_ms: int, principal: Principal, *, reason: str = ""
) -> UseCase[PlayerRecord]:
    """Block (no withdrawals) or unblock a player, and record who did it."""
    require_operator(principal)
    player = yield from do(ops.GetPlayer(player_id=player_id, lock=True))
    if player is None:
        raise WalletError(ErrorCode.PLAYER_NOT_FOUND)
    yield from do(ops.UpdatePlayer(player.id, {"blocked": blocked}))
    yield from _event(
        principal.actor,
        "player.block" if blocked else "player.unblock",
        f"player:{player.id}",
        now_ms,
        client_id=player.client_id,
        external_id=player.external_id,
        reason=reason,
    )
    updated = yield from do(ops.GetPlayer(player_id=player.id))
    assert updated is not None
    return updated


def end_game(
    player_id: int, now_ms: int, principal: Principal, *, reason: str = ""
) -> UseCase[PlayerRecord]:
    """End a player's game (JDB: what action 17 does, for a game whose end nobody reported)
    and record who did it. The withdrawal cooldown of that game type starts now; a player
    not in a game is returned unchanged and nothing is recorded."""
    require_operator(principal)
    player = yield from do(ops.GetPlayer(player_id=player_id, lock=True))
    if player is None:
        raise WalletError(ErrorCode.PLAYER_NOT_FOUND)
    game = player.game_type
    if game is None:
        return player
    updated = yield from jdb.end_game(player, now_ms)
    yield from _event(
        principal.actor,
        "player.end_game",
        f"player:{player.id}",
        now_ms,
        client_id=player.client_id,
        external_id=player.external_id,
        game=game,
        since=player.game_since_ms,
        reason=reason,
    )
    return updated


@dataclass(frozen=True, slots=True)
class Adjustment:
    """A manual adjustment asked for by staff: signed amount, bucket, and the reason."""

    player_id: int
    amount_minor: int  # signed: positive credits the player
    reason: str
    bucket: Bucket = Bucket.CASH
    request_id: str | None = None  # repeats with the same id apply once


def adjust(change: Adjustment, now_ms: int, principal: Principal) -> UseCase[PlayerRecord]:
    """Post a manual adjustment against the house adjustments account, once per request id.

    Double entry: the player's account and the house's move by opposite amounts in one
    posting (``service.admin.adjust``). The operation keeps the actor and the reason, and the
    staff trail records them too, in the same database transaction.
    """
    require_operator(principal)
    reason = change.reason.strip()
    if not reason or len(reason) > 500:
        raise WalletError(ErrorCode.INVALID_REQUEST, "a reason (1-500 characters) is required")
    # The player row is locked first, so two repeats of one request id cannot both apply.
    player = yield from do(ops.GetPlayer(player_id=change.player_id, lock=True))
    if player is None:
        raise WalletError(ErrorCode.PLAYER_NOT_FOUND)
    if change.request_id:
        seen = yield from do(ops.GetIdempotency(player.client_id, SCOPE_ADJUST, change.request_id))
        if seen is not None:
            fingerprint = _adjust_fingerprint(change, reason)
            if seen.fingerprint != fingerprint:
                raise WalletError(ErrorCode.ID_REUSED, "this request id was used for another one")
            return player
    updated = yield from admin.adjust(
        player.id, change.amount_minor, reason, principal.actor, now_ms, bucket=change.bucket
    )
    if change.request_id:
        yield from do(
            ops.SaveIdempotency(
                player.client_id,
                SCOPE_ADJUST,
                change.request_id,
                _adjust_fingerprint(change, reason),
                b"",
                now_ms,
            )
        )
    yield from _event(
        principal.actor,
        "player.adjust",
        f"player:{player.id}",
        now_ms,
        client_id=player.client_id,
        external_id=player.external_id,
        amount_minor=change.amount_minor,
        currency=player.currency,
        bucket=change.bucket.value,
        reason=reason,
    )
    return updated


def _adjust_fingerprint(change: Adjustment, reason: str) -> str:
    return f"{change.player_id}:{change.amount_minor}:{change.bucket.value}:{reason}"


# --- operations, holds, tombstones ---------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OperationFilter:
    """What the operations history may be narrowed to."""

    client_id: int | None = None
    player_id: int | None = None
    kinds: tuple[str, ...] | None = None
    states: tuple[OpState, ...] | None = None
    since_ms: int | None = None
    until_ms: int | None = None
    ns: str | None = None


def list_operations(
    where: OperationFilter, offset: int, limit: int, *, oldest_first: bool = False
) -> UseCase[tuple[list[OperationRecord], int]]:
    """A page of operations matching ``where`` and the total count."""
    return (
        yield from do(
            ops.ListOperations(
                client_id=where.client_id,
                player_id=where.player_id,
                ns=where.ns,
                kinds=where.kinds,
                states=where.states,
                since_ms=where.since_ms,
                until_ms=where.until_ms,
                offset=offset,
                limit=limit,
                oldest_first=oldest_first,
            )
        )
    )


def operations_with_players(
    where: OperationFilter, offset: int, limit: int, known: Mapping[int, str]
) -> UseCase[tuple[list[OperationRecord], dict[int, str]]]:
    """A page of operations (oldest first, for exports) and the external ids of the players
    on it that ``known`` does not name yet."""
    page, _ = yield from list_operations(where, offset, limit, oldest_first=True)
    names = yield from player_names({o.player_id for o in page} - set(known))
    return page, names


def player_names(player_ids: Iterable[int]) -> UseCase[dict[int, str]]:
    """External ids of players by internal id (one lookup each: meant for a page)."""
    names: dict[int, str] = {}
    for player_id in sorted(set(player_ids)):
        player = yield from do(ops.GetPlayer(player_id=player_id))
        names[player_id] = player.external_id if player is not None else ""
    return names


def open_operations(
    client_id: int | None, offset: int, limit: int
) -> UseCase[tuple[list[OperationRecord], int]]:
    """Outstanding holds and pending credits, oldest first (the ones to look at)."""
    return (
        yield from list_operations(
            OperationFilter(client_id=client_id, states=OPEN_STATES),
            offset,
            limit,
            oldest_first=True,
        )
    )


def tombstones(
    client_id: int | None, offset: int, limit: int
) -> UseCase[tuple[list[OperationRecord], int]]:
    """Rollbacks of ids never seen (nothing was held), newest first."""
    return (yield from do(a.ListTombstones(client_id, offset, limit)))


# --- outbox, reconciliation, audit, trail --------------------------------------------------


def outbox(state: str | None, offset: int, limit: int) -> UseCase[tuple[list[OutboxRecord], int]]:
    """A page of outgoing messages (all, or those in one state), newest first."""
    return (yield from do(ops.ListOutbox(state, offset, limit)))


def retry_outbox(outbox_id: int, now_ms: int, principal: Principal) -> UseCase[bool]:
    """Make a dead or pending message due now; False if it is unknown or already done."""
    require_operator(principal)
    retried = yield from do(ops.RetryOutbox(outbox_id, now_ms))
    if retried:
        yield from _event(principal.actor, "outbox.retry", f"outbox:{outbox_id}", now_ms)
    return retried


def reconciliations(
    client_id: int | None, offset: int, limit: int
) -> UseCase[tuple[list[ReconciliationRecord], int]]:
    """A page of the reconciler's decisions, newest first."""
    return (yield from do(ops.ListReconciliations(client_id, offset=offset, limit=limit)))


def run_audit(now_ms: int, principal: Principal) -> UseCase[list[str]]:
    """Check every ledger invariant and record who ran the check and what it found."""
    violations = yield from admin.audit()
    yield from _event(principal.actor, "audit.run", "ledger", now_ms, violations=len(violations))
    return violations


def events(
    actor: str | None, action: str | None, offset: int, limit: int
) -> UseCase[tuple[list[a.AdminEventRecord], int]]:
    """A page of the staff-action trail, newest first."""
    return (yield from do(a.ListAdminEvents(actor, action, offset, limit)))


# --- balances and the dashboard ------------------------------------------------------------


def balances() -> UseCase[tuple[list[a.BalanceTotal], list[ClientRecord]]]:
    """Balance sums per owner kind, client, currency and bucket, with the clients."""
    totals = yield from do(a.BalanceTotals())
    clients = yield from do(ops.ListClients())
    return totals, clients


@dataclass(frozen=True, slots=True)
class Gauges:
    """What /metrics reads from the database: open operations and outbox depth."""

    open_totals: list[a.OpenTotal]
    outbox_depth: dict[str, int]


def gauges() -> UseCase[Gauges]:
    """Open operations grouped, and the number of pending and dead outbox messages."""
    open_totals = yield from do(a.OpenOperationTotals())
    depth = {}
    for state in ("pending", "dead"):
        _, depth[state] = yield from do(ops.ListOutbox(state, 0, 0))
    return Gauges(open_totals, depth)


@dataclass(frozen=True, slots=True)
class Dashboard:
    """What the dashboard shows, computed in one database transaction at ``now_ms``."""

    now_ms: int
    clients: list[ClientRecord]
    calls: list[a.OperationCount]  # per minute, last ``minutes``
    flows: list[a.PlayerFlow]  # per day, last ``days``
    open_totals: list[a.OpenTotal]
    outbox_depth: dict[str, int] = field(default_factory=dict)  # pending / dead
    minutes: int = 60
    days: int = 14

    @property
    def calls_since_ms(self) -> int:
        """Start of the first minute shown."""
        return (self.now_ms // MINUTE_MS - self.minutes + 1) * MINUTE_MS

    @property
    def flows_since_ms(self) -> int:
        """Start of the first day shown (UTC)."""
        return (self.now_ms // DAY_MS - self.days + 1) * DAY_MS


def dashboard(now_ms: int, *, minutes: int = 60, days: int = 14) -> UseCase[Dashboard]:
    """The dashboard's figures: calls per minute, player flows per day, open operations and
    outbox depth. Reads indexed ranges only (operations by client and time, by state)."""
    clients = yield from do(ops.ListClients())
    ids = tuple(c.id for c in clients)
    shell = Dashboard(now_ms, clients, [], [], [], minutes=minutes, days=days)
    end_ms = (now_ms // MINUTE_MS + 1) * MINUTE_MS
    calls = yield from do(a.CountOperations(ids, shell.calls_since_ms, end_ms, MINUTE_MS))
    day_end_ms = (now_ms // DAY_MS + 1) * DAY_MS
    flows = yield from do(a.PlayerFlows(ids, shell.flows_since_ms, day_end_ms, DAY_MS))
    current = yield from gauges()
    return Dashboard(
        now_ms,
        clients,
        calls,
        flows,
        current.open_totals,
        current.outbox_depth,
        minutes=minutes,
        days=days,
    )
