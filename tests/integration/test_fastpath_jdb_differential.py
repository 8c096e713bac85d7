"""JDB action 19 on the PostgreSQL fast path against the generic path: same results, same ledger.

As for seamless and HRG: one migrated database, two mirrored JDB domains, one served by
``gw_jdb_transfer_v2`` (migration 0008) and one by the generic use case. Random deposits,
withdrawals and cash-outs (reused and fresh serial numbers, unknown, suspended, locked and
closed players, players in a game or just out of one, amounts over the limits, a credit
limit) go to both;
every result (the operation but its ids, the balances, the agent's balance) or refusal must be
identical, and so must the ledger and the audit at the end.
"""

from __future__ import annotations

import asyncio
import dataclasses
import random
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
from tests.integration.batch_rounds import check_round, group_commit_store, player_key

from gamewallet.core.errors import WalletError
from gamewallet.service import admin, jdb
from gamewallet.service.common import FakeClock
from gamewallet.store import migrate, ops, pg_fastpath
from gamewallet.store.pg_fastpath import FastPostgresStore
from gamewallet.store.port import do
from gamewallet.store.records import ClientRecord

UIDS = ("j0", "j1", "j2")
CURRENCY = "THB"
STEPS = 400
AMOUNTS = (10_000, 25_000, 2_000_000, 10**9 * 10_000)  # the last is a 9-digit overflow


@dataclass
class Domain:
    store: FastPostgresStore
    client: ClientRecord


async def _domain(store: FastPostgresStore, name: str, clock: FakeClock) -> Domain:
    config = {"parent": "ag", "aes_key": "k" * 16, "aes_iv": "i" * 16}
    new = admin.NewClient("jdb", name, None, None, CURRENCY, 5_600_000, config)
    client = await store.run(admin.create_client(new, clock.now_ms(), b"k" * 32))
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
        assert fast.fastpath_jdb, "migration 0008 should provide gw_jdb_transfer_v2"
        yield await _domain(fast, "fd", clock), await _domain(slow, "sd", clock), clock
    finally:
        await fast.close()
        await slow.close()


async def _answer(domain: Domain, call: dict[str, Any], now_ms: int) -> tuple[Any, ...]:
    req = jdb.TransferRequest(
        call["uid"], call["serial"], call["amount"], call["all"], call["remark"]
    )
    try:
        done = await domain.store.run(jdb.transfer(domain.client, req, now_ms))
    except WalletError as exc:
        return ("error", exc.code.name, exc.detail)
    op = done.operation
    return (
        "ok",
        (op.ns, op.ext_id, op.kind, op.currency, op.amount_minor, op.free_minor, op.state),
        (op.created_at_ms, op.updated_at_ms, dict(op.detail)),
        done.signed_minor,
        done.user_balance_minor,
        done.agent_balance_minor,
    )


async def _set_player(domain: Domain, uid: str, changes: dict[str, Any]) -> None:
    player = await domain.store.run(admin.get_player(domain.client, uid))
    await domain.store.run(do(ops.UpdatePlayer(player.id, changes)))


def _random_call(rng: random.Random) -> dict[str, Any]:
    all_out = rng.random() < 0.1
    amount = None if all_out else rng.choice(AMOUNTS) * rng.choice([1, -1, -1])
    return {
        "uid": rng.choice(UIDS) if rng.random() < 0.95 else "ghost",
        "serial": f"s{rng.randrange(300)}" if rng.random() < 0.9 else f"s{rng.randrange(4)}",
        "amount": amount,
        "all": all_out,
        "remark": rng.choice(["", "bonus", 'a "quoted" remark'[:15]]),
    }


async def _state(domain: Domain) -> dict[str, Any]:
    pool = domain.store._pool
    assert pool is not None
    cid = domain.client.id
    balances = await pool.fetch(
        "SELECT p.external_id, a.bucket, a.posted_minor, a.held_minor FROM players p"
        " JOIN accounts a ON a.owner_kind = 'player' AND a.owner_id = p.id"
        " WHERE p.client_id = $1 ORDER BY 1, 2",
        cid,
    )
    agent = await pool.fetchval(
        "SELECT sum(posted_minor) FROM accounts WHERE owner_kind = 'client' AND owner_id = $1",
        cid,
    )
    operations = await pool.fetch(
        "SELECT o.ext_id, o.kind, o.amount_minor, o.state, o.detail, o.created_at_ms,"
        " (SELECT count(*) FROM postings s WHERE s.operation_id = o.id)"
        " FROM operations o WHERE o.client_id = $1 AND o.ns = 'wire' ORDER BY o.ext_id",
        cid,
    )
    return {
        "balances": [tuple(r) for r in balances],
        "agent": agent,
        "operations": [tuple(r) for r in operations],
    }


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_random_transfers_answer_alike(
    domains: tuple[Domain, Domain, FakeClock], seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    fast, slow, clock = domains
    taken: list[str] = []
    real = pg_fastpath.jdb_arguments

    def counting(request: Any) -> tuple[Any, ...]:
        taken.append(request.serial_no)
        return real(request)

    monkeypatch.setattr(pg_fastpath, "jdb_arguments", counting)
    rng = random.Random(seed)
    outcomes: set[str] = set()
    for step in range(STEPS):
        clock.advance(rng.choice([0.5, 1, 3]))
        if rng.random() < 0.04:  # flags and games change now and then, on both sides alike
            uid = rng.choice(UIDS)
            changes: dict[str, Any] = rng.choice(
                [
                    {"blocked": rng.random() < 0.5},
                    {"locked": rng.random() < 0.3},
                    {"closed": rng.random() < 0.2},
                    {"game_type": "18:1", "game_since_ms": clock.now_ms()},
                    {
                        "game_type": None,
                        "game_left_at_ms": clock.now_ms(),
                        "game_left_type": rng.choice(["18:1", "7:2", "0:5"]),
                    },
                ]
            )
            for domain in (fast, slow):
                await _set_player(domain, uid, changes)
        call = _random_call(rng)
        got_fast = await _answer(fast, call, clock.now_ms())
        got_slow = await _answer(slow, call, clock.now_ms())
        assert got_fast == got_slow, f"step {step}: {call}"
        outcomes.add("ok" if got_fast[0] == "ok" else str(got_fast[1]))
    assert len(taken) >= STEPS - 10, "the fast store must have used its function"
    assert await _state(fast) == await _state(slow)
    assert await fast.store.run(admin.audit()) == []
    expected = {"ok", "ALREADY_COMPLETED", "INSUFFICIENT_FUNDS", "LIMIT_EXCEEDED"}
    expected |= {"CREDIT_LIMIT_EXCEEDED", "PLAYER_BLOCKED", "PLAYER_IN_GAME", "PLAYER_NOT_FOUND"}
    assert expected <= outcomes, outcomes


@pytest.mark.parametrize("seed", [4, 5])
async def test_concurrent_rounds_through_group_commit_answer_alike(
    domains: tuple[Domain, Domain, FakeClock], pg_url: str, seed: int
) -> None:
    """Random rounds of concurrent transfers, batched on the fast side (group commit).

    Players never leave a game here: within the cooldown a call goes to the generic path
    after the batch, out of the batch's order (a valid order, but not this test's).
    """
    fast, slow, clock = domains
    async with group_commit_store(pg_url, fast.client.id, calls_min=STEPS // 2) as (batching, ids):
        fast = dataclasses.replace(fast, store=batching)
        rng = random.Random(seed)
        outcomes: set[str] = set()

        def key(call: dict[str, Any]) -> tuple[int, ...]:
            return player_key(ids.get(call["uid"]), fast.client.shards)

        for _ in range(STEPS // 4):
            clock.advance(rng.choice([0.5, 1, 3]))
            if rng.random() < 0.08:
                uid = rng.choice(UIDS)
                changes: dict[str, Any] = rng.choice(
                    [
                        {"blocked": rng.random() < 0.5},
                        {"locked": rng.random() < 0.3},
                        {"closed": rng.random() < 0.2},
                        {"game_type": rng.choice(["18:1", None])},
                    ]
                )
                for domain in (fast, slow):
                    await _set_player(domain, uid, changes)
            calls = [_random_call(rng) for _ in range(rng.randint(1, 8))]
            now = clock.now_ms()
            got = await check_round(
                batching,
                calls,
                lambda call: _answer(fast, call, now),  # noqa: B023 - awaited in this round
                lambda call: _answer(slow, call, now),  # noqa: B023
                key,
            )
            outcomes.update(str(a[1]) if a[0] == "error" else "ok" for a in got)
        assert await _state(fast) == await _state(slow)
        assert await fast.store.run(admin.audit()) == []
        assert {
            "ok",
            "ALREADY_COMPLETED",
            "INSUFFICIENT_FUNDS",
            "CREDIT_LIMIT_EXCEEDED",
        } <= outcomes
