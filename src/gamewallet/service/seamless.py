"""Seamless wallet use cases (protocols.md 1.3, 1.4, 1.6): sessions, two-phase calls, payments.

One call is one database transaction. It resolves the token, locks the player row, and only
then reads the stored answer for (client, endpoint, id): concurrent identical calls therefore
queue on the player lock and the followers replay the leader's bytes. A new outcome follows the
state table of :mod:`gamewallet.core.states` (never re-encoded here), is rendered to bytes by
the caller-supplied ``render`` and stored with its fingerprint in the same transaction as the
money, so the response a caller gets is exactly what a repeat will get. Refusals are
``WalletError``\\ s raised in the precedence order of protocols.md 1.5; they roll everything
back and are not stored (a repeat is evaluated afresh and, having changed nothing, is safe).
This module does not import the protocol package: rendering and signing come in as callables.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from gamewallet.core.errors import ErrorCode, WalletError
from gamewallet.core.money import MAX_MINOR
from gamewallet.core.states import TABLE, Call, Effect, OpState, transition
from gamewallet.service import admin, fastpath
from gamewallet.service.common import NS_PAYMENT, NS_WIRE, fingerprint, move
from gamewallet.store import ops
from gamewallet.store.port import UseCase, do
from gamewallet.store.records import (
    ClientRecord,
    IdempotencyRecord,
    OperationRecord,
    PlayerRecord,
    SessionRecord,
)

PROTOCOL = "seamless"
KIND_WITHDRAW = "withdraw"
KIND_DEPOSIT = "deposit"
KIND_PAYMENT = "payment"
#: Outbox topic of the signed payment notification (delivered by the worker).
TOPIC_PAYMENT_CALLBACK = "payment_callback"
#: Idempotency scope of payment initiation (the two-phase calls use their endpoint names).
SCOPE_PAYMENT = "payment/initiate"
SESSION_KIND = "session"

_OPENS_AS = {KIND_WITHDRAW: OpState.HELD, KIND_DEPOSIT: OpState.PENDING}


@dataclass(frozen=True, slots=True)
class Limits:
    """A client's ceilings (config ``max_amount`` / ``max_balance``, minor units)."""

    max_amount_minor: int = MAX_MINOR
    max_balance_minor: int = MAX_MINOR


def limits_of(client: ClientRecord) -> Limits:
    """The client's configured limits; the ledger's ceiling where none is set."""
    values = []
    for key in ("max_amount", "max_balance"):
        value = client.config.get(key)
        if value is None:
            value = MAX_MINOR
        assert isinstance(value, int), f"{key} must be an int"
        assert not isinstance(value, bool), f"{key} must be an int"
        assert 0 < value <= MAX_MINOR, f"{key} must be in 1..{MAX_MINOR} minor units"
        values.append(value)
    return Limits(*values)


# --- sessions ----------------------------------------------------------------------------


def _session_player(
    client: ClientRecord, token: str, *, lock: bool
) -> UseCase[tuple[SessionRecord, PlayerRecord]]:
    """The session of ``token`` (of this client) and its player, or UNKNOWN_TOKEN."""
    session = yield from do(ops.GetSession(token))
    if session is None or session.client_id != client.id or session.kind != SESSION_KIND:
        raise WalletError(ErrorCode.UNKNOWN_TOKEN)
    player = yield from do(ops.GetPlayer(player_id=session.player_id, lock=lock))
    if player is None:
        raise WalletError(ErrorCode.PLAYER_NOT_FOUND)
    return session, player


def live_player(client: ClientRecord, token: str, now_ms: int) -> UseCase[PlayerRecord]:
    """The player of a live session (``verifySession``, ``getBalance``): 102 or 103 if not."""
    session, player = yield from _session_player(client, token, lock=False)
    if session.expires_at_ms <= now_ms:
        raise WalletError(ErrorCode.SESSION_EXPIRED)
    return player


@dataclass(frozen=True, slots=True)
class GameSession:
    """What the entry point hands the operator: the token and the game's launch URL."""

    token: str
    launch_url: str | None
    expires_at_ms: int
    player: PlayerRecord


def open_game_session(
    client: ClientRecord, external_id: str, ttl_s: int, now_ms: int
) -> UseCase[GameSession]:
    """Open a session for a player of a seamless client (the entry point of spec 1.6).

    ``launch_url`` is the client's ``game_url`` template with ``{token}`` (and ``{player}``)
    filled in, or None when the client has no template.
    """
    if client.protocol != PROTOCOL:
        raise WalletError(ErrorCode.INVALID_REQUEST, "sessions are for seamless clients")
    session, player = yield from admin.open_session(client, external_id, ttl_s, now_ms)
    url = admin.launch_url(client, session.token, player.external_id)
    return GameSession(session.token, url, session.expires_at_ms, player)


# --- idempotency -------------------------------------------------------------------------


def _stored_answer(
    client: ClientRecord, scope: str, key: str, now_ms: int, retention_s: int
) -> UseCase[IdempotencyRecord | None]:
    """The stored answer for (scope, key) if it is still inside the retention window."""
    stored = yield from do(ops.GetIdempotency(client.id, scope, key))
    if stored is None or now_ms - stored.created_at_ms >= retention_s * 1000:
        return None  # an expired record is left for the purge; it no longer answers
    return stored


# --- the two-phase calls -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class WalletCall:
    """One parsed two-phase request (withdraw/deposit and their confirm/rollback)."""

    client: ClientRecord
    endpoint: str  # the wire endpoint name, also the idempotency scope
    kind: str  # KIND_WITHDRAW or KIND_DEPOSIT
    call: Call
    token: str  # "" for a call made on the game's behalf (settle_for_game)
    ext_id: str  # mmTransactionId
    amount_minor: int | None = None  # OPEN and CONFIRM
    currency: str | None = None  # OPEN and CONFIRM
    note: str | None = None  # txDescription or rollbackReason: kept, never compared

    def __post_init__(self) -> None:
        assert self.kind in _OPENS_AS
        assert (self.amount_minor is None) == (self.call is Call.ROLLBACK)
        assert (self.currency is None) == (self.call is Call.ROLLBACK)


@dataclass(frozen=True, slots=True)
class Outcome:
    """What a successful call answers: the id and the player's available balance after it."""

    ext_id: str
    balance_minor: int
    currency: str


#: Turns an outcome into the exact response bytes (supplied by the protocol's routes).
Render = Callable[[Outcome], bytes]


def call_fingerprint(call: WalletCall, player_id: int) -> str:
    """What makes two calls "the same request" (spec 1.4).

    Endpoint, player (not the token: a retry may come with a newer token of the same
    player), amount and currency. Free texts (txDescription, rollbackReason) are left out,
    so a retry that words its reason differently is still a retry.
    """
    return request_fingerprint(call.endpoint, player_id, call.amount_minor, call.currency)


def request_fingerprint(
    endpoint: str, player_id: int, amount_minor: int | None, currency: str | None
) -> str:
    """:func:`call_fingerprint` from its parts (the fast path's template is checked and cached
    against this one function)."""
    return fingerprint(endpoint, player_id, amount_minor, currency)


def wallet_call(call: WalletCall, now_ms: int, retention_s: int, render: Render) -> UseCase[bytes]:
    """:func:`_wallet_call`, offered to the store with its single-statement form as well
    (:mod:`gamewallet.service.fastpath`; the PostgreSQL store runs it in one round trip)."""
    limits: tuple[int, int] | None = None
    try:
        known = limits_of(call.client)
        limits = (known.max_amount_minor, known.max_balance_minor)
    except AssertionError:  # a bad config: the generic path refuses it where it matters
        pass
    return fastpath.seamless_offer(
        _wallet_call(call, now_ms, retention_s, render),
        client=call.client,
        endpoint=call.endpoint,
        kind=call.kind,
        call=call.call.value,
        token=call.token,
        ext_id=call.ext_id,
        amount_minor=call.amount_minor,
        currency=call.currency,
        now_ms=now_ms,
        retention_s=retention_s,
        limits=limits,
        note=_note(call),
        # Captures only ``render``, so the fast path's template cache knows it again.
        render=lambda ext_id, balance, currency: render(Outcome(ext_id, balance, currency)),
        fingerprint=request_fingerprint,
    )


def _wallet_call(call: WalletCall, now_ms: int, retention_s: int, render: Render) -> UseCase[bytes]:
    """Run one two-phase call and return the response bytes (new, or the stored original).

    Precedence (protocols.md 1.5): token 102 → [identical repeat: replay] → 103 (withdraw
    only) → 104 (withdraw only) → 105 → 109 → the state table (110/107/108) → 111 → 106.
    ``deposit``, ``confirm*`` and ``rollback*`` accept an expired session; the content check
    then ensures its token names the same player as the original operation.
    """
    session, player = yield from _session_player(call.client, call.token, lock=True)
    return (yield from _call_for(call, player, session.expires_at_ms, now_ms, retention_s, render))


def settle_for_game(
    call: WalletCall, player_id: int, now_ms: int, retention_s: int, render: Render
) -> UseCase[bytes]:
    """A confirm or rollback made on the game's behalf (the reconciler, once the game said
    how a round ended): no session token, the player is the operation's own; otherwise
    exactly :func:`wallet_call` (same checks, state table, stored answer and fingerprint, so
    the game's own later retry of the call replays this answer)."""
    assert call.call is not Call.OPEN, "only confirms and rollbacks are made for the game"
    player = yield from do(ops.GetPlayer(player_id=player_id, lock=True))
    if player is None:
        raise WalletError(ErrorCode.PLAYER_NOT_FOUND)
    return (yield from _call_for(call, player, None, now_ms, retention_s, render))


def _call_for(
    call: WalletCall,
    player: PlayerRecord,
    session_expires_at_ms: int | None,
    now_ms: int,
    retention_s: int,
    render: Render,
) -> UseCase[bytes]:
    """:func:`_wallet_call` once the player is known and locked (the session's expiry
    matters only to a withdraw, which always has one)."""
    fp = call_fingerprint(call, player.id)
    stored = yield from _stored_answer(call.client, call.endpoint, call.ext_id, now_ms, retention_s)
    if stored is not None and stored.fingerprint == fp:
        return stored.response
    opens_withdraw = call.call is Call.OPEN and call.kind == KIND_WITHDRAW
    if opens_withdraw:
        assert session_expires_at_ms is not None, "a withdraw always comes with a session"
        if session_expires_at_ms <= now_ms:
            raise WalletError(ErrorCode.SESSION_EXPIRED)
        if player.blocked:
            raise WalletError(ErrorCode.PLAYER_BLOCKED)
    if call.currency is not None and call.currency != player.currency:
        raise WalletError(ErrorCode.CURRENCY_MISMATCH)
    if stored is not None:
        raise WalletError(ErrorCode.ID_REUSED, "the same id was answered for other content")
    balance_minor = yield from _apply(call, player, now_ms)
    body = render(Outcome(call.ext_id, balance_minor, player.currency))
    yield from do(ops.SaveIdempotency(call.client.id, call.endpoint, call.ext_id, fp, body, now_ms))
    return body


def _apply(call: WalletCall, player: PlayerRecord, now_ms: int) -> UseCase[int]:
    """Claim or find the operation, follow its state table cell; the available balance after."""
    available = player.cash.balance.available_minor
    opens_as = _OPENS_AS[call.kind]
    if call.call is Call.OPEN:
        # Claim the id first (the unique key decides between concurrent claims); an existing
        # id falls through to the table like any other call.
        assert call.amount_minor is not None
        created = yield from do(
            ops.InsertOperation(
                call.client.id,
                NS_WIRE,
                call.ext_id,
                call.kind,
                player.id,
                player.currency,
                call.amount_minor,
                0,
                opens_as,
                now_ms,
                _note(call),
            )
        )
        if created is not None:  # the (None, OPEN) cell: a new hold or pending credit
            return (yield from _open(call, player, created, now_ms))
    operation = yield from do(
        ops.GetOperation(client_id=call.client.id, ns=NS_WIRE, ext_id=call.ext_id, lock=True)
    )
    if operation is None and call.call is Call.ROLLBACK:
        cell = transition(None, Call.ROLLBACK, opens_as=opens_as)
        assert cell.effect is Effect.TOMBSTONE
        assert cell.next_state is not None
        tombstone = yield from do(
            ops.InsertOperation(
                call.client.id,
                NS_WIRE,
                call.ext_id,
                call.kind,
                player.id,
                player.currency,
                0,
                0,
                cell.next_state,
                now_ms,
                {"tombstone": True, **_note(call)},
            )
        )
        if tombstone is not None:
            return available
        # Another call claimed the id between our read and our insert: judge against it.
        operation = yield from do(
            ops.GetOperation(client_id=call.client.id, ns=NS_WIRE, ext_id=call.ext_id, lock=True)
        )
        assert operation is not None
    if operation is not None:
        _check_same(call, player, operation)
    cell = transition(operation.state if operation else None, call.call, opens_as=opens_as)
    if cell.error is not None:
        raise WalletError(cell.error)
    assert operation is not None, "an unknown id either opens, is refused or is tombstoned"
    assert cell.next_state is not None
    if cell.effect is Effect.REPLAY:
        return available
    amount = operation.amount_minor
    if cell.effect is Effect.POST:
        if call.kind == KIND_WITHDRAW:
            yield from move(
                call.client,
                player,
                operation.id,
                now_ms,
                cash_minor=-amount,
                released_hold_minor=amount,
            )
            after = available  # the hold already took it from the available balance
        else:
            yield from move(
                call.client,
                player,
                operation.id,
                now_ms,
                cash_minor=amount,
                released_pending_minor=amount,
            )
            after = available + amount
    else:
        assert cell.effect is Effect.VOID
        if call.kind == KIND_WITHDRAW:
            delta = ops.Delta(player.cash.id, player.currency, held_minor=-amount)
            after = available + amount  # the held amount is spendable again
        else:
            delta = ops.Delta(player.cash.id, player.currency, pending_minor=-amount)
            after = available  # a pending credit was never spendable
        yield from do(ops.Apply(operation.id, (delta,), now_ms))
    yield from do(ops.UpdateOperation(operation.id, cell.next_state, now_ms, _note(call)))
    return after


def _open(
    call: WalletCall, player: PlayerRecord, operation: OperationRecord, now_ms: int
) -> UseCase[int]:
    """Place the hold (withdraw) or record the pending credit (deposit): 111, then 106."""
    amount = operation.amount_minor
    balance = player.cash.balance
    limits = limits_of(call.client)
    if amount > limits.max_amount_minor:
        raise WalletError(ErrorCode.LIMIT_EXCEEDED)
    if call.kind == KIND_DEPOSIT:
        # Pending credits count: confirming all of them must not pass the ceiling either.
        if balance.posted_minor + balance.pending_credit_minor + amount > (
            limits.max_balance_minor
        ):
            raise WalletError(ErrorCode.BALANCE_LIMIT_EXCEEDED)
        delta = ops.Delta(player.cash.id, player.currency, pending_minor=amount)
        after = balance.available_minor
    else:
        if balance.available_minor < amount:
            raise WalletError(ErrorCode.INSUFFICIENT_FUNDS)
        delta = ops.Delta(player.cash.id, player.currency, held_minor=amount)
        after = balance.available_minor - amount
    yield from do(ops.Apply(operation.id, (delta,), now_ms))
    return after


def _check_same(call: WalletCall, player: PlayerRecord, operation: OperationRecord) -> None:
    """109 unless the call is about the same kind, player, amount and currency as ``operation``.

    A tombstone remembers no amount, so only its kind and player are compared.
    """
    if operation.kind != call.kind or operation.player_id != player.id:
        raise WalletError(ErrorCode.ID_REUSED, "the id belongs to another operation")
    if call.amount_minor is None or operation.detail.get("tombstone"):
        return
    if operation.amount_minor != call.amount_minor or operation.currency != call.currency:
        raise WalletError(ErrorCode.ID_REUSED, "amount or currency differs from the original")


def _note(call: WalletCall) -> dict[str, Any]:
    """The free text of a call, for the operation's detail (never compared)."""
    if call.note is None:
        return {}
    field = "reason" if call.call is Call.ROLLBACK else "description"
    return {field: call.note}


# --- payments ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Payment:
    """One parsed ``payment/initiate`` request.

    ``price_text`` is the price exactly as written (it is what the callback signs);
    ``callback`` builds the signed callback fields from the player's id (the ``uid``): it is
    supplied by the routes so that this layer never needs the signing secret's code.
    """

    client: ClientRecord
    token: str
    order_id: str  # cpOrderId
    server_id: str
    product_id: str
    price_minor: int
    price_text: str
    ext_params: str
    callback: Callable[[str], Mapping[str, str]]


@dataclass(frozen=True, slots=True)
class PaymentOutcome:
    """What a successful payment answers."""

    order_id: str
    balance_minor: int
    currency: str


def payment_fingerprint(payment: Payment, player_id: int) -> str:
    """A payment is the same request when every field the game signs or receives matches."""
    return fingerprint(
        SCOPE_PAYMENT,
        player_id,
        payment.server_id,
        payment.product_id,
        payment.price_text,
        payment.ext_params,
    )


def initiate_payment(
    payment: Payment, now_ms: int, retention_s: int, render: Callable[[PaymentOutcome], bytes]
) -> UseCase[bytes]:
    """Debit the player once per ``cpOrderId`` and queue the signed callback, atomically.

    Precedence: 102 → [identical repeat: replay] → 103 → 104 → 109 → 111 → 106. A repeat
    after the retention window with the same content is answered with the current balance
    (the order is COMPLETED: the state table's replay cell) and queues nothing.
    """
    client = payment.client
    session, player = yield from _session_player(client, payment.token, lock=True)
    fp = payment_fingerprint(payment, player.id)
    stored = yield from _stored_answer(client, SCOPE_PAYMENT, payment.order_id, now_ms, retention_s)
    if stored is not None and stored.fingerprint == fp:
        return stored.response
    if session.expires_at_ms <= now_ms:
        raise WalletError(ErrorCode.SESSION_EXPIRED)
    if player.blocked:
        raise WalletError(ErrorCode.PLAYER_BLOCKED)
    if stored is not None:
        raise WalletError(ErrorCode.ID_REUSED, "the same order was answered for other content")
    detail = {
        "serverId": payment.server_id,
        "productId": payment.product_id,
        "productPrice": payment.price_text,
        "extParams": payment.ext_params,
    }
    available = player.cash.balance.available_minor
    operation = yield from do(
        ops.InsertOperation(
            client.id,
            NS_PAYMENT,
            payment.order_id,
            KIND_PAYMENT,
            player.id,
            player.currency,
            payment.price_minor,
            0,
            OpState.COMPLETED,
            now_ms,
            detail,
        )
    )
    if operation is None:
        existing = yield from do(
            ops.GetOperation(client_id=client.id, ns=NS_PAYMENT, ext_id=payment.order_id, lock=True)
        )
        assert existing is not None
        if existing.player_id != player.id or dict(existing.detail) != detail:
            raise WalletError(ErrorCode.ID_REUSED, "the order belongs to another payment")
        cell = TABLE[(existing.state, Call.OPEN)]
        if cell.error is not None:  # pragma: no cover - a payment is born COMPLETED
            raise WalletError(cell.error)
        assert cell.effect is Effect.REPLAY
        after = available
    else:
        limits = limits_of(client)
        if payment.price_minor > limits.max_amount_minor:
            raise WalletError(ErrorCode.LIMIT_EXCEEDED)
        if available < payment.price_minor:
            raise WalletError(ErrorCode.INSUFFICIENT_FUNDS)
        yield from move(client, player, operation.id, now_ms, cash_minor=-payment.price_minor)
        yield from do(
            ops.Enqueue(
                TOPIC_PAYMENT_CALLBACK,
                client.id,
                operation.id,
                dict(payment.callback(player.external_id)),
                now_ms,
                now_ms,
            )
        )
        after = available - payment.price_minor
    body = render(PaymentOutcome(payment.order_id, after, player.currency))
    yield from do(ops.SaveIdempotency(client.id, SCOPE_PAYMENT, payment.order_id, fp, body, now_ms))
    return body
