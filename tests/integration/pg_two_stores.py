"""What the PostgreSQL group-commit suites share: two group-committing stores on one migrated
database (two server processes), and the checks of the one-subtransaction batches (no
multixact on a row, scans by index, a call that raises, the postings of wallet calls)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
import pytest

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


# --- what the one-subtransaction suites check ------------------------------------------------

#: t_infomask bit of a heap tuple whose xmax is a multixact (access/htup_details.h).
HEAP_XMAX_IS_MULTI = 0x1000

#: Sequential and index scans of the transaction so far, over the user tables.
SCANS_SQL = (
    "SELECT coalesce(sum(seq_scan), 0), coalesce(sum(idx_scan), 0) FROM pg_stat_xact_user_tables"
)

#: Fails every claim of the id 'boom' (a broken invariant the functions do not expect).
FAIL_TRIGGER = """
CREATE FUNCTION gw_test_fail() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.ext_id = 'boom' THEN RAISE EXCEPTION 'boom'; END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER gw_test_fail BEFORE INSERT ON operations
    FOR EACH ROW EXECUTE FUNCTION gw_test_fail();
"""


async def require_pageinspect(pool: asyncpg.Pool) -> None:
    """Skip the test when the server has no pageinspect (contrib not installed)."""
    try:
        await pool.execute("CREATE EXTENSION IF NOT EXISTS pageinspect")
    except asyncpg.PostgresError as exc:
        pytest.skip(f"pageinspect is not available: {exc}")


async def assert_no_multixact(pool: asyncpg.Pool, rows: list[asyncpg.Record]) -> None:
    """No live row version of ``rows`` (``rel``, ``ctid``) has a multixact as its xmax."""
    for rel, (block, offset) in ((r["rel"], r["ctid"]) for r in rows):
        infomask = await pool.fetchval(
            "SELECT t_infomask FROM heap_page_items(get_raw_page($1, $2::int)) WHERE lp = $3",
            rel,
            block,
            offset,
        )
        assert infomask is not None
        assert not infomask & HEAP_XMAX_IS_MULTI, f"{rel} row {(block, offset)} has a multixact"


async def wire_postings(pool: asyncpg.Pool, client_id: int) -> int:
    """Postings of the client's wallet calls."""
    count: int = await pool.fetchval(
        "SELECT count(*) FROM postings s JOIN operations o ON o.id = s.operation_id"
        " WHERE o.client_id = $1 AND o.ns = 'wire'",
        client_id,
    )
    return count
