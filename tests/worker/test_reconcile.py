"""The wallet's reconciler against the real game-side app: one test per answer, every decision
recorded, the ledger moved exactly once."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import AsyncIterator
from dataclasses import dataclass

import asyncpg
import pytest
from tests.worker.support import (
    GAME_PASSWORD,
    GAME_USER,
    PAYMENT_SECRET,
    START_MINOR,
    WALLET_BASE,
    WALLET_PASSWORD_AT_GAME,
    WALLET_USER_AT_GAME,
    Tap,
    Wallet,
    asgi,
)

from gamewallet.clients.gameside import create_gameside_app
from gamewallet.clients.seamless import SeamlessClient
from gamewallet.clients.settlement import DEFAULT_WALLET, TOPIC, GameWallet, SettlementDelivery
from gamewallet.core.states import OpState
from gamewallet.service.common import FakeClock
from gamewallet.store import ops
from gamewallet.store.port import Store, do
from gamewallet.store.records import ReconciliationRecord
from gamewallet.worker.reconcile import ACTIONS, Reconciler
from gamewallet.worker.runner import Worker
from gamewallet.worker.schedule import DEFAULT_RETRY_SCHEDULE

AFTER_S = 49 * 3600
RETRY_S = 3600


@dataclass
class Setup:
    reconciler: Reconciler
    sdk: GameWallet
    game_store: Store
    game_worker: Worker
    game_tap: Tap  # the game side's endpoint, as the wallet reaches it

    async def decisions(self, wallet: Wallet) -> list[ReconciliationRecord]:
        page, _ = await wallet.store.run(do(ops.ListReconciliations()))
        return page


@pytest.fixture
async def setup(wallet: Wallet, game_store: Store, clock: FakeClock) -> AsyncIterator[Setup]:
    gameside = create_gameside_app(
        game_store,
        clock,
        integration_username=WALLET_USER_AT_GAME,
        integration_password=WALLET_PASSWORD_AT_GAME,
        payment_secret=PAYMENT_SECRET,
        manage_store=False,
    )
    game_tap = Tap(asgi(gameside))
    reconciler = Reconciler(
        wallet.store,
        clock,
        after_s=AFTER_S,
        retry_s=RETRY_S,
        batch_size=10,
        retention_s=7 * 24 * 3600,
        timeout_s=5,
        transport=game_tap,
    )
    client = SeamlessClient(
        WALLET_BASE, GAME_USER, GAME_PASSWORD, timeout_s=5, transport=wallet.transport()
    )
    sdk = GameWallet(game_store, client, clock, decide_within_s=300)
    worker = Worker(
        game_store,
        clock,
        handlers={
            TOPIC: SettlementDelivery(game_store, clock, {DEFAULT_WALLET: client}, guard_s=300)
        },
        schedule=DEFAULT_RETRY_SCHEDULE,
        batch_size=10,
        lease_s=60,
    )
    try:
        yield Setup(reconciler, sdk, game_store, worker, game_tap)
    finally:
        await client.aclose()


def test_the_action_table() -> None:
    assert {status: call.value for status, call in ACTIONS.items()} == {
        "CONFIRMED": "confirm",
        "ROLLED_BACK": "rollback",
        "NOT_FOUND": "rollback",
    }


async def session_count(wallet: Wallet) -> int:
    """Sessions in the wallet's database, read directly (no use case lists them)."""
    url = wallet.services.settings.database_url
    if url.startswith("sqlite:///"):
        with contextlib.closing(sqlite3.connect(url.removeprefix("sqlite:///"))) as conn:
            (n,) = conn.execute("SELECT count(*) FROM sessions").fetchone()
            return int(n)
    conn_pg = await asyncpg.connect(url)
    try:
        return int(await conn_pg.fetchval("SELECT count(*) FROM sessions"))
    finally:
        await conn_pg.close()


async def test_confirmed_is_confirmed(wallet: Wallet, setup: Setup, clock: FakeClock) -> None:
    sessions_before = await session_count(wallet)
    await setup.sdk.withdraw(wallet.token, "r1", 20_0000, "EUR")
    await setup.sdk.confirm("r1")  # recorded at the game, never delivered (its worker is gone)
    clock.advance(AFTER_S - 1)
    assert await setup.reconciler.run_once() == 0  # not old enough yet
    assert setup.game_tap.paths == []
    clock.advance(2)
    assert await setup.reconciler.run_once() == 1
    assert setup.game_tap.paths == ["/integration/queryWithdrawal"]
    operation = await wallet.operation("r1")
    assert operation is not None
    assert operation.state is OpState.CONFIRMED
    (decision,) = await setup.decisions(wallet)
    assert (decision.operation_id, decision.answer, decision.action, decision.error) == (
        operation.id,
        "CONFIRMED",
        "confirm",
        None,
    )
    assert decision.asked_at_ms == clock.now_ms()
    assert (await wallet.player()).cash.balance.posted_minor == START_MINOR - 20_0000
    assert await session_count(wallet) == sessions_before  # no session made for the call
    # The game's own confirm arrives at last: a replay, the ledger moves once.
    await setup.game_worker.deliver_once()
    record = await setup.sdk.record("r1")
    assert record is not None
    assert record.outcome == "confirmed"
    assert await wallet.postings_of(operation.id) == 2
    assert await wallet.audit() == []


async def test_rolled_back_is_rolled_back(wallet: Wallet, setup: Setup, clock: FakeClock) -> None:
    await setup.sdk.withdraw(wallet.token, "r2", 20_0000, "EUR")
    await setup.sdk.rollback("r2", reason="table closed")
    clock.advance(AFTER_S + 1)
    await setup.reconciler.run_once()
    operation = await wallet.operation("r2")
    assert operation is not None
    assert operation.state is OpState.ROLLED_BACK
    assert operation.detail["reason"] == "reconciled: the game answered ROLLED_BACK"
    player = await wallet.player()
    assert (player.cash.balance.posted_minor, player.cash.balance.held_minor) == (START_MINOR, 0)
    (decision,) = await setup.decisions(wallet)
    assert (decision.answer, decision.action) == ("ROLLED_BACK", "rollback")


async def test_not_found_is_rolled_back(wallet: Wallet, setup: Setup, clock: FakeClock) -> None:
    async with wallet.seamless_client() as direct:  # a hold the game never recorded
        await direct.withdraw(wallet.token, "ghost", 15_0000, "EUR")
    clock.advance(AFTER_S + 1)
    await setup.reconciler.run_once()
    operation = await wallet.operation("ghost")
    assert operation is not None
    assert operation.state is OpState.ROLLED_BACK
    (decision,) = await setup.decisions(wallet)
    assert (decision.answer, decision.action) == ("NOT_FOUND", "rollback")
    assert (await wallet.player()).cash.balance.held_minor == 0
    assert await wallet.audit() == []


async def test_undecided_at_the_game_is_decided_and_rolled_back(
    wallet: Wallet, setup: Setup, clock: FakeClock
) -> None:
    await setup.sdk.withdraw(wallet.token, "open", 5_0000, "EUR")  # no decision, no guard run
    clock.advance(AFTER_S + 1)
    await setup.reconciler.run_once()
    record = await setup.sdk.record("open")
    assert record is not None
    assert record.decision == "rollback"  # the answer given is final at the game too
    operation = await wallet.operation("open")
    assert operation is not None
    assert operation.state is OpState.ROLLED_BACK


async def test_a_pending_deposit_is_asked_with_query_deposit(
    wallet: Wallet, setup: Setup, clock: FakeClock
) -> None:
    await setup.sdk.deposit(wallet.token, "win", 33_0000, "EUR")
    await setup.sdk.confirm("win")
    clock.advance(AFTER_S + 1)
    await setup.reconciler.run_once()
    assert setup.game_tap.paths == ["/integration/queryDeposit"]
    operation = await wallet.operation("win")
    assert operation is not None
    assert operation.state is OpState.CONFIRMED
    assert (await wallet.player()).cash.balance.posted_minor == START_MINOR + 33_0000


async def test_no_answer_is_recorded_and_asked_again_later(
    wallet: Wallet, setup: Setup, clock: FakeClock
) -> None:
    await setup.sdk.withdraw(wallet.token, "r", 5_0000, "EUR")
    await wallet.set_config(integration_password="wrong")  # the game will answer 401
    clock.advance(AFTER_S + 1)
    await setup.reconciler.run_once()
    (decision,) = await setup.decisions(wallet)
    assert (decision.answer, decision.action) == (None, "none")
    assert decision.error is not None
    assert decision.error.startswith("AuthFailed")
    operation = await wallet.operation("r")
    assert operation is not None
    assert operation.state is OpState.HELD
    assert operation.detail["reconcile_error"] == decision.error
    clock.advance(RETRY_S - 1)
    assert await setup.reconciler.run_once() == 0  # asked again only after retry_s
    await wallet.set_config(integration_password=WALLET_PASSWORD_AT_GAME)
    clock.advance(1)
    assert await setup.reconciler.run_once() == 1
    latest, earlier = await setup.decisions(wallet)
    assert (latest.answer, latest.action) == ("ROLLED_BACK", "rollback")
    assert earlier == decision


async def test_settled_meanwhile_changes_nothing(
    wallet: Wallet, setup: Setup, clock: FakeClock
) -> None:
    await setup.sdk.withdraw(wallet.token, "race", 5_0000, "EUR")
    await setup.sdk.rollback("race", reason="r")
    clock.advance(AFTER_S + 1)
    stale = await wallet.operation("race")
    assert stale is not None
    async with wallet.seamless_client() as direct:  # settled between listing and applying
        await direct.confirm_withdrawal(wallet.token, "race", 5_0000, "EUR")
    async with setup.reconciler.game_client_for(wallet.client) as game:
        action = await setup.reconciler.resolve(wallet.client, stale, game)
    assert action == "none"
    (decision,) = await setup.decisions(wallet)
    assert (decision.answer, decision.action) == ("ROLLED_BACK", "none")
    assert decision.error == "settled meanwhile (confirmed)"
    operation = await wallet.operation("race")
    assert operation is not None
    assert operation.state is OpState.CONFIRMED


async def test_batches_are_bounded(wallet: Wallet, setup: Setup, clock: FakeClock) -> None:
    async with wallet.seamless_client() as direct:
        for n in range(12):
            await direct.withdraw(wallet.token, f"h{n}", 1_0000, "EUR")
    clock.advance(AFTER_S + 1)
    assert await setup.reconciler.run_once() == 10
    assert await setup.reconciler.run_once() == 2
    assert await setup.reconciler.run_once() == 0
    assert len(await setup.decisions(wallet)) == 12
    assert (await wallet.player()).cash.balance.held_minor == 0
