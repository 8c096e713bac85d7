"""The PostgreSQL fast path against the generic path: same answers, same ledger.

One migrated database holds two mirrored worlds: client ``fast`` is served by a
:class:`FastPostgresStore` with its fast path on, client ``slow`` by the same store class with
it off (the generic use case, statement by statement). Each has the same players, sessions and
limits. A random sequence of seamless calls (reused ids, wrong amounts and currencies, expired
and unknown tokens, blocked players, clock jumps past the replay window, credit limits) is
applied to both; every answer (bytes, or error code and detail) must be identical, and so must
every balance, operation, stored response and the audit at the end.
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

from gamewallet.core.errors import WalletError
from gamewallet.core.states import Call
from gamewallet.protocols.seamless.routes import _render_tx
from gamewallet.service import admin, seamless
from gamewallet.service.common import FakeClock
from gamewallet.store import migrate, pg_fastpath
from gamewallet.store.pg_fastpath import FastPostgresStore
from gamewallet.store.records import ClientRecord

PLAYERS = ("alice", "bob", "carol")
CURRENCY = "EUR"
RETENTION_S = 600
STEPS = 400
ENDPOINTS = (
    ("withdraw", seamless.KIND_WITHDRAW, Call.OPEN),
    ("confirmWithdrawal", seamless.KIND_WITHDRAW, Call.CONFIRM),
    ("rollbackWithdrawal", seamless.KIND_WITHDRAW, Call.ROLLBACK),
    ("deposit", seamless.KIND_DEPOSIT, Call.OPEN),
    ("confirmDeposit", seamless.KIND_DEPOSIT, Call.CONFIRM),
    ("rollbackDeposit", seamless.KIND_DEPOSIT, Call.ROLLBACK),
)
AMOUNTS = (10_000, 25_000, 10_000, 2_500_000, 60_000_000)  # the last two hit 106 and 111


@dataclass
class World:
    """One client's side: its store, record, and the tokens of its players."""

    store: FastPostgresStore
    client: ClientRecord
    tokens: dict[str, str]
    expired: dict[str, str]


async def _world(
    store: FastPostgresStore, name: str, clock: FakeClock, credit_limit: int | None
) -> World:
    config = {"max_amount": 50_000_000, "max_balance": 3_000_000_000}
    new = admin.NewClient("seamless", name, name, "pw", None, credit_limit, config)
    client = await store.run(admin.create_client(new, clock.now_ms(), b"k" * 32))
    tokens, expired = {}, {}
    for index, player in enumerate(PLAYERS):
        balance = (index + 1) * 1_000_000
        await store.run(
            admin.create_player(client, player, CURRENCY, player, balance, clock.now_ms())
        )
        session, _ = await store.run(admin.open_session(client, player, 3600, clock.now_ms()))
        old, _ = await store.run(admin.open_session(client, player, 1, clock.now_ms()))
        tokens[player], expired[player] = session.token, old.token
    return World(store, client, tokens, expired)


@pytest.fixture
async def worlds(pg_url: str) -> AsyncIterator[tuple[World, World, FakeClock]]:
    await asyncio.to_thread(migrate.upgrade, pg_url)
    clock = FakeClock()
    fast = FastPostgresStore(pg_url, fastpath=True)
    slow = FastPostgresStore(pg_url, fastpath=False)
    await fast.start()
    await slow.start()
    try:
        assert fast.fastpath, "migration 0005 should provide the fast-path function"
        assert not slow.fastpath
        limit = 6_100_000  # the funding takes 6_000_000: confirmDeposit soon hits it
        yield (
            await _world(fast, "fast", clock, limit),
            await _world(slow, "slow", clock, limit),
            clock,
        )
    finally:
        await fast.close()
        await slow.close()


async def _answer(world: World, call: dict[str, Any], now_ms: int) -> tuple[Any, ...]:
    player = call["player"]
    if call["token"] == "unknown":
        token = "no-such-token"
    elif call["token"] == "expired":
        token = world.expired[player]
    else:
        token = world.tokens[player]
    wallet_call = seamless.WalletCall(
        world.client,
        call["endpoint"],
        call["kind"],
        call["call"],
        token,
        call["ext_id"],
        call["amount"],
        call["currency"],
        call["note"],
    )
    try:
        body = await world.store.run(
            seamless.wallet_call(wallet_call, now_ms, RETENTION_S, _render_tx)
        )
    except WalletError as exc:
        return ("error", exc.code.name, exc.detail)
    return ("ok", body)


def _random_call(rng: random.Random, opened: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """A random call; most confirms and rollbacks follow an earlier open of the same id."""
    endpoint, kind, call = rng.choice(ENDPOINTS)
    if call is not Call.OPEN and opened and rng.random() < 0.7:
        ext_id = rng.choice(sorted(opened))
        kind = opened[ext_id]["kind"]
        endpoint, _, _ = next(e for e in ENDPOINTS if e[1] == kind and e[2] is call)
        return {
            **opened[ext_id],
            "endpoint": endpoint,
            "call": call,
            "token": "live" if rng.random() < 0.9 else "expired",
            "amount": opened[ext_id]["amount"] if call is Call.CONFIRM else None,
            "currency": CURRENCY if call is Call.CONFIRM else None,
            "note": "late" if call is Call.ROLLBACK and rng.random() < 0.5 else None,
        }
    opening = call is not Call.ROLLBACK
    note = None
    if call is Call.OPEN and rng.random() < 0.3:
        note = rng.choice(["spin", 'quote " and \\ slash', "ünïcode"])
    if call is Call.ROLLBACK and rng.random() < 0.5:
        note = rng.choice(["timeout", "game crashed", "«reason»"])
    return {
        "endpoint": endpoint,
        "kind": kind,
        "call": call,
        "player": rng.choice(PLAYERS),
        "token": rng.choices(["live", "expired", "unknown"], [0.85, 0.12, 0.03])[0],
        "ext_id": rng.choice(sorted(opened))
        if opened and rng.random() < 0.3
        else f"t{rng.randrange(500)}",
        "amount": rng.choice(AMOUNTS) if opening else None,
        "currency": (CURRENCY if rng.random() < 0.95 else "USD") if opening else None,
        "note": note,
    }


async def _state(world: World) -> dict[str, Any]:
    """Everything a client's calls can have changed, keyed so that both worlds compare."""
    pool = world.store._pool
    assert pool is not None
    cid = world.client.id
    balances = await pool.fetch(
        "SELECT p.external_id, a.bucket, a.posted_minor, a.held_minor, a.pending_minor"
        " FROM players p JOIN accounts a ON a.owner_kind = 'player' AND a.owner_id = p.id"
        " WHERE p.client_id = $1 ORDER BY 1, 2",
        cid,
    )
    client_total = await pool.fetchval(
        "SELECT coalesce(sum(posted_minor), 0) FROM accounts"
        " WHERE owner_kind = 'client' AND owner_id = $1",
        cid,
    )
    operations = await pool.fetch(
        "SELECT o.ns, o.ext_id, o.kind, p.external_id, o.amount_minor, o.state, o.detail,"
        " o.updated_at_ms, (SELECT count(*) FROM postings s WHERE s.operation_id = o.id)"
        " FROM operations o JOIN players p ON p.id = o.player_id"
        " WHERE o.client_id = $1 AND o.ns = 'wire' ORDER BY o.ext_id",
        cid,
    )
    stored = await pool.fetch(
        "SELECT scope, key, response, created_at_ms FROM idempotency WHERE client_id = $1"
        " ORDER BY scope, key",
        cid,
    )
    return {
        "balances": [tuple(r) for r in balances],
        "client_total": client_total,
        "operations": [tuple(r) for r in operations],
        "stored": [tuple(r) for r in stored],
    }


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_random_sequences_answer_alike(
    worlds: tuple[World, World, FakeClock], seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    fast, slow, clock = worlds
    taken = []
    real_arguments = pg_fastpath.call_arguments

    def counting(request: Any) -> tuple[Any, ...]:
        taken.append(request.endpoint)
        return real_arguments(request)

    monkeypatch.setattr(pg_fastpath, "call_arguments", counting)
    rng = random.Random(seed)
    outcomes: set[tuple[str, str]] = set()
    opened: dict[str, dict[str, Any]] = {}
    for step in range(STEPS):
        if rng.random() < 0.03:
            clock.advance(rng.choice([5, RETENTION_S]))  # sessions expire, replays age out
        if rng.random() < 0.02:
            who, blocked = rng.choice(PLAYERS), rng.random() < 0.5
            for world in (fast, slow):
                await world.store.run(admin.set_blocked(world.client, who, blocked))
        call = _random_call(rng, opened)
        if call["call"] is Call.OPEN:
            opened[call["ext_id"]] = call
        now = clock.now_ms()
        got_fast = await _answer(fast, call, now)
        got_slow = await _answer(slow, call, now)
        assert got_fast == got_slow, f"step {step}: {call}"
        outcomes.add((call["endpoint"], str(got_fast[1]) if got_fast[0] == "error" else "ok"))
    assert len(taken) >= STEPS - 20, "the fast store must have used its function"
    assert await _state(fast) == await _state(slow)
    assert await fast.store.run(admin.audit()) == []
    # The random walk reached refusals and successes of every endpoint.
    assert {e for e, o in outcomes if o == "ok"} == {e for e, _, _ in ENDPOINTS}, outcomes
    assert len({o for _, o in outcomes}) >= 8, sorted(outcomes)


@pytest.mark.parametrize("seed", [4, 5])
async def test_concurrent_rounds_through_group_commit_answer_alike(
    worlds: tuple[World, World, FakeClock], pg_url: str, seed: int
) -> None:
    """Random rounds of concurrent calls, batched on the fast side (group commit)."""
    fast, slow, clock = worlds
    async with group_commit_store(pg_url, fast.client.id, calls_min=STEPS // 2) as (batching, ids):
        fast = dataclasses.replace(fast, store=batching)
        rng = random.Random(seed)
        opened: dict[str, dict[str, Any]] = {}
        outcomes: set[str] = set()
        for _ in range(STEPS // 4):
            if rng.random() < 0.05:
                clock.advance(rng.choice([5, RETENTION_S]))
            if rng.random() < 0.03:
                who, blocked = rng.choice(PLAYERS), rng.random() < 0.5
                for world in (fast, slow):
                    await world.store.run(admin.set_blocked(world.client, who, blocked))
            calls = []
            for _ in range(rng.randint(1, 8)):
                call = _random_call(rng, opened)
                if call["call"] is Call.OPEN:
                    opened[call["ext_id"]] = call
                calls.append(call)
            now = clock.now_ms()

            def key(call: dict[str, Any]) -> tuple[int, ...]:
                known = call["token"] != "unknown"
                return player_key(ids[call["player"]] if known else None, fast.client.shards)

            got = await check_round(
                batching,
                calls,
                lambda call: _answer(fast, call, now),  # noqa: B023 - awaited in this round
                lambda call: _answer(slow, call, now),  # noqa: B023
                key,
            )
            outcomes.update(a[1] if a[0] == "error" else "ok" for a in got)
        assert await _state(fast) == await _state(slow)
        assert await fast.store.run(admin.audit()) == []
        assert {"ok", "ID_REUSED", "INSUFFICIENT_FUNDS", "NOT_FOUND"} <= outcomes, outcomes


async def test_concurrent_identical_withdraws_apply_once(
    worlds: tuple[World, World, FakeClock],
) -> None:
    fast, _, clock = worlds
    call = {
        "endpoint": "withdraw",
        "kind": seamless.KIND_WITHDRAW,
        "call": Call.OPEN,
        "player": "alice",
        "token": "live",
        "ext_id": "same",
        "amount": 10_000,
        "currency": CURRENCY,
        "note": None,
    }
    answers = await asyncio.gather(*(_answer(fast, call, clock.now_ms()) for _ in range(8)))
    assert len(set(answers)) == 1
    assert answers[0][0] == "ok"
    pool = fast.store._pool
    assert pool is not None
    held = await pool.fetchval(
        "SELECT a.held_minor FROM accounts a JOIN players p ON a.owner_id = p.id"
        " WHERE a.owner_kind = 'player' AND a.bucket = 'cash' AND p.external_id = 'alice'"
        " AND p.client_id = $1",
        fast.client.id,
    )
    assert held == 10_000


async def test_sql_format_minor_matches_python(pg_url: str) -> None:
    from gamewallet.core.money import format_minor

    await asyncio.to_thread(migrate.upgrade, pg_url)
    values = [0, 1, 5, 10, 9_999, 10_000, 10_001, 123_456_789, 51_569_5000, -2_500, -10_000]
    values += [random.Random(7).randrange(-(10**15), 10**15) for _ in range(200)]
    conn = await asyncpg.connect(pg_url)
    try:
        rows = await conn.fetch("SELECT v, gw_format_minor(v) FROM unnest($1::bigint[]) v", values)
    finally:
        await conn.close()
    assert {r[0]: r[1] for r in rows} == {v: format_minor(v) for v in values}
