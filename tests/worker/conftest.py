"""Fixtures for the worker tests: a real wallet and a game side, each on its own database.

``db_kind`` runs every test that uses these fixtures on SQLite and on PostgreSQL; ``wallet``
(see :mod:`tests.worker.support`) and ``game_store`` get separate databases of that kind, so
the game's tables are never the wallet's. Time is one :class:`FakeClock` both sides share.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest
from tests.worker.support import Wallet, make_wallet

from gamewallet.service.common import FakeClock
from gamewallet.store import migrate, open_store
from gamewallet.store.port import Store


@pytest.fixture
def clock() -> FakeClock:
    """2026-01-01T00:00:00Z, moved by hand."""
    return FakeClock()


@pytest.fixture(params=["sqlite", "postgres"])
def db_kind(request: pytest.FixtureRequest) -> str:
    """The database kind both sides of a test use."""
    kind: str = request.param
    return kind


@pytest.fixture
def wallet_db(db_kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    """A migrated, empty database for the wallet."""
    if db_kind == "sqlite":
        return f"sqlite:///{tmp_path}/wallet.db"
    url: str = request.getfixturevalue("pg_url")
    migrate.upgrade(url)
    return url


def _admin(url: str, statement: str) -> None:
    async def run() -> None:
        connection = await asyncpg.connect(url, timeout=10)
        try:
            await connection.execute(statement)
        finally:
            await connection.close()

    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(run())
    finally:
        loop.close()


@pytest.fixture
def game_db(db_kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[str]:
    """A migrated, empty database for the game side (never the wallet's)."""
    if db_kind == "sqlite":
        yield f"sqlite:///{tmp_path}/game.db"
        return
    admin_url: str = request.getfixturevalue("pg_admin_url")
    name = f"gw_game_{uuid.uuid4().hex}"
    _admin(admin_url, f'CREATE DATABASE "{name}"')
    try:
        url = urlunsplit(urlsplit(admin_url)._replace(path="/" + name))
        migrate.upgrade(url)
        yield url
    finally:
        _admin(admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
async def wallet(wallet_db: str, clock: FakeClock) -> AsyncIterator[Wallet]:
    """A started wallet with client ``game``, player ``alice`` (1000.00 EUR) and a session."""
    instance = await make_wallet(wallet_db, clock)
    try:
        yield instance
    finally:
        await instance.services.close()


@pytest.fixture
async def game_store(game_db: str) -> AsyncIterator[Store]:
    """The game's own started store."""
    store = open_store(game_db)
    await store.start()
    try:
        yield store
    finally:
        await store.close()
