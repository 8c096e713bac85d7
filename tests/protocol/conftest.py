"""Fixtures for protocol tests: a started ``Services`` on SQLite or PostgreSQL, and an
in-process HTTP client of the full ASGI app.

``services`` is parametrized over the real stores, so every golden case runs on both
SQLite and PostgreSQL. Time is a :class:`FakeClock` the test moves by hand.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from litestar.testing import AsyncTestClient

from gamewallet.app import create_app
from gamewallet.service.common import FakeClock
from gamewallet.service.context import Services
from gamewallet.settings import Settings
from gamewallet.store import migrate, open_store


@pytest.fixture
def clock() -> FakeClock:
    """A clock at 2026-01-01T00:00:00Z that tests advance by hand."""
    return FakeClock()


@pytest.fixture(params=["sqlite", "postgres"])
async def services(
    request: pytest.FixtureRequest, tmp_path: object, clock: FakeClock
) -> AsyncIterator[Services]:
    """Started services on a fresh database of each real store."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path}/gw.db"
    else:
        url = request.getfixturevalue("pg_url")
        await asyncio.to_thread(migrate.upgrade, url)
    settings = Settings(database_url=url, client_cache_ttl_s=0.0)
    svc = Services(settings, open_store(url), clock)
    await svc.start()
    try:
        yield svc
    finally:
        await svc.close()


@pytest.fixture
async def http(services: Services) -> AsyncIterator[AsyncTestClient[object]]:
    """An in-process HTTP client of the whole app (the store is already started)."""
    app = create_app(services, manage_store=False)
    async with AsyncTestClient(app=app) as client:  # type: ignore[arg-type]
        yield client
