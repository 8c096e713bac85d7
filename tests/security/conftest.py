"""Fixtures of the security tests: started services on SQLite and PostgreSQL, the test world
(two clients of each protocol), and in-process HTTP clients of the whole app.

``make_http`` builds a client whose requests appear to come from a chosen peer address (the
ASGI ``client``), which is how the allowlist tests play a stranger and a trusted proxy.
Settings can be changed per test with ``@pytest.mark.settings(name=value, ...)``.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.security.world import World, build_world

from gamewallet.app import create_app
from gamewallet.service.common import FakeClock
from gamewallet.service.context import Services
from gamewallet.settings import Settings
from gamewallet.store import migrate, open_store

MakeHttp = Callable[..., httpx.AsyncClient]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "settings(**values): Settings fields for this test")
    config.addinivalue_line("markers", "world_config(**by_client): extra client config entries")


@pytest.fixture
def clock() -> FakeClock:
    """A clock the tests move by hand."""
    return FakeClock()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh database of each real store."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/gw.db"
    url: str = request.getfixturevalue("pg_url")
    return url


@pytest.fixture
async def services(
    request: pytest.FixtureRequest, database_url: str, clock: FakeClock
) -> AsyncIterator[Services]:
    """Started services (migrated), with the test's ``settings`` marker applied."""
    await asyncio.to_thread(migrate.upgrade, database_url)
    marker = request.node.get_closest_marker("settings")
    overrides: dict[str, Any] = dict(marker.kwargs) if marker else {}
    settings = dataclasses.replace(
        Settings(database_url=database_url, client_cache_ttl_s=0.0), **overrides
    )
    svc = Services(settings, open_store(database_url), clock)
    await svc.start()
    try:
        yield svc
    finally:
        await svc.close()


@pytest.fixture
async def world(request: pytest.FixtureRequest, services: Services) -> World:
    """Two clients of each protocol (with the test's ``world_config`` marker applied)."""
    marker = request.node.get_closest_marker("world_config")
    config: dict[str, dict[str, Any]] = dict(marker.kwargs) if marker else {}
    made = await build_world(services.store, services.clock, services.key, config=config)
    await services.clients.reload()
    return made


@pytest.fixture
async def make_http(services: Services, world: World) -> AsyncIterator[MakeHttp]:
    """Builds in-process HTTP clients of the app, each from a chosen peer address."""
    app: Any = create_app(services, manage_store=False)
    made: list[httpx.AsyncClient] = []

    def make(peer: str = "127.0.0.1") -> httpx.AsyncClient:
        transport = httpx.ASGITransport(app=app, client=(peer, 40000))
        client = httpx.AsyncClient(transport=transport, base_url="http://testserver")
        made.append(client)
        return client

    yield make
    for client in made:
        await client.aclose()


@pytest.fixture
def http(make_http: MakeHttp) -> httpx.AsyncClient:
    """An in-process HTTP client from 127.0.0.1."""
    return make_http()
