"""HRG test world: agents and players seeded through the service layer, and a caller.

``world`` seeds, on the ``services`` store (SQLite and PostgreSQL), the agents every HRG test
uses; ``api`` sends requests through the in-process app with an agent's Basic credentials
and an ``xts`` taken from the fake clock. After each test using ``world``, the ledger audit
must come back clean.

``database_url``, ``services`` and ``http`` come from tests/protocol/conftest.py: every test
runs on SQLite and PostgreSQL, and the app runs on the test's own event loop, so
``asyncio.gather`` over ``http`` is real concurrency.

Agents:
- ``hrgag`` (client ``hrgclient``): THB, no credit limit, no ``max_amount``, a game URL;
  players ``hrgpl0001`` (100 cash + 50 free credit: the seed's example) and ``hrgpl0002`` (0).
- ``ltdag`` (client ``ltdclient``): THB, credit limit 1000, ``max_amount`` 500, no game URL;
  player ``ltdpl01`` (0).
- ``ipag`` (client ``ipclient``): THB, only callable from 10.0.0.0/8.
"""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from gamewallet.core.money import UNIT
from gamewallet.protocols.hrg.schemas import xts
from gamewallet.service import admin
from gamewallet.service.common import FakeClock
from gamewallet.service.context import Services
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
