"""The game-side settlement queue against the real wallet: decisions, guards, refusals."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from tests.worker.support import (
    GAME_PASSWORD,
    GAME_USER,
    START_MINOR,
    WALLET_BASE,
    Tap,
    Wallet,
)

from gamewallet.clients.seamless import InsufficientFunds, OutcomeUnknown, SeamlessClient
from gamewallet.clients.settlement import (
    DEFAULT_WALLET,
    REFUSAL_TABLE,
    TOPIC,
    DuplicateSettlement,
    GameWallet,
    SettlementConflict,
    SettlementDelivery,
    UnknownSettlement,
    confirm,
    decide,
    final_status,
    open_call,
    rollback,
)
from gamewallet.core.states import OpState
from gamewallet.service.common import FakeClock
from gamewallet.store import open_store, ops
from gamewallet.store.port import Store, UseCase, do
from gamewallet.store.records import SettlementRecord
from gamewallet.worker.runner import Worker
from gamewallet.worker.schedule import DEFAULT_RETRY_SCHEDULE

DECIDE_WITHIN_S = 300


@dataclass
class Game:
    """The game side: its SDK object, its worker, and the tap on its calls to the wallet."""

    sdk: GameWallet
    worker: Worker
    tap: Tap
    store: Store

    async def record(self, ext_id: str) -> SettlementRecord:
        found = await self.sdk.record(ext_id)
        assert found is not None
        return found

    async def pending(self) -> list[int]:
        page, _ = await self.store.run(do(ops.ListOutbox(state="pending")))
        return [m.id for m in page]


@pytest.fixture
async def game(wallet: Wallet, game_store: Store, clock: FakeClock) -> AsyncIterator[Game]:
    tap = Tap(wallet.transport())
    client = SeamlessClient(WALLET_BASE, GAME_USER, GAME_PASSWORD, timeout_s=5, transport=tap)
    sdk = GameWallet(game_store, client, clock, decide_within_s=DECIDE_WITHIN_S)
    delivery = SettlementDelivery(
        game_store, clock, {DEFAULT_WALLET: client}, guard_s=DECIDE_WITHIN_S
    )
    worker = Worker(
        game_store,
        clock,
        handlers={TOPIC: delivery},
        schedule=DEFAULT_RETRY_SCHEDULE,
        batch_size=10,
        lease_s=60,
        owner="game-worker",
    )
    try:
        yield Game(sdk, worker, tap, game_store)
    finally:
        await client.aclose()


async def test_confirm_is_recorded_then_delivered(wallet: Wallet, game: Game) -> None:
    await game.sdk.withdraw(wallet.token, "r1", 25_0000, "EUR", detail={"round": 1})
    decided = await game.sdk.confirm("r1", detail={"result": "lost"})
    assert (decided.decision, decided.outcome) == ("confirm", None)
    assert decided.detail == {"round": 1, "result": "lost"}
    held = await wallet.operation("r1")
    assert held is not None
    assert held.state is OpState.HELD  # recorded, not sent: the worker sends it
    report = await game.worker.deliver_once()
    assert (report.claimed, report.done) == (1, 1)
    assert game.tap.paths == ["/wallet/withdraw", "/wallet/confirmWithdrawal"]
    confirmed = await wallet.operation("r1")
    assert confirmed is not None
    assert confirmed.state is OpState.CONFIRMED
    record = await game.record("r1")
    assert record.outcome == "confirmed"
    assert record.detail["balance_minor"] == START_MINOR - 25_0000
    player = await wallet.player()
    assert player.cash.balance.posted_minor == START_MINOR - 25_0000
    assert await wallet.audit() == []


async def test_deposit_confirm_is_delivered(wallet: Wallet, game: Game) -> None:
    await game.sdk.deposit(wallet.token, "win-1", 40_0000, "EUR")
    await game.sdk.confirm("win-1")
    await game.worker.deliver_once()
    assert game.tap.paths == ["/wallet/deposit", "/wallet/confirmDeposit"]
    assert (await wallet.player()).cash.balance.posted_minor == START_MINOR + 40_0000
    assert (await game.record("win-1")).outcome == "confirmed"


async def test_a_refused_withdraw_is_rolled_back(wallet: Wallet, game: Game) -> None:
    with pytest.raises(InsufficientFunds):
        await game.sdk.withdraw(wallet.token, "too-big", START_MINOR + 1, "EUR")
    record = await game.record("too-big")
    assert record.decision == "rollback"
    assert record.detail["failure"] == {"errorCode": 106, "errorDescription": "Insufficient funds"}
    await game.worker.deliver_once()
    assert game.tap.paths == ["/wallet/withdraw", "/wallet/rollbackWithdrawal"]
    tombstone = await wallet.operation("too-big")
    assert tombstone is not None
    assert tombstone.state is OpState.ROLLED_BACK
    assert (await game.record("too-big")).outcome == "rolled_back"


async def test_an_unanswered_withdraw_is_rolled_back(wallet: Wallet, game: Game) -> None:
    game.tap.lose_answers = True  # the wallet places the hold; the game never hears back
    with pytest.raises(OutcomeUnknown):
        await game.sdk.withdraw(wallet.token, "lost", 30_0000, "EUR")
    player = await wallet.player()
    assert player.cash.balance.held_minor == 30_0000
    game.tap.lose_answers = False
    await game.worker.deliver_once()
    operation = await wallet.operation("lost")
    assert operation is not None
    assert operation.state is OpState.ROLLED_BACK
    player = await wallet.player()
    assert (player.cash.balance.held_minor, player.cash.balance.posted_minor) == (0, START_MINOR)
    assert (await game.record("lost")).outcome == "rolled_back"
    assert await wallet.audit() == []


async def test_the_guard_rolls_back_an_undecided_call(
    wallet: Wallet, game: Game, clock: FakeClock
) -> None:
    await game.sdk.withdraw(wallet.token, "orphan", 10_0000, "EUR")  # then the game "dies"
    clock.advance(DECIDE_WITHIN_S - 1)
    assert (await game.worker.deliver_once()).claimed == 0
    clock.advance(1)
    guard = await game.worker.deliver_once()
    assert (guard.claimed, guard.done) == (1, 1)
    assert game.tap.paths == ["/wallet/withdraw"]  # the guard only decides
    record = await game.record("orphan")
    assert record.decision == "rollback"
    assert record.reason == "no decision within 300 s"
    await game.worker.deliver_once()
    assert game.tap.paths[-1] == "/wallet/rollbackWithdrawal"
    operation = await wallet.operation("orphan")
    assert operation is not None
    assert operation.state is OpState.ROLLED_BACK
    with pytest.raises(SettlementConflict):
        await game.sdk.confirm("orphan")  # too late: the round is void


async def test_a_guard_after_a_decision_sends_nothing(
    wallet: Wallet, game: Game, clock: FakeClock
) -> None:
    await game.sdk.withdraw(wallet.token, "r", 10_0000, "EUR")
    await game.sdk.confirm("r")
    await game.worker.deliver_once()
    clock.advance(DECIDE_WITHIN_S)
    report = await game.worker.deliver_once()
    assert (report.claimed, report.done) == (1, 1)
    assert game.tap.paths == ["/wallet/withdraw", "/wallet/confirmWithdrawal"]
    assert await game.pending() == []


async def test_already_finalized_is_the_wallets_truth(
    wallet: Wallet, game: Game, clock: FakeClock
) -> None:
    await game.sdk.withdraw(wallet.token, "split", 10_0000, "EUR")
    async with wallet.seamless_client() as other_path:  # the wallet confirmed it already
        await other_path.confirm_withdrawal(wallet.token, "split", 10_0000, "EUR")
    await game.sdk.rollback("split", reason="changed my mind")
    report = await game.worker.deliver_once()
    assert (report.claimed, report.done, report.retried) == (1, 1, 0)
    record = await game.record("split")
    assert (record.decision, record.outcome) == ("rollback", "confirmed")
    assert record.detail["finalized_answer"]["errorCode"] == 108
    clock.advance(DECIDE_WITHIN_S)  # the guard finds the call settled and sends nothing
    await game.worker.deliver_once()
    assert await game.pending() == []
    assert game.tap.paths == ["/wallet/withdraw", "/wallet/rollbackWithdrawal"]


async def test_a_permanent_refusal_is_dead_lettered(
    wallet: Wallet, game: Game, clock: FakeClock
) -> None:
    now = clock.now_ms()
    await game.store.run(
        open_call(DEFAULT_WALLET, "withdraw", "bad-token", "no-such-token", 5, "EUR", now, now + 1)
    )
    await game.store.run(confirm(DEFAULT_WALLET, "bad-token", now))
    report = await game.worker.deliver_once()
    assert report.dead >= 1
    dead, _ = await game.store.run(do(ops.ListOutbox(state="dead")))
    assert [m.last_error for m in dead] == ["refused 102: Invalid token"]
    record = await game.record("bad-token")
    assert record.outcome is None
    assert record.detail["refused"]["errorCode"] == 102


async def test_an_unreachable_wallet_is_retried_on_schedule(
    wallet: Wallet, game: Game, clock: FakeClock
) -> None:
    await game.sdk.withdraw(wallet.token, "r", 10_0000, "EUR")
    await game.sdk.confirm("r")
    game.tap.down = True
    start = clock.now_ms()
    await game.worker.deliver_once()
    (retry,), _ = await game.store.run(do(ops.ListOutbox(state="pending", limit=1)))
    assert retry.due_at_ms == start + 5_000
    assert retry.last_error is not None
    assert "OutcomeUnknown" in retry.last_error
    game.tap.down = False
    clock.advance(5)
    await game.worker.deliver_once()
    assert (await game.record("r")).outcome == "confirmed"


def test_the_refusal_table_covers_every_documented_code() -> None:
    assert set(REFUSAL_TABLE) == set(range(100, 112))
    assert REFUSAL_TABLE[108] == ("rolled_back", "confirmed")
    assert {answer for pair in REFUSAL_TABLE.values() for answer in pair} == {
        "retry",
        "dead",
        "confirmed",
        "rolled_back",
    }


# --- the fragments -----------------------------------------------------------------------------


async def test_decisions_compose_atomically_with_the_games_writes(
    game_store: Store, clock: FakeClock
) -> None:
    now = clock.now_ms()
    for ext_id in ("a", "b"):
        await game_store.run(
            open_call(DEFAULT_WALLET, "withdraw", ext_id, "t", 1, "EUR", now, now + 60_000)
        )

    def settle_round(fail: bool) -> UseCase[None]:
        yield from confirm(DEFAULT_WALLET, "a", now, detail={"round": "won"})
        yield from rollback(DEFAULT_WALLET, "b", now, reason="split bet void")
        if fail:
            raise RuntimeError("the game's own write failed")

    with pytest.raises(RuntimeError):
        await game_store.run(settle_round(fail=True))
    for ext_id in ("a", "b"):
        record = await game_store.run(do(ops.GetSettlement(wallet=DEFAULT_WALLET, ext_id=ext_id)))
        assert record is not None
        assert record.decision is None
    guards, _ = await game_store.run(do(ops.ListOutbox()))
    assert len(guards) == 2  # only the two guards: no decision message leaked out
    await game_store.run(settle_round(fail=False))
    messages, _ = await game_store.run(do(ops.ListOutbox()))
    assert sorted(m.payload["purpose"] for m in messages) == [
        "decision",
        "decision",
        "guard",
        "guard",
    ]


async def test_decide_rules(game_store: Store, clock: FakeClock) -> None:
    now = clock.now_ms()
    with pytest.raises(UnknownSettlement):
        await game_store.run(decide(DEFAULT_WALLET, "nope", "confirm", now))
    await game_store.run(open_call(DEFAULT_WALLET, "deposit", "d", "t", 1, "EUR", now, now + 1))
    with pytest.raises(DuplicateSettlement):
        await game_store.run(open_call(DEFAULT_WALLET, "deposit", "d", "t", 1, "EUR", now, now))
    first = await game_store.run(confirm(DEFAULT_WALLET, "d", now))
    again = await game_store.run(confirm(DEFAULT_WALLET, "d", now + 5, detail={"x": 1}))
    assert (again.decision, again.decided_at_ms, again.detail) == ("confirm", now, {"x": 1})
    assert first.decided_at_ms == now
    with pytest.raises(SettlementConflict):
        await game_store.run(rollback(DEFAULT_WALLET, "d", now, reason="r"))
    messages, _ = await game_store.run(do(ops.ListOutbox()))
    assert len(messages) == 2  # one guard, one decision: a repeat queues nothing


async def test_final_status(game_store: Store, clock: FakeClock) -> None:
    now = clock.now_ms()

    async def status(kind: str, ext_id: str) -> str:
        return await game_store.run(final_status(DEFAULT_WALLET, kind, ext_id, now))

    for ext_id, kind in (
        ("w-c", "withdraw"),
        ("w-r", "withdraw"),
        ("w-u", "withdraw"),
        ("d-c", "deposit"),
    ):
        await game_store.run(open_call(DEFAULT_WALLET, kind, ext_id, "t", 1, "EUR", now, now))
    await game_store.run(confirm(DEFAULT_WALLET, "w-c", now))
    await game_store.run(rollback(DEFAULT_WALLET, "w-r", now, reason="r"))
    await game_store.run(confirm(DEFAULT_WALLET, "d-c", now))
    assert await status("withdraw", "w-c") == "CONFIRMED"
    assert await status("withdraw", "w-r") == "ROLLED_BACK"
    assert await status("deposit", "d-c") == "CONFIRMED"
    assert await status("withdraw", "d-c") == "NOT_FOUND"  # another kind
    assert await status("withdraw", "never") == "NOT_FOUND"
    # Undecided: decided now, so the answer is final and the queue will deliver it.
    assert await status("withdraw", "w-u") == "ROLLED_BACK"
    undecided = await game_store.run(do(ops.GetSettlement(wallet=DEFAULT_WALLET, ext_id="w-u")))
    assert undecided is not None
    assert undecided.decision == "rollback"
    # What the wallet finally answered wins over the decision.
    await game_store.run(do(ops.UpdateSettlement(undecided.id, {"outcome": "confirmed"})))
    assert await status("withdraw", "w-u") == "CONFIRMED"


async def test_the_queue_runs_on_the_memory_store(wallet: Wallet, clock: FakeClock) -> None:
    """The same SDK and worker over the in-memory store (the game's unit tests use it)."""
    memory = open_store("memory://")
    await memory.start()
    tap = Tap(wallet.transport())
    client = SeamlessClient(WALLET_BASE, GAME_USER, GAME_PASSWORD, timeout_s=5, transport=tap)
    sdk = GameWallet(memory, client, clock, decide_within_s=DECIDE_WITHIN_S)
    worker = Worker(
        memory,
        clock,
        handlers={TOPIC: SettlementDelivery(memory, clock, {DEFAULT_WALLET: client},
                                            guard_s=DECIDE_WITHIN_S)},
        schedule=DEFAULT_RETRY_SCHEDULE,
        batch_size=10,
        lease_s=60,
    )  # fmt: skip
    await sdk.deposit(wallet.token, "m-1", 3_0000, "EUR")
    await sdk.confirm("m-1")
    with pytest.raises(InsufficientFunds):
        await sdk.withdraw(wallet.token, "m-2", START_MINOR * 2, "EUR")
    report = await worker.deliver_once()
    assert (report.claimed, report.done) == (2, 2)
    assert sorted(tap.paths[-2:]) == ["/wallet/confirmDeposit", "/wallet/rollbackWithdrawal"]
    record = await sdk.record("m-1")
    assert record is not None
    assert record.outcome == "confirmed"
    await client.aclose()
    await memory.close()
