"""HRG transfers on the SQLite fast path against the generic path: same answers, same rows.

As for seamless (test_sqlite_fastpath_differential.py): two real SQLite files set up alike,
one store with its fast path on, one with it off. Random deposits and withdraws (partial and
all, cash and free credit, reused and fresh transaction codes, unknown users, amounts over the
limits, a credit limit on one shard or several) go to both; every answer must be identical,
then every row of every ledger table (ids included) and a clean audit.
"""

from __future__ import annotations

import random
import sqlite3
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from tests.integration.hrg_calls import (
    CURRENCY,
    STEPS,
    USERS,
    answer,
    random_call,
)
from tests.integration.sqlite_twins import dump, with_shards

from gamewallet.service import admin, hrg
from gamewallet.service.common import FakeClock
from gamewallet.store import sqlite_fastpath
from gamewallet.store.records import ClientRecord
from gamewallet.store.sqlite import SqliteStore


@dataclass
class Agent:
    store: SqliteStore
    path: Path
    client: ClientRecord


async def _agent(path: Path, fast: bool, clock: FakeClock, shards: int) -> Agent:
    store = SqliteStore(f"sqlite:///{path}", fast_path=fast)
    await store.start()
    new = admin.NewClient(
        "hrg", "agent", "agent-id", "pw", CURRENCY, 2_600_000, {"max_amount": 50_000_000}
    )
    client = await store.run(admin.create_client(new, clock.now_ms(), b"k" * 32))
    client = with_shards(path, client, shards)
    for index, user in enumerate(USERS):
        cash, free = (index + 1) * 400_000, index * 100_000
        await store.run(hrg.create_user(client, user, cash, free, clock.now_ms()))
    return Agent(store, path, client)


@pytest.fixture(params=[1, 4], ids=lambda shards: f"shards={shards}")
async def agents(
    tmp_path: Path, request: pytest.FixtureRequest
) -> AsyncIterator[tuple[Agent, Agent, FakeClock]]:
    clock = FakeClock()
    fast = await _agent(tmp_path / "fast.db", True, clock, request.param)
    slow = await _agent(tmp_path / "slow.db", False, clock, request.param)
    try:
        yield fast, slow, clock
    finally:
        await fast.store.close()
        await slow.store.close()


@pytest.mark.parametrize("seed", [1, 2])
async def test_random_transfers_answer_and_write_alike(
    agents: tuple[Agent, Agent, FakeClock], seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    fast, slow, clock = agents
    taken: list[str] = []
    real = sqlite_fastpath.SqliteFastPath.hrg_transfer

    def counting(self: sqlite_fastpath.SqliteFastPath, r: Any) -> Any:
        taken.append(r.kind)
        return real(self, r)

    monkeypatch.setattr(sqlite_fastpath.SqliteFastPath, "hrg_transfer", counting)
    rng = random.Random(seed)
    used: list[dict[str, Any]] = []
    outcomes: set[str] = set()
    for step in range(STEPS):
        clock.advance(1)
        call = random_call(rng, used)
        used.append(call)
        got_fast = await answer(fast, call, clock.now_ms())
        got_slow = await answer(slow, call, clock.now_ms())
        assert got_fast == got_slow, f"step {step}: {call}"
        outcomes.add("ok" if got_fast[0] == "ok" else str(got_fast[1]))
        if step % 20 == 0:  # rows, not only answers: a later generic call could mask a gap
            assert dump(fast.path) == dump(slow.path), f"step {step}: {call}"
    assert len(taken) == STEPS, "every call must have gone through the fast path"
    assert await fast.store.run(admin.audit()) == []
    assert dump(fast.path) == dump(slow.path)
    assert {
        "ok",
        "ID_REUSED",
        "INSUFFICIENT_FUNDS",
        "LIMIT_EXCEEDED",
        "CREDIT_LIMIT_EXCEEDED",
        "PLAYER_NOT_FOUND",
    } <= outcomes, outcomes


async def test_a_replay_after_the_purge_is_rebuilt_from_the_operation(
    agents: tuple[Agent, Agent, FakeClock],
) -> None:
    fast, slow, clock = agents
    call = {"kind": hrg.KIND_WITHDRAW, "user": "u1", "code": "p1", "all": False}
    call |= {"cash": 30_000, "free": 20_000}
    first = [await answer(a, call, clock.now_ms()) for a in (fast, slow)]
    for agent in (fast, slow):
        side = sqlite3.connect(agent.path)
        with side:
            side.execute("DELETE FROM idempotency WHERE client_id = ?", (agent.client.id,))
        side.close()
    again = [await answer(a, call, clock.now_ms()) for a in (fast, slow)]
    assert first[0] == again[0] == again[1] == first[1]
    assert first[0][0] == "ok"
    other = {**call, "cash": 40_000}
    assert await answer(fast, other, clock.now_ms()) == await answer(slow, other, clock.now_ms())
    assert (await answer(fast, other, clock.now_ms()))[1] == "ID_REUSED"


async def test_the_credit_limit_is_reached_exactly_not_passed(
    agents: tuple[Agent, Agent, FakeClock],
) -> None:
    """The agent has paid out 2_400_000 of its 2_600_000 credit: 200_000 more is allowed."""
    fast, slow, clock = agents
    deposit = {"kind": hrg.KIND_DEPOSIT, "user": "u0", "all": False, "free": 0}
    over = {**deposit, "code": "over", "cash": 200_001}
    exact = {**deposit, "code": "exact", "cash": 200_000}
    for call, expected in ((over, "error"), (exact, "ok"), ({**over, "code": "more"}, "error")):
        got = [await answer(a, call, clock.now_ms()) for a in (fast, slow)]
        assert got[0] == got[1]
        assert got[0][0] == expected, (call, got[0])
    assert dump(fast.path) == dump(slow.path)
