"""Fixtures of the client tests: our real servers in-process, and a transport that breaks calls.

``services`` runs on SQLite and PostgreSQL (a fresh database each); the app is reached through
httpx's ASGI transport on the test's own event loop, wrapped in a :class:`Script` that the test
tells what to do with each request: pass it, *drop* its answer after the server processed it,
*lose* it before the server sees it, or answer in the server's place. Seeded: an HRG agent
``hrgag`` (THB, client ``hrgclient``) and a JDB domain ``jb`` (THB, parent ``testag``); clients
of both share the server's :class:`FakeClock`. After each test the ledger audit must be clean.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.clients.support import (
    GAME_URL,
    HRG_AGENT,
    HRG_CLIENT,
    HRG_SECRET,
    HRG_URL,
    JDB_DC,
    JDB_IV,
    JDB_KEY,
    JDB_PARENT,
    JDB_URL,
    Script,
)

from gamewallet.app import create_app
from gamewallet.clients.hrg import HrgClient
from gamewallet.clients.jdb import JdbClient
from gamewallet.service import admin
from gamewallet.service.common import FakeClock
from gamewallet.service.context import Services
from gamewallet.settings import Settings
from gamewallet.store import migrate, open_store


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh database of each real store. Sync, because ``pg_url`` runs its own event loop."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/gw.db"
    url: str = request.getfixturevalue("pg_url")
    return url


@pytest.fixture
def clock() -> FakeClock:
    """The clock of the server and of the clients."""
    return FakeClock()


@pytest.fixture
async def services(database_url: str, clock: FakeClock) -> AsyncIterator[Services]:
    """Started services with the HRG agent and the JDB domain; the audit must end clean."""
    if database_url.startswith("postgresql"):
        await asyncio.to_thread(migrate.upgrade, database_url)
    settings = Settings(database_url=database_url, client_cache_ttl_s=0.0)
    started = Services(settings, open_store(database_url), clock)
    await started.start()
    try:
        now = clock.now_ms()
        for new in (
            admin.NewClient(
                "hrg", HRG_AGENT, HRG_CLIENT, HRG_SECRET, "THB", None, {"game_url": GAME_URL}
            ),
            admin.NewClient(
                "jdb",
                JDB_DC,
                currency="THB",
                config={"parent": JDB_PARENT, "aes_key": JDB_KEY, "aes_iv": JDB_IV},
            ),
        ):
            await started.store.run(admin.create_client(new, now, started.key))
        await started.clients.reload()
        yield started
        assert await started.store.run(admin.audit()) == []
    finally:
        await started.close()


@pytest.fixture
def script(services: Services) -> Script:
    """The scripted transport in front of the in-process app."""
    app: Any = create_app(services, manage_store=False)  # Litestar's ASGI types are narrower
    return Script(httpx.ASGITransport(app=app))


@pytest.fixture
async def hrg(script: Script, clock: FakeClock) -> AsyncIterator[HrgClient]:
    """An HRG client of agent ``hrgag``."""
    client = HrgClient(
        HRG_URL,
        client_id=HRG_CLIENT,
        client_secret=HRG_SECRET,
        agent_id=HRG_AGENT,
        timeout_s=5.0,
        clock=clock,
        transport=script,
    )
    yield client
    await client.aclose()


@pytest.fixture
async def jdb(script: Script, clock: FakeClock) -> AsyncIterator[JdbClient]:
    """A JDB client of domain ``jb``."""
    client = JdbClient(
        JDB_URL,
        dc=JDB_DC,
        parent=JDB_PARENT,
        key=JDB_KEY,
        iv=JDB_IV,
        timeout_s=5.0,
        clock=clock,
        transport=script,
    )
    yield client
    await client.aclose()
