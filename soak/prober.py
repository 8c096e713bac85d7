"""The durability prober: calls whose acknowledgement the soak writes down, to check later.

It plays one seamless player of its own, one call at a time, during the whole traffic window:

* a *payment* (``payment/initiate``): repeated with the same ``cpOrderId`` until acknowledged;
  at the end the wallet must have the operation and the game must have received its signed
  callback (delivered by the workers through kills and the database restart);
* a *settled bet* (``withdraw`` + ``confirmWithdrawal``): at the end it must be confirmed;
* an *abandoned bet*: a ``withdraw`` the game then forgets (it "crashed"); the wallet's
  reconciler must ask the game, hear ``NOT_FOUND`` and roll the hold back.

Only acknowledged calls are written down, so every entry is a promise the wallet made. The
prober also keeps the balance the player must end with once every hold is resolved.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

from gamewallet.clients.seamless import (
    OtherError,
    OutcomeUnknown,
    SeamlessClient,
    WalletRefused,
)
from gamewallet.core.money import UNIT, format_minor

#: Pause between two probes, and between two sends of one call.
PROBE_PAUSE_S = 0.05
RETRY_PAUSE_S = 0.2
#: How long one call is repeated before the prober gives up on it (its outcome then unknown).
CALL_DEADLINE_S = 60.0
PRICE_MINOR = 199 * UNIT // 100  # 1.99
BET_MINOR = 1 * UNIT
T = TypeVar("T")


class GaveUp(Exception):
    """A call stayed unanswered for CALL_DEADLINE_S."""


@dataclass
class Prober:
    """One player's probes and what was acknowledged.

    ``balance_minor`` is what the player's available balance must be once every hold is
    resolved: the opening balance less the acknowledged payments and confirmed bets (failed
    and abandoned bets are rolled back, so they cost nothing in the end).
    """

    client: SeamlessClient
    token: str
    currency: str
    balance_minor: int
    tag: str
    payments: list[str] = field(default_factory=list)
    confirmed: list[str] = field(default_factory=list)
    abandoned: list[str] = field(default_factory=list)
    calls: int = 0
    retries: int = 0
    #: Set once an outcome could not be learned: the final balance is no longer known.
    lost_track: bool = False

    def _new_id(self, prefix: str) -> str:
        return f"{prefix}{self.tag}{secrets.token_hex(6)}"

    async def _repeat(self, what: str, call: Callable[[], Awaitable[T]]) -> T:
        """Send an idempotent call until it is answered (a 100 counts as no answer)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + CALL_DEADLINE_S
        while True:
            self.calls += 1
            try:
                return await call()
            except (OutcomeUnknown, OtherError):
                self.retries += 1
                if loop.time() > deadline:
                    raise GaveUp(what) from None
                await asyncio.sleep(RETRY_PAUSE_S)

    async def payment(self) -> None:
        """One payment, repeated with the same order id until acknowledged."""
        order = self._new_id("po")
        try:
            await self._repeat(
                "payment",
                lambda: self.client.initiate_payment(
                    self.token, order, "1", "soak.item", format_minor(PRICE_MINOR), "soak"
                ),
            )
        except GaveUp:
            self.lost_track = True
            return
        except WalletRefused:
            self.lost_track = True  # a refusal of a funded player is itself a finding
            raise
        self.payments.append(order)
        self.balance_minor -= PRICE_MINOR

    async def bet(self, *, abandon: bool) -> None:
        """A withdraw, then its confirm (or nothing at all when ``abandon``)."""
        tid = self._new_id("pb")
        amount = BET_MINOR
        self.calls += 1
        try:
            await self.client.withdraw(self.token, tid, amount, self.currency)
        except (OutcomeUnknown, WalletRefused):
            # The vendor's rule: a failed withdraw is rolled back (repeated until that works).
            try:
                await self._repeat(
                    "rollback", lambda: self.client.rollback_withdrawal(self.token, tid)
                )
            except GaveUp:
                self.lost_track = True
            return
        if abandon:
            self.abandoned.append(tid)  # the reconciler must give this hold back
            return
        try:
            await self._repeat(
                "confirm",
                lambda: self.client.confirm_withdrawal(self.token, tid, amount, self.currency),
            )
        except GaveUp:
            self.lost_track = True
            return
        self.confirmed.append(tid)
        self.balance_minor -= amount

    async def run(self, traffic_over: asyncio.Event) -> None:
        """Probe until the traffic window closes: payments, settled and abandoned bets."""
        turn = 0
        while not traffic_over.is_set():
            turn += 1
            if turn % 3 == 0:
                await self.payment()
            else:
                await self.bet(abandon=turn % 6 == 1)
            await asyncio.sleep(PROBE_PAUSE_S)
