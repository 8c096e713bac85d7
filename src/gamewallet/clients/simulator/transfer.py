"""The HRG and JDB scenarios: an operator moving money in and out of its players' wallets.

Each player plays ``rounds`` rounds, one at a time; players run concurrently. A round is a
deposit, a withdrawal (sometimes more than the balance: the server must refuse it), a check of
the balance, a cash-out of everything, and for HRG free-credit moves, for JDB a game session
during which a withdrawal must be refused (6901). Transfers go through
:class:`~gamewallet.clients.transfers.TransferBook`, so every dropped, duplicated or timed-out
call is recovered the way an operator would: by a lookup or a re-send of the same id. A
*reorder* round sends two withdrawals of one player at once that cannot both fit its balance:
exactly one must succeed.

Invariant checked: the model changes only when a transfer is known to have succeeded, and then
by exactly what the server reported; every balance the server shows must equal the model's.
"""

from __future__ import annotations

import asyncio
import random
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Sequence

import httpx

from gamewallet.clients.hrg import HrgClient, HrgClientError
from gamewallet.clients.jdb import JdbClient, JdbClientError
from gamewallet.clients.simulator.common import PlayerModel, Report, SimConfig, Simulation
from gamewallet.clients.simulator.faults import FaultSlot, FaultyTransport, armed
from gamewallet.clients.transfers import (
    HrgGateway,
    JdbGateway,
    TransferBook,
    TransferFailed,
    TransferGateway,
    TransferOutcomeUnknown,
    TransferPolicy,
)
from gamewallet.core.money import UNIT, format_minor
from gamewallet.service.common import SystemClock
from gamewallet.store import open_store
from gamewallet.store.port import Store
from gamewallet.store.transfer_ops import OperatorTransferRecord

#: Recovery bounds of the simulator's transfers: quick pauses, a few attempts.
POLICY = TransferPolicy(attempts_max=6, lookups_max=12, backoff_s=0.02, backoff_max_s=0.5)
#: How many read attempts a balance check makes (a faulted read is simply asked again).
READ_ATTEMPTS = 4


class SetupError(Exception):
    """The scenario could not create its players."""


class TransferSimulation(Simulation, ABC):
    """What HRG and JDB share; subclasses supply the protocol's calls and its codes."""

    #: Status codes meaning "not enough money" (a refusal the model can predict).
    short_codes: frozenset[str]
    #: Smallest amount step the protocol allows (4 or 3 decimal places).
    step_minor: int
    #: Whether a repeated transfer is answered byte for byte as the first (HRG replays;
    #: JDB answers 6005 by design).
    replays: bool
    gateway: TransferGateway

    def __init__(
        self,
        config: SimConfig,
        report: Report,
        inner: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        super().__init__(config, report)
        self.transport = FaultyTransport(config.url, inner, stats=report.wire)
        self.store: Store = open_store(config.records_db)
        self.clock = SystemClock()
        self._book: TransferBook | None = None
        self.players: list[PlayerModel] = []

    @property
    def book(self) -> TransferBook:
        """The transfer book (built once the records store is open)."""
        assert self._book is not None, "the scenario has not started"
        return self._book

    async def run(self) -> None:
        """Set up, play every player's rounds, settle leftovers, compare everything."""
        await self.store.start()
        try:
            self._book = TransferBook(self.store, self.gateway, clock=self.clock, policy=POLICY)
            self.players = await self.setup()
            await self.play_all()
            await self.settle_leftovers()
            await self.final_check()
        finally:
            await self.close()
            await self.store.close()

    @abstractmethod
    async def setup(self) -> list[PlayerModel]:
        """Create the players through the API; their opening balances go in the model."""

    @abstractmethod
    async def close(self) -> None:
        """Close the protocol client."""

    @abstractmethod
    async def server_balances(self, players: Sequence[PlayerModel]) -> dict[str, tuple[int, int]]:
        """(cash, free credit) per player key, as the server reports them now."""

    async def special_round(self, player: PlayerModel) -> bool:
        """A protocol-specific round; False if it did not apply (then a normal one is played)."""
        return False

    # --- playing ---------------------------------------------------------------------------

    async def play_all(self) -> None:
        """Every player's rounds; at most ``concurrency`` players at a time."""
        gate = asyncio.Semaphore(self.config.concurrency)

        async def play(player: PlayerModel) -> None:
            async with gate:
                for _ in range(self.config.rounds):
                    await self.round(player)

        await asyncio.gather(*(play(p) for p in self.players))

    async def round(self, player: PlayerModel) -> None:
        """One round of one player."""
        rng = player.rng
        self.report.operations += 1
        if self.wants_reorder(rng) and player.cash_minor >= 2 * self.step_minor:
            await self.conflicting_withdrawals(player)
            return
        pick = rng.random()
        if pick < 0.05 and await self.special_round(player):
            return
        if pick < 0.40:
            await self.deposit(player)
        elif pick < 0.80:
            await self.withdraw(player)
        elif pick < 0.93:
            await self.check(player)
        else:
            await self.withdraw_everything(player)

    def random_amount(self, rng: random.Random, high_minor: int) -> int:
        """A positive amount up to ``high_minor`` with a random number of decimal places."""
        step = rng.choice([self.step_minor, 100, UNIT])
        return self.amount(rng, max(step, self.step_minor), max(high_minor, step), step)

    async def deposit(self, player: PlayerModel, *, free_minor: int = 0) -> None:
        """A deposit of a random amount; the server must accept it."""
        amount = self.random_amount(player.rng, 500 * UNIT)
        slot = self.pick_fault(player.rng)
        await self.transfer(
            player,
            lambda: self.book.deposit(player.key, amount, free_minor=free_minor),
            slot,
            should_refuse=False,
        )

    async def withdraw(self, player: PlayerModel, *, free_minor: int = 0) -> None:
        """A withdrawal within the balance, or (one time in ten) beyond it."""
        rng = player.rng
        over = rng.random() < 0.1 or player.cash_minor < self.step_minor
        if over:
            amount = player.cash_minor + self.random_amount(rng, 100 * UNIT)
        else:
            amount = self.random_amount(rng, player.cash_minor)
            amount = min(amount, player.cash_minor - player.cash_minor % self.step_minor)
        await self.transfer(
            player,
            lambda: self.book.withdraw(player.key, amount, free_minor=free_minor),
            self.pick_fault(rng),
            should_refuse=over or free_minor > player.free_minor,
        )

    async def withdraw_everything(self, player: PlayerModel) -> None:
        """A cash-out of the whole balance."""
        if player.cash_minor == 0 and player.free_minor == 0:
            await self.deposit(player)
            return
        await self.transfer(
            player,
            lambda: self.book.withdraw(player.key, all_out=True),
            self.pick_fault(player.rng),
            should_refuse=False,
        )

    async def check(self, player: PlayerModel) -> None:
        """Read the balance (the read may be faulted too) and compare it with the model."""
        slot = self.pick_fault(player.rng)
        for attempt in range(READ_ATTEMPTS):
            with armed(slot if attempt == 0 else None):
                try:
                    balances = await self.server_balances([player])
                except (HrgClientError, JdbClientError):
                    self.report.recoveries += 1
                    continue
            cash, free = balances.get(player.key, (None, None))
            if cash is None or free is None:
                self.mismatch(player, "missing from the server's balances")
                return
            self.compare(player, "balance", cash, player.cash_minor)
            self.compare(player, "free credit", free, player.free_minor)
            return
        self.report.other_refusals["balance read failed"] += 1

    async def conflicting_withdrawals(self, player: PlayerModel) -> None:
        """Two withdrawals at once, each within the balance, together beyond it."""
        rng = player.rng
        cash = player.cash_minor
        half = cash // 2 // self.step_minor * self.step_minor
        amounts = [
            self.amount(rng, half + self.step_minor, cash, self.step_minor) for _ in range(2)
        ]
        outcomes = await asyncio.gather(
            *(self.book.withdraw(player.key, a) for a in amounts), return_exceptions=True
        )
        succeeded = [o for o in outcomes if not isinstance(o, BaseException)]
        for outcome in outcomes:
            if isinstance(outcome, TransferFailed):
                self.refused(player, outcome.record, should_refuse=True)
            elif isinstance(outcome, TransferOutcomeUnknown):
                player.in_doubt += 1
            elif isinstance(outcome, BaseException):
                raise outcome
        for record in succeeded:
            self.apply(player, record, check=len(succeeded) == 1)
        if len(succeeded) > 1:
            self.mismatch(
                player,
                f"both of two conflicting withdrawals ({format_minor(amounts[0])} and "
                f"{format_minor(amounts[1])} of {format_minor(cash)}) succeeded",
            )

    # --- outcomes ------------------------------------------------------------------------

    async def transfer(
        self,
        player: PlayerModel,
        call: Callable[[], Awaitable[OperatorTransferRecord]],
        slot: FaultSlot | None,
        *,
        should_refuse: bool,
    ) -> OperatorTransferRecord | None:
        """Run one transfer (the first request faulted as ``slot`` says) and book its outcome."""
        with armed(slot):
            try:
                record = await call()
            except TransferFailed as failed:
                self.refused(player, failed.record, should_refuse=should_refuse)
                return None
            except TransferOutcomeUnknown:
                # Left pending: settle_leftovers() learns the outcome at the end.
                player.in_doubt += 1
                return None
        if self.replays:
            self.compare_dup(player, slot, f"{record.kind} {record.transfer_id}")
        if should_refuse:
            self.mismatch(
                player,
                f"{record.kind} {record.transfer_id} succeeded although the model says it "
                "exceeds the balance",
            )
        self.apply(player, record, check=True)
        return record

    def refused(
        self, player: PlayerModel, record: OperatorTransferRecord, *, should_refuse: bool
    ) -> None:
        """Book a refusal: predicted ones are counted, a "not enough money" the model did not
        predict is a mismatch, other codes are reported."""
        code = (record.last_error or "?").split(" ", 1)[0]
        if code in self.short_codes:
            if should_refuse or not player.known:
                self.report.refusals += 1
            else:
                self.mismatch(
                    player,
                    f"{record.kind} {record.transfer_id} refused with {code} although the "
                    f"model has {format_minor(player.cash_minor)}",
                )
        else:
            self.report.other_refusals[code] += 1

    def apply(self, player: PlayerModel, record: OperatorTransferRecord, *, check: bool) -> None:
        """Move the model by what the server reported for a succeeded transfer."""
        result = record.result or {}
        if record.attempts > 1 or result.get("source") == "lookup" or record.last_error:
            self.report.recoveries += 1
        cash = result.get("amount_minor")
        free = result.get("free_minor")
        if cash is None:  # HRG "withdraw everything" reports only the total
            total = result.get("total_minor")
            expected = -(player.cash_minor + player.free_minor)
            if total != expected and player.known:
                self.mismatch(
                    player,
                    f"withdraw-all {record.transfer_id} moved {total}, model expected {expected}",
                )
            player.cash_minor, player.free_minor = 0, 0
        else:
            if record.amount_minor is not None and cash != record.amount_minor:
                self.mismatch(
                    player,
                    f"{record.transfer_id} moved {format_minor(int(cash))}, "
                    f"asked {format_minor(record.amount_minor)}",
                )
            player.cash_minor += int(cash)
            player.free_minor += int(free or 0)
        if check and "balance_minor" in result:
            self.compare(
                player,
                f"balance after {record.transfer_id}",
                result["balance_minor"],
                player.cash_minor,
            )
        if check and "free_balance_minor" in result:
            self.compare(
                player,
                f"free credit after {record.transfer_id}",
                result["free_balance_minor"],
                player.free_minor,
            )

    async def settle_leftovers(self) -> None:
        """Learn the outcome of every transfer left pending (re-sending those never seen)."""
        by_key = {p.key: p for p in self.players}
        report = await self.book.resolve_pending(resend=True, limit=100_000)
        for record in report.records:
            player = by_key.get(record.user_id)
            if player is None:  # left over by an earlier run sharing the records database
                continue
            player.in_doubt -= 1
            if record.state == "succeeded":
                self.apply(player, record, check=False)
            elif record.state == "failed":
                self.refused(player, record, should_refuse=True)
            else:
                self.report.unresolved += 1
                player.unknown = True

    async def final_check(self) -> None:
        """Compare every player's final balances with the model."""
        for start in range(0, len(self.players), 100):
            chunk = self.players[start : start + 100]
            balances = await self.server_balances(chunk)
            for player in chunk:
                cash, free = balances.get(player.key, (None, None))
                if cash is None or free is None:
                    self.mismatch(player, "missing from the final balances")
                    continue
                self.compare(player, "final balance", cash, player.cash_minor)
                self.compare(player, "final free credit", free, player.free_minor)


class HrgSimulation(TransferSimulation):
    """An HRG agent and its players."""

    short_codes = frozenset({"4001", "4002"})
    step_minor = 1  # 4 decimal places
    replays = True

    def __init__(
        self,
        config: SimConfig,
        report: Report,
        inner: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        super().__init__(config, report, inner)
        creds = config.credentials
        if not (creds.client_id and creds.client_secret and creds.agent):
            raise SetupError("HRG needs --client-id, --client-secret and --agent")
        self.client = HrgClient(
            config.url,
            client_id=creds.client_id,
            client_secret=creds.client_secret,
            agent_id=creds.agent,
            timeout_s=config.timeout_s,
            transport=self.transport,
        )
        self.gateway = HrgGateway(self.client)

    async def close(self) -> None:
        """Close the HTTP client."""
        await self.client.aclose()

    async def setup(self) -> list[PlayerModel]:
        """Create the players with an opening balance and some free credit."""
        players = []
        for index in range(self.config.players):
            rng = self.player_rng(index)
            key = f"sim{self.tag}{index:04d}"
            cash = self.amount(rng, 100 * UNIT, 1000 * UNIT, 1)
            free = self.amount(rng, 0, 50 * UNIT, 100)
            try:
                user = await self.client.create_user(
                    key, balance_minor=cash, free_credit_minor=free
                )
            except HrgClientError as exc:
                raise SetupError(f"cannot create HRG user {key}: {exc}") from exc
            player = PlayerModel(index, key, rng, user.balance_minor, user.free_credit_minor)
            self.compare(player, "opening balance", user.balance_minor, cash)
            self.compare(player, "opening free credit", user.free_credit_minor, free)
            players.append(player)
        return players

    async def special_round(self, player: PlayerModel) -> bool:
        """Free credit: a deposit with some, or a withdrawal of some (beyond it at times)."""
        rng = player.rng
        if rng.random() < 0.5 or player.free_minor == 0:
            await self.deposit(player, free_minor=self.amount(rng, 1, 20 * UNIT, 1))
            return True
        free = self.amount(rng, 1, player.free_minor, 1)
        if rng.random() < 0.2:
            free = player.free_minor + 1
        amount = 0 if rng.random() < 0.5 else min(player.cash_minor, 1)
        await self.transfer(
            player,
            lambda: self.book.withdraw(player.key, amount or None, free_minor=free),
            self.pick_fault(rng),
            should_refuse=free > player.free_minor,
        )
        return True

    async def server_balances(self, players: Sequence[PlayerModel]) -> dict[str, tuple[int, int]]:
        """``get_balance`` of up to 100 players."""
        page = await self.client.get_balance([p.key for p in players])
        return {row.user_id: (row.balance_minor, row.free_credit_minor) for row in page.items}


class JdbSimulation(TransferSimulation):
    """A JDB domain and its players."""

    short_codes = frozenset({"6001", "6002"})
    step_minor = 10  # 3 decimal places
    replays = False

    def __init__(
        self,
        config: SimConfig,
        report: Report,
        inner: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        super().__init__(config, report, inner)
        creds = config.credentials
        if not (creds.dc and creds.parent and creds.key and creds.iv):
            raise SetupError("JDB needs --dc, --parent, --key and --iv")
        self.client = JdbClient(
            config.url,
            dc=creds.dc,
            parent=creds.parent,
            key=creds.key,
            iv=creds.iv,
            timeout_s=config.timeout_s,
            transport=self.transport,
        )
        self.gateway = JdbGateway(self.client)

    async def close(self) -> None:
        """Close the HTTP client."""
        await self.client.aclose()

    async def setup(self) -> list[PlayerModel]:
        """Create the players (action 12) with an allocated credit, read back by action 68."""
        players = []
        for index in range(self.config.players):
            rng = self.player_rng(index)
            key = f"sim{self.tag}{index:04d}"
            credit = self.amount(rng, 100 * UNIT, 1000 * UNIT, self.step_minor)
            try:
                await self.client.create_player(key, key, credit_allocated_minor=credit)
            except JdbClientError as exc:
                raise SetupError(f"cannot create JDB player {key}: {exc}") from exc
            players.append(PlayerModel(index, key, rng, credit))
        balances = await self.server_balances(players)
        for player in players:
            cash, _ = balances.get(player.key, (0, 0))
            self.compare(player, "opening balance", cash, player.cash_minor)
        return players

    async def special_round(self, player: PlayerModel) -> bool:
        """A game session: launched (action 11), a withdrawal must be refused with 6901,
        a deposit still works, then the player is kicked out (action 17)."""
        if player.cash_minor < self.step_minor:
            return False
        try:
            await self.client.launch_url(player.key, g_type="0", m_type="8001")
        except JdbClientError as exc:
            self.report.other_refusals[f"launch {getattr(exc, 'status', 'failed')}"] += 1
            return True
        try:
            amount = self.step_minor
            record = await self.transfer(
                player, lambda: self.book.withdraw(player.key, amount), None, should_refuse=False
            )
            if record is not None:
                self.violation(player, f"withdrawal {record.transfer_id} allowed in a game")
            await self.deposit(player)
        finally:
            await self._kick(player)
        return True

    def refused(
        self, player: PlayerModel, record: OperatorTransferRecord, *, should_refuse: bool
    ) -> None:
        """6901 during a game session is the expected refusal."""
        if (record.last_error or "").startswith("6901"):
            self.report.refusals += 1
            return
        super().refused(player, record, should_refuse=should_refuse)

    async def _kick(self, player: PlayerModel) -> None:
        for _ in range(READ_ATTEMPTS):
            try:
                await self.client.kick_out(player.key)
            except JdbClientError:
                continue
            return
        self.report.other_refusals["kick-out failed"] += 1

    async def server_balances(self, players: Sequence[PlayerModel]) -> dict[str, tuple[int, int]]:
        """Action 68 for up to 100 players (JDB has no free credit)."""
        rows = await self.client.balances([p.key for p in players])
        return {row.uid: (row.balance_minor, 0) for row in rows}
