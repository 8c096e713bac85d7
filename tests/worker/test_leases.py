"""Leases: a worker that dies between claim and finish, and two workers racing for one queue."""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest
from tests.worker.support import GAME_PASSWORD, GAME_USER, START_MINOR, WALLET_BASE, Tap, Wallet

from gamewallet.clients.seamless import SeamlessClient
from gamewallet.clients.settlement import DEFAULT_WALLET, TOPIC, GameWallet, SettlementDelivery
from gamewallet.core.states import OpState
from gamewallet.service.common import FakeClock
from gamewallet.store import open_store, ops
from gamewallet.store.port import Store, do
from gamewallet.store.records import OutboxRecord
from gamewallet.worker.runner import Done, Outcome, Worker
from gamewallet.worker.schedule import DEFAULT_RETRY_SCHEDULE

LEASE_S = 60


def settlement_worker(store: Store, clock: FakeClock, client: SeamlessClient, owner: str) -> Worker:
    delivery = SettlementDelivery(store, clock, {DEFAULT_WALLET: client}, guard_s=300)
    return Worker(
        store,
        clock,
        handlers={TOPIC: delivery},
        schedule=DEFAULT_RETRY_SCHEDULE,
        batch_size=5,
        lease_s=LEASE_S,
        owner=owner,
    )


async def test_a_worker_dying_after_sending_leads_to_one_ledger_effect(
    wallet: Wallet, game_store: Store, clock: FakeClock
) -> None:
    tap = Tap(wallet.transport())
    client = SeamlessClient(WALLET_BASE, GAME_USER, GAME_PASSWORD, timeout_s=5, transport=tap)
    sdk = GameWallet(game_store, client, clock, decide_within_s=300)
    await sdk.withdraw(wallet.token, "r", 42_0000, "EUR")
    await sdk.confirm("r")
    # Worker A claims the message and sends the confirm (the wallet applies it), then dies
    # before it records anything.
    claim = ops.ClaimOutbox("A", 5, LEASE_S * 1000, clock.now_ms(), (TOPIC,))
    (message,) = await game_store.run(do(claim))
    await client.confirm_withdrawal(wallet.token, "r", 42_0000, "EUR")
    operation = await wallet.operation("r")
    assert operation is not None
    assert operation.state is OpState.CONFIRMED
    # Worker B cannot touch it while A's lease runs...
    b = settlement_worker(game_store, clock, client, "B")
    clock.advance(LEASE_S - 1)
    assert (await b.deliver_once()).claimed == 0
    # ...and re-sends it once the lease is over: the wallet replays, nothing moves twice.
    clock.advance(1)
    report = await b.deliver_once()
    assert (report.claimed, report.done) == (1, 1)
    assert tap.paths.count("/wallet/confirmWithdrawal") == 2
    assert await wallet.postings_of(operation.id) == 2  # player and client: one posting pair
    player = await wallet.player()
    assert (player.cash.balance.posted_minor, player.cash.balance.held_minor) == (
        START_MINOR - 42_0000,
        0,
    )
    assert await wallet.audit() == []
    # A comes back from the dead: its finish is refused, the row stays as B left it.
    late = ops.FinishOutbox(message.id, "A", "pending", clock.now_ms(), due_at_ms=0, error="x")
    assert await game_store.run(do(late)) is False
    done, _ = await game_store.run(do(ops.ListOutbox(state="done")))
    assert message.id in [m.id for m in done]
    record = await sdk.record("r")
    assert record is not None
    assert record.outcome == "confirmed"
    await client.aclose()


async def test_a_worker_dying_after_recording_sends_nothing_more(
    wallet: Wallet, game_store: Store, clock: FakeClock
) -> None:
    tap = Tap(wallet.transport())
    client = SeamlessClient(WALLET_BASE, GAME_USER, GAME_PASSWORD, timeout_s=5, transport=tap)
    sdk = GameWallet(game_store, client, clock, decide_within_s=300)
    await sdk.withdraw(wallet.token, "r", 42_0000, "EUR")
    await sdk.rollback("r", reason="void")
    claim = ops.ClaimOutbox("A", 5, LEASE_S * 1000, clock.now_ms(), (TOPIC,))
    (message,) = await game_store.run(do(claim))
    delivery = SettlementDelivery(game_store, clock, {DEFAULT_WALLET: client}, guard_s=300)
    assert isinstance(await delivery(message), Done)  # sent and recorded; A dies before finishing
    clock.advance(LEASE_S)
    report = await settlement_worker(game_store, clock, client, "B").deliver_once()
    assert (report.claimed, report.done) == (1, 1)
    assert tap.paths == ["/wallet/withdraw", "/wallet/rollbackWithdrawal"]  # not re-sent
    await client.aclose()


async def test_two_workers_never_send_one_message_twice(
    wallet: Wallet, game_store: Store, game_db: str, clock: FakeClock
) -> None:
    """Two workers with their own connections drain one queue concurrently: every confirm is
    sent exactly once."""
    setup = SeamlessClient(
        WALLET_BASE, GAME_USER, GAME_PASSWORD, timeout_s=5, transport=wallet.transport()
    )
    sdk = GameWallet(game_store, setup, clock, decide_within_s=300)
    ids = [f"r{n}" for n in range(24)]
    for ext_id in ids:
        await sdk.withdraw(wallet.token, ext_id, 1_0000, "EUR")
        await sdk.confirm(ext_id)
    await setup.aclose()
    second_store = open_store(game_db)
    await second_store.start()
    taps = [Tap(wallet.transport()), Tap(wallet.transport())]
    clients = [
        SeamlessClient(WALLET_BASE, GAME_USER, GAME_PASSWORD, timeout_s=5, transport=t)
        for t in taps
    ]
    workers = [
        settlement_worker(game_store, clock, clients[0], "one"),
        settlement_worker(second_store, clock, clients[1], "two"),
    ]

    async def drain(worker: Worker) -> int:
        claimed = 0
        for _ in range(50):
            report = await worker.deliver_once()
            claimed += report.claimed
            if report.claimed == 0:
                page, _ = await worker.store.run(do(ops.ListOutbox(state="pending", limit=1000)))
                if all(m.payload["purpose"] == "guard" for m in page):
                    break
        return claimed

    try:
        claimed = await asyncio.wait_for(asyncio.gather(*(drain(w) for w in workers)), 120)
    finally:
        for c in clients:
            await c.aclose()
        await second_store.close()
    sent = Counter(
        path for tap in taps for path in tap.paths if path == "/wallet/confirmWithdrawal"
    )
    assert sent["/wallet/confirmWithdrawal"] == len(ids)
    assert sum(claimed) == len(ids)
    for ext_id in ids:
        operation = await wallet.operation(ext_id)
        assert operation is not None
        assert operation.state is OpState.CONFIRMED
    assert await wallet.audit() == []


class Holder:
    """A slow handler that proves no message is ever held by two workers at the same time."""

    def __init__(self) -> None:
        self.holding: set[int] = set()
        self.handled: Counter[int] = Counter()
        self.overlaps = 0

    async def __call__(self, message: OutboxRecord) -> Outcome:
        if message.id in self.holding:
            self.overlaps += 1
        self.holding.add(message.id)
        self.handled[message.id] += 1
        await asyncio.sleep(0.01)
        self.holding.discard(message.id)
        return Done()


@pytest.mark.parametrize("workers", [2, 4])
async def test_concurrent_claimers_share_a_queue_without_overlap(
    game_store: Store, game_db: str, clock: FakeClock, workers: int
) -> None:
    now = clock.now_ms()
    for n in range(60):
        await game_store.run(do(ops.Enqueue("t", None, None, {"n": n}, now, now)))
    holder = Holder()
    stores = [game_store]
    for _ in range(workers - 1):
        extra = open_store(game_db)
        await extra.start()
        stores.append(extra)
    loops = [
        Worker(
            s,
            clock,
            handlers={"t": holder},
            schedule=DEFAULT_RETRY_SCHEDULE,
            batch_size=7,
            lease_s=LEASE_S,
            owner=f"w{i}",
        )
        for i, s in enumerate(stores)
    ]

    async def drain(worker: Worker) -> None:
        while (await worker.deliver_once()).claimed:
            pass

    try:
        await asyncio.wait_for(asyncio.gather(*(drain(w) for w in loops)), 120)
    finally:
        for extra in stores[1:]:
            await extra.close()
    assert holder.overlaps == 0
    assert len(holder.handled) == 60
    assert set(holder.handled.values()) == {1}
