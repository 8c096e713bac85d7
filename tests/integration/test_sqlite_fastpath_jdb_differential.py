"""JDB action 19 on the SQLite fast path against the generic path: same results, same rows.

As for seamless and HRG (test_sqlite_fastpath_differential.py): two real SQLite files set up
alike, one store with its fast path on, one with it off. Random deposits, withdrawals and
cash-outs (reused and fresh serial numbers, unknown, suspended, locked and closed players,
players in a game or just out of one, amounts over the limits, a credit limit on one shard or
several) go to both; every result (the whole TransferResult, operation ids included) or
refusal must be identical, then every row of every ledger table and a clean audit.
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from tests.integration.sqlite_twins import dump, with_shards

from gamewallet.core.errors import WalletError
from gamewallet.service import admin, jdb
from gamewallet.service.common import FakeClock
from gamewallet.store import ops, sqlite_fastpath
from gamewallet.store.port import do
from gamewallet.store.records import ClientRecord
from gamewallet.store.sqlite import SqliteStore

UIDS = ("j0", "j1", "j2")
CURRENCY = "THB"
STEPS = 400
AMOUNTS = (10_000, 25_000, 2_000_000, 10**9 * 10_000)  # the last is a 9-digit overflow


@dataclass
class Domain:
    store: SqliteStore
    path: Path
    client: ClientRecord


async def _domain(
    path: Path, fast: bool, clock: FakeClock, credit_limit: int | None, shards: int
) -> Domain:
    store = SqliteStore(f"sqlite:///{path}", fast_path=fast)
    await store.start()
    config = {"parent": "ag", "aes_key": "k" * 16, "aes_iv": "i" * 16}
    new = admin.NewClient("jdb", "dom", None, None, CURRENCY, credit_limit, config)
    client = await store.run(admin.create_client(new, clock.now_ms(), b"k" * 32))
    client = with_shards(path, client, shards)
    for index, uid in enumerate(UIDS):
        balance = (index + 1) * 900_000
        await store.run(admin.create_player(client, uid, CURRENCY, uid, balance, clock.now_ms()))
    return Domain(store, path, client)


# Without a credit limit, the 16 shards are created one by one as players use them (and all
# at once by the agent's balance), which the fast path must do in the same order.
@pytest.fixture(params=[(5_600_000, 1), (5_600_000, 3), (None, 16)], ids=str)
async def domains(
    tmp_path: Path, request: pytest.FixtureRequest
) -> AsyncIterator[tuple[Domain, Domain, FakeClock]]:
    clock = FakeClock()
    fast = await _domain(tmp_path / "fast.db", True, clock, *request.param)
    slow = await _domain(tmp_path / "slow.db", False, clock, *request.param)
    try:
        yield fast, slow, clock
    finally:
        await fast.store.close()
        await slow.store.close()


async def _answer(domain: Domain, call: dict[str, Any], now_ms: int) -> tuple[Any, ...]:
    req = jdb.TransferRequest(
        call["uid"], call["serial"], call["amount"], call["all"], call["remark"]
    )
    try:
        return ("ok", await domain.store.run(jdb.transfer(domain.client, req, now_ms)))
    except WalletError as exc:
        return ("error", exc.code.name, exc.detail)


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
        "remark": rng.choice(["", "bonus", 'a "quoted" ré']),
    }


@pytest.mark.parametrize("seed", [1, 2])
async def test_random_transfers_answer_and_write_alike(
    domains: tuple[Domain, Domain, FakeClock], seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    fast, slow, clock = domains
    answered: list[bool] = []
    real = sqlite_fastpath.SqliteFastPath.jdb_transfer

    def counting(self: sqlite_fastpath.SqliteFastPath, r: Any) -> Any:
        try:
            result = real(self, r)
        except WalletError:
            answered.append(True)
            raise
        answered.append(result is not sqlite_fastpath.DECLINE)
        return result

    monkeypatch.setattr(sqlite_fastpath.SqliteFastPath, "jdb_transfer", counting)
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
        if step % 20 == 0:  # rows, not only answers: a later generic call could mask a gap
            assert dump(fast.path) == dump(slow.path), f"step {step}: {call}"
    assert len(answered) == STEPS
    assert sum(answered) >= STEPS - 40, "the fast path must have answered most calls itself"
    assert await fast.store.run(admin.audit()) == []
    assert dump(fast.path) == dump(slow.path)
    expected = {"ok", "ALREADY_COMPLETED", "INSUFFICIENT_FUNDS", "LIMIT_EXCEEDED"}
    expected |= {"PLAYER_BLOCKED", "PLAYER_IN_GAME", "PLAYER_NOT_FOUND"}
    if fast.client.credit_limit_minor is not None:
        expected.add("CREDIT_LIMIT_EXCEEDED")
    assert expected <= outcomes, outcomes


async def test_agent_balance_is_one_aggregate_once_every_shard_exists(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The agent's balance is counted and summed by SQLite; the shard rows are listed (to
    create the missing ones) only while some are missing."""
    clock = FakeClock()
    fast = await _domain(tmp_path / "fast.db", True, clock, None, 16)
    try:
        first = await fast.store.run(
            jdb.transfer(
                fast.client, jdb.TransferRequest("j0", "s1", 10_000, False, ""), clock.now_ms()
            )
        )
        listed: list[tuple[int, str, str]] = []
        served: list[object] = []
        real_list = sqlite_fastpath.SqliteFastPath._client_shards
        real_transfer = sqlite_fastpath.SqliteFastPath.jdb_transfer

        def listing(
            self: sqlite_fastpath.SqliteFastPath, key: tuple[int, str, str], shards: int
        ) -> list[tuple[int, int]]:
            listed.append(key)
            return real_list(self, key, shards)

        def transfer(self: sqlite_fastpath.SqliteFastPath, r: Any) -> Any:
            result = real_transfer(self, r)
            served.append(result)
            return result

        monkeypatch.setattr(sqlite_fastpath.SqliteFastPath, "_client_shards", listing)
        monkeypatch.setattr(sqlite_fastpath.SqliteFastPath, "jdb_transfer", transfer)
        second = await fast.store.run(
            jdb.transfer(
                fast.client, jdb.TransferRequest("j1", "s2", 25_000, False, ""), clock.now_ms()
            )
        )
        assert len(served) == 1
        assert served[0] is not sqlite_fastpath.DECLINE, "the fast path should have run it"
        assert listed == []
        assert second.agent_balance_minor == first.agent_balance_minor - 25_000
        rows = dump(fast.path)
        assert len([r for r in rows["accounts"] if r[1] == "client"]) == 16
    finally:
        await fast.store.close()
