"""Seamless test world: clients, players and sessions seeded through the service layer.

``world`` seeds, on the ``services`` store (SQLite and PostgreSQL), everything the seamless
tests use, and ``wallet`` sends requests through the in-process app with a client's Basic
credentials. After each test using ``world`` the ledger audit must come back clean.

``database_url``, ``services`` and ``http`` come from tests/protocol/conftest.py (every test
runs on SQLite and PostgreSQL; the app runs on the test's own event loop, so
``asyncio.gather`` over ``http`` is real concurrency); ``http_client`` makes another client of
the same app for tests that need one with other settings.

Clients (user / password):
- ``game`` (``gameuser`` / ``game-secret``): no limits, a game URL, a payment secret (the
  vendor's example key). Players (all XAG unless said): ``p1`` 52030 (the seed's example:
  withdraw 230 and confirm → 51800), ``p2`` 100, ``blocked`` 1000 (blocked), ``eur`` 10 EUR.
- ``limited`` (``ltduser`` / ``ltd-secret``): ``max_amount`` 1000, ``max_balance`` 60000;
  player ``q1`` 52030 XAG.
- ``other`` (``otheruser`` / ``other-secret``): player ``o1`` 10 XAG.
- ``walled`` (``walluser`` / ``wall-secret``): only callable from 10.0.0.0/8.

Token placeholders (``$name`` in golden bodies): ``$token`` (p1), ``$token_p2``,
``$token_blocked``, ``$token_eur``, ``$token_q1``, ``$token_o1`` (another client's player),
``$expired`` (p1's session that has expired), ``$expired_p2``, ``$expired_blocked``.
"""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from gamewallet.app import create_app
from gamewallet.core.money import UNIT
from gamewallet.service import admin, seamless
from gamewallet.service.common import FakeClock
from gamewallet.service.context import Services
from gamewallet.store import ops
from gamewallet.store.port import do
from gamewallet.store.records import ClientRecord, OperationRecord, PlayerRecord

CREDENTIALS = {
    "game": ("gameuser", "game-secret"),
    "limited": ("ltduser", "ltd-secret"),
    "other": ("otheruser", "other-secret"),
    "walled": ("walluser", "wall-secret"),
}
GAME_URL = "https://games.example/mm/launch?token={token}&player={player}"
PAYMENT_SECRET = "MKiLHWZvGPTq2258"
SESSION_TTL_S = 4 * 3600
EXPIRING_TTL_S = 60

CLIENTS: dict[str, Mapping[str, Any]] = {
    "game": {
        "game_url": GAME_URL,
        "payment_secret": PAYMENT_SECRET,
        "payment_callback_url": "https://games.example/mm/payment/callback",
    },
    "limited": {
        "max_amount": 1000 * UNIT,
        "max_balance": 60000 * UNIT,
        "payment_secret": PAYMENT_SECRET,
    },
    "other": {},
    "walled": {"allow_ips": ["10.0.0.0/8"]},
}
#: (client, player, currency, balance in units, blocked)
PLAYERS = [
    ("game", "p1", "XAG", 52030, False),
    ("game", "p2", "XAG", 100, False),
    ("game", "blocked", "XAG", 1000, True),
    ("game", "eur", "EUR", 10, False),
    ("limited", "q1", "XAG", 52030, False),
    ("other", "o1", "XAG", 10, False),
    ("walled", "w1", "XAG", 10, False),
]
TOKENS = {
    "$token": ("game", "p1"),
    "$token_p2": ("game", "p2"),
    "$token_blocked": ("game", "blocked"),
    "$token_eur": ("game", "eur"),
    "$token_q1": ("limited", "q1"),
    "$token_o1": ("other", "o1"),
    "$token_w1": ("walled", "w1"),
}
EXPIRED = {
    "$expired": ("game", "p1"),
    "$expired_p2": ("game", "p2"),
    "$expired_blocked": ("game", "blocked"),
}


def basic(user: str, password: str) -> str:
    """An ``Authorization`` header value."""
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


@dataclass
class World:
    """The seeded clients, players and session tokens."""

    services: Services
    clock: FakeClock
    clients: dict[str, ClientRecord] = field(default_factory=dict)
    players: dict[str, PlayerRecord] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)
    client_of: dict[str, str] = field(default_factory=dict)  # player -> client name

    async def session(self, player: str, ttl_s: int = SESSION_TTL_S) -> str:
        """A new session token for ``player``."""
        client = self.clients[self.client_of[player]]
        opened = await self.services.store.run(
            seamless.open_game_session(client, player, ttl_s, self.clock.now_ms())
        )
        return opened.token

    async def available(self, player: str) -> int:
        """The available balance of ``player`` in minor units."""
        record = await self.services.store.run(do(ops.GetPlayer(player_id=self.players[player].id)))
        assert record is not None
        return record.cash.balance.available_minor

    async def player(self, player: str) -> PlayerRecord:
        """The current record of ``player``."""
        record = await self.services.store.run(do(ops.GetPlayer(player_id=self.players[player].id)))
        assert record is not None
        return record

    async def operation(self, ext_id: str, client: str = "game") -> OperationRecord | None:
        """The wire operation ``ext_id`` of ``client``."""
        return await self.services.store.run(
            do(ops.GetOperation(client_id=self.clients[client].id, ns="wire", ext_id=ext_id))
        )

    async def audit(self) -> list[str]:
        """The ledger audit (empty = clean)."""
        return await self.services.store.run(admin.audit())


async def seed(services: Services, clock: FakeClock) -> World:
    """Create the clients, players and tokens described in the module docstring."""
    world = World(services, clock)
    now = clock.now_ms()
    for name, config in CLIENTS.items():
        user, password = CREDENTIALS[name]
        new = admin.NewClient("seamless", name, user, password, config=config)
        world.clients[name] = await services.store.run(admin.create_client(new, now, services.key))
    for client, external_id, currency, units, blocked in PLAYERS:
        record = world.clients[client]
        player = await services.store.run(
            admin.create_player(
                record, external_id, currency, f"Nick {external_id}", units * UNIT, now
            )
        )
        if blocked:
            player = await services.store.run(admin.set_blocked(record, external_id, True))
        world.players[external_id] = player
        world.client_of[external_id] = client
    await services.clients.reload()
    for placeholder, (client, external_id) in EXPIRED.items():
        opened = await services.store.run(
            seamless.open_game_session(world.clients[client], external_id, EXPIRING_TTL_S, now)
        )
        world.tokens[placeholder] = opened.token
    clock.advance(EXPIRING_TTL_S + 1)  # the $expired tokens are now expired
    for placeholder, (client, external_id) in TOKENS.items():
        opened = await services.store.run(
            seamless.open_game_session(
                world.clients[client], external_id, SESSION_TTL_S, clock.now_ms()
            )
        )
        world.tokens[placeholder] = opened.token
    return world


def http_client(services: Services) -> httpx.AsyncClient:
    """An HTTP client of the whole app on the current event loop."""
    app: Any = create_app(services, manage_store=False)  # Litestar's ASGI types are narrower
    transport = httpx.ASGITransport(app=app)
    return httpx.AsyncClient(transport=transport, base_url="http://wallet.test")


@pytest.fixture
async def world(services: Services, clock: FakeClock) -> AsyncIterator[World]:
    """The seeded world; the ledger audit must be clean after the test."""
    seeded = await seed(services, clock)
    yield seeded
    assert await seeded.audit() == []


@dataclass
class Wallet:
    """Calls ``POST /wallet/<endpoint>`` as a client."""

    http: httpx.AsyncClient
    world: World
    client: str = "game"

    def fill(self, value: Any) -> Any:
        """``value`` with every ``$token`` placeholder replaced by its token."""
        if isinstance(value, str):
            for placeholder in sorted(self.world.tokens, key=len, reverse=True):
                value = value.replace(placeholder, self.world.tokens[placeholder])
            return value
        if isinstance(value, dict):
            return {k: self.fill(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.fill(v) for v in value]
        return value

    async def post(
        self,
        endpoint: str,
        body: Mapping[str, Any] | bytes | str,
        *,
        client: str | None = None,
        authorization: str | None = "",
        headers: Mapping[str, str] | None = None,
    ) -> tuple[int, bytes]:
        """Send one request (placeholders filled in); returns (HTTP status, raw body).

        ``authorization`` "" means the client's own credentials, None no header at all.
        """
        if isinstance(body, bytes):
            content = body
        elif isinstance(body, str):
            content = self.fill(body).encode()
        else:
            content = json.dumps(self.fill(dict(body))).encode()
        sent: dict[str, str] = {"Content-Type": "application/json", **(headers or {})}
        if authorization == "":
            authorization = basic(*CREDENTIALS[client or self.client])
        if authorization is not None:
            sent["Authorization"] = authorization
        response = await self.http.post(f"/wallet/{endpoint}", content=content, headers=sent)
        return response.status_code, response.content

    async def ok(
        self, endpoint: str, body: Mapping[str, Any] | bytes | str, **kwargs: Any
    ) -> dict[str, Any]:
        """Send a request that must succeed; returns the decoded answer."""
        status, raw = await self.post(endpoint, body, **kwargs)
        answer: dict[str, Any] = json.loads(raw)
        assert status == 200, raw
        assert "errorCode" not in answer, answer
        return answer

    async def code(
        self, endpoint: str, body: Mapping[str, Any] | bytes | str, **kwargs: Any
    ) -> int:
        """Send a request that must be refused; returns its errorCode."""
        status, raw = await self.post(endpoint, body, **kwargs)
        assert status == 200, raw
        code: int = json.loads(raw)["errorCode"]
        return code


@pytest.fixture
def wallet(http: httpx.AsyncClient, world: World) -> Wallet:
    """A caller with the ``game`` client's credentials."""
    return Wallet(http, world)
