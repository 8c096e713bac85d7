"""The PostgreSQL test machinery itself (tests/conftest.py): a fresh migrated database per test."""

from __future__ import annotations

import asyncpg
import pytest

from gamewallet.store import migrate


async def test_pg_url_is_a_fresh_usable_database(pg_url: str) -> None:
    connection = await asyncpg.connect(pg_url)
    try:
        assert await connection.fetchval("select 1") == 1
        name = await connection.fetchval("select current_database()")
        assert name.startswith("gw_test_")
        version = await connection.fetchval("select version_num from alembic_version")
        assert version == migrate.current_head()
        assert await connection.fetchval("select count(*) from operations") == 0
    finally:
        await connection.close()


def test_pg_url_tests_get_the_postgres_marker(request: pytest.FixtureRequest, pg_url: str) -> None:
    assert request.node.get_closest_marker("postgres") is not None
    assert pg_url.startswith("postgresql://")
