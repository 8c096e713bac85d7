"""Use cases of the HRG transfer API: an agent moves money in and out of its players' wallets.

Each transfer (``deposit`` / ``withdraw``) is one operation in the ``wire`` namespace, keyed by
the agent's ``transactionCode``, born COMPLETED, posted between the agent's account and the
player's cash and free-credit buckets in the same database transaction that claims the code.
Its ``detail`` keeps the user id, the request fingerprint and the buckets before and after,
so that the query endpoints can render a record without touching the ledger again.

Idempotency: the rendered response is stored with the operation; an identical repeat gets
those bytes back, different content under the same code is ID_REUSED. Refusals are checked
in the precedence of :class:`~gamewallet.core.errors.ErrorCode`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import quote, urlencode, urlsplit, urlunsplit

from gamewallet.core.errors import ErrorCode, WalletError
from gamewallet.core.money import MAX_MINOR, format_minor
from gamewallet.core.states import OpState
from gamewallet.service import fastpath
from gamewallet.service.admin import create_player, get_player, launch_url, open_session
from gamewallet.service.common import NS_WIRE, fingerprint, move
from gamewallet.store import ops
from gamewallet.store.port import UseCase, do
from gamewallet.store.records import ClientRecord, OperationRecord, PlayerRecord

PROTOCOL = "hrg"
KIND_DEPOSIT = "deposit"
KIND_WITHDRAW = "withdraw"
TRANSFER_KINDS = (KIND_DEPOSIT, KIND_WITHDRAW)
#: Idempotency scope of transfer responses (one transactionCode space per agent).
IDEMPOTENCY_SCOPE = "hrg:transfer"
#: Life of a launch ticket unless the agent's config sets ``ticket_ttl_s``: long enough for
#: the browser to follow the URL, short enough that a leaked URL is soon worthless.
DEFAULT_TICKET_TTL_S = 60


class NotConfigured(Exception):
    """The agent lacks configuration an endpoint needs (currency, game URL): our side's
    fault, answered with the protocol's generic error and logged."""


# --- limits ------------------------------------------------------------------------------


def max_amount_minor(client: ClientRecord) -> int:
    """The largest single amount (per bucket) the agent may move: its ``max_amount`` config
    in minor units, never above the ledger's ceiling."""
    configured = client.config.get("max_amount")
    if isinstance(configured, int) and not isinstance(configured, bool) and configured > 0:
        return min(configured, MAX_MINOR)
    return MAX_MINOR


def _check_amounts(client: ClientRecord, *amounts_minor: int) -> None:
    limit = max_amount_minor(client)
    if any(amount > limit for amount in amounts_minor):
        raise WalletError(ErrorCode.LIMIT_EXCEEDED)


# --- records -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Transfer:
    """One deposit or withdraw as the agent sees it; amounts signed as applied to the
    player (a withdraw's are negative, so ``pre + amount = after`` in each bucket)."""

    transaction_code: str
    user_id: str
    currency: str
    kind: str
    cash_minor: int
    free_minor: int
    pre_cash_minor: int
    pre_free_minor: int
    after_cash_minor: int
    after_free_minor: int
    created_at_ms: int

    @property
    def total_minor(self) -> int:
        """Both buckets together (HRG's ``depositAmount`` / ``withdrawAmount``)."""
        return self.cash_minor + self.free_minor

    @classmethod
    def from_operation(cls, operation: OperationRecord) -> Transfer:
        """The record of a stored transfer operation."""
        assert operation.kind in TRANSFER_KINDS, "not an HRG transfer"
        sign = -1 if operation.kind == KIND_WITHDRAW else 1
        d = operation.detail
        return cls(
            transaction_code=operation.ext_id,
            user_id=str(d["userId"]),
            currency=operation.currency,
            kind=operation.kind,
            cash_minor=sign * operation.amount_minor,
            free_minor=sign * operation.free_minor,
            pre_cash_minor=int(d["preBalance"]),
            pre_free_minor=int(d["preFreeCredit"]),
            after_cash_minor=int(d["afterBalance"]),
            after_free_minor=int(d["afterFreeCredit"]),
            created_at_ms=operation.created_at_ms,
        )


@dataclass(frozen=True, slots=True)
class WithdrawRequest:
    """A parsed withdraw; with ``all_buckets`` the amounts are ignored."""

    user_id: str
    transaction_code: str
    all_buckets: bool
    cash_minor: int = 0
    free_minor: int = 0

    def fingerprint(self) -> str:
        """The request's meaningful content (amounts only when they are used)."""
        if self.all_buckets:
            return fingerprint(KIND_WITHDRAW, self.user_id, True)
        return fingerprint(KIND_WITHDRAW, self.user_id, False, self.cash_minor, self.free_minor)


@dataclass(frozen=True, slots=True)
class DepositRequest:
    """A parsed deposit."""

    user_id: str
    transaction_code: str
    cash_minor: int
    free_minor: int = 0

    def fingerprint(self) -> str:
        """The request's meaningful content."""
        return fingerprint(KIND_DEPOSIT, self.user_id, self.cash_minor, self.free_minor)


#: Turns a finished transfer into the exact response bytes to send and to replay.
Render = Callable[[Transfer], bytes]


# --- players -----------------------------------------------------------------------------


def create_user(
    client: ClientRecord, user_id: str, cash_minor: int, free_minor: int, now_ms: int
) -> UseCase[PlayerRecord]:
    """Create a player of the agent, funded from the agent's account (an admin ``fund``
    operation: create_user has no transactionCode, so it is not a transfer record)."""
    if not client.currency:
        raise NotConfigured(f"HRG agent {client.name} has no currency")
    existing = yield from do(ops.GetPlayer(client_id=client.id, external_id=user_id))
    if existing is not None:
        raise WalletError(ErrorCode.PLAYER_EXISTS)
    _check_amounts(client, cash_minor, free_minor)
    return (
        yield from create_player(
            client, user_id, client.currency, user_id, cash_minor, now_ms, free_minor=free_minor
        )
    )


def get_balances(
    client: ClientRecord,
    user_ids: Sequence[str] | None,
    *,
    non_zero: bool,
    page: int,
    page_size: int,
) -> UseCase[tuple[list[PlayerRecord], int]]:
    """A page of the agent's players and the total matching count, ordered by creation.

    ``user_ids`` None means every player. Named users must all exist (else
    PLAYER_NOT_FOUND); ``non_zero`` keeps players with money in either bucket.
    """
    offset = (page - 1) * page_size
    if user_ids is None:
        return (
            yield from do(
                ops.ListPlayers(client.id, non_zero=non_zero, offset=offset, limit=page_size)
            )
        )
    wanted = tuple(dict.fromkeys(user_ids))
    found, _ = yield from do(ops.ListPlayers(client.id, external_ids=wanted, limit=len(wanted)))
    if len(found) < len(wanted):
        raise WalletError(ErrorCode.PLAYER_NOT_FOUND)
    if non_zero:
        found = [p for p in found if p.cash.balance.posted_minor or p.free.balance.posted_minor]
    return found[offset : offset + page_size], len(found)


# --- transfers ---------------------------------------------------------------------------


def withdraw(
    client: ClientRecord, request: WithdrawRequest, now_ms: int, render: Render
) -> UseCase[bytes]:
    """:func:`_withdraw`, also offered as one SQL statement (:mod:`gamewallet.service.fastpath`)."""
    generic = _withdraw(client, request, now_ms, render)
    return _offer(generic, client, KIND_WITHDRAW, request, request.all_buckets, now_ms, render)


def deposit(
    client: ClientRecord, request: DepositRequest, now_ms: int, render: Render
) -> UseCase[bytes]:
    """:func:`_deposit`, also offered as one SQL statement (:mod:`gamewallet.service.fastpath`)."""
    generic = _deposit(client, request, now_ms, render)
    return _offer(generic, client, KIND_DEPOSIT, request, False, now_ms, render)


def _offer(
    generic: UseCase[bytes],
    client: ClientRecord,
    kind: str,
    request: WithdrawRequest | DepositRequest,
    all_buckets: bool,
    now_ms: int,
    render: Render,
) -> UseCase[bytes]:
    # The call's own values are arguments, not captured, so that the fast path's template
    # cache knows this renderer again on the next call (service.fastpath._Behaviour).
    def render_transfer(
        code: str,
        user: str,
        at_ms: int,
        cash: int,
        free: int,
        after_cash: int,
        after_free: int,
        cur: str,
    ) -> bytes:
        return render(
            Transfer(code, user, cur, kind, cash, free, after_cash - cash, after_free - free,
                     after_cash, after_free, at_ms)
        )  # fmt: skip

    return fastpath.hrg_offer(
        generic,
        client=client,
        kind=kind,
        user_id=request.user_id,
        transaction_code=request.transaction_code,
        all_buckets=all_buckets,
        cash_minor=request.cash_minor,
        free_minor=request.free_minor,
        fingerprint=request.fingerprint(),
        now_ms=now_ms,
        max_amount_minor=max_amount_minor(client),
        max_balance_minor=MAX_MINOR,
        render=render_transfer,
        money=_money,
    )


def _money(minor: int) -> str:
    """An amount as HRG writes it (what the fast path's templates are checked against)."""
    return format_minor(minor, min_fraction_digits=1)


def _withdraw(
    client: ClientRecord, request: WithdrawRequest, now_ms: int, render: Render
) -> UseCase[bytes]:
    """Move money from the player's buckets to the agent; returns the response bytes."""
    player = yield from get_player(client, request.user_id, lock=True)
    replay = yield from _replay(client, request.transaction_code, request.fingerprint(), render)
    if replay is not None:
        return replay
    cash_available = player.cash.balance.available_minor
    free_available = player.free.balance.available_minor
    if request.all_buckets:
        # The whole balance, whatever its size: the agent can always take everything back.
        cash, free = cash_available, free_available
    else:
        cash, free = request.cash_minor, request.free_minor
        _check_amounts(client, cash, free)
        if cash > cash_available:
            raise WalletError(ErrorCode.INSUFFICIENT_FUNDS)
        if free > free_available:
            raise WalletError(ErrorCode.INSUFFICIENT_FREE_CREDIT)
    return (
        yield from _transfer(
            client,
            player,
            KIND_WITHDRAW,
            request.transaction_code,
            request.fingerprint(),
            -cash,
            -free,
            now_ms,
            render,
        )
    )


def _deposit(
    client: ClientRecord, request: DepositRequest, now_ms: int, render: Render
) -> UseCase[bytes]:
    """Move money from the agent to the player's buckets; returns the response bytes."""
    player = yield from get_player(client, request.user_id, lock=True)
    replay = yield from _replay(client, request.transaction_code, request.fingerprint(), render)
    if replay is not None:
        return replay
    _check_amounts(client, request.cash_minor, request.free_minor)
    if (
        player.cash.balance.posted_minor + request.cash_minor > MAX_MINOR
        or player.free.balance.posted_minor + request.free_minor > MAX_MINOR
    ):
        raise WalletError(ErrorCode.BALANCE_LIMIT_EXCEEDED)
    return (
        yield from _transfer(
            client,
            player,
            KIND_DEPOSIT,
            request.transaction_code,
            request.fingerprint(),
            request.cash_minor,
            request.free_minor,
            now_ms,
            render,
        )
    )


def _replay(
    client: ClientRecord, code: str, request_fingerprint: str, render: Render
) -> UseCase[bytes | None]:
    """The original response if ``code`` was used before with the same content; ID_REUSED
    if with other content; None if the code is new.

    The stored response answers for the retention window; after the purge, the operation
    itself (kept forever) still proves the code is taken and rebuilds the same answer.
    """
    stored = yield from do(ops.GetIdempotency(client.id, IDEMPOTENCY_SCOPE, code))
    if stored is not None:
        if stored.fingerprint != request_fingerprint:
            raise WalletError(ErrorCode.ID_REUSED)
        return stored.response
    operation = yield from do(ops.GetOperation(client_id=client.id, ns=NS_WIRE, ext_id=code))
    if operation is None:
        return None
    return _replay_operation(operation, request_fingerprint, render)


def _replay_operation(
    operation: OperationRecord, request_fingerprint: str, render: Render
) -> bytes:
    if operation.detail.get("fingerprint") != request_fingerprint:
        raise WalletError(ErrorCode.ID_REUSED)
    return render(Transfer.from_operation(operation))


def _transfer(
    client: ClientRecord,
    player: PlayerRecord,
    kind: str,
    code: str,
    request_fingerprint: str,
    cash_minor: int,
    free_minor: int,
    now_ms: int,
    render: Render,
) -> UseCase[bytes]:
    """Claim ``code``, post the signed amounts, store and return the rendered response."""
    pre_cash = player.cash.balance.posted_minor
    pre_free = player.free.balance.posted_minor
    detail = {
        "userId": player.external_id,
        "fingerprint": request_fingerprint,
        "preBalance": pre_cash,
        "preFreeCredit": pre_free,
        "afterBalance": pre_cash + cash_minor,
        "afterFreeCredit": pre_free + free_minor,
    }
    operation = yield from do(
        ops.InsertOperation(
            client.id,
            NS_WIRE,
            code,
            kind,
            player.id,
            player.currency,
            abs(cash_minor),
            abs(free_minor),
            OpState.COMPLETED,
            now_ms,
            detail,
        )
    )
    if operation is None:
        # Claimed meanwhile by a transaction on another player (ours is locked): the unique
        # key waited for it to commit, so its operation is there to compare with.
        taken = yield from do(ops.GetOperation(client_id=client.id, ns=NS_WIRE, ext_id=code))
        assert taken is not None, "an operation id is claimed but not stored"
        return _replay_operation(taken, request_fingerprint, render)
    if cash_minor or free_minor:
        yield from move(
            client, player, operation.id, now_ms, cash_minor=cash_minor, free_minor=free_minor
        )
    body = render(Transfer.from_operation(operation))
    yield from do(
        ops.SaveIdempotency(client.id, IDEMPOTENCY_SCOPE, code, request_fingerprint, body, now_ms)
    )
    return body


# --- queries -----------------------------------------------------------------------------


def check_transfer(client: ClientRecord, code: str) -> UseCase[Transfer]:
    """The transfer the agent made with ``code``, or NOT_FOUND."""
    operation = yield from do(ops.GetOperation(client_id=client.id, ns=NS_WIRE, ext_id=code))
    if operation is None or operation.kind not in TRANSFER_KINDS:
        raise WalletError(ErrorCode.NOT_FOUND)
    return Transfer.from_operation(operation)


def transfer_log(
    client: ClientRecord,
    user_id: str | None,
    since_ms: int,
    until_ms: int,
    *,
    page: int,
    page_size: int,
) -> UseCase[tuple[list[Transfer], int]]:
    """The agent's transfers created in ``[since_ms, until_ms)``, oldest first, paged;
    optionally of one user (who must exist)."""
    player_id = None
    if user_id is not None:
        player = yield from get_player(client, user_id)
        player_id = player.id
    operations, total = yield from do(
        ops.ListOperations(
            client_id=client.id,
            player_id=player_id,
            ns=NS_WIRE,
            kinds=TRANSFER_KINDS,
            since_ms=since_ms,
            until_ms=until_ms,
            offset=(page - 1) * page_size,
            limit=page_size,
            oldest_first=True,
        )
    )
    return [Transfer.from_operation(op) for op in operations], total


# --- launch ------------------------------------------------------------------------------


def ticket_ttl_s(client: ClientRecord) -> int:
    """Life of a launch ticket for this agent (config ``ticket_ttl_s``, default 60 s)."""
    configured = client.config.get("ticket_ttl_s")
    if isinstance(configured, int) and not isinstance(configured, bool) and configured > 0:
        return configured
    return DEFAULT_TICKET_TTL_S


def launch(
    client: ClientRecord,
    user_id: str,
    now_ms: int,
    *,
    lang: str | None = None,
    game: str | None = None,
) -> UseCase[str]:
    """Issue a one-time launch ticket for a player and return the game-client URL.

    The URL is the agent's ``game_url`` template with ``{token}``, ``{player}``, ``{lang}``
    and ``{game}`` filled in; a language or game code the template has no place for is
    appended as the query parameter ``lang`` / ``gameCode``.
    """
    if not isinstance(client.config.get("game_url"), str) or not client.config["game_url"]:
        raise NotConfigured(f"HRG agent {client.name} has no game_url")
    ticket, player = yield from open_session(
        client, user_id, ticket_ttl_s(client), now_ms, kind="ticket"
    )
    url = launch_url(client, quote(ticket.token, safe=""), quote(player.external_id, safe=""))
    assert url is not None  # the template was checked above
    return _fill(url, {"lang": lang, "game": game}, {"lang": "lang", "game": "gameCode"})


def _fill(url: str, values: Mapping[str, str | None], params: Mapping[str, str]) -> str:
    extra: list[tuple[str, str]] = []
    for name, value in values.items():
        placeholder = "{" + name + "}"
        if placeholder in url:
            url = url.replace(placeholder, quote(value or "", safe=""))
        elif value:
            extra.append((params[name], value))
    if not extra:
        return url
    parts = urlsplit(url)
    query = "&".join(q for q in (parts.query, urlencode(extra)) if q)
    return urlunsplit(parts._replace(query=query))
