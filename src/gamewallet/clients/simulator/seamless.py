"""The seamless scenario: a game backend betting and paying out against a player's wallet.

A round is a bet (``withdraw``, then ``confirmWithdrawal`` or, when the round is cancelled,
``rollbackWithdrawal``), a win (``deposit`` then ``confirmDeposit`` or ``rollbackDeposit``),
or a balance read. The game plays by the vendor's rules (spec 1.6): a ``withdraw`` is sent
once and, if it fails in any way (refused, timed out, dropped), it is rolled back; confirms and
rollbacks are repeated until they succeed (a few quick retries here, not the 48-hour schedule).
A *reorder* round sends the rollback of a bet before its withdraw, as a game that timed out
early would: the late withdraw must be refused (110) and move nothing.

Sessions come from ``--tokens-file`` or, for our own server, are made directly in its database
(``--setup-db``) through the service layer. The model is the player's *available* balance: a
hold lowers it at once, a pending credit raises it only when confirmed.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

import httpx

from gamewallet.clients.seamless import (
    AlreadyRolledBack,
    InsufficientFunds,
    OtherError,
    OutcomeUnknown,
    SeamlessClient,
    SeamlessError,
    TransactionResult,
    WalletRefused,
)
from gamewallet.clients.simulator.common import PlayerModel, Report, SimConfig, Simulation
from gamewallet.clients.simulator.faults import FaultSlot, FaultyTransport, armed
from gamewallet.core.money import UNIT, format_minor
from gamewallet.service import admin
from gamewallet.service.common import SystemClock
from gamewallet.store import open_store, ops
from gamewallet.store.port import do

T = TypeVar("T")

#: Sends of one confirm / rollback / deposit before the simulator gives up on it.
RETRIES_MAX = 6
#: Pause between those sends (doubling).
RETRY_PAUSE_S = 0.02
#: The pause between repeats of a call answered ``100 Other error``.
OTHER_ERROR_PAUSE_S = 0.25
#: Life of the sessions the simulator opens through ``--setup-db``.
SESSION_TTL_S = 24 * 3600


class SetupError(Exception):
    """The scenario could not get its players' sessions."""


class Unresolved(Exception):
    """A call that must eventually succeed did not, within the retries."""


async def setup_players(
    db_url: str, username: str, count: int, tag: str, currency: str, seed: str
) -> list[tuple[str, str, int]]:
    """Create ``count`` funded players and sessions of the seamless client whose Basic user is
    ``username``, directly in our database; returns (player id, token, balance) each."""
    import random

    rng = random.Random(seed)  # noqa: S311 - opening balances of test players
    store = open_store(db_url, pool_size=1)
    await store.start()
    try:
        clients = await store.run(do(ops.ListClients(protocol="seamless")))
        matches = [c for c in clients if c.username == username]
        if len(matches) != 1:
            raise SetupError(
                f"no single seamless client with username {username!r} in the database"
            )
        client = matches[0]
        now_ms = SystemClock().now_ms()
        made = []
        for index in range(count):
            player_id = f"sim-{tag}-{index:04d}"
            balance = rng.randint(100, 1000) * UNIT + rng.randint(0, 9999)
            await store.run(
                admin.create_player(client, player_id, currency, player_id, balance, now_ms)
            )
            session, _ = await store.run(
                admin.open_session(client, player_id, SESSION_TTL_S, now_ms)
            )
            made.append((player_id, session.token, balance))
        return made
    finally:
        await store.close()


class SeamlessSimulation(Simulation):
    """A game backend and its players' sessions."""

    def __init__(
        self,
        config: SimConfig,
        report: Report,
        inner: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        super().__init__(config, report)
        creds = config.credentials
        if not (creds.username and creds.password):
            raise SetupError("seamless needs --username and --password")
        if not config.tokens and not config.setup_db:
            raise SetupError("seamless needs sessions: --tokens-file or --setup-db")
        self.transport = FaultyTransport(config.url, inner, stats=report.wire)
        self.client = SeamlessClient(
            config.url,
            creds.username,
            creds.password,
            timeout_s=config.timeout_s,
            transport=self.transport,
        )
        self.players: list[PlayerModel] = []

    async def run(self) -> None:
        """Set up, play every player's rounds, compare every balance."""
        try:
            self.players = await self.setup()
            gate = asyncio.Semaphore(self.config.concurrency)

            async def play(player: PlayerModel) -> None:
                async with gate:
                    for _ in range(self.config.rounds):
                        await self.round(player)

            await asyncio.gather(*(play(p) for p in self.players))
            await self.final_check()
        finally:
            await self.client.aclose()

    async def setup(self) -> list[PlayerModel]:
        """Sessions from the tokens given, or made in our database; balances read back."""
        config = self.config
        if config.setup_db:
            assert config.credentials.username is not None
            made = await setup_players(
                config.setup_db,
                config.credentials.username,
                config.players,
                self.tag,
                config.currency,
                f"{self.seed}:setup",
            )
            tokens = [token for _, token, _ in made]
        else:
            tokens = list(config.tokens[: config.players])
            if len(tokens) < config.players:
                raise SetupError(f"{config.players} players need as many tokens")
        players = []
        for index, token in enumerate(tokens):
            try:
                session = await self.client.verify_session(token)
            except SeamlessError as exc:
                raise SetupError(f"token #{index + 1} does not verify: {exc}") from exc
            players.append(
                PlayerModel(
                    index,
                    session.player_id,
                    self.player_rng(index),
                    session.balance.amount_minor,
                    token=token,
                    currency=session.currency,
                )
            )
        return players

    # --- rounds ------------------------------------------------------------------------------

    async def round(self, player: PlayerModel) -> None:
        """One round of one player."""
        rng = player.rng
        self.report.operations += 1
        if self.wants_reorder(rng):
            await self.rollback_before_withdraw(player)
            return
        pick = rng.random()
        try:
            if pick < 0.45:
                await self.bet(player)
            elif pick < 0.80:
                await self.win(player)
            else:
                await self.check(player)
        except Unresolved as exc:
            self.report.unresolved += 1
            player.unknown = True
            self.report.other_refusals[f"unresolved {exc}"] += 1

    def new_id(self) -> str:
        """A fresh ``mmTransactionId``."""
        return f"sim{self.tag}{secrets.token_hex(8)}"

    async def bet(self, player: PlayerModel) -> None:
        """withdraw, then confirm (most rounds) or roll back; a failed withdraw is rolled back."""
        rng = player.rng
        over = rng.random() < 0.1 or player.cash_minor == 0
        if over:
            amount = player.cash_minor + self.amount(rng, 1, 50 * UNIT, 1)
        else:
            amount = self.amount(rng, 1, player.cash_minor, rng.choice([1, 100, UNIT]))
            amount = min(max(amount, 1), player.cash_minor)
        tid = self.new_id()
        slot = self.pick_fault(rng)
        try:
            with armed(slot):
                result = await self.client.withdraw(player.token, tid, amount, player.currency)
        except OutcomeUnknown:
            self.report.recoveries += 1
            await self.settle(player, "rollbackWithdrawal", tid, amount, applied=0)
            return
        except WalletRefused as refused:
            if isinstance(refused, InsufficientFunds) and (over or not player.known):
                self.report.refusals += 1
            elif isinstance(refused, InsufficientFunds):
                self.mismatch(
                    player,
                    f"withdraw {format_minor(amount)} refused (106) with "
                    f"{format_minor(player.cash_minor)} available",
                )
            else:
                self.report.other_refusals[str(refused.code)] += 1
            await self.settle(player, "rollbackWithdrawal", tid, amount, applied=0)
            return
        self.compare_dup(player, slot, "withdraw")
        if over:
            self.mismatch(player, f"withdraw {format_minor(amount)} beyond the balance succeeded")
        player.cash_minor -= amount
        self.compare(
            player, f"balance after withdraw {tid}", result.balance.amount_minor, player.cash_minor
        )
        if rng.random() < 0.85:
            await self.settle(player, "confirmWithdrawal", tid, amount, applied=0)
        else:
            await self.settle(player, "rollbackWithdrawal", tid, amount, applied=amount)

    async def win(self, player: PlayerModel) -> None:
        """deposit (repeated until answered), then confirm (most rounds) or roll back."""
        rng = player.rng
        amount = self.amount(rng, 1, 300 * UNIT, rng.choice([1, 100, UNIT]))
        tid = self.new_id()
        slot = self.pick_fault(rng)
        try:
            result = await self.until_answered(
                lambda: self.client.deposit(player.token, tid, amount, player.currency), slot
            )
        except WalletRefused as refused:
            self.report.other_refusals[str(refused.code)] += 1
            return
        self.compare_dup(player, slot, "deposit")
        # A pending credit is not spendable: the available balance must not move yet.
        self.compare(
            player, f"balance after deposit {tid}", result.balance.amount_minor, player.cash_minor
        )
        if rng.random() < 0.9:
            await self.settle(player, "confirmDeposit", tid, amount, applied=amount)
        else:
            await self.settle(player, "rollbackDeposit", tid, amount, applied=0)

    async def check(self, player: PlayerModel) -> None:
        """getBalance (or verifySession), possibly faulted, compared with the model."""
        slot = self.pick_fault(player.rng)
        if player.rng.random() < 0.5:
            balance = await self.until_answered(lambda: self.client.get_balance(player.token), slot)
            minor = balance.amount_minor
        else:
            session = await self.until_answered(
                lambda: self.client.verify_session(player.token), slot
            )
            minor = session.balance.amount_minor
        self.compare_dup(player, slot, "balance read")
        self.compare(player, "balance", minor, player.cash_minor)

    async def rollback_before_withdraw(self, player: PlayerModel) -> None:
        """The rollback of a bet arrives before the bet: the bet must then be refused (110)."""
        tid = self.new_id()
        amount = max(1, min(player.cash_minor, self.amount(player.rng, 1, 20 * UNIT, 1)))
        await self.settle(player, "rollbackWithdrawal", tid, amount, applied=0)
        try:
            result = await self.client.withdraw(player.token, tid, amount, player.currency)
        except AlreadyRolledBack:
            self.report.refusals += 1
            return
        except OutcomeUnknown:
            self.report.recoveries += 1
            await self.settle(player, "rollbackWithdrawal", tid, amount, applied=0)
            return
        except WalletRefused as refused:
            self.report.other_refusals[str(refused.code)] += 1
            return
        self.mismatch(player, f"withdraw {tid} after its rollback succeeded")
        player.cash_minor = result.balance.amount_minor  # follow the server from here on

    # --- helpers -----------------------------------------------------------------------------

    async def settle(
        self, player: PlayerModel, endpoint: str, tid: str, amount: int, *, applied: int
    ) -> None:
        """Send a confirm or rollback until it succeeds (the first send may be faulted);
        ``applied`` is what the model's available balance gains when it does."""
        slot = self.pick_fault(player.rng)
        token, currency = player.token, player.currency
        calls: dict[str, Callable[[], Awaitable[TransactionResult]]] = {
            "confirmWithdrawal": lambda: self.client.confirm_withdrawal(
                token, tid, amount, currency
            ),
            "rollbackWithdrawal": lambda: self.client.rollback_withdrawal(
                token, tid, "round cancelled"
            ),
            "confirmDeposit": lambda: self.client.confirm_deposit(token, tid, amount, currency),
            "rollbackDeposit": lambda: self.client.rollback_deposit(token, tid, "win cancelled"),
        }
        try:
            result = await self.until_answered(calls[endpoint], slot)
        except WalletRefused as refused:
            self.mismatch(player, f"{endpoint} {tid} refused: {refused}")
            return
        self.compare_dup(player, slot, endpoint)
        player.cash_minor += applied
        self.compare(
            player,
            f"balance after {endpoint} {tid}",
            result.balance.amount_minor,
            player.cash_minor,
        )

    async def until_answered(self, call: Callable[[], Awaitable[T]], slot: FaultSlot | None) -> T:
        """Repeat an idempotent call (same id, same content) until it is answered.

        Two answers mean "no outcome yet", not a refusal: a lost answer (``OutcomeUnknown``,
        retried up to ``RETRIES_MAX`` times with a growing pause) and ``100 Other error`` (the
        wallet could not decide, e.g. while its database restarts; retried for
        ``config.other_error_retry_s``, as a game keeps retrying a confirm or rollback on its
        schedule). Every other refusal is raised. Only the first send carries the fault."""
        loop = asyncio.get_running_loop()
        other_error_deadline = loop.time() + self.config.other_error_retry_s
        pause, lost = RETRY_PAUSE_S, 0
        first = True
        while True:
            try:
                with armed(slot if first else None):
                    return await call()
            except OutcomeUnknown:
                if lost == 0:
                    self.report.recoveries += 1
                lost += 1
                if lost >= RETRIES_MAX:
                    raise Unresolved("a call stayed unanswered") from None
                await asyncio.sleep(pause)
                pause *= 2
            except OtherError:
                if loop.time() >= other_error_deadline:
                    raise
                self.report.other_error_retries += 1
                await asyncio.sleep(OTHER_ERROR_PAUSE_S)
            first = False

    async def final_check(self) -> None:
        """Every player's available balance, as the wallet reports it, against the model."""
        for player in self.players:
            token = player.token
            try:
                balance = await self.until_answered(
                    lambda: self.client.get_balance(token),  # noqa: B023 - awaited at once
                    None,
                )
            except (SeamlessError, Unresolved) as exc:
                self.mismatch(player, f"final balance unreadable: {exc}")
                continue
            self.compare(player, "final balance", balance.amount_minor, player.cash_minor)


def tokens_from(lines: Sequence[str]) -> tuple[str, ...]:
    """Session tokens from a file's lines: one per line; blank lines and ``#`` comments skipped."""
    return tuple(
        line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")
    )
