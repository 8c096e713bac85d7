"""Fixtures for the worker tests: a real wallet and a game side, each on its own database.

``db_kind`` runs every test that uses these fixtures on SQLite and on PostgreSQL; ``wallet``
(see :mod:`tests.worker.support`) and ``game_store`` get separate databases of that kind, so
the game's tables are never the wallet's. Time is one :class:`FakeClock` both sides share.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from tests.worker.support import Wallet, extra_database, make_wallet

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


@pytest.fixture
def game_db(db_kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[str]:
    """A migrated, empty database for the game side (never the wallet's)."""
    if db_kind == "sqlite":
        yield f"sqlite:///{tmp_path}/game.db"
        return
    admin_url: str = request.getfixturevalue("pg_admin_url")
    with extra_database(admin_url) as url:
        yield url


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Count the PostgreSQL half of ``db_kind`` as PostgreSQL tests (see tests/conftest.py)."""
    for item in items:
        callspec = getattr(item, "callspec", None)
        if callspec is not None and callspec.params.get("db_kind") == "postgres":
            item.add_marker(pytest.mark.postgres)


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
