"""HRG test world: agents and players seeded through the service layer, and a caller.

``world`` seeds, on the ``services`` store (SQLite and PostgreSQL), the agents every HRG test
uses; ``api`` sends requests through the in-process app with an agent's Basic credentials
and an ``xts`` taken from the fake clock. After each test using ``world``, the ledger audit
must come back clean.

``services`` is redefined here (same contract as tests/protocol/conftest.py): the database
URL is resolved in a sync fixture, because ``pg_url`` drives its own event loop and cannot
be resolved from inside an async fixture; the postgres parameter carries the ``postgres``
marker so the run's PostgreSQL summary counts it. ``http`` is redefined too: Litestar's
test client runs the app on an event loop of its own in another thread, where an asyncpg
pool made on the test's loop cannot be used, and where requests would run one at a time;
httpx's ASGI transport runs the app on the test's loop, so ``asyncio.gather`` over it is
real concurrency.

Agents:
- ``hrgag`` (client ``hrgclient``): THB, no credit limit, no ``max_amount``, a game URL;
  players ``hrgpl0001`` (100 cash + 50 free credit: the seed's example) and ``hrgpl0002`` (0).
- ``ltdag`` (client ``ltdclient``): THB, credit limit 1000, ``max_amount`` 500, no game URL;
  player ``ltdpl01`` (0).
- ``ipag`` (client ``ipclient``): THB, only callable from 10.0.0.0/8.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from gamewallet.app import create_app
from gamewallet.core.money import UNIT
from gamewallet.protocols.hrg.schemas import xts
from gamewallet.service import admin
from gamewallet.service.common import FakeClock
from gamewallet.service.context import Services
from gamewallet.settings import Settings
from gamewallet.store import migrate, open_store
from gamewallet.store.records import ClientRecord

CREDENTIALS = {
    "hrgag": ("hrgclient", "hrg-secret"),
    "ltdag": ("ltdclient", "ltd-secret"),
    "ipag": ("ipclient", "ip-secret"),
}
GAME_URL = "https://games.example/hrg/play?ticket={token}&user={player}"


def basic(client_id: str, secret: str) -> str:
    """An ``Authorization`` header value."""
    return "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()


@dataclass
class World:
    """The seeded agents, by name."""

    agents: dict[str, ClientRecord] = field(default_factory=dict)


async def seed(services: Services, now_ms: int) -> World:
    """Create the agents and players described in the module docstring."""
    world = World()
    specs: list[tuple[str, int | None, Mapping[str, Any]]] = [
        ("hrgag", None, {"game_url": GAME_URL}),
        ("ltdag", 1000 * UNIT, {"max_amount": 500 * UNIT}),
        ("ipag", None, {"allow_ips": ["10.0.0.0/8"], "game_url": GAME_URL}),
    ]
    for name, credit_limit, config in specs:
        client_id, secret = CREDENTIALS[name]
        new = admin.NewClient("hrg", name, client_id, secret, "THB", credit_limit, config)
        world.agents[name] = await services.store.run(
            admin.create_client(new, now_ms, services.key)
        )
    players = [
        ("hrgag", "hrgpl0001", 100 * UNIT, 50 * UNIT),
        ("hrgag", "hrgpl0002", 0, 0),
        ("ltdag", "ltdpl01", 0, 0),
    ]
    for agent, user, cash, free in players:
        await services.store.run(
            admin.create_player(
                world.agents[agent], user, "THB", user, cash, now_ms, free_minor=free
            )
        )
    await services.clients.reload()
    return world


@dataclass
class Api:
    """Calls ``POST /api/<name>`` as an agent, with a current ``xts`` unless told otherwise."""

    http: httpx.AsyncClient
    clock: FakeClock
    agent: str = "hrgag"

    def headers(
        self,
        *,
        agent: str | None = None,
        authorization: str | None = "",
        xts_header: str | None = "",
    ) -> dict[str, str]:
        """Headers of a call; ``None`` leaves a header out, ``""`` means the default."""
        out: dict[str, str] = {"Content-Type": "application/json"}
        if authorization == "":
            authorization = basic(*CREDENTIALS[agent or self.agent])
        if authorization is not None:
            out["Authorization"] = authorization
        if xts_header == "":
            xts_header = xts(self.clock.now_ms())
        if xts_header is not None:
            out["xts"] = xts_header
        return out

    async def call(
        self, name: str, body: Mapping[str, Any] | bytes, **headers: Any
    ) -> tuple[int, Any, bytes]:
        """Send one request; returns (HTTP status, decoded JSON, raw body)."""
        content = body if isinstance(body, bytes) else _json(body)
        response = await self.http.post(
            f"/api/{name}", content=content, headers=self.headers(**headers)
        )
        return response.status_code, response.json(), response.content


def _json(body: Mapping[str, Any]) -> bytes:
    return json.dumps(body).encode()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh database of each real store (PostgreSQL: migrated by the test)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/gw.db"
    url: str = request.getfixturevalue("pg_url")
    return url


@pytest.fixture
async def services(database_url: str, clock: FakeClock) -> AsyncIterator[Services]:
    """Started services on ``database_url``."""
    if database_url.startswith("postgresql"):
        await asyncio.to_thread(migrate.upgrade, database_url)
    settings = Settings(database_url=database_url, client_cache_ttl_s=0.0)
    started = Services(settings, open_store(database_url), clock)
    await started.start()
    try:
        yield started
    finally:
        await started.close()


@pytest.fixture
async def http(services: Services) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client of the whole app, running on the test's event loop."""
    app: Any = create_app(services, manage_store=False)  # Litestar's ASGI types are narrower
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://hrg.test") as client:
        yield client


@pytest.fixture
async def world(services: Services, clock: FakeClock) -> AsyncIterator[World]:
    """The seeded agents; the audit must be clean when the test ends."""
    seeded = await seed(services, clock.now_ms())
    yield seeded
    assert await services.store.run(admin.audit()) == []


@pytest.fixture
def api(http: httpx.AsyncClient, clock: FakeClock, world: World) -> Api:
    """A caller of the HRG API as agent ``hrgag``."""
    return Api(http, clock)
