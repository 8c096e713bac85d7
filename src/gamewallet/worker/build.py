"""Assemble the background worker from settings: its handlers, jobs and HTTP clients.

One worker process (or the in-process worker of ``serve``) does all background work:
payment callback delivery and the reconciler (wallet side), the idempotency purge, and, when
``game_wallet_url`` is set, settlement delivery (game side, for a game that embeds the SDK).
Settings are checked here, so a bad schedule or a lease shorter than a call fails at start-up.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import httpx

from gamewallet.clients.seamless import GameClient, SeamlessClient
from gamewallet.clients.settlement import DEFAULT_WALLET, SettlementDelivery
from gamewallet.clients.settlement import TOPIC as TOPIC_SETTLEMENT
from gamewallet.service.common import Clock
from gamewallet.settings import Settings
from gamewallet.store.port import Store
from gamewallet.worker.delivery import TOPIC_PAYMENT_CALLBACK, PaymentCallbackDelivery
from gamewallet.worker.purge import IdempotencyPurge
from gamewallet.worker.reconcile import Reconciler
from gamewallet.worker.runner import Handler, Job, Worker
from gamewallet.worker.schedule import parse_schedule

log = logging.getLogger(__name__)


@dataclass
class WorkerBundle:
    """A worker and the HTTP clients it owns (closed by :meth:`aclose`)."""

    worker: Worker
    closers: list[Callable[[], Awaitable[None]]] = field(default_factory=list)

    async def aclose(self) -> None:
        """Close every HTTP client of the worker."""
        for close in self.closers:
            await close()


def check_settings(settings: Settings) -> None:
    """Refuse settings the worker cannot run safely with (ValueError)."""
    parse_schedule(settings.retry_schedule)
    if settings.worker_lease_s <= settings.http_timeout_s:
        # A lease that ends while its call may still be in flight lets a second worker send the
        # same message at the same time.
        raise ValueError("worker_lease_s must be longer than http_timeout_s")
    if settings.worker_batch_size < 1 or settings.purge_batch_size < 1:
        raise ValueError("worker batch sizes must be at least 1")
    if settings.game_wallet_url and not (
        settings.game_wallet_username and settings.game_wallet_password
    ):
        raise ValueError("game_wallet_url needs game_wallet_username and game_wallet_password")
    if settings.settlement_decide_within_s <= settings.http_timeout_s:
        raise ValueError("settlement_decide_within_s must be longer than http_timeout_s")


def build_worker(
    store: Store,
    clock: Clock,
    settings: Settings,
    *,
    batch_size: int | None = None,
    owner: str | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
) -> WorkerBundle:
    """The worker for ``settings`` on ``store`` (started, not yet running)."""
    check_settings(settings)
    timeout_s = settings.http_timeout_s
    batch = batch_size or settings.worker_batch_size
    sender = GameClient(None, None, None, timeout_s=timeout_s, transport=transport)
    handlers: dict[str, Handler] = {
        TOPIC_PAYMENT_CALLBACK: PaymentCallbackDelivery(store, sender),
    }
    closers: list[Callable[[], Awaitable[None]]] = [sender.aclose]
    if settings.game_wallet_url:
        assert settings.game_wallet_username, "checked by check_settings"
        assert settings.game_wallet_password, "checked by check_settings"
        wallet = SeamlessClient(
            settings.game_wallet_url,
            settings.game_wallet_username,
            settings.game_wallet_password,
            timeout_s=timeout_s,
            transport=transport,
        )
        closers.append(wallet.aclose)
        handlers[TOPIC_SETTLEMENT] = SettlementDelivery(
            store, clock, {DEFAULT_WALLET: wallet}, guard_s=settings.settlement_decide_within_s
        )
    jobs: list[Job] = [
        Reconciler(
            store,
            clock,
            after_s=settings.reconcile_after_s,
            retry_s=settings.reconcile_retry_s,
            batch_size=batch,
            retention_s=settings.idempotency_retention_s,
            timeout_s=timeout_s,
            transport=transport,
        ),
        IdempotencyPurge(
            store,
            clock,
            retention_s=settings.idempotency_retention_s,
            batch_size=settings.purge_batch_size,
        ),
    ]
    worker = Worker(
        store,
        clock,
        handlers=handlers,
        schedule=parse_schedule(settings.retry_schedule),
        batch_size=batch,
        lease_s=settings.worker_lease_s,
        poll_s=settings.worker_poll_s,
        jobs=jobs,
        jobs_interval_s=settings.worker_jobs_interval_s,
        owner=owner,
    )
    return WorkerBundle(worker, closers)


@contextlib.asynccontextmanager
async def in_process_worker(
    store: Store, clock: Clock, settings: Settings
) -> AsyncIterator[Worker]:
    """Run the worker as a task of this process (``serve``'s embedded default) while inside.

    On exit the worker is asked to stop and given one lease time to finish its batch; past
    that it is cancelled, and whatever it had claimed is re-sent by the next worker after the
    lease runs out.
    """
    bundle = build_worker(store, clock, settings)
    stop = asyncio.Event()
    task = asyncio.create_task(bundle.worker.run_forever(stop), name="gamewallet-worker")
    try:
        yield bundle.worker
    finally:
        stop.set()
        try:
            await asyncio.wait_for(task, timeout=settings.worker_lease_s)
        except TimeoutError:
            log.warning("in-process worker did not stop in time; cancelled")
        finally:
            await bundle.aclose()
