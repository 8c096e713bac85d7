"""``gamewallet worker`` as a real process: one pass with ``--once``, graceful SIGTERM, bad
settings refused."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import time
from collections.abc import AsyncIterator, Mapping
from pathlib import Path

from click.testing import CliRunner
from tests.worker.processes import asgi_server, environment, gamewallet, log_of
from tests.worker.support import PAYMENT_SECRET, Wallet, make_wallet

from gamewallet.cli import main
from gamewallet.clients.gameside import create_gameside_app, recorded_payment
from gamewallet.service.common import FakeClock, SystemClock
from gamewallet.store import ops
from gamewallet.store.port import Store, do

ORDER = "order-1"


class SlowHook:
    """Acknowledges payments after ``delay_s``; ``arrived`` is set when the first one comes."""

    def __init__(self, delay_s: float) -> None:
        self.delay_s = delay_s
        self.arrived = asyncio.Event()
        self.acknowledged_at: float | None = None

    async def __call__(self, fields: Mapping[str, str]) -> None:
        self.arrived.set()
        await asyncio.sleep(self.delay_s)
        self.acknowledged_at = time.monotonic()


@contextlib.asynccontextmanager
async def paid_wallet(
    wallet_db: str, game_store: Store, hook: SlowHook | None
) -> AsyncIterator[tuple[Wallet, str]]:
    """A wallet on the real clock with one payment whose callback goes to a live receiver."""
    wallet = await make_wallet(wallet_db, FakeClock(SystemClock().now_ms()))
    receiver = create_gameside_app(
        game_store,
        SystemClock(),
        integration_username=None,
        integration_password=None,
        payment_secret=PAYMENT_SECRET,
        on_payment=hook,
        manage_store=False,
    )
    try:
        async with asgi_server(receiver) as url:
            await wallet.set_config(payment_callback_url=f"{url}/payment/callback")
            async with wallet.seamless_client() as client:
                await client.initiate_payment(wallet.token, ORDER, "1", "p", "1.5")
            yield wallet, url
    finally:
        await wallet.services.close()


async def run_worker(env: dict[str, str], log: Path, *args: str) -> asyncio.subprocess.Process:
    out = log.open("ab")
    try:
        return await asyncio.create_subprocess_exec(
            *gamewallet("worker", *args), env=env, stdout=out, stderr=asyncio.subprocess.STDOUT
        )
    finally:
        out.close()


async def test_once_runs_one_pass_and_reports(
    wallet_db: str, game_store: Store, tmp_path: Path
) -> None:
    async with paid_wallet(wallet_db, game_store, None) as (wallet, _):
        client_id = wallet.client.id
        await wallet.store.run(
            do(ops.SaveIdempotency(client_id, "withdraw", "ancient", "fp", b"{}", 1))
        )
        await wallet.services.close()  # the worker process has the database to itself
        log = tmp_path / "once.log"
        env = environment(wallet_db)
        with log.open("ab") as errors:
            process = await asyncio.create_subprocess_exec(
                *gamewallet("worker", "--once", "--batch", "5"),
                env=env,
                stdout=asyncio.subprocess.PIPE,
                stderr=errors,
            )
        stdout, _ = await asyncio.wait_for(process.communicate(), 60)
        assert process.returncode == 0, log_of(log)
        report = json.loads(stdout.decode().strip().splitlines()[-1])
        assert report == {
            "claimed": 1,
            "done": 1,
            "retried": 0,
            "dead": 0,
            "lost": 0,
            "jobs": {"reconcile": 0, "purge": 1},  # the ancient record only
        }
    fields = await recorded_payment(game_store, ORDER)
    assert fields is not None
    assert fields["productPrice"] == "1.5"


async def test_sigterm_finishes_the_batch_in_flight(
    wallet_db: str, game_store: Store, tmp_path: Path
) -> None:
    hook = SlowHook(delay_s=1.5)
    async with paid_wallet(wallet_db, game_store, hook) as (wallet, _):
        await wallet.services.close()
        log = tmp_path / "worker.log"
        process = await run_worker(environment(wallet_db, worker_poll_s=0.2), log)
        try:
            await asyncio.wait_for(hook.arrived.wait(), 30)
        except TimeoutError:
            process.kill()
            await process.wait()
            raise AssertionError(f"no callback arrived:\n{log_of(log)}") from None
        process.send_signal(signal.SIGTERM)  # while the callback is being answered
        code = await asyncio.wait_for(process.wait(), 30)
        exited_at = time.monotonic()
        assert code == 0, log_of(log)
        assert hook.acknowledged_at is not None
        assert hook.acknowledged_at <= exited_at
        await wallet.services.store.start()
        page, _ = await wallet.store.run(do(ops.ListOutbox()))
        (message,) = page
        assert (message.state, message.attempts) == ("done", 1)  # recorded before exiting
        assert "stopped" in log_of(log)


def test_unsafe_settings_are_refused(tmp_path: Path) -> None:
    env = {
        "GAMEWALLET_DATABASE_URL": f"sqlite:///{tmp_path}/x.db",
        "GAMEWALLET_HTTP_TIMEOUT_S": "30",
        "GAMEWALLET_WORKER_LEASE_S": "10",
    }
    result = CliRunner().invoke(main, ["worker", "--once"], env=env)
    assert result.exit_code == 1
    assert "worker_lease_s must be longer than http_timeout_s" in result.output
    bad = {**env, "GAMEWALLET_WORKER_LEASE_S": "60", "GAMEWALLET_RETRY_SCHEDULE": "5,x"}
    result = CliRunner().invoke(main, ["worker"], env=bad)
    assert result.exit_code == 1
    assert "retry schedule" in result.output
