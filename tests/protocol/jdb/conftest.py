"""Fixtures of the JDB protocol tests, on SQLite and PostgreSQL (see caller.py for the domains).

``services`` and ``http`` are redefined here: the database URL is resolved in a sync fixture
(``pg_url`` drives its own event loop), and the app runs on the test's own loop through httpx's
ASGI transport, so ``asyncio.gather`` over ``http`` is real concurrency. After every test using
``jdb`` the ledger audit must be clean.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from tests.protocol.jdb.caller import Jdb, create_domains, start_services

from gamewallet.app import create_app
from gamewallet.service.common import FakeClock
from gamewallet.service.context import Services


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh database of each real store. Sync, because ``pg_url`` runs its own event loop."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/gw.db"
    url: str = request.getfixturevalue("pg_url")
    return url


@pytest.fixture
async def services(database_url: str, clock: FakeClock) -> AsyncIterator[Services]:
    """Started services on a fresh database (overrides tests/protocol/conftest.py, whose async
    fixture cannot resolve ``pg_url``)."""
    started = await start_services(database_url, clock)
    try:
        yield started
    finally:
        await started.close()


@pytest.fixture
async def http(services: Services) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client of the whole app on the test's own event loop (httpx's ASGI transport):
    ``asyncio.gather`` over it is real concurrency, and the peer address is 127.0.0.1."""
    app = create_app(services, manage_store=False)
    # Litestar types its ASGI callable more narrowly than httpx expects; it is a valid ASGI app.
    transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url="http://jdb.test") as client:
        yield client


@pytest.fixture
async def jdb(services: Services, http: httpx.AsyncClient, clock: FakeClock) -> AsyncIterator[Jdb]:
    """A protocol caller with the test domains created; the ledger must audit clean after."""
    caller = Jdb(http, services, clock)
    caller.clients = await create_domains(services, clock)
    yield caller
    assert await caller.audit() == []
