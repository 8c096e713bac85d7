"""The admin API's JSON shapes (msgspec structs, described in the app's OpenAPI) and the
functions that build them from store records.

Amounts are exact decimal strings with their currency; times are ISO 8601 UTC strings.
Secrets never appear: client secrets are stored hashed and not returned, JDB AES keys and
payment keys are masked, and outbox payload fields with secret-looking names are redacted.
A newly generated secret is returned once, in the response that created it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal

import msgspec

from gamewallet.admin.formats import iso, money
from gamewallet.observability import redact
from gamewallet.store.admin_ops import AdminEventRecord, BalanceTotal
from gamewallet.store.records import (
    ClientRecord,
    OperationRecord,
    OutboxRecord,
    PlayerRecord,
    ReconciliationRecord,
)

#: Client config keys whose values are secrets that must stay usable (shown masked).
MASKED_CONFIG = ("aes_key", "aes_iv", "payment_secret")


class ErrorDetail(msgspec.Struct):
    code: str
    message: str


class ErrorBody(msgspec.Struct):
    """Every refusal: ``{"error": {"code", "message"}}`` with a 4xx status."""

    error: ErrorDetail


class Me(msgspec.Struct):
    actor: str
    role: str
    via: str


class ClientOut(msgspec.Struct):
    id: int
    protocol: str
    name: str
    username: str | None
    currency: str | None
    creditLimit: str | None  # noqa: N815 - JSON field names are camelCase like the protocols
    shards: int
    disabled: bool
    createdAt: str | None  # noqa: N815
    config: dict[str, Any]


class ClientList(msgspec.Struct):
    items: list[ClientOut]


class ClientIn(msgspec.Struct, forbid_unknown_fields=True):
    """A new client; omitted secrets (password, JDB key and IV) are generated."""

    protocol: Literal["seamless", "hrg", "jdb"]
    name: str
    username: str | None = None
    secret: str | None = None
    currency: str | None = None
    creditLimit: str | None = None  # noqa: N815
    config: dict[str, Any] = msgspec.field(default_factory=dict)


class Credentials(msgspec.Struct, omit_defaults=True):
    """Secrets shown once: the Basic password / client secret, or JDB's AES key and IV."""

    secret: str | None = None
    aesKey: str | None = None  # noqa: N815
    aesIv: str | None = None  # noqa: N815


class ClientWithCredentials(msgspec.Struct):
    client: ClientOut
    credentials: Credentials


class PlayerOut(msgspec.Struct):
    id: int
    clientId: int  # noqa: N815
    externalId: str  # noqa: N815
    nickname: str
    currency: str
    balance: str  # available = posted - held
    posted: str
    held: str
    pendingCredit: str  # noqa: N815
    freeCredit: str  # noqa: N815
    blocked: bool
    locked: bool
    closed: bool
    inGame: str | None  # noqa: N815
    createdAt: str | None  # noqa: N815


class PlayerPage(msgspec.Struct):
    items: list[PlayerOut]
    total: int
    offset: int
    limit: int


class OperationOut(msgspec.Struct):
    id: int
    clientId: int  # noqa: N815
    ns: str
    extId: str  # noqa: N815
    kind: str
    playerId: int  # noqa: N815
    currency: str
    amount: str
    freeCredit: str  # noqa: N815
    state: str
    createdAt: str | None  # noqa: N815
    updatedAt: str | None  # noqa: N815
    detail: dict[str, Any]


class OperationPage(msgspec.Struct):
    items: list[OperationOut]
    total: int
    offset: int
    limit: int


class PlayerDetailOut(msgspec.Struct):
    player: PlayerOut
    client: ClientOut
    operations: OperationPage


class BlockIn(msgspec.Struct, forbid_unknown_fields=True):
    """Why staff blocked or unblocked a player (kept in the staff-action trail)."""

    reason: Annotated[str, msgspec.Meta(max_length=500)] = ""


class EndGameIn(msgspec.Struct, forbid_unknown_fields=True):
    """Why staff ended a player's game (kept in the staff-action trail)."""

    reason: Annotated[str, msgspec.Meta(max_length=500)] = ""


class AdjustIn(msgspec.Struct, forbid_unknown_fields=True):
    """A manual adjustment: signed decimal ``amount`` (positive credits the player)."""

    amount: str
    reason: str
    bucket: Literal["cash", "free"] = "cash"
    requestId: str | None = None  # noqa: N815 - repeats with the same id apply once


class OutboxOut(msgspec.Struct):
    id: int
    topic: str
    clientId: int | None  # noqa: N815
    operationId: int | None  # noqa: N815
    state: str
    attempts: int
    createdAt: str | None  # noqa: N815
    dueAt: str | None  # noqa: N815
    firstAttemptAt: str | None  # noqa: N815
    doneAt: str | None  # noqa: N815
    leaseOwner: str | None  # noqa: N815
    lastError: str | None  # noqa: N815
    payload: dict[str, Any]


class OutboxPage(msgspec.Struct):
    items: list[OutboxOut]
    total: int
    offset: int
    limit: int


class Retried(msgspec.Struct):
    retried: bool


class AuditOut(msgspec.Struct):
    ok: bool
    violations: list[str]


class EventOut(msgspec.Struct):
    id: int
    at: str | None
    actor: str
    action: str
    target: str
    detail: dict[str, Any]


class EventPage(msgspec.Struct):
    items: list[EventOut]
    total: int
    offset: int
    limit: int


class BalanceOut(msgspec.Struct):
    ownerKind: str  # noqa: N815
    clientId: int | None  # noqa: N815
    clientName: str | None  # noqa: N815
    currency: str
    bucket: str
    posted: str
    held: str
    pendingCredit: str  # noqa: N815
    accounts: int


class BalanceList(msgspec.Struct):
    items: list[BalanceOut]


class ReconciliationOut(msgspec.Struct):
    id: int
    clientId: int  # noqa: N815
    operationId: int  # noqa: N815
    extId: str  # noqa: N815
    kind: str
    askedAt: str | None  # noqa: N815
    answer: str | None
    action: str
    error: str | None


class ReconciliationPage(msgspec.Struct):
    items: list[ReconciliationOut]
    total: int
    offset: int
    limit: int


class CallsPoint(msgspec.Struct):
    minute: str | None
    protocol: str
    count: int


class RevenuePoint(msgspec.Struct):
    """Money posted on a client's players' cash accounts in one UTC day."""

    day: str | None
    clientId: int  # noqa: N815
    clientName: str  # noqa: N815
    currency: str
    playerDebits: str  # noqa: N815 - stakes (seamless) or transfers out (HRG, JDB)
    playerCredits: str  # noqa: N815 - payouts (seamless) or transfers in (HRG, JDB)
    ggr: str | None  # debits - credits for seamless clients; None for transfer clients


class OpenOut(msgspec.Struct):
    clientId: int  # noqa: N815
    currency: str
    state: str
    kind: str
    count: int
    amount: str
    freeCredit: str  # noqa: N815
    oldestAt: str | None  # noqa: N815


class DashboardOut(msgspec.Struct):
    at: str | None
    callsPerMinute: list[CallsPoint]  # noqa: N815
    revenuePerDay: list[RevenuePoint]  # noqa: N815
    open: list[OpenOut]
    outboxDepth: dict[str, int]  # noqa: N815


# --- converters ------------------------------------------------------------------------------


def mask(secret: str) -> str:
    """First and last two characters of a key; short keys not at all."""
    if len(secret) < 8:
        return "*" * len(secret)
    return secret[:2] + "*" * (len(secret) - 4) + secret[-2:]


def client_out(client: ClientRecord) -> ClientOut:
    """A client without its secrets."""
    config = dict(client.config)
    for key in MASKED_CONFIG:
        if key in config:
            config[key] = mask(str(config[key]))
    return ClientOut(
        id=client.id,
        protocol=client.protocol,
        name=client.name,
        username=client.username,
        currency=client.currency,
        creditLimit=None if client.credit_limit_minor is None else money(client.credit_limit_minor),
        shards=client.shards,
        disabled=client.disabled,
        createdAt=iso(client.created_at_ms),
        config=config,
    )


def player_out(player: PlayerRecord) -> PlayerOut:
    """A player with all of its balance figures."""
    cash = player.cash.balance
    return PlayerOut(
        id=player.id,
        clientId=player.client_id,
        externalId=player.external_id,
        nickname=player.nickname,
        currency=player.currency,
        balance=money(cash.available_minor),
        posted=money(cash.posted_minor),
        held=money(cash.held_minor),
        pendingCredit=money(cash.pending_credit_minor),
        freeCredit=money(player.free.balance.available_minor),
        blocked=player.blocked,
        locked=player.locked,
        closed=player.closed,
        inGame=player.game_type,
        createdAt=iso(player.created_at_ms),
    )


def operation_out(operation: OperationRecord) -> OperationOut:
    """An operation; its detail (reasons, actors, notes) with secret-named keys redacted."""
    return OperationOut(
        id=operation.id,
        clientId=operation.client_id,
        ns=operation.ns,
        extId=operation.ext_id,
        kind=operation.kind,
        playerId=operation.player_id,
        currency=operation.currency,
        amount=money(operation.amount_minor),
        freeCredit=money(operation.free_minor),
        state=operation.state.value,
        createdAt=iso(operation.created_at_ms),
        updatedAt=iso(operation.updated_at_ms),
        detail=scrubbed(operation.detail),
    )


def scrubbed(values: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``values`` with every secret-named key's value replaced."""
    return dict(redact(None, "", dict(values)))


def outbox_out(message: OutboxRecord) -> OutboxOut:
    """An outbox message with its attempts; payload secrets redacted."""
    return OutboxOut(
        id=message.id,
        topic=message.topic,
        clientId=message.client_id,
        operationId=message.operation_id,
        state=message.state,
        attempts=message.attempts,
        createdAt=iso(message.created_at_ms),
        dueAt=iso(message.due_at_ms),
        firstAttemptAt=iso(message.first_attempt_at_ms),
        doneAt=iso(message.done_at_ms),
        leaseOwner=message.lease_owner,
        lastError=message.last_error,
        payload=scrubbed(message.payload),
    )


def event_out(event: AdminEventRecord) -> EventOut:
    """One entry of the staff-action trail."""
    return EventOut(
        id=event.id,
        at=iso(event.at_ms),
        actor=event.actor,
        action=event.action,
        target=event.target,
        detail=scrubbed(event.detail),
    )


def balance_out(total: BalanceTotal, names: Mapping[int, str]) -> BalanceOut:
    """One group of account sums, with the client's name."""
    return BalanceOut(
        ownerKind=total.owner_kind,
        clientId=total.client_id,
        clientName=None if total.client_id is None else names.get(total.client_id),
        currency=total.currency,
        bucket=total.bucket,
        posted=money(total.posted_minor),
        held=money(total.held_minor),
        pendingCredit=money(total.pending_minor),
        accounts=total.accounts,
    )


def reconciliation_out(record: ReconciliationRecord) -> ReconciliationOut:
    """One reconciler decision."""
    return ReconciliationOut(
        id=record.id,
        clientId=record.client_id,
        operationId=record.operation_id,
        extId=record.ext_id,
        kind=record.kind,
        askedAt=iso(record.asked_at_ms),
        answer=record.answer,
        action=record.action,
        error=record.error,
    )
