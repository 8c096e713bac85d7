"""Fixtures for protocol tests: a started ``Services`` on SQLite or PostgreSQL, and an
in-process HTTP client of the full ASGI app.

``database_url`` is resolved in a plain (sync) fixture, because ``pg_url`` drives an event
loop of its own and cannot be resolved inside an async fixture; its postgres parameter
carries the ``postgres`` marker so the run's PostgreSQL count includes it. ``http`` sends
requests through httpx's ASGI transport on the test's own event loop, so an asyncpg pool
made on that loop works and ``asyncio.gather`` over the client is real concurrency. Time is
a :class:`FakeClock` the test moves by hand.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from gamewallet.app import create_app
from gamewallet.service.common import FakeClock
from gamewallet.service.context import Services
from gamewallet.settings import Settings
from gamewallet.store import migrate, open_store


@pytest.fixture
def clock() -> FakeClock:
    """A clock at 2026-01-01T00:00:00Z that tests advance by hand."""
    return FakeClock()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh database of each real store (not yet migrated for PostgreSQL)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/gw.db"
    url: str = request.getfixturevalue("pg_url")
    return url


@pytest.fixture
async def services(database_url: str, clock: FakeClock) -> AsyncIterator[Services]:
    """Started services on ``database_url`` (migrated first)."""
    if database_url.startswith("postgresql"):
        await asyncio.to_thread(migrate.upgrade, database_url)
    settings = Settings(database_url=database_url, client_cache_ttl_s=0.0)
    svc = Services(settings, open_store(database_url), clock)
    await svc.start()
    try:
        yield svc
    finally:
        await svc.close()


@pytest.fixture
async def http(services: Services) -> AsyncIterator[httpx.AsyncClient]:
    """An in-process HTTP client of the whole app, on the test's event loop."""
    app: Any = create_app(services, manage_store=False)  # Litestar's ASGI types are narrower
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client
