"""Fixtures for the fast-lane tests: twin databases of each real store with the same world.

A differential test needs two databases whose state is identical, byte for byte in what the
protocols answer: the same clients, players, session tokens and operation ids. Each twin gets
the same fixed secret key, its own fake clock at the same time, and a world built through the
service layer with session tokens from a counter instead of the random source.
"""

from __future__ import annotations

import asyncio
import itertools
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx
import pytest
from tests.security.world import World, build_world

from gamewallet.app import create_app
from gamewallet.service import admin
from gamewallet.service.common import FakeClock
from gamewallet.service.context import Services
from gamewallet.settings import Settings
from gamewallet.store import migrate, open_store

#: Small enough that a test can send a body over it.
MAX_BODY_BYTES = 4096
#: Per second, per client, for the clients the world gives a limit.
RATE_PER_S = 20
#: Client config of the world: one client of each protocol is rate limited, the other only
#: accepts calls from an address the tests never call from.
WORLD_CONFIG: dict[str, dict[str, Any]] = {
    "gamea": {"rate_limit_per_s": RATE_PER_S},
    "gameb": {"allow_ips": ["10.9.0.0/16"]},
    "agenta": {"rate_limit_per_s": RATE_PER_S},
    "agentb": {"allow_ips": ["10.9.0.0/16"]},
    "dca": {"rate_limit_per_s": RATE_PER_S},
    "dcb": {"allow_ips": ["10.9.0.0/16"]},
}


@dataclass
class Side:
    """One twin: its services, an in-process HTTP client of its app, and its world."""

    services: Services
    clock: FakeClock
    http: httpx.AsyncClient
    world: World
    app: Any

    def lane_served(self) -> int:
        """Requests the fast lane answered (0 without a lane)."""
        handler = self.app.asgi_handler.app  # the observer wraps the lane
        return int(getattr(handler, "served", 0))


async def _execute(url: str, statement: str) -> None:
    connection = await asyncpg.connect(url, timeout=10)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


def _with_database(url: str, database: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path="/" + database))


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def twin_urls(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """Two fresh databases of the same store (PostgreSQL: copies of the migrated template)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/lane.db", f"sqlite:///{tmp_path}/plain.db"
        return
    admin_url: str = request.getfixturevalue("pg_admin_url")
    template: str = request.getfixturevalue("_pg_template")
    names = [f"gw_lane_{uuid.uuid4().hex}" for _ in range(2)]
    for name in names:
        asyncio.run(_execute(admin_url, f'CREATE DATABASE "{name}" TEMPLATE "{template}"'))
    try:
        yield _with_database(admin_url, names[0]), _with_database(admin_url, names[1])
    finally:
        for name in names:
            asyncio.run(_execute(admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


async def _side(url: str, *, lane: bool, monkeypatch: pytest.MonkeyPatch) -> Side:
    if url.startswith("sqlite"):
        await asyncio.to_thread(migrate.upgrade, url)
    settings = Settings(
        database_url=url,
        client_cache_ttl_s=0.0,
        secret_key="lane-differential",
        max_body_bytes=MAX_BODY_BYTES,
    )
    clock = FakeClock()
    services = Services(settings, open_store(url), clock)
    await services.start()
    counter = itertools.count(1)
    with monkeypatch.context() as patch:
        patch.setattr(admin, "new_token", lambda: f"tok{next(counter):029d}")
        world = await build_world(services.store, clock, services.key, config=WORLD_CONFIG)
    await services.clients.reload()
    app: Any = create_app(services, manage_store=False, fast_lane=lane)
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver")
    return Side(services, clock, http, world, app)


@pytest.fixture
async def twins(
    twin_urls: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[tuple[Side, Side]]:
    """The same world twice: served with the fast lane, and without it."""
    with_lane = await _side(twin_urls[0], lane=True, monkeypatch=monkeypatch)
    plain = await _side(twin_urls[1], lane=False, monkeypatch=monkeypatch)
    try:
        yield with_lane, plain
    finally:
        for side in (with_lane, plain):
            await side.http.aclose()
            await side.services.close()
