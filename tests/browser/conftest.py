"""Browser tests: the back-office pages in a real headless Chromium (the system's
``/usr/bin/chromium``, driven by Playwright; no browser is ever downloaded) against a real
uvicorn server on 127.0.0.1 over a SQLite database.

Without Chromium the tests are skipped with the reason, unless ``GAMEWALLET_REQUIRE_BROWSER=1``
(CI sets it), which makes them fail instead. The database is seeded with the demo data and
two weeks of history (so the charts have something to draw); the server runs for the whole
module and is stopped at the end.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from gamewallet import demo
from gamewallet.core.money import UNIT
from gamewallet.core.states import OpState
from gamewallet.observability import uvicorn_log_config
from gamewallet.service import admin
from gamewallet.service.common import NS_WIRE, move
from gamewallet.service.context import Services
from gamewallet.settings import Settings
from gamewallet.store import migrate, open_store, ops
from gamewallet.store.port import UseCase, do
from gamewallet.store.records import ClientRecord, PlayerRecord

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
REQUIRE = "GAMEWALLET_REQUIRE_BROWSER"
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
SCRATCH = Path(tempfile.gettempdir()) / "gamewallet-screenshots"
START_TIMEOUT_S = 60
STOP_TIMEOUT_S = 15
DAY_MS = 86_400_000
MINUTE_MS = 60_000


def _require_chromium() -> None:
    if CHROMIUM.exists():
        return
    reason = f"{CHROMIUM} is missing (apt-get install chromium); browser tests need it"
    if os.environ.get(REQUIRE) == "1":
        pytest.fail(f"{reason} ({REQUIRE}=1)", pytrace=False)
    pytest.skip(reason)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


# --- seeding ---------------------------------------------------------------------------------


def _history(client_ids: dict[str, int], now_ms: int) -> UseCase[None]:
    """Two weeks of settled seamless bets and wins, and an hour of transfers and bets, all
    posted between the players and their clients (double entry, so the audit stays clean)."""
    rng = random.Random(7)  # the same pictures every run
    clients: dict[str, ClientRecord] = {}
    players: dict[str, PlayerRecord] = {}
    for name, client_id in client_ids.items():
        client = yield from do(ops.GetClient(client_id=client_id))
        assert client is not None
        (first, *_), _ = yield from do(ops.ListPlayers(client.id, limit=1))
        clients[name], players[name] = client, first
    serial = 0

    def settle(name: str, kind: str, amount_units: int, at_ms: int) -> UseCase[None]:
        nonlocal serial
        serial += 1
        client, player = clients[name], players[name]
        state = OpState.CONFIRMED if client.protocol == "seamless" else OpState.COMPLETED
        operation = yield from do(
            ops.InsertOperation(
                client.id,
                NS_WIRE,
                f"hist-{serial}",
                kind,
                player.id,
                player.currency,
                amount_units * UNIT,
                0,
                state,
                at_ms,
            )
        )
        assert operation is not None
        fresh = yield from do(ops.GetPlayer(player_id=player.id, lock=True))
        assert fresh is not None
        signed = -amount_units * UNIT if kind == "withdraw" else amount_units * UNIT
        yield from move(client, fresh, operation.id, at_ms, cash_minor=signed)

    day_start = now_ms // DAY_MS * DAY_MS
    for day in range(13, -1, -1):
        for _ in range(rng.randint(4, 9)):
            # Never in the future, nor in the last hour (the per-minute chart's own traffic).
            at = min(day_start - day * DAY_MS + rng.randint(0, DAY_MS // 2), now_ms - 3_600_000)
            yield from settle("seamless", "withdraw", rng.choice([5, 10, 20, 50]), at)
            if rng.random() < 0.6:
                yield from settle("seamless", "deposit", rng.choice([2, 8, 15, 30]), at + 1)
    for minute in range(59, 0, -1):
        at = now_ms - minute * MINUTE_MS
        for _ in range(rng.randint(0, 4)):
            yield from settle("seamless", "withdraw", 1, at)
        if rng.random() < 0.5:
            yield from settle("hrg", "deposit", rng.choice([1, 2]), at)
        if rng.random() < 0.3:
            yield from settle("jdb", "deposit", 3, at)


async def _seed(url: str) -> dict[str, Any]:
    services = Services(Settings(database_url=url), open_store(url))
    await services.start()
    try:
        summary = await demo.ensure(services)
        ids = {}
        for protocol, name in (
            ("seamless", demo.SEAMLESS["name"]),
            ("hrg", demo.HRG["agent"]),
            ("jdb", demo.JDB["dc"]),
        ):
            client = await services.store.run(admin.get_client(protocol, name))
            ids[protocol] = client.id
        await services.store.run(_history(ids, services.clock.now_ms()))
        assert await services.store.run(admin.audit()) == []
        summary["client_ids"] = ids
        return summary
    finally:
        await services.close()


# --- the server ------------------------------------------------------------------------------


@dataclass
class Live:
    """The running server, its database and the demo credentials."""

    base: str
    url: str
    summary: dict[str, Any]
    log: Path

    def wallet(self, endpoint: str, body: dict[str, Any]) -> dict[str, Any]:
        """A seamless call as the demo game backend."""
        sm = self.summary["seamless"]
        reply = httpx.post(
            f"{self.base}/wallet/{endpoint}",
            json={"token": sm["token"], **body},
            auth=(sm["username"], sm["password"]),
            timeout=10,
        )
        assert reply.status_code == 200, reply.text
        data: dict[str, Any] = reply.json()
        assert "errorCode" not in data, data
        return data

    def store_run(self, use_case: UseCase[Any]) -> Any:
        """Run a use case on the server's database from the test process (SQLite allows a
        second writer process; it waits for the server's transactions)."""

        async def run() -> Any:
            store = open_store(self.url)
            await store.start()
            try:
                return await store.run(use_case)
            finally:
                await store.close()

        # Playwright's sync API keeps an event loop running in this thread: use another.
        with ThreadPoolExecutor(max_workers=1) as pool:
            return pool.submit(asyncio.run, run()).result()


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    """Seeded database and a uvicorn server on 127.0.0.1, for the whole module."""
    _require_chromium()
    root = tmp_path_factory.mktemp("browser")
    url = f"sqlite:///{root}/gw.db"
    migrate.upgrade(url)
    summary = asyncio.run(_seed(url))
    port = _free_port()
    log = root / "server.log"
    log_config = root / "logging.json"
    log_config.write_text(json.dumps(uvicorn_log_config()))
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        "gamewallet.app:app_factory",
        "--factory",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--log-config",
        str(log_config),
    ]
    env = {
        **os.environ,
        "GAMEWALLET_DATABASE_URL": url,
        "GAMEWALLET_WORKER_IN_PROCESS": "0",  # dead letters stay dead until retried by hand
        "GAMEWALLET_ADMIN_CACHE_S": "0",
    }
    base = f"http://127.0.0.1:{port}"
    with log.open("wb") as out:
        process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + START_TIMEOUT_S
            while True:
                if process.poll() is not None:
                    raise RuntimeError(log.read_text(errors="replace"))
                try:
                    if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError("the server did not start: " + log.read_text())
                time.sleep(0.1)
            yield Live(base, url, summary, log)
        finally:
            process.terminate()
            try:
                process.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(STOP_TIMEOUT_S)


@pytest.fixture(scope="module")
def browser(live: Live) -> Iterator[Any]:
    """Headless Chromium for the module."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser: Any, live: Live) -> Iterator[Any]:
    """A fresh browser context (no cookies) and page, desktop sized."""
    context = browser.new_context(
        viewport={"width": 1280, "height": 800}, base_url=live.base, accept_downloads=True
    )
    context.set_default_timeout(15_000)
    try:
        yield context.new_page()
    finally:
        context.close()


def sign_in(page: Any, user: str | None = None, password: str | None = None) -> None:
    """Sign in through the form, as a person would (keyboard included); the demo operator
    by default."""
    page.goto("/admin/login")
    page.get_by_label("User name").fill(user or demo.ADMIN["user"])
    page.get_by_label("Password").fill(password or demo.ADMIN["password"])
    page.get_by_label("Password").press("Enter")
    page.wait_for_url("**/admin/")


def shoot(page: Any, name: str) -> None:
    """Save a full-page screenshot of the page.

    The screenshots shown in docs/admin.md are refreshed with
    ``GAMEWALLET_UPDATE_SCREENSHOTS=1``; otherwise they go to a scratch folder (the tests
    still take them, so a page that cannot render fails) and the work tree stays clean.
    """
    folder = SCREENSHOTS if os.environ.get("GAMEWALLET_UPDATE_SCREENSHOTS") == "1" else SCRATCH
    folder.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(folder / f"{name}.png"), full_page=True)
