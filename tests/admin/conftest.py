"""Back-office test world: started services on SQLite and PostgreSQL, the whole app in
process (httpx's ASGI transport), two staff users and two API tokens, and a seamless client
whose players the tests look at, adjust and block.

- users: ``olga`` (operator, password ``olga-password``), ``victor`` (viewer,
  ``victor-password``); tokens ``OPERATOR_TOKEN`` and ``VIEWER_TOKEN``;
- client ``game`` (seamless, Basic ``gameuser`` / ``game-secret``) with players ``p1``
  (100 XAG) and ``p2`` (5 XAG), and a session token for each.

After each test the ledger audit must come back clean.
"""

from __future__ import annotations

import asyncio
import base64
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from gamewallet.app import create_app
from gamewallet.core.money import UNIT
from gamewallet.service import admin, backoffice, seamless
from gamewallet.service.common import FakeClock
from gamewallet.service.context import Services
from gamewallet.settings import Settings
from gamewallet.store import migrate, open_store, ops
from gamewallet.store.port import do
from gamewallet.store.records import ClientRecord, PlayerRecord

OPERATOR = ("olga", "olga-password")
VIEWER = ("victor", "victor-password")
OPERATOR_TOKEN = "gwa_test-operator-token-0123456789"
VIEWER_TOKEN = "gwa_test-viewer-token-0123456789"
GAME = ("gameuser", "game-secret")
CSRF_INPUT = re.compile(r'name="csrf_token" value="([^"]+)"')


def basic(user: str, password: str) -> str:
    """An ``Authorization: Basic`` header value."""
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def bearer(token: str) -> dict[str, str]:
    """Headers of an API call with ``token``."""
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def clock() -> FakeClock:
    """A clock at 2026-01-01T00:00:00Z that tests advance by hand."""
    return FakeClock()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh database of each real store (PostgreSQL: migrated by ``services``)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/gw.db"
    url: str = request.getfixturevalue("pg_url")
    return url


@pytest.fixture
def settings(database_url: str) -> Settings:
    """Settings of the tests (no client cache, no dashboard cache)."""
    return Settings(database_url=database_url, client_cache_ttl_s=0.0, admin_cache_s=0.0)


@pytest.fixture
async def services(settings: Settings, clock: FakeClock) -> AsyncIterator[Services]:
    """Started services on a fresh database."""
    if settings.database_url.startswith("postgresql"):
        await asyncio.to_thread(migrate.upgrade, settings.database_url)
    started = Services(settings, open_store(settings.database_url), clock)
    await started.start()
    try:
        yield started
    finally:
        await started.close()


@dataclass
class Desk:
    """The seeded back-office world and ways to call the app."""

    services: Services
    clock: FakeClock
    http: httpx.AsyncClient
    client: ClientRecord
    players: dict[str, PlayerRecord] = field(default_factory=dict)
    sessions: dict[str, str] = field(default_factory=dict)

    async def api(
        self, method: str, path: str, *, token: str = OPERATOR_TOKEN, **kwargs: Any
    ) -> httpx.Response:
        """Call ``/admin/api<path>`` with an API token."""
        headers = {**bearer(token), **kwargs.pop("headers", {})}
        return await self.http.request(method, "/admin/api" + path, headers=headers, **kwargs)

    async def wallet(self, endpoint: str, body: dict[str, Any]) -> dict[str, Any]:
        """A seamless call by the ``game`` client; returns the JSON body."""
        response = await self.http.post(
            f"/wallet/{endpoint}", json=body, headers={"Authorization": basic(*GAME)}
        )
        assert response.status_code == 200, response.text
        data: dict[str, Any] = response.json()
        return data

    async def player(self, name: str) -> PlayerRecord:
        """The current record of a seeded player."""
        record = await self.services.store.run(do(ops.GetPlayer(player_id=self.players[name].id)))
        assert record is not None
        return record

    async def audit(self) -> list[str]:
        """The ledger audit (empty = clean)."""
        return await self.services.store.run(admin.audit())

    async def sign_in(self, user: tuple[str, str] = OPERATOR) -> str:
        """Sign in through the login form; returns the session's CSRF token (the client
        keeps the session cookie)."""
        form = await self.http.get("/admin/login")
        login_csrf = CSRF_INPUT.search(form.text)
        assert login_csrf is not None
        response = await self.http.post(
            "/admin/login",
            data={
                "username": user[0],
                "password": user[1],
                "csrf_token": login_csrf.group(1),
                "next": "/admin/",
            },
        )
        assert response.status_code == 303, response.text
        page = await self.http.get("/admin/")
        token = CSRF_INPUT.search(page.text)
        assert token is not None
        return token.group(1)


async def seed_staff(services: Services, now_ms: int) -> None:
    """The two users and the two tokens of the module docstring."""
    for (name, password), role in ((OPERATOR, "operator"), (VIEWER, "viewer")):
        digest = await asyncio.to_thread(backoffice.hash_password, password)
        await services.store.run(backoffice.create_user(name, role, digest, now_ms, actor="t"))
    for token, name, role in (
        (OPERATOR_TOKEN, "ops-script", "operator"),
        (VIEWER_TOKEN, "report-script", "viewer"),
    ):
        digest = backoffice.secret_hash(token, services.key)
        await services.store.run(backoffice.create_token(name, role, digest, now_ms, actor="t"))


@pytest.fixture
async def desk(services: Services, clock: FakeClock) -> AsyncIterator[Desk]:
    """The seeded world; the ledger audit must be clean afterwards."""
    now = clock.now_ms()
    await seed_staff(services, now)
    new = admin.NewClient("seamless", "game", *GAME, config={"game_url": "https://g/{token}"})
    client = await services.store.run(admin.create_client(new, now, services.key))
    await services.clients.reload()
    app: Any = create_app(services, manage_store=False)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://admin.test") as http:
        world = Desk(services, clock, http, client)
        for name, units in (("p1", 100), ("p2", 5)):
            world.players[name] = await services.store.run(
                admin.create_player(client, name, "XAG", f"Nick {name}", units * UNIT, now)
            )
            opened = await services.store.run(seamless.open_game_session(client, name, 3600, now))
            world.sessions[name] = opened.token
        yield world
        assert await world.audit() == []
