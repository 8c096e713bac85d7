"""Group commit on one hot player: a batch runs in one subtransaction (migration 0009), and
the fast-path functions look rows up by index even on a table planned as empty.

Every call of a batch on the same player locks and updates the same account rows. With one
subtransaction per call (migration 0007's batch functions) each of those updates was made by
another transaction id than the lock or update before it, so PostgreSQL stored a multixact in
the row's ``xmax``, and every later read of the row resolved it. ``gw_seamless_batch_v2``
runs the whole batch in one subtransaction: the row keeps a plain transaction id. A call that
raises makes the batch run again with one subtransaction per call, without a trace of the
first try: every effect is applied exactly once.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

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
from gamewallet.core.states import Call
from gamewallet.protocols.seamless.routes import _render_tx
from gamewallet.service import admin, seamless
from gamewallet.service.common import FakeClock
from gamewallet.store.fastpath import FastOffer
from gamewallet.store.pg_fastpath import _BATCH, _CALL, FastPostgresStore, call_arguments
from gamewallet.store.port import StoreError
from gamewallet.store.records import ClientRecord

CURRENCY = "EUR"
FUNDS = 1_000_000_000
HOT = "hot"


@dataclass
class Site:
    one: FastPostgresStore
    two: FastPostgresStore
    client: ClientRecord
    token: str
    clock: FakeClock
    url: str


@pytest.fixture
async def site(pg_url: str) -> AsyncIterator[Site]:
    clock = FakeClock()
    async with two_stores(pg_url) as (one, two):
        config = {"max_amount": 50_000_000, "max_balance": 3_000_000_000}
        new = admin.NewClient("seamless", "op", "op", "pw", None, None, config)
        client = await one.run(admin.create_client(new, clock.now_ms(), b"k" * 32))
        await one.run(admin.create_player(client, HOT, CURRENCY, HOT, FUNDS, 0))
        session, _ = await one.run(admin.open_session(client, HOT, 3600, clock.now_ms()))
        yield Site(one, two, client, session.token, clock, pg_url)


def _withdraw(site: Site, ext_id: str, amount: int, call: Call) -> Any:
    endpoint = "withdraw" if call is Call.OPEN else "confirmWithdrawal"
    return seamless.wallet_call(
        seamless.WalletCall(
            site.client,
            endpoint,
            seamless.KIND_WITHDRAW,
            call,
            site.token,
            ext_id,
            amount,
            CURRENCY,
            None,
        ),
        site.clock.now_ms(),
        600,
        _render_tx,
    )


async def _send(store: FastPostgresStore, use_case: Any) -> tuple[Any, ...]:
    try:
        return ("ok", await store.run(use_case))
    except WalletError as exc:
        return ("error", exc.code.name)
    except StoreError as exc:
        return ("store", str(exc))


async def _cash(site: Site) -> tuple[int, int]:
    pool = site.one._pool
    assert pool is not None
    row = await pool.fetchrow(
        "SELECT a.posted_minor, a.held_minor FROM accounts a JOIN players p ON p.id = a.owner_id"
        " WHERE a.owner_kind = 'player' AND a.bucket = 'cash' AND p.external_id = $1",
        HOT,
    )
    assert row is not None
    return row[0], row[1]


async def _wave(site: Site, keys: list[str], call: Call) -> list[tuple[Any, ...]]:
    """One call per key at once on store one: the first alone, the others as one batch."""
    group = site.one.group
    assert group is not None
    before = group.batches
    answers = await asyncio.gather(
        *(_send(site.one, _withdraw(site, key, 10_000, call)) for key in keys)
    )
    assert group.batches == before + 1, "the wave should have been one batch"
    return answers


async def test_a_batch_on_one_player_leaves_no_multixact_on_its_rows(site: Site) -> None:
    pool = site.one._pool
    assert pool is not None
    await require_pageinspect(pool)
    keys = [f"w{n}" for n in range(12)]
    for call in (Call.OPEN, Call.CONFIRM):
        answers = await _wave(site, keys, call)
        assert {a[0] for a in answers} == {"ok"}, answers
    assert await _cash(site) == (FUNDS - 12 * 10_000, 0)
    # The live version of every row the batch wrote: the player's row, its cash account and
    # the client's shard account (posted to by every confirm).
    rows = await pool.fetch(
        "SELECT 'accounts' AS rel, a.ctid FROM accounts a JOIN players p ON p.id = a.owner_id"
        " WHERE a.owner_kind = 'player' AND a.bucket = 'cash' AND p.external_id = $1"
        " UNION ALL SELECT 'accounts', ctid FROM accounts WHERE owner_kind = 'client'"
        " AND owner_id = $2 AND posted_minor <> 0"
        " UNION ALL SELECT 'players', ctid FROM players WHERE external_id = $1",
        HOT,
        site.client.id,
    )
    assert len(rows) == 3, rows
    await assert_no_multixact(pool, rows)


async def test_two_processes_on_one_player_exact_balance(site: Site) -> None:
    rng = random.Random(11)
    amounts = {f"k{n}": rng.randrange(1, 50) * 10_000 for n in range(80)}
    for call in (Call.OPEN, Call.CONFIRM):
        # Every id sent three times, by both "processes", shuffled, all at once.
        sends = [(key, store) for key in amounts for store in (site.one, site.two, site.two)]
        rng.shuffle(sends)
        answers = await asyncio.gather(
            *(_send(store, _withdraw(site, key, amounts[key], call)) for key, store in sends)
        )
        by_key: dict[str, set[tuple[Any, ...]]] = {}
        for (key, _), answer in zip(sends, answers, strict=True):
            by_key.setdefault(key, set()).add(answer)
        assert all(len(found) == 1 for found in by_key.values()), by_key
        assert {next(iter(found))[0] for found in by_key.values()} == {"ok"}
    assert site.one.group is not None
    assert site.two.group is not None
    assert site.one.group.batched_calls + site.two.group.batched_calls > 0
    assert await _cash(site) == (FUNDS - sum(amounts.values()), 0)
    pool = site.one._pool
    assert pool is not None
    postings = await wire_postings(pool, site.client.id)
    assert postings == 2 * len(amounts)
    assert await site.one.run(admin.audit()) == []


async def test_a_raising_call_undoes_the_first_try_and_the_others_apply_once(site: Site) -> None:
    pool = site.one._pool
    assert pool is not None
    await pool.execute(FAIL_TRIGGER)
    # 'boom' sits between calls that the first try had already applied when it raised.
    keys = ["first", "a", "b", "boom", "c", "d"]
    answers = await _wave(site, keys, Call.OPEN)
    alone = await _send(site.two, _withdraw(site, "boom", 10_000, Call.OPEN))
    assert alone[0] == "store"
    assert answers[keys.index("boom")] == alone
    assert all(a[0] == "ok" for k, a in zip(keys, answers, strict=True) if k != "boom")
    assert await _cash(site) == (FUNDS, 10_000 * (len(keys) - 1))
    confirmed = await _wave(site, [k for k in keys if k != "boom"], Call.CONFIRM)
    assert {a[0] for a in confirmed} == {"ok"}
    assert await _cash(site) == (FUNDS - 10_000 * (len(keys) - 1), 0)
    operations = await pool.fetchval(
        "SELECT count(*) FROM operations WHERE client_id = $1 AND ns = 'wire'", site.client.id
    )
    assert operations == len(keys) - 1
    assert await site.one.run(admin.audit()) == []


async def test_the_fast_path_uses_indexes_on_tables_vacuumed_empty(site: Site) -> None:
    # A new database whose empty tables were vacuumed (reltuples = 0): a plan made now would
    # scan idempotency and operations sequentially, and a pooled connection keeps its plan
    # while the tables grow.
    pool = site.one._pool
    assert pool is not None
    await pool.execute("VACUUM (ANALYZE) idempotency")
    await pool.execute("VACUUM (ANALYZE) operations")
    offers = [_withdraw(site, f"i{n}", 10_000, Call.OPEN) for n in range(4)]
    assert all(isinstance(offer, FastOffer) for offer in offers)
    calls = [call_arguments(offer.request) for offer in offers]
    for offer in offers:
        offer.close()
    sent = SCANS_SQL
    async with pool.acquire() as conn:
        for args in calls[:1]:  # alone
            async with conn.transaction():
                row = await conn.fetchrow(_CALL, *args)
                assert row is not None
                assert row["o_status"] == "ok", row
                scans = await conn.fetchrow(sent)
            assert scans is not None
            assert (scans[0], scans[1] > 0) == (0, True), "the per-call function scanned a table"
        async with conn.transaction():  # a batch of the others
            rows = await conn.fetch(
                _BATCH, *[list(column) for column in zip(*calls[1:], strict=True)]
            )
            assert [r["o_status"] for r in rows] == ["ok"] * 3, rows
            scans = await conn.fetchrow(sent)
        assert scans is not None
        assert (scans[0], scans[1] > 0) == (0, True), "the batch function scanned a table"
    assert await _cash(site) == (FUNDS, 4 * 10_000)
