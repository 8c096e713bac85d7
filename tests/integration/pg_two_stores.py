"""Two group-committing PostgreSQL stores on one migrated database: two server processes, as
the group-commit suites need them."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from gamewallet.store import migrate
from gamewallet.store.pg_fastpath import FastPostgresStore


@asynccontextmanager
async def two_stores(
    pg_url: str, batch_max: int = 32
) -> AsyncIterator[tuple[FastPostgresStore, FastPostgresStore]]:
    """Migrate ``pg_url``, start two stores on it, close both on the way out."""
    await asyncio.to_thread(migrate.upgrade, pg_url)
    one = FastPostgresStore(pg_url, batch_max=batch_max)
    two = FastPostgresStore(pg_url, batch_max=batch_max)
    await one.start()
    await two.start()
    try:
        yield one, two
    finally:
        await one.close()
        await two.close()
