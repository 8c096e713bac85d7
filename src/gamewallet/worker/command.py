"""The ``gamewallet worker`` command: run all background work until told to stop.

Payment callback delivery, reconciliation, the idempotency purge and (with
``GAMEWALLET_GAME_WALLET_URL``) game-side settlement delivery, in bounded batches with leases,
so any number of worker processes can run against one PostgreSQL database. SIGTERM or SIGINT
stops it gracefully: the batch in flight is finished and recorded, then the process exits.
``--once`` runs a single pass (deliveries and every job) and prints what it did.
"""

from __future__ import annotations

import asyncio
import json
import logging
import signal

import click

from gamewallet.service.common import SystemClock
from gamewallet.settings import Settings
from gamewallet.store import open_store
from gamewallet.worker.build import build_worker, check_settings


async def _main(settings: Settings, once: bool, batch: int | None) -> dict[str, object] | None:
    store = open_store(
        settings.database_url, pool_size=2, sqlite_synchronous=settings.sqlite_synchronous
    )
    await store.start()
    bundle = build_worker(store, SystemClock(), settings, batch_size=batch)
    try:
        if once:
            report = await bundle.worker.run_once(force_jobs=True)
            return {
                "claimed": report.claimed,
                "done": report.done,
                "retried": report.retried,
                "dead": report.dead,
                "lost": report.lost,
                "jobs": report.jobs,
            }
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        await bundle.worker.run_forever(stop)
        return None
    finally:
        await bundle.aclose()
        await store.close()


@click.command("worker")
@click.option("--once", is_flag=True, help="Run one pass (deliveries and every job), then exit.")
@click.option(
    "--batch",
    type=click.IntRange(1, 10_000),
    default=None,
    help="Messages claimed per pass (default GAMEWALLET_WORKER_BATCH_SIZE).",
)
@click.pass_context
def worker(ctx: click.Context, once: bool, batch: int | None) -> None:
    """Run the background worker (delivery, reconciliation, purge) until SIGTERM/SIGINT."""
    obj = ctx.find_root().obj
    settings: Settings = obj["settings"] if obj else Settings.from_env()
    try:
        check_settings(settings)
    except ValueError as exc:
        raise click.ClickException(f"cannot start the worker: {exc}") from exc
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
    result = asyncio.run(_main(settings, once, batch))
    if result is not None:
        click.echo(json.dumps(result, sort_keys=True))
