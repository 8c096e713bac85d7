"""Game side of the seamless protocol: the durable settlement queue (protocols.md 1.6 and 4).

The game records every withdraw/deposit it opens (table ``game_settlements``) and its decision
to confirm or roll it back, each in one database transaction of the Store port, together with
an outbox message (topic ``settlement``) that a worker delivers on the vendor's retry schedule.
Nothing is ever "sent after commit": the decision and its delivery are one write.

Invariants:
- Each opened call gets exactly one decision, ever; a second, different one raises
  :class:`SettlementConflict`. :func:`decide` is a use-case fragment the game composes with its
  own writes (``yield from decide(...)`` inside its own use case).
- A failed or unanswered ``withdraw``/``deposit`` always ends in a rollback: :class:`GameWallet`
  records it in the same transaction that notes the failure, and a *guard* message written
  before the call is even sent rolls back any call the game has not decided on within
  ``decide_within_s`` (the game process died mid-round).
- Every wallet answer to a settlement is interpreted by one table, :data:`REFUSAL_TABLE`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, Final, Literal

from gamewallet.clients.seamless import (
    AuthFailed,
    OutcomeUnknown,
    QueryStatus,
    SeamlessClient,
    SeamlessError,
    TransactionResult,
    WalletRefused,
)
from gamewallet.service.common import Clock
from gamewallet.store import ops
from gamewallet.store.port import Store, UseCase, do
from gamewallet.store.records import OutboxRecord, SettlementRecord
from gamewallet.worker.runner import Dead, Done, Outcome, Retry

__all__ = [
    "DEFAULT_WALLET",
    "REFUSAL_TABLE",
    "TOPIC",
    "DuplicateSettlement",
    "GameWallet",
    "SettlementConflict",
    "SettlementDelivery",
    "SettlementError",
    "UnknownSettlement",
    "confirm",
    "decide",
    "final_status",
    "open_call",
    "rollback",
]

log = logging.getLogger(__name__)

#: Outbox topic of settlement messages.
TOPIC: Final = "settlement"
#: Name of the wallet connection when a game talks to one wallet only.
DEFAULT_WALLET: Final = "default"
#: Longest rollbackReason sent (the wallet's free-text limit).
REASON_MAX_CHARS: Final = 255

KIND_WITHDRAW: Final = "withdraw"
KIND_DEPOSIT: Final = "deposit"
CONFIRM: Final = "confirm"
ROLLBACK: Final = "rollback"
CONFIRMED: Final = "confirmed"
ROLLED_BACK: Final = "rolled_back"

#: What a settlement message is for: the game's decision, or the guard written before a call.
PURPOSE_DECISION: Final = "decision"
PURPOSE_GUARD: Final = "guard"

Answer = Literal["confirmed", "rolled_back", "dead", "retry"]

#: errorCode -> what it means (when confirming, when rolling back). "confirmed"/"rolled_back":
#: the wallet has finalized the operation that way, record it and stop; "dead": the same request
#: can never succeed, dead-letter it for a person to look at; "retry": try again on the schedule.
#: Codes not listed (and timeouts, 401, unexpected answers) are "retry".
REFUSAL_TABLE: Final[dict[int, tuple[Answer, Answer]]] = {
    100: ("retry", "retry"),  # other error: the wallet's own trouble, may pass
    101: ("dead", "dead"),  # invalid request: the same bytes will always be refused
    102: ("dead", "dead"),  # invalid token: no retry makes an unknown token known
    103: ("retry", "retry"),  # session expired: spec says settlements accept it; a stricter
    # wallet may still accept a retry, and the window bounds the cost
    104: ("retry", "retry"),  # player blocked: not expected on a settlement
    105: ("dead", "dead"),  # currency mismatch: permanent
    106: ("retry", "retry"),  # insufficient funds: not expected on a settlement
    107: ("dead", "dead"),  # not found: the wallet never saw the call we are settling
    108: ("rolled_back", "confirmed"),  # already finalized, the other way
    109: ("dead", "dead"),  # id reused with other content: our request differs for good
    110: ("rolled_back", "rolled_back"),  # already rolled back
    111: ("retry", "retry"),  # limit exceeded: not expected on a settlement
}


class SettlementError(Exception):
    """Base of the settlement queue's refusals."""


class DuplicateSettlement(SettlementError):
    """The id was already opened with this wallet (ids are never reused)."""


class UnknownSettlement(SettlementError):
    """No call with this id was opened with this wallet."""


class SettlementConflict(SettlementError):
    """The call already carries another decision (e.g. the guard rolled it back)."""

    def __init__(self, record: SettlementRecord, wanted: str) -> None:
        super().__init__(f"{record.ext_id}: decided {record.decision!r} already, cannot {wanted}")
        self.record = record


# --- use-case fragments ------------------------------------------------------------------


def open_call(
    wallet: str,
    kind: str,
    ext_id: str,
    token: str,
    amount_minor: int,
    currency: str,
    now_ms: int,
    decide_by_ms: int,
    detail: Mapping[str, Any] | None = None,
) -> UseCase[SettlementRecord]:
    """Record a withdraw/deposit about to be sent, and its guard (due at ``decide_by_ms``).

    Written *before* the call leaves, so that a game that dies mid-call still rolls it back.
    """
    assert kind in (KIND_WITHDRAW, KIND_DEPOSIT)
    assert amount_minor > 0
    record = yield from do(
        ops.InsertSettlement(
            wallet, ext_id, kind, token, amount_minor, currency, now_ms, dict(detail or {})
        )
    )
    if record is None:
        raise DuplicateSettlement(f"{ext_id} was already opened with wallet {wallet}")
    yield from do(
        ops.Enqueue(
            TOPIC,
            None,
            None,
            {"settlement_id": record.id, "purpose": PURPOSE_GUARD},
            decide_by_ms,
            now_ms,
        )
    )
    return record


def decide(
    wallet: str,
    ext_id: str,
    decision: str,
    now_ms: int,
    *,
    reason: str | None = None,
    detail: Mapping[str, Any] | None = None,
) -> UseCase[SettlementRecord]:
    """Record the game's decision about an opened call and queue its delivery, atomically.

    Compose it with the game's own writes in one use case. Repeating the same decision is a
    no-op (``detail`` is still merged); a different one raises :class:`SettlementConflict`.
    """
    assert decision in (CONFIRM, ROLLBACK)
    record = yield from do(ops.GetSettlement(wallet=wallet, ext_id=ext_id, lock=True))
    if record is None:
        raise UnknownSettlement(f"{ext_id} was never opened with wallet {wallet}")
    if record.decision is not None and record.decision != decision:
        raise SettlementConflict(record, decision)
    changes: dict[str, Any] = {"detail": dict(detail)} if detail else {}
    if record.decision is None:
        changes.update(decision=decision, decided_at_ms=now_ms)
        if decision == ROLLBACK:
            changes["reason"] = (reason or "rolled back by the game")[:REASON_MAX_CHARS]
        yield from do(
            ops.Enqueue(
                TOPIC,
                None,
                None,
                {"settlement_id": record.id, "purpose": PURPOSE_DECISION},
                now_ms,
                now_ms,
            )
        )
    if changes:
        record = yield from do(ops.UpdateSettlement(record.id, changes))
    return record


def confirm(
    wallet: str, ext_id: str, now_ms: int, *, detail: Mapping[str, Any] | None = None
) -> UseCase[SettlementRecord]:
    """:func:`decide` to confirm."""
    return (yield from decide(wallet, ext_id, CONFIRM, now_ms, detail=detail))


def rollback(
    wallet: str,
    ext_id: str,
    now_ms: int,
    *,
    reason: str,
    detail: Mapping[str, Any] | None = None,
) -> UseCase[SettlementRecord]:
    """:func:`decide` to roll back, with the reason sent as ``rollbackReason``."""
    return (yield from decide(wallet, ext_id, ROLLBACK, now_ms, reason=reason, detail=detail))


def final_status(wallet: str, kind: str, ext_id: str, now_ms: int) -> UseCase[QueryStatus]:
    """The answer to the wallet's ``queryWithdrawal`` / ``queryDeposit`` (spec 1.6).

    What the wallet finally answered wins, then the game's decision; an undecided call is
    decided now (rolled back) so that the answer is final and the queue agrees with it.
    An id never opened, or opened as the other kind, is NOT_FOUND.
    """
    record = yield from do(ops.GetSettlement(wallet=wallet, ext_id=ext_id, lock=True))
    if record is None or record.kind != kind:
        return "NOT_FOUND"
    if record.outcome is not None:
        return "CONFIRMED" if record.outcome == CONFIRMED else "ROLLED_BACK"
    if record.decision is None:
        record = yield from decide(
            wallet, ext_id, ROLLBACK, now_ms, reason="queried by the wallet before a decision"
        )
    return "CONFIRMED" if record.decision == CONFIRM else "ROLLED_BACK"


# --- the SDK -----------------------------------------------------------------------------


class GameWallet:
    """What a game backend uses to move a player's money through a seamless wallet.

    ``withdraw`` / ``deposit`` send the call once, after recording it (and its guard); on any
    failure they record a rollback in the same transaction and re-raise. ``confirm`` /
    ``rollback`` record the decision; a worker running :class:`SettlementDelivery` delivers it.
    """

    def __init__(
        self,
        store: Store,
        client: SeamlessClient,
        clock: Clock,
        *,
        decide_within_s: float,
        wallet: str = DEFAULT_WALLET,
    ) -> None:
        # The guard must not fire while the call it guards may still be in flight.
        assert decide_within_s > client.timeout_s, "decide_within_s must exceed the call timeout"
        self.store = store
        self.client = client
        self.clock = clock
        self.wallet = wallet
        self.decide_within_ms = int(decide_within_s * 1000)

    async def _open(
        self,
        kind: str,
        token: str,
        ext_id: str,
        amount_minor: int,
        currency: str,
        description: str | None,
        detail: Mapping[str, Any] | None,
    ) -> TransactionResult:
        now_ms = self.clock.now_ms()
        await self.store.run(
            open_call(
                self.wallet,
                kind,
                ext_id,
                token,
                amount_minor,
                currency,
                now_ms,
                now_ms + self.decide_within_ms,
                detail,
            )
        )
        send = self.client.withdraw if kind == KIND_WITHDRAW else self.client.deposit
        try:
            return await send(token, ext_id, amount_minor, currency, description)
        except SeamlessError as exc:
            # The vendor's rule: a failed or unanswered call is followed by its rollback.
            await self.store.run(
                decide(
                    self.wallet,
                    ext_id,
                    ROLLBACK,
                    self.clock.now_ms(),
                    reason=f"{kind} failed: {exc}",
                    detail={"failure": _failure(exc)},
                )
            )
            raise

    async def withdraw(
        self,
        token: str,
        ext_id: str,
        amount_minor: int,
        currency: str,
        *,
        description: str | None = None,
        detail: Mapping[str, Any] | None = None,
    ) -> TransactionResult:
        """Place a hold on the player's money (sent once); confirm or roll back afterwards."""
        return await self._open(
            KIND_WITHDRAW, token, ext_id, amount_minor, currency, description, detail
        )

    async def deposit(
        self,
        token: str,
        ext_id: str,
        amount_minor: int,
        currency: str,
        *,
        description: str | None = None,
        detail: Mapping[str, Any] | None = None,
    ) -> TransactionResult:
        """Record a pending credit for the player (sent once); confirm or roll back afterwards."""
        return await self._open(
            KIND_DEPOSIT, token, ext_id, amount_minor, currency, description, detail
        )

    async def confirm(
        self, ext_id: str, *, detail: Mapping[str, Any] | None = None
    ) -> SettlementRecord:
        """Record the decision to confirm (delivered by the worker)."""
        return await self.store.run(
            confirm(self.wallet, ext_id, self.clock.now_ms(), detail=detail)
        )

    async def rollback(
        self, ext_id: str, *, reason: str, detail: Mapping[str, Any] | None = None
    ) -> SettlementRecord:
        """Record the decision to roll back (delivered by the worker)."""
        return await self.store.run(
            rollback(self.wallet, ext_id, self.clock.now_ms(), reason=reason, detail=detail)
        )

    async def record(self, ext_id: str) -> SettlementRecord | None:
        """The game's record of a call, or None."""
        return await self.store.run(do(ops.GetSettlement(wallet=self.wallet, ext_id=ext_id)))


def _failure(exc: SeamlessError) -> dict[str, Any]:
    """A JSON-able description of a failed call, kept in the settlement's detail."""
    if isinstance(exc, WalletRefused):
        return {"errorCode": exc.code, "errorDescription": exc.description}
    if isinstance(exc, AuthFailed):
        return {"http": 401}
    if isinstance(exc, OutcomeUnknown):
        return {"unknown": exc.reason}
    return {"error": str(exc)}


# --- delivery ----------------------------------------------------------------------------


class SettlementDelivery:
    """The worker's handler of topic ``settlement``: one confirm*/rollback* call per attempt.

    ``clients`` maps wallet names to their :class:`SeamlessClient`. A guard message only turns
    an undecided call into a rollback decision (whose own message then delivers it); a decision
    message sends the call that matches the record's kind and decision, and the answer is read
    through :data:`REFUSAL_TABLE`.
    """

    def __init__(
        self, store: Store, clock: Clock, clients: Mapping[str, SeamlessClient], *, guard_s: float
    ) -> None:
        self.store = store
        self.clock = clock
        self.clients = dict(clients)
        self.guard_s = guard_s

    async def __call__(self, message: OutboxRecord) -> Outcome:
        settlement_id = message.payload.get("settlement_id")
        if not isinstance(settlement_id, int):
            return Dead("settlement message without a settlement_id")
        record = await self.store.run(do(ops.GetSettlement(settlement_id=settlement_id)))
        if record is None:
            return Dead(f"settlement {settlement_id} does not exist")
        if record.outcome is not None:
            return Done(f"already {record.outcome}")
        if message.payload.get("purpose") == PURPOSE_GUARD:
            return await self._guard(record)
        if record.decision is None:
            return Dead(f"settlement {settlement_id} has a delivery but no decision")
        client = self.clients.get(record.wallet)
        if client is None:
            # Configuration may arrive with a restart: keep the message on its schedule.
            return Retry(f"no wallet client configured for {record.wallet!r}")
        return await self._send(client, record)

    async def _guard(self, record: SettlementRecord) -> Outcome:
        if record.decision is not None:
            return Done("decided in time")
        try:
            await self.store.run(
                decide(
                    record.wallet,
                    record.ext_id,
                    ROLLBACK,
                    self.clock.now_ms(),
                    reason=f"no decision within {self.guard_s:g} s",
                )
            )
        except SettlementConflict:
            return Done("decided meanwhile")
        log.warning("%s %s undecided: rollback queued", record.kind, record.ext_id)
        return Done("undecided: rollback queued")

    async def _send(self, client: SeamlessClient, record: SettlementRecord) -> Outcome:
        confirming = record.decision == CONFIRM
        try:
            if record.kind == KIND_WITHDRAW and confirming:
                result = await client.confirm_withdrawal(
                    record.token, record.ext_id, record.amount_minor, record.currency
                )
            elif record.kind == KIND_WITHDRAW:
                result = await client.rollback_withdrawal(
                    record.token, record.ext_id, record.reason
                )
            elif confirming:
                result = await client.confirm_deposit(
                    record.token, record.ext_id, record.amount_minor, record.currency
                )
            else:
                result = await client.rollback_deposit(record.token, record.ext_id, record.reason)
        except WalletRefused as exc:
            answer = REFUSAL_TABLE.get(exc.code, ("retry", "retry"))[0 if confirming else 1]
            return await self._refused(record, exc, answer)
        except SeamlessError as exc:  # 401, timeouts, lost connections, odd answers
            return Retry(f"{type(exc).__name__}: {exc}")
        outcome = CONFIRMED if confirming else ROLLED_BACK
        await self._record(
            record,
            outcome,
            {"balance_minor": result.balance.amount_minor, "currency": result.balance.currency},
        )
        return Done(outcome)

    async def _refused(
        self, record: SettlementRecord, exc: WalletRefused, answer: Answer
    ) -> Outcome:
        refusal = {"errorCode": exc.code, "errorDescription": exc.description}
        if answer == "retry":
            return Retry(f"refused {exc.code}: {exc.description}")
        if answer == "dead":
            await self.store.run(
                do(ops.UpdateSettlement(record.id, {"detail": {"refused": refusal}}))
            )
            return Dead(f"refused {exc.code}: {exc.description}")
        # The wallet finalized it already: its answer is the truth, even against our decision.
        wanted = CONFIRMED if record.decision == CONFIRM else ROLLED_BACK
        if answer != wanted:
            log.error(
                "%s %s: decided %s but the wallet has it %s",
                record.kind,
                record.ext_id,
                record.decision,
                answer,
            )
        await self._record(record, answer, {"finalized_answer": refusal})
        return Done(answer)

    async def _record(self, record: SettlementRecord, outcome: str, detail: dict[str, Any]) -> None:
        await self.store.run(
            do(
                ops.UpdateSettlement(
                    record.id,
                    {"outcome": outcome, "settled_at_ms": self.clock.now_ms(), "detail": detail},
                )
            )
        )
