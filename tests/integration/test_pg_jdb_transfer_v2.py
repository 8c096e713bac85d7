"""``gw_jdb_transfer_v2`` (migration 0008): what it changed against v1, pinned.

v2 reads the agent's cash shards once per call (count and sum in one scan) and creates the
missing ones only when some are missing, where v1 ran the creating ``INSERT … SELECT`` on every
call; and it updates the agent's shard row by its key instead of locking it first. The random
differential suite (``test_fastpath_jdb_differential.py``) uses an agent with a credit limit,
that is one shard; here the agent has no limit and 16 shards, only some of which exist when
the first transfer comes (the players' funding created theirs), so both branches of the
agent's balance run, and the created shards must come out as the generic path creates them.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from typing import Any

import pytest
from tests.integration.test_fastpath_jdb_differential import (
    CURRENCY,
    UIDS,
    Domain,
    _answer,
    _random_call,
    _set_player,
    _state,
)

from gamewallet.service import admin, jdb
from gamewallet.service.common import FakeClock
from gamewallet.store import migrate, pg_fastpath
from gamewallet.store.fastpath import FastOffer, JdbRequest
from gamewallet.store.pg_fastpath import FastPostgresStore, jdb_arguments

STEPS = 150
CALL = pg_fastpath._JDB_CALL  # the per-call statement the store sends


async def _unlimited_domain(
    store: FastPostgresStore, name: str, clock: FakeClock, first_player_mod: int | None = None
) -> Domain:
    """A JDB agent without a credit limit (16 shards) and its players; with
    ``first_player_mod``, player ids are first skipped until the first one is that modulo the
    shards, so that two domains' players fall on the same shard numbers."""
    config = {"parent": "ag", "aes_key": "k" * 16, "aes_iv": "i" * 16}
    new = admin.NewClient("jdb", name, None, None, CURRENCY, None, config)
    client = await store.run(admin.create_client(new, clock.now_ms(), b"k" * 32))
    assert client.credit_limit_minor is None
    assert client.shards > len(UIDS), "some shards must be missing at the first transfer"
    pool = store._pool
    assert pool is not None
    while first_player_mod is not None:
        last = await pool.fetchval("SELECT nextval(pg_get_serial_sequence('players', 'id'))")
        if (last + 1) % client.shards == first_player_mod:
            break
    for index, uid in enumerate(UIDS):
        balance = (index + 1) * 900_000
        await store.run(admin.create_player(client, uid, CURRENCY, uid, balance, clock.now_ms()))
    return Domain(store, client)


@pytest.fixture
async def domains(pg_url: str) -> AsyncIterator[tuple[Domain, Domain, FakeClock]]:
    await asyncio.to_thread(migrate.upgrade, pg_url)
    clock = FakeClock()
    fast = FastPostgresStore(pg_url, fastpath=True)
    slow = FastPostgresStore(pg_url, fastpath=False)
    await fast.start()
    await slow.start()
    try:
        assert fast.fastpath_jdb
        assert pg_fastpath.JDB_FUNCTION == "gw_jdb_transfer_v2"
        fast_domain = await _unlimited_domain(fast, "fu", clock)
        first = await _player_id(fast_domain, UIDS[0])
        slow_domain = await _unlimited_domain(slow, "su", clock, first % fast_domain.client.shards)
        assert (await _player_id(slow_domain, UIDS[0])) % slow_domain.client.shards == (
            first % fast_domain.client.shards
        )
        yield fast_domain, slow_domain, clock
    finally:
        await fast.close()
        await slow.close()


async def _player_id(domain: Domain, uid: str) -> int:
    player = await domain.store.run(admin.get_player(domain.client, uid))
    return player.id


async def _agent_shards(domain: Domain) -> list[tuple[int, int]]:
    """(shard, posted) of the agent's cash shards in the order they were created (by id)."""
    pool = domain.store._pool
    assert pool is not None
    rows = await pool.fetch(
        "SELECT shard, posted_minor FROM accounts WHERE owner_kind = 'client'"
        " AND owner_id = $1 AND bucket = 'cash' ORDER BY id",
        domain.client.id,
    )
    return [(r["shard"], r["posted_minor"]) for r in rows]


@pytest.mark.parametrize("seed", [7, 8])
async def test_sharded_agent_answers_and_shards_alike(
    domains: tuple[Domain, Domain, FakeClock], seed: int
) -> None:
    fast, slow, clock = domains
    assert await _agent_shards(fast) == await _agent_shards(slow)
    assert len(await _agent_shards(fast)) < fast.client.shards
    rng = random.Random(seed)
    outcomes: set[str] = set()
    for step in range(STEPS):
        clock.advance(rng.choice([0.5, 1, 3]))
        if rng.random() < 0.04:
            uid = rng.choice(UIDS)
            changes: dict[str, Any] = rng.choice(
                [{"blocked": rng.random() < 0.5}, {"game_type": rng.choice(["18:1", None])}]
            )
            for domain in (fast, slow):
                await _set_player(domain, uid, changes)
        call = _random_call(rng)
        got_fast = await _answer(fast, call, clock.now_ms())
        got_slow = await _answer(slow, call, clock.now_ms())
        assert got_fast == got_slow, f"step {step}: {call}"
        outcomes.add("ok" if got_fast[0] == "ok" else str(got_fast[1]))
        if step == 0 or got_fast[0] == "ok":
            # Every shard now exists, created in the generic path's order.
            assert await _agent_shards(fast) == await _agent_shards(slow)
    assert len(await _agent_shards(fast)) == fast.client.shards
    assert await _state(fast) == await _state(slow)
    assert await fast.store.run(admin.audit()) == []
    assert {"ok", "ALREADY_COMPLETED", "INSUFFICIENT_FUNDS"} <= outcomes


async def test_a_transfer_reads_the_agent_shards_once(
    domains: tuple[Domain, Domain, FakeClock],
) -> None:
    """Heap tuples of ``accounts`` fetched by one deposit once every shard exists: the
    player's two accounts (locked), the player's cash account and the agent's shard
    (updated), the same two again (the postings' foreign keys), and the agent's shards once,
    for the balance: 22 with 16 shards. v1 fetched 39 (measured): its creating insert read
    the shards again on every call, and it read the agent's shard once more to lock it."""
    fast, _, clock = domains

    def arguments(serial: str) -> tuple[Any, ...]:
        req = jdb.TransferRequest("j0", serial, 10_000, False, "")
        offer = jdb.transfer(fast.client, req, clock.now_ms())
        assert isinstance(offer, FastOffer)
        assert isinstance(offer.request, JdbRequest)
        offer.close()
        return jdb_arguments(offer.request)

    pool = fast.store._pool
    assert pool is not None
    async with pool.acquire() as conn:
        first = await conn.fetchrow(
            CALL,
            *arguments("warm"),
        )
        assert first is not None
        assert first["o_status"] == "ok"
        assert len(await _agent_shards(fast)) == fast.client.shards
        fetched = "SELECT idx_tup_fetch FROM pg_stat_xact_user_tables WHERE relname = 'accounts'"
        async with conn.transaction():
            before = await conn.fetchval(fetched)
            row = await conn.fetchrow(
                CALL,
                *arguments("measured"),
            )
            after = await conn.fetchval(fetched)
        assert row is not None
        assert row["o_status"] == "ok"
        assert row["o_agent"] == sum(posted for _, posted in await _agent_shards(fast))
    assert after - before == 2 + 2 + 2 + fast.client.shards
