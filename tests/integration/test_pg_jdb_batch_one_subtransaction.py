"""JDB group commit on one hot player (migration 0010): ``gw_jdb_batch_v3`` runs a batch in one
subtransaction, and ``gw_jdb_transfer_v2`` looks rows up by index even on tables planned empty.

The JDB counterpart of ``test_pg_batch_one_subtransaction.py``. Every transfer of a batch on
one player locks the player's rows and updates its cash account and the agent's shard row; with
one subtransaction per call (``gw_jdb_batch_v2``) each of those row versions got a multixact in
its ``xmax``. v3 runs the batch under one transaction id; a call that raises makes the batch run
again through v2, one subtransaction per call, without a trace of the first try.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import asyncpg
import pytest
from tests.integration.pg_two_stores import (
    FAIL_TRIGGER,
    SCANS_SQL,
    assert_no_multixact,
    require_pageinspect,
    two_stores,
    wire_postings,
)

from gamewallet.core.errors import WalletError
from gamewallet.service import admin, jdb
from gamewallet.service.common import FakeClock
from gamewallet.store import migrate
from gamewallet.store.fastpath import FastOffer, JdbRequest
from gamewallet.store.pg_fastpath import (
    _JDB_BATCH,
    _JDB_CALL,
    BATCH_FUNCTIONS,
    FastPostgresStore,
    jdb_arguments,
)
from gamewallet.store.port import StoreError
from gamewallet.store.records import ClientRecord

CURRENCY = "THB"
FUNDS = 900_000_000
HOT = "hot"
AMOUNT = 10_000


@dataclass
class Site:
    one: FastPostgresStore
    two: FastPostgresStore
    client: ClientRecord
    clock: FakeClock


@pytest.fixture
async def site(pg_url: str) -> AsyncIterator[Site]:
    clock = FakeClock()
    async with two_stores(pg_url) as (one, two):
        assert "gw_jdb_batch_v3" in BATCH_FUNCTIONS
        assert one.fastpath_jdb
        config = {"parent": "ag", "aes_key": "k" * 16, "aes_iv": "i" * 16}
        new = admin.NewClient("jdb", "agent", None, None, CURRENCY, None, config)
        client = await one.run(admin.create_client(new, clock.now_ms(), b"k" * 32))
        await one.run(admin.create_player(client, HOT, CURRENCY, HOT, FUNDS, clock.now_ms()))
        yield Site(one, two, client, clock)


def _transfer(site: Site, serial: str, amount: int) -> Any:
    request = jdb.TransferRequest(HOT, serial, amount, False, "")
    return jdb.transfer(site.client, request, site.clock.now_ms())


def _arguments(site: Site, serial: str, amount: int) -> tuple[Any, ...]:
    offer = _transfer(site, serial, amount)
    assert isinstance(offer, FastOffer)
    assert isinstance(offer.request, JdbRequest)
    offer.close()
    return jdb_arguments(offer.request)


def _columns(calls: list[tuple[Any, ...]]) -> list[list[Any]]:
    return [list(column) for column in zip(*calls, strict=True)]


async def _send(store: FastPostgresStore, use_case: Any) -> tuple[Any, ...]:
    try:
        done = await store.run(use_case)
    except WalletError as exc:
        return ("error", exc.code.name)
    except StoreError as exc:
        return ("store", str(exc))
    return ("ok", done.signed_minor, done.agent_balance_minor)


def _pool(site: Site) -> asyncpg.Pool[asyncpg.Record]:
    pool = site.one._pool
    assert pool is not None
    return pool


async def _cash(site: Site) -> int:
    value: int = await _pool(site).fetchval(
        "SELECT a.posted_minor FROM accounts a JOIN players p ON p.id = a.owner_id"
        " WHERE a.owner_kind = 'player' AND a.bucket = 'cash' AND p.external_id = $1",
        HOT,
    )
    return value


async def _agent(site: Site) -> int:
    value: int = await _pool(site).fetchval(
        "SELECT sum(posted_minor) FROM accounts WHERE owner_kind = 'client' AND owner_id = $1",
        site.client.id,
    )
    return value


async def _wave(site: Site, serials: list[str], amount: int) -> list[tuple[Any, ...]]:
    """One transfer per serial at once on store one: the first alone, the others as one batch."""
    group = site.one.group
    assert group is not None
    before = group.batches
    answers = await asyncio.gather(
        *(_send(site.one, _transfer(site, serial, amount)) for serial in serials)
    )
    assert group.batches == before + 1, "the wave should have been one batch"
    return answers


async def test_a_jdb_batch_on_one_player_leaves_no_multixact_on_its_rows(site: Site) -> None:
    pool = _pool(site)
    await require_pageinspect(pool)
    serials = [f"w{n}" for n in range(12)]
    answers = await _wave(site, serials, -AMOUNT)
    assert {a[0] for a in answers} == {"ok"}, answers
    assert await _cash(site) == FUNDS - 12 * AMOUNT
    # The live version of every row the batch locked or wrote: the player's row, its cash and
    # free accounts, and the agent's shard of this player (updated by every transfer).
    rows = await pool.fetch(
        "SELECT 'accounts' AS rel, a.ctid FROM accounts a JOIN players p ON p.id = a.owner_id"
        " WHERE a.owner_kind = 'player' AND p.external_id = $1"
        " UNION ALL SELECT 'accounts', ctid FROM accounts WHERE owner_kind = 'client'"
        " AND owner_id = $2 AND shard = (SELECT id % $3 FROM players WHERE external_id = $1)"
        " UNION ALL SELECT 'players', ctid FROM players WHERE external_id = $1",
        HOT,
        site.client.id,
        site.client.shards,
    )
    assert len(rows) == 4, rows
    await assert_no_multixact(pool, rows)


async def test_two_processes_on_one_player_apply_each_serial_once(site: Site) -> None:
    rng = random.Random(13)
    amounts = {f"k{n}": rng.choice([1, -1]) * rng.randrange(1, 50) * AMOUNT for n in range(80)}
    # Every serial sent three times, by both "processes", shuffled, all at once.
    sends = [(serial, store) for serial in amounts for store in (site.one, site.two, site.two)]
    rng.shuffle(sends)
    answers = await asyncio.gather(
        *(_send(store, _transfer(site, serial, amounts[serial])) for serial, store in sends)
    )
    oks = [serial for (serial, _), a in zip(sends, answers, strict=True) if a[0] == "ok"]
    assert sorted(oks) == sorted(amounts), "each serial number applied exactly once"
    assert {a for a in answers if a[0] != "ok"} <= {
        ("error", "ALREADY_COMPLETED"),
        ("error", "IN_PROGRESS"),
    }
    assert site.one.group is not None
    assert site.two.group is not None
    assert site.one.group.batched_calls + site.two.group.batched_calls > 0
    assert await _cash(site) == FUNDS + sum(amounts.values())
    postings = await wire_postings(_pool(site), site.client.id)
    assert postings == 2 * len(amounts)
    assert await site.one.run(admin.audit()) == []


async def test_a_raising_call_undoes_the_first_try_and_the_others_apply_once(site: Site) -> None:
    pool = _pool(site)
    await pool.execute(FAIL_TRIGGER)
    agent = await _agent(site)
    # 'boom' sits between calls that the first try had already applied when it raised.
    serials = ["first", "a", "b", "boom", "c", "d"]
    answers = await _wave(site, serials, -AMOUNT)
    alone = await _send(site.two, _transfer(site, "boom", -AMOUNT))
    assert alone[0] == "store"
    assert answers[serials.index("boom")] == alone
    applied = [a for s, a in zip(serials, answers, strict=True) if s != "boom"]
    assert [a[:2] for a in applied] == [("ok", -AMOUNT)] * 5
    # Each answer's agent balance is the one after its own transfer, in order.
    assert sorted(a[2] for a in applied) == [agent + n * AMOUNT for n in range(1, 6)]
    assert await _cash(site) == FUNDS - 5 * AMOUNT
    assert await _agent(site) == agent + 5 * AMOUNT
    # The batch function itself: the first try is rolled back, the fallback answers each call.
    calls = [_arguments(site, serial, -AMOUNT) for serial in ("e", "boom", "f")]
    async with pool.acquire() as conn, conn.transaction():
        rows = await conn.fetch(_JDB_BATCH, *_columns(calls))
    assert [(r["o_index"], r["o_status"]) for r in rows] == [(1, "ok"), (2, "retry"), (3, "ok")]
    assert [r["o_agent"] for r in rows if r["o_status"] == "ok"] == [
        agent + 6 * AMOUNT,
        agent + 7 * AMOUNT,
    ]
    assert await _cash(site) == FUNDS - 7 * AMOUNT
    operations = await pool.fetch(
        "SELECT ext_id FROM operations WHERE client_id = $1 AND ns = 'wire' ORDER BY id",
        site.client.id,
    )
    assert [r["ext_id"] for r in operations] == ["first", "a", "b", "c", "d", "e", "f"]
    assert await site.one.run(admin.audit()) == []


async def test_jdb_uses_indexes_on_tables_vacuumed_empty(site: Site) -> None:
    # A new database whose empty tables were vacuumed (reltuples = 0): a plan made now would
    # scan them sequentially, and a pooled connection keeps its plan while the tables grow.
    pool = _pool(site)
    for table in ("operations", "postings", "accounts", "players"):
        await pool.execute(f"VACUUM (ANALYZE) {table}")
    calls = [_arguments(site, f"i{n}", AMOUNT) for n in range(4)]
    sent = SCANS_SQL
    # New connections: nothing planned yet in them.
    conn = await asyncpg.connect(site.one.url)
    try:
        async with conn.transaction():  # alone
            row = await conn.fetchrow(_JDB_CALL, *calls[0])
            assert row is not None
            assert row["o_status"] == "ok", row
            scans = await conn.fetchrow(sent)
        assert scans is not None
        assert (scans[0], scans[1] > 0) == (0, True), "the per-call function scanned a table"
    finally:
        await conn.close()
    conn = await asyncpg.connect(site.one.url)
    try:
        async with conn.transaction():  # a batch of the others
            rows = await conn.fetch(_JDB_BATCH, *_columns(calls[1:]))
            assert [r["o_status"] for r in rows] == ["ok"] * 3, rows
            scans = await conn.fetchrow(sent)
        assert scans is not None
        assert (scans[0], scans[1] > 0) == (0, True), "the batch function scanned a table"
    finally:
        await conn.close()
    assert await _cash(site) == FUNDS + 4 * AMOUNT


async def test_migration_0010_goes_down_and_up_again(pg_url: str) -> None:
    """Downgrading 0010 drops gw_jdb_batch_v3 and resets gw_jdb_transfer_v2's setting."""
    from alembic import command

    from gamewallet.store.migrate import alembic_config

    async def state() -> tuple[bool, bool, list[str] | None]:
        conn = await asyncpg.connect(pg_url)
        try:
            row = await conn.fetchrow(
                "SELECT to_regproc('gw_jdb_batch_v3') IS NOT NULL,"
                " to_regproc('gw_jdb_batch_v2') IS NOT NULL,"
                " (SELECT proconfig FROM pg_proc WHERE proname = 'gw_jdb_transfer_v2')"
            )
        finally:
            await conn.close()
        assert row is not None
        return row[0], row[1], row[2]

    await asyncio.to_thread(migrate.upgrade, pg_url)
    assert await state() == (True, True, ["enable_seqscan=off"])
    await asyncio.to_thread(command.downgrade, alembic_config(pg_url), "0009")
    assert await state() == (False, True, None)
    await asyncio.to_thread(migrate.upgrade, pg_url)
    assert await state() == (True, True, ["enable_seqscan=off"])
