"""Payment callbacks: from the wallet's outbox to a real HTTP receiver on loopback.

The receiver is the game-side app (:mod:`gamewallet.clients.gameside`) served by uvicorn from
the test's event loop; it checks the vendor's ``sign`` and acknowledges with ``{"code": 0}``.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Mapping

import pytest
from tests.worker.processes import asgi_server
from tests.worker.support import PAYMENT_SECRET, START_MINOR, Wallet

from gamewallet.clients.gameside import create_gameside_app, recorded_payment
from gamewallet.clients.seamless import GameClient
from gamewallet.protocols.seamless.sign import verify_payment_sign
from gamewallet.service.common import FakeClock
from gamewallet.store import ops
from gamewallet.store.port import Store, do
from gamewallet.store.records import OutboxRecord
from gamewallet.worker.delivery import TOPIC_PAYMENT_CALLBACK, PaymentCallbackDelivery
from gamewallet.worker.runner import Worker
from gamewallet.worker.schedule import DEFAULT_RETRY_SCHEDULE, RetrySchedule, parse_schedule

ORDER = "c9c35cf409344312146fa7546a94d1a6"


class FlakyHook:
    """The game's payment hook: fails the first ``failures`` calls, then records."""

    def __init__(self, failures: int = 0) -> None:
        self.failures = failures
        self.calls: list[dict[str, str]] = []

    async def __call__(self, fields: Mapping[str, str]) -> None:
        self.calls.append(dict(fields))
        if len(self.calls) <= self.failures:
            raise RuntimeError("the game's shop is down")


@contextlib.asynccontextmanager
async def receiver(game_store: Store, clock: FakeClock, hook: FlakyHook | None,
                   secret: str = PAYMENT_SECRET) -> AsyncIterator[str]:  # fmt: skip
    app = create_gameside_app(
        game_store,
        clock,
        integration_username=None,
        integration_password=None,
        payment_secret=secret,
        on_payment=hook,
        manage_store=False,
    )
    async with asgi_server(app) as url:
        yield url


async def pay(wallet: Wallet) -> None:
    async with wallet.seamless_client() as client:
        await client.initiate_payment(wallet.token, ORDER, "10001", "wm.spin.1", "4.99", "lvl=3")


def payment_worker(wallet: Wallet, sender: GameClient, schedule: RetrySchedule) -> Worker:
    return Worker(
        wallet.store,
        wallet.services.clock,
        handlers={TOPIC_PAYMENT_CALLBACK: PaymentCallbackDelivery(wallet.store, sender)},
        schedule=schedule,
        batch_size=10,
        lease_s=30,
    )


async def callbacks(wallet: Wallet) -> list[OutboxRecord]:
    page, _ = await wallet.store.run(do(ops.ListOutbox()))
    return [m for m in page if m.topic == TOPIC_PAYMENT_CALLBACK]


@pytest.fixture
async def sender() -> AsyncIterator[GameClient]:
    async with GameClient(None, None, None, timeout_s=5) as client:
        yield client


async def test_a_callback_is_delivered_signed_and_recorded(
    wallet: Wallet, game_store: Store, clock: FakeClock, sender: GameClient
) -> None:
    async with receiver(game_store, clock, None) as url:
        await wallet.set_config(payment_callback_url=f"{url}/payment/callback")
        await pay(wallet)
        report = await payment_worker(wallet, sender, DEFAULT_RETRY_SCHEDULE).deliver_once()
        assert (report.claimed, report.done) == (1, 1)
    fields = await recorded_payment(game_store, ORDER)
    assert fields is not None
    assert verify_payment_sign(fields, PAYMENT_SECRET)
    assert (fields["uid"], fields["productPrice"], fields["extParams"]) == (
        "alice",
        "4.99",
        "lvl=3",
    )
    (message,) = await callbacks(wallet)
    assert (message.state, message.attempts, message.last_error) == ("done", 1, None)
    assert (await wallet.player()).cash.balance.posted_minor == START_MINOR - 4_9900


async def test_an_unacknowledged_callback_is_retried_with_its_error(
    wallet: Wallet, game_store: Store, clock: FakeClock, sender: GameClient
) -> None:
    hook = FlakyHook(failures=2)
    async with receiver(game_store, clock, hook) as url:
        await wallet.set_config(payment_callback_url=f"{url}/payment/callback")
        await pay(wallet)
        worker = payment_worker(wallet, sender, DEFAULT_RETRY_SCHEDULE)
        await worker.deliver_once()
        (first,) = await callbacks(wallet)
        assert (first.state, first.attempts) == ("pending", 1)
        assert first.last_error is not None
        assert "HTTP 500" in first.last_error
        assert first.due_at_ms == clock.now_ms() + 5_000
        clock.advance(5)
        await worker.deliver_once()
        clock.advance(10)
        await worker.deliver_once()
    (done,) = await callbacks(wallet)
    assert (done.state, done.attempts) == ("done", 3)
    assert len(hook.calls) == 3
    assert hook.calls[0] == hook.calls[2]  # the same signed fields every time


async def test_a_bad_sign_is_never_acknowledged_and_dead_letters(
    wallet: Wallet, game_store: Store, clock: FakeClock, sender: GameClient
) -> None:
    hook = FlakyHook()
    short = parse_schedule("0,1;every=1;window=2")  # attempts at 0, 1 and 2 s
    async with receiver(game_store, clock, hook, secret="another-secret") as url:
        await wallet.set_config(payment_callback_url=f"{url}/payment/callback")
        await pay(wallet)
        worker = payment_worker(wallet, sender, short)
        for _ in range(3):
            await worker.deliver_once()
            clock.advance(1)
        assert (await worker.deliver_once()).claimed == 0
    (dead,) = await callbacks(wallet)
    assert (dead.state, dead.attempts) == ("dead", 3)
    assert dead.last_error is not None
    assert "retry window spent" in dead.last_error
    assert "HTTP 400" in dead.last_error
    assert hook.calls == []  # the game never acted on an unverified callback


async def test_a_missing_url_waits_for_configuration(
    wallet: Wallet, game_store: Store, clock: FakeClock, sender: GameClient
) -> None:
    await pay(wallet)
    worker = payment_worker(wallet, sender, DEFAULT_RETRY_SCHEDULE)
    await worker.deliver_once()
    (waiting,) = await callbacks(wallet)
    assert waiting.state == "pending"
    assert waiting.last_error == "client game has no payment_callback_url"
    async with receiver(game_store, clock, None) as url:
        await wallet.set_config(payment_callback_url=f"{url}/payment/callback")
        clock.advance(5)
        await worker.deliver_once()
    assert (await callbacks(wallet))[0].state == "done"
    assert await recorded_payment(game_store, ORDER) is not None
