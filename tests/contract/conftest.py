"""The store contract: one suite that every Store adapter must pass.

``store`` is parametrized over ``memory``, ``sqlite`` and ``postgres``; each test gets a
fresh, started, empty store and the adapter is closed afterwards. An adapter that cannot be
imported yet is skipped with its reason; PostgreSQL comes from the top-level ``pg_url``
fixture (a fresh empty database, or a skip when no server is available) and its schema is
applied here with the migrations, as the installer would.

``client`` and ``player`` are a seamless client (4 shards, no credit limit) and one of its
EUR players, for tests that need something to post against.
"""

from __future__ import annotations

import asyncio
import importlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from gamewallet.store import ops
from gamewallet.store.port import Store, do
from gamewallet.store.records import ClientRecord, PlayerRecord

NOW_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z

STORE_KINDS = [
    "memory",
    "sqlite",
    pytest.param("postgres", marks=pytest.mark.postgres),
]


def _require(module: str) -> None:
    """Skip this parameter (only) while its adapter does not exist yet."""
    try:
        importlib.import_module(module)
    except ImportError as error:
        pytest.skip(f"{module} is not importable yet: {error}")


@pytest.fixture(params=STORE_KINDS)
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of an empty database for the store under test.

    Sync on purpose: ``pg_url`` drives its own event loop, which cannot run inside the one
    pytest-asyncio runs async fixtures on, so it is resolved here, lazily, and only for the
    postgres parameter.
    """
    kind: str = request.param
    if kind == "memory":
        return "memory://"
    if kind == "sqlite":
        _require("gamewallet.store.sqlite")
        return f"sqlite:///{tmp_path}/gw.db"
    _require("gamewallet.store.postgres")
    url: str = request.getfixturevalue("pg_url")
    return url


@pytest.fixture
async def store(store_url: str) -> AsyncIterator[Store]:
    """A started, empty store of each kind; closed after the test."""
    instance: Store
    if store_url.startswith("memory:"):
        from gamewallet.store.memory import MemoryStore

        instance = MemoryStore()
    elif store_url.startswith("sqlite:"):
        from gamewallet.store.sqlite import SqliteStore

        instance = SqliteStore(store_url)  # start() applies the migrations itself
    else:
        from gamewallet.store import migrate
        from gamewallet.store.postgres import PostgresStore

        await asyncio.to_thread(migrate.upgrade, store_url)
        instance = PostgresStore(store_url)
    await instance.start()
    try:
        yield instance
    finally:
        await instance.close()


@pytest.fixture
async def client(store: Store) -> ClientRecord:
    """A seamless client with 4 account shards and no credit limit."""
    record = await store.run(
        do(
            ops.InsertClient(
                protocol="seamless",
                name="acme",
                username="acme-user",
                secret_hash="hash",
                currency=None,
                credit_limit_minor=None,
                shards=4,
                config={"callback_url": "https://acme.example/cb"},
                now_ms=NOW_MS,
            )
        )
    )
    assert record is not None
    return record


@pytest.fixture
async def player(store: Store, client: ClientRecord) -> PlayerRecord:
    """A EUR player of ``client`` with empty accounts."""
    record = await store.run(do(ops.InsertPlayer(client.id, "p-1", "EUR", "Alice", NOW_MS)))
    assert record is not None
    return record
