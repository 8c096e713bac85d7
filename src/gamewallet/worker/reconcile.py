"""Wallet-side reconciler (protocols.md 1.6): settle holds and pending credits the game forgot.

A seamless hold (``withdraw``) or pending credit (``deposit``) still open ``reconcile_after_s``
after it was opened (default 49 h: past the game's 48 h retry window) is resolved by asking the
game's Integration API (``queryWithdrawal`` / ``queryDeposit``) and applying the answer through
the seamless service's own confirm/rollback use case, so the state table, the idempotency record
and the ledger move exactly as if the game had sent the call itself:

    answer        action     why
    CONFIRMED     confirm    the game settled it; its confirm never reached us
    ROLLED_BACK   rollback   the game cancelled it
    NOT_FOUND     rollback   the game never recorded it: no round owes this money
    (no answer)   none       asked again after ``reconcile_retry_s``

Every question is recorded in ``reconciliation_decisions`` (in the same database transaction as
the confirm/rollback it led to, or on its own when nothing was applied).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

import httpx

from gamewallet.clients.seamless import GameClient, QueryStatus, SeamlessError
from gamewallet.core.errors import WalletError
from gamewallet.core.states import Call, OpState
from gamewallet.protocols.seamless import schemas
from gamewallet.service import seamless
from gamewallet.service.common import NS_WIRE, Clock
from gamewallet.store import ops
from gamewallet.store.port import Store, UseCase, do
from gamewallet.store.records import ClientRecord, OperationRecord

__all__ = ["ACTIONS", "Reconciler"]

log = logging.getLogger(__name__)

#: The game's answer -> what the reconciler does (the table above).
ACTIONS: Final[dict[QueryStatus, Call]] = {
    "CONFIRMED": Call.CONFIRM,
    "ROLLED_BACK": Call.ROLLBACK,
    "NOT_FOUND": Call.ROLLBACK,
}
#: The seamless endpoint a reconciler decision stands in for, by (operation kind, call).
_ENDPOINTS: Final = {
    (seamless.KIND_WITHDRAW, Call.CONFIRM): "confirmWithdrawal",
    (seamless.KIND_WITHDRAW, Call.ROLLBACK): "rollbackWithdrawal",
    (seamless.KIND_DEPOSIT, Call.CONFIRM): "confirmDeposit",
    (seamless.KIND_DEPOSIT, Call.ROLLBACK): "rollbackDeposit",
}
_OPEN_STATES: Final = (OpState.HELD, OpState.PENDING)
_ERROR_MAX_CHARS: Final = 500


def _render(outcome: seamless.Outcome) -> bytes:
    """The response body the game would have got, so a later identical call replays it."""
    amount = schemas.wire_amount(outcome.balance_minor, outcome.currency)
    return schemas.encode(schemas.SeamlessTransactionResponse(outcome.ext_id, amount))


@dataclass(frozen=True, slots=True)
class _Asked:
    """One question and its answer (None: no usable answer). With an ``error`` nothing is
    applied, whatever the answer was."""

    asked_at_ms: int
    answer: QueryStatus | None
    error: str | None = None


def apply_answer(
    client: ClientRecord,
    operation_id: int,
    asked: _Asked,
    now_ms: int,
    retention_s: int,
) -> UseCase[str]:
    """Apply the game's answer to one operation and record the decision; returns the action.

    The player row is locked before the operation is re-read, so the check "still open" and
    the confirm/rollback see the same state. The call runs through
    :func:`gamewallet.service.seamless.settle_for_game`: the same use case as the game's own
    confirm/rollback, without a session token.
    """
    operation = yield from do(ops.GetOperation(operation_id=operation_id))
    assert operation is not None, "the reconciler only asks about existing operations"
    yield from do(ops.GetPlayer(player_id=operation.player_id, lock=True))
    operation = yield from do(ops.GetOperation(operation_id=operation_id, lock=True))
    assert operation is not None
    action = "none"
    error = asked.error
    if asked.answer is None or asked.error is not None:
        # Nothing to apply: push the operation back so the next question waits its turn.
        if operation.state in _OPEN_STATES:
            yield from do(
                ops.UpdateOperation(
                    operation.id,
                    operation.state,
                    now_ms,
                    {"reconcile_error": (error or "")[:_ERROR_MAX_CHARS]},
                )
            )
    elif operation.state not in _OPEN_STATES:
        error = f"settled meanwhile ({operation.state.value})"
    else:
        call = ACTIONS[asked.answer]
        confirming = call is Call.CONFIRM
        yield from seamless.settle_for_game(
            seamless.WalletCall(
                client=client,
                endpoint=_ENDPOINTS[(operation.kind, call)],
                kind=operation.kind,
                call=call,
                token="",
                ext_id=operation.ext_id,
                amount_minor=operation.amount_minor if confirming else None,
                currency=operation.currency if confirming else None,
                note=None if confirming else f"reconciled: the game answered {asked.answer}",
            ),
            operation.player_id,
            now_ms,
            retention_s,
            _render,
        )
        action = call.value
    yield from do(
        ops.InsertReconciliation(
            client.id,
            operation.id,
            operation.ext_id,
            operation.kind,
            asked.asked_at_ms,
            asked.answer,
            action,
            error,
        )
    )
    return action


class Reconciler:
    """A worker job: one bounded batch of old open operations per run.

    ``game_client`` builds the Integration API client of a seamless client from its config
    (``integration_url``, ``integration_username``, ``integration_password``); tests pass one
    with an in-process transport.
    """

    name = "reconcile"

    def __init__(
        self,
        store: Store,
        clock: Clock,
        *,
        after_s: int,
        retry_s: int,
        batch_size: int,
        retention_s: int,
        timeout_s: float,
        transport: httpx.AsyncBaseTransport | None = None,
        game_client: Callable[[ClientRecord], GameClient] | None = None,
    ) -> None:
        assert after_s >= 0, "an age"
        assert retry_s >= 0, "a delay"
        assert batch_size >= 1, "a batch asks about something"
        self.store = store
        self.clock = clock
        self.after_ms = after_s * 1000
        self.retry_ms = retry_s * 1000
        self.batch_size = batch_size
        self.retention_s = retention_s
        self.timeout_s = timeout_s
        self._transport = transport
        self._game_client = game_client

    def game_client_for(self, client: ClientRecord) -> GameClient:
        """The Integration API client of a seamless client (close it after use)."""
        if self._game_client is not None:
            return self._game_client(client)
        config = client.config
        url = config.get("integration_url")
        user = config.get("integration_username")
        password = config.get("integration_password")
        return GameClient(
            url if isinstance(url, str) else None,
            user if isinstance(user, str) else None,
            password if isinstance(password, str) else None,
            timeout_s=self.timeout_s,
            transport=self._transport,
        )

    async def run_once(self) -> int:
        """Ask about (and settle) at most ``batch_size`` old open operations; how many."""
        clients = await self.store.run(do(ops.ListClients(protocol=seamless.PROTOCOL)))
        budget = self.batch_size
        for client in clients:
            if budget <= 0:
                break
            if client.disabled or not client.config.get("integration_url"):
                continue
            budget -= await self._client_batch(client, budget)
        return self.batch_size - budget

    async def _client_batch(self, client: ClientRecord, limit: int) -> int:
        now_ms = self.clock.now_ms()
        page, _ = await self.store.run(
            do(
                ops.ListOperations(
                    client_id=client.id,
                    ns=NS_WIRE,
                    kinds=(seamless.KIND_WITHDRAW, seamless.KIND_DEPOSIT),
                    states=_OPEN_STATES,
                    until_ms=now_ms - self.after_ms,
                    updated_before_ms=now_ms - self.retry_ms + 1,
                    limit=limit,
                    oldest_first=True,
                )
            )
        )
        if not page:
            return 0
        async with self.game_client_for(client) as game:
            for operation in page:
                await self.resolve(client, operation, game)
        return len(page)

    async def resolve(
        self, client: ClientRecord, operation: OperationRecord, game: GameClient
    ) -> str:
        """Ask the game about ``operation`` and apply the answer; returns the action taken."""
        asked_at_ms = self.clock.now_ms()
        try:
            if operation.state is OpState.HELD:
                answer: QueryStatus = await game.query_withdrawal(operation.ext_id)
            else:
                answer = await game.query_deposit(operation.ext_id)
            asked = _Asked(asked_at_ms, answer)
        except SeamlessError as exc:
            log.warning("reconcile %s %s: no answer (%s)", operation.kind, operation.ext_id, exc)
            asked = _Asked(asked_at_ms, None, f"{type(exc).__name__}: {exc}")
        try:
            action = await self.store.run(
                apply_answer(client, operation.id, asked, self.clock.now_ms(), self.retention_s)
            )
        except WalletError as exc:
            # The state table refused (e.g. 108: the game settled it the other way meanwhile):
            # nothing moved; record why.
            failed = _Asked(asked_at_ms, asked.answer, f"refused: {exc.detail}")
            action = await self.store.run(
                apply_answer(client, operation.id, failed, self.clock.now_ms(), self.retention_s)
            )
        log.info(
            "reconciled %s %s: answer %s, action %s",
            operation.kind,
            operation.ext_id,
            asked.answer,
            action,
        )
        return action
