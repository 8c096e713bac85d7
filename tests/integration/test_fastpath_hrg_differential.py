"""HRG transfers on the PostgreSQL fast path against the generic path: same answers, same ledger.

As for seamless (test_fastpath_differential.py): one migrated database, two mirrored HRG agents,
one served by the fast path (``gw_hrg_transfer_v1``) and one by the generic use cases. Random
deposits and withdraws (partial and all, cash and free credit, reused and fresh transaction
codes, unknown users, amounts over the limits, a credit limit) go to both; every answer and
every balance, operation row and stored response must be identical, and the audit clean.
"""

from __future__ import annotations

import asyncio
import dataclasses
import random
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import asyncpg
import pytest
from tests.integration.batch_rounds import check_round, group_commit_store, player_key
from tests.integration.hrg_calls import (
    CURRENCY,
    STEPS,
    USERS,
    answer,
    random_call,
)

from gamewallet.core.money import format_minor
from gamewallet.service import admin, hrg
from gamewallet.service.common import FakeClock
from gamewallet.store import migrate, pg_fastpath
from gamewallet.store.pg_fastpath import FastPostgresStore
from gamewallet.store.records import ClientRecord


@dataclass
class Agent:
    store: FastPostgresStore
    client: ClientRecord


async def _agent(store: FastPostgresStore, name: str, clock: FakeClock) -> Agent:
    new = admin.NewClient(
        "hrg", name, f"{name}-id", "pw", CURRENCY, 2_600_000, {"max_amount": 50_000_000}
    )
    client = await store.run(admin.create_client(new, clock.now_ms(), b"k" * 32))
    for index, user in enumerate(USERS):
        cash, free = (index + 1) * 400_000, index * 100_000
        await store.run(hrg.create_user(client, user, cash, free, clock.now_ms()))
    return Agent(store, client)


@pytest.fixture
async def agents(pg_url: str) -> AsyncIterator[tuple[Agent, Agent, FakeClock]]:
    await asyncio.to_thread(migrate.upgrade, pg_url)
    clock = FakeClock()
    fast = FastPostgresStore(pg_url, fastpath=True)
    slow = FastPostgresStore(pg_url, fastpath=False)
    await fast.start()
    await slow.start()
    try:
        assert fast.fastpath_hrg, "migration 0005 should provide gw_hrg_transfer_v1"
        yield await _agent(fast, "fastag", clock), await _agent(slow, "slowag", clock), clock
    finally:
        await fast.close()
        await slow.close()


async def _state(agent: Agent) -> dict[str, Any]:
    pool = agent.store._pool
    assert pool is not None
    cid = agent.client.id
    balances = await pool.fetch(
        "SELECT p.external_id, a.bucket, a.posted_minor, a.held_minor, a.pending_minor"
        " FROM players p JOIN accounts a ON a.owner_kind = 'player' AND a.owner_id = p.id"
        " WHERE p.client_id = $1 ORDER BY 1, 2",
        cid,
    )
    client_totals = await pool.fetch(
        "SELECT bucket, sum(posted_minor) FROM accounts"
        " WHERE owner_kind = 'client' AND owner_id = $1 GROUP BY bucket ORDER BY bucket",
        cid,
    )
    operations = await pool.fetch(
        "SELECT o.ext_id, o.kind, p.external_id, o.amount_minor, o.free_minor, o.state,"
        " o.detail,"
        " (SELECT count(*) FROM postings s WHERE s.operation_id = o.id)"
        " FROM operations o JOIN players p ON p.id = o.player_id"
        " WHERE o.client_id = $1 AND o.ns = 'wire' ORDER BY o.ext_id",
        cid,
    )
    stored = await pool.fetch(
        "SELECT key, fingerprint, response FROM idempotency WHERE client_id = $1 ORDER BY key",
        cid,
    )
    return {
        "balances": [tuple(r) for r in balances],
        "client": [tuple(r) for r in client_totals],
        "operations": [tuple(r) for r in operations],
        "stored": [(r[0], r[1], bytes(r[2]).replace(b"fastag", b"AG").replace(b"slowag", b"AG"))
                   for r in stored],
    }  # fmt: skip


def _same(fast: tuple[Any, ...], slow: tuple[Any, ...]) -> bool:
    """Answers of the two agents match once each agent's own name is left out."""
    if fast[0] == "ok" and slow[0] == "ok":
        return bytes(fast[1]).replace(b"fastag", b"AG") == bytes(slow[1]).replace(b"slowag", b"AG")
    return fast == slow


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_random_transfers_answer_alike(
    agents: tuple[Agent, Agent, FakeClock], seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    fast, slow, clock = agents
    taken: list[str] = []
    real = pg_fastpath.hrg_arguments

    def counting(request: Any) -> tuple[Any, ...]:
        taken.append(request.kind)
        return real(request)

    monkeypatch.setattr(pg_fastpath, "hrg_arguments", counting)
    rng = random.Random(seed)
    used: list[dict[str, Any]] = []
    outcomes: set[str] = set()
    for step in range(STEPS):
        clock.advance(1)
        call = random_call(rng, used)
        used.append(call)
        got_fast = await answer(fast, call, clock.now_ms())
        got_slow = await answer(slow, call, clock.now_ms())
        assert _same(got_fast, got_slow), f"step {step}: {call}: {got_fast} / {got_slow}"
        outcomes.add("ok" if got_fast[0] == "ok" else str(got_fast[1]))
    assert len(taken) >= STEPS - 10, "the fast store must have used its function"
    assert await _state(fast) == await _state(slow)
    assert await fast.store.run(admin.audit()) == []
    assert {
        "ok",
        "ID_REUSED",
        "INSUFFICIENT_FUNDS",
        "LIMIT_EXCEEDED",
        "CREDIT_LIMIT_EXCEEDED",
        "PLAYER_NOT_FOUND",
    } <= outcomes, outcomes


@pytest.mark.parametrize("seed", [4, 5])
async def test_concurrent_rounds_through_group_commit_answer_alike(
    agents: tuple[Agent, Agent, FakeClock], pg_url: str, seed: int
) -> None:
    """Random rounds of concurrent transfers, batched on the fast side (group commit)."""
    fast, slow, clock = agents
    async with group_commit_store(pg_url, fast.client.id, calls_min=STEPS // 2) as (batching, ids):
        fast = dataclasses.replace(fast, store=batching)
        rng = random.Random(seed)
        used: list[dict[str, Any]] = []
        outcomes: set[str] = set()

        def key(call: dict[str, Any]) -> tuple[int, ...]:
            return player_key(ids.get(call["user"]), fast.client.shards)

        for _ in range(STEPS // 4):
            clock.advance(1)
            calls = [random_call(rng, used) for _ in range(rng.randint(1, 8))]
            used.extend(calls)
            now = clock.now_ms()
            got = await check_round(
                batching,
                calls,
                lambda call: answer(fast, call, now),  # noqa: B023 - awaited in this round
                lambda call: answer(slow, call, now),  # noqa: B023
                key,
                _same,
            )
            outcomes.update(str(a[1]) if a[0] == "error" else "ok" for a in got)
        assert await _state(fast) == await _state(slow)
        assert await fast.store.run(admin.audit()) == []
        assert {"ok", "ID_REUSED", "INSUFFICIENT_FUNDS", "CREDIT_LIMIT_EXCEEDED"} <= outcomes


async def test_a_replay_after_the_purge_is_rebuilt_from_the_operation(
    agents: tuple[Agent, Agent, FakeClock],
) -> None:
    fast, slow, clock = agents
    call = {"kind": hrg.KIND_WITHDRAW, "user": "u1", "code": "p1", "all": False}
    call |= {"cash": 30_000, "free": 20_000}
    first = [await answer(a, call, clock.now_ms()) for a in (fast, slow)]
    for agent in (fast, slow):
        pool = agent.store._pool
        assert pool is not None
        await pool.execute("DELETE FROM idempotency WHERE client_id = $1", agent.client.id)
    again = [await answer(a, call, clock.now_ms()) for a in (fast, slow)]
    assert first[0] == again[0]
    assert _same(again[0], again[1])
    other = {**call, "cash": 40_000}
    assert await answer(fast, other, clock.now_ms()) == (
        "error",
        "ID_REUSED",
        "transaction id reused with different content",
    )


async def test_sql_format_minor1_matches_python(pg_url: str) -> None:
    await asyncio.to_thread(migrate.upgrade, pg_url)
    values = [0, 1, 5, -5, 10_000, -1_500_000, 123_456_789, 10**15, -(10**15)]
    values += [random.Random(3).randrange(-(10**15), 10**15) for _ in range(200)]
    conn = await asyncpg.connect(pg_url)
    try:
        rows = await conn.fetch("SELECT v, gw_format_minor1(v) FROM unnest($1::bigint[]) v", values)
    finally:
        await conn.close()
    assert {r[0]: r[1] for r in rows} == {v: format_minor(v, min_fraction_digits=1) for v in values}
