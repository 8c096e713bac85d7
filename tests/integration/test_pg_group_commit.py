"""Group commit on real PostgreSQL: concurrent fast-path calls batched into one transaction.

Two :class:`FastPostgresStore` instances on one database play two server processes (two
pools, two independent batchers). Many concurrent callers on few players, with the same ids
sent several times at once by both, must give exact balances: every effect applied once, none
lost, the audit clean. A call that fails inside a batch fails alone (as it would on its own
statement) while the others commit; calls a batch could not run (deadlock victims) are run
again alone and succeed.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import asyncpg
import pytest
from tests.integration.pg_two_stores import two_stores

from gamewallet.core.errors import WalletError
from gamewallet.core.ledger import Bucket
from gamewallet.core.states import Call
from gamewallet.protocols.seamless.routes import _render_tx
from gamewallet.service import admin, jdb, seamless
from gamewallet.service.common import FakeClock
from gamewallet.store import migrate
from gamewallet.store.pg_fastpath import FastPostgresStore
from gamewallet.store.port import StoreError
from gamewallet.store.records import ClientRecord

PLAYERS = ("p0", "p1", "p2", "p3")
CURRENCY = "EUR"
FUNDS = 100_000_000  # every player can pay for every withdraw below
RETENTION_S = 600


@dataclass
class Site:
    """Two stores (two "processes") and the seamless client they serve."""

    one: FastPostgresStore
    two: FastPostgresStore
    client: ClientRecord
    tokens: dict[str, str]
    clock: FakeClock
    url: str


@pytest.fixture
async def site(pg_url: str) -> AsyncIterator[Site]:
    clock = FakeClock()
    async with two_stores(pg_url) as (one, two):
        config = {"max_amount": 50_000_000, "max_balance": 3_000_000_000}
        new = admin.NewClient("seamless", "op", "op", "pw", None, None, config)
        client = await one.run(admin.create_client(new, clock.now_ms(), b"k" * 32))
        tokens = {}
        for player in PLAYERS:
            await one.run(admin.create_player(client, player, CURRENCY, player, FUNDS, 0))
            session, _ = await one.run(admin.open_session(client, player, 3600, clock.now_ms()))
            tokens[player] = session.token
        yield Site(one, two, client, tokens, clock, pg_url)


def _withdraw(site: Site, player: str, ext_id: str, amount: int, call: Call) -> Any:
    endpoint = "withdraw" if call is Call.OPEN else "confirmWithdrawal"
    return seamless.wallet_call(
        seamless.WalletCall(
            site.client,
            endpoint,
            seamless.KIND_WITHDRAW,
            call,
            site.tokens[player],
            ext_id,
            amount,
            CURRENCY,
            None,
        ),
        site.clock.now_ms(),
        RETENTION_S,
        _render_tx,
    )


async def _send(store: FastPostgresStore, use_case: Any) -> tuple[Any, ...]:
    try:
        return ("ok", await store.run(use_case))
    except WalletError as exc:
        return ("error", exc.code.name)
    except StoreError as exc:
        return ("store", str(exc))


async def _balances(site: Site) -> dict[str, tuple[int, int]]:
    pool = site.one._pool
    assert pool is not None
    rows = await pool.fetch(
        "SELECT p.external_id, a.posted_minor, a.held_minor FROM players p JOIN accounts a"
        " ON a.owner_kind = 'player' AND a.owner_id = p.id AND a.bucket = 'cash'"
        " WHERE p.client_id = $1",
        site.client.id,
    )
    return {r[0]: (r[1], r[2]) for r in rows}


def _batched(*stores: FastPostgresStore) -> int:
    total = 0
    for store in stores:
        assert store.group is not None
        total += store.group.batched_calls
    return total


@pytest.mark.parametrize("size", [0, 65])
def test_a_batch_size_out_of_range_is_refused(size: int) -> None:
    with pytest.raises(ValueError, match="GAMEWALLET_PG_BATCH_MAX must be 1 to 64"):
        FastPostgresStore("postgresql://nowhere/db", batch_max=size)


async def test_a_lone_call_goes_alone(site: Site) -> None:
    answer = await _send(site.one, _withdraw(site, "p0", "w1", 10_000, Call.OPEN))
    assert answer[0] == "ok"
    assert site.one.group is not None
    assert site.one.group.batches == 0


async def test_two_processes_many_callers_exact_balances(site: Site) -> None:
    rng = random.Random(5)
    amounts = {f"k{n}": rng.randrange(1, 50) * 10_000 for n in range(60)}
    owner = {key: PLAYERS[n % len(PLAYERS)] for n, key in enumerate(amounts)}
    for call in (Call.OPEN, Call.CONFIRM):
        # Every id sent three times, by both "processes", in a shuffled order, all at once.
        sends = [(key, store) for key in amounts for store in (site.one, site.two, site.two)]
        rng.shuffle(sends)
        answers = await asyncio.gather(
            *(
                _send(store, _withdraw(site, owner[key], key, amounts[key], call))
                for key, store in sends
            )
        )
        by_key: dict[str, set[tuple[Any, ...]]] = {}
        for (key, _), answer in zip(sends, answers, strict=True):
            by_key.setdefault(key, set()).add(answer)
        # Identical calls get identical answers, and every one succeeded.
        assert all(len(found) == 1 for found in by_key.values()), by_key
        assert {next(iter(found))[0] for found in by_key.values()} == {"ok"}
    assert _batched(site.one, site.two) > 0, "the calls should have been batched"
    balances = await _balances(site)
    for player in PLAYERS:
        paid = sum(amounts[key] for key in amounts if owner[key] == player)
        assert balances[player] == (FUNDS - paid, 0), player
    pool = site.one._pool
    assert pool is not None
    postings = await pool.fetchval(
        "SELECT count(*) FROM postings s JOIN operations o ON o.id = s.operation_id"
        " WHERE o.client_id = $1 AND o.ns = 'wire'",
        site.client.id,
    )
    assert postings == 2 * len(amounts)  # each withdraw posted once, never twice
    assert await site.one.run(admin.audit()) == []


async def _install(url: str, sql: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


# Fails every claim of the id 'boom' (a broken invariant the function did not expect), and the
# first claim of the id 'flaky' with a deadlock (a sequence is not rolled back with the claim);
# the claim of 'slow' takes 0.3 s.
_TRIGGER = """
CREATE SEQUENCE flaky_seq;
CREATE FUNCTION gw_test_fail() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.ext_id = 'boom' THEN RAISE EXCEPTION 'boom'; END IF;
    IF NEW.ext_id = 'slow' THEN PERFORM pg_sleep(0.3); END IF;
    IF NEW.ext_id = 'flaky' AND nextval('flaky_seq') = 1 THEN
        RAISE EXCEPTION 'flaky' USING ERRCODE = 'deadlock_detected';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER gw_test_fail BEFORE INSERT ON operations
    FOR EACH ROW EXECUTE FUNCTION gw_test_fail();
"""


async def _wave(site: Site, keys: list[str]) -> list[tuple[Any, ...]]:
    """One call per key at once on store one: the first alone, the others as one batch."""
    group = site.one.group
    assert group is not None
    before = group.batches
    players = [PLAYERS[n % len(PLAYERS)] for n in range(len(keys))]
    answers = await asyncio.gather(
        *(
            _send(site.one, _withdraw(site, player, key, 10_000, Call.OPEN))
            for player, key in zip(players, keys, strict=True)
        )
    )
    assert group.batches == before + 1, "the wave should have been one batch"
    return answers


async def test_a_failing_call_fails_alone_and_the_batch_commits(site: Site) -> None:
    await _install(site.url, _TRIGGER)
    keys = ["first", "a", "b", "boom", "c", "d"]
    answers = await _wave(site, keys)
    alone = await _send(site.two, _withdraw(site, "p0", "boom", 10_000, Call.OPEN))
    assert alone[0] == "store"  # what the call gets on its own statement...
    assert answers[keys.index("boom")] == alone  # ... it gets in a batch
    assert all(a[0] == "ok" for k, a in zip(keys, answers, strict=True) if k != "boom")
    balances = await _balances(site)
    assert sum(held for _, held in balances.values()) == 10_000 * (len(keys) - 1)
    assert await site.one.run(admin.audit()) == []


async def test_a_deadlock_victim_is_run_again_alone(site: Site) -> None:
    await _install(site.url, _TRIGGER)
    keys = ["first", "a", "flaky", "b"]
    answers = await _wave(site, keys)
    assert all(a[0] == "ok" for a in answers), answers
    balances = await _balances(site)
    assert sum(held for _, held in balances.values()) == 10_000 * len(keys)


async def test_a_batch_that_deadlocks_as_a_whole_is_run_again_call_by_call(site: Site) -> None:
    # The batch function itself is the victim: nothing of the batch commits, every call is
    # sent again alone and succeeds.
    await _install(
        site.url,
        """
        CREATE OR REPLACE FUNCTION gw_lock_players_v1(p_ids bigint[]) RETURNS void
        LANGUAGE plpgsql AS $$
        BEGIN RAISE EXCEPTION 'victim' USING ERRCODE = 'deadlock_detected'; END $$;
        """,
    )
    keys = ["first", "a", "b", "c"]
    answers = await _wave(site, keys)
    assert all(a[0] == "ok" for a in answers), answers
    group = site.one.group
    assert group is not None
    assert group.batched_calls == 0
    balances = await _balances(site)
    assert sum(held for _, held in balances.values()) == 10_000 * len(keys)


async def test_a_caller_cancelled_while_it_waits_is_not_sent(site: Site) -> None:
    await _install(site.url, _TRIGGER)
    keys = ["slow", "a", "gone", "b"]
    tasks = [
        asyncio.create_task(_send(site.one, _withdraw(site, PLAYERS[n], key, 10_000, Call.OPEN)))
        for n, key in enumerate(keys)
    ]
    for _ in range(5):  # let every task start: 'slow' is in flight, the others wait
        await asyncio.sleep(0.01)
    tasks[2].cancel()
    answers = await asyncio.gather(*tasks, return_exceptions=True)
    assert isinstance(answers[2], asyncio.CancelledError)
    assert [a[0] for n, a in enumerate(answers) if n != 2] == ["ok", "ok", "ok"]  # type: ignore[index]
    balances = await _balances(site)
    assert balances["p2"] == (FUNDS, 0), "the cancelled call must not have run"
    assert sum(held for _, held in balances.values()) == 3 * 10_000


# --- JDB: duplicates of one serial number from two "processes" ------------------------------


async def test_jdb_duplicates_from_two_processes_apply_once(pg_url: str) -> None:
    await asyncio.to_thread(migrate.upgrade, pg_url)
    one = FastPostgresStore(pg_url, batch_max=32)
    two = FastPostgresStore(pg_url, batch_max=32)
    await one.start()
    await two.start()
    try:
        config = {"parent": "ag", "aes_key": "k" * 16, "aes_iv": "i" * 16}
        new = admin.NewClient("jdb", "dom", None, None, "THB", None, config)
        client = await one.run(admin.create_client(new, 0, b"k" * 32))
        uids = ("j0", "j1", "j2")
        for uid in uids:
            await one.run(admin.create_player(client, uid, "THB", uid, 5_000_000, 0))
        serials = {f"s{n}": (uids[n % 3], -(n + 1) * 10_000) for n in range(40)}
        sends = [(s, store) for s in serials for store in (one, two, two)]
        random.Random(9).shuffle(sends)

        async def send(serial: str, store: FastPostgresStore) -> str:
            uid, amount = serials[serial]
            request = jdb.TransferRequest(uid, serial, amount, False, "")
            try:
                await store.run(jdb.transfer(client, request, 1_000))
            except WalletError as exc:
                return exc.code.name
            return "ok"

        answers = await asyncio.gather(*(send(s, store) for s, store in sends))
        oks = [s for (s, _), a in zip(sends, answers, strict=True) if a == "ok"]
        assert sorted(oks) == sorted(serials), "each serial number applied exactly once"
        assert set(answers) <= {"ok", "ALREADY_COMPLETED", "IN_PROGRESS"}
        assert _batched(one, two) > 0
        pool = one._pool
        assert pool is not None
        for uid in uids:
            paid = sum(-a for u, a in serials.values() if u == uid)
            balance = await pool.fetchval(
                "SELECT a.posted_minor FROM accounts a JOIN players p ON p.id = a.owner_id"
                " WHERE a.owner_kind = 'player' AND a.bucket = 'cash' AND p.external_id = $1",
                uid,
            )
            assert balance == 5_000_000 - paid, uid
        assert await one.run(admin.audit()) == []
    finally:
        await one.close()
        await two.close()


async def _deadlocks(url: str) -> int:
    conn = await asyncpg.connect(url)
    try:
        value = await conn.fetchval(
            "SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()"
        )
    finally:
        await conn.close()
    return int(value or 0)


async def test_batches_and_generic_postings_on_the_same_players_never_deadlock(
    site: Site,
) -> None:
    """Migration 0011: a batch locks its players up front but not their accounts, because
    every transaction that locks or writes a player's account holds the player row first.
    Every kind of writer on the same two players at once: group-committed withdraws and
    confirmations from both "processes", and generic adjustments of the cash and the
    free-credit accounts. Exact balances, a clean audit, and no deadlock detected by
    PostgreSQL (a wrong lock order deadlocks only when two transactions interleave at the
    wrong moment, so this is a guard; the argument is in the migration)."""
    pg_url = site.url
    players = PLAYERS[:2]
    pool = site.one._pool
    assert pool is not None
    rows = await pool.fetch(
        "SELECT external_id, id FROM players WHERE client_id = $1", site.client.id
    )
    ids: dict[str, int] = {r[0]: r[1] for r in rows}
    rng = random.Random(11)
    before = await _deadlocks(pg_url)
    amounts = {f"w{n}": rng.randrange(1, 90) * 10_000 for n in range(80)}
    owner = {key: players[n % 2] for n, key in enumerate(amounts)}
    # Adjustments of both buckets (free credit: credits only, so none can be refused).
    adjustments: list[tuple[str, int, Bucket]] = []
    for n in range(40):
        bucket = Bucket.FREE if n % 4 == 0 else Bucket.CASH
        sign = 1 if bucket is Bucket.FREE else rng.choice([-1, 1])
        adjustments.append((players[n % 2], sign * rng.randrange(1, 50) * 10_000, bucket))
    adjusted = {(player, bucket.value): 0 for player in players for bucket in Bucket}
    for player, amount, bucket in adjustments:
        adjusted[(player, bucket.value)] += amount

    def adjust(player: str, amount: int, bucket: Bucket) -> Any:
        now = site.clock.now_ms()
        return admin.adjust(ids[player], amount, "test", "tester", now, bucket=bucket)

    halves = (adjustments[:20], adjustments[20:])
    for call, half in zip((Call.OPEN, Call.CONFIRM), halves, strict=True):
        # Every id twice (once per "process"), and the adjustments, all at once, shuffled.
        jobs = [
            _send(store, _withdraw(site, owner[key], key, amounts[key], call))
            for key in amounts
            for store in (site.one, site.two)
        ]
        jobs += [_send((site.two, site.one)[n % 2], adjust(*a)) for n, a in enumerate(half)]
        rng.shuffle(jobs)
        assert {answer[0] for answer in await asyncio.gather(*jobs)} == {"ok"}
    assert site.one.group is not None
    assert site.two.group is not None
    assert site.one.group.batches + site.two.group.batches > 0, "no batch was formed"

    rows = await pool.fetch(
        "SELECT p.external_id, a.bucket, a.posted_minor, a.held_minor FROM players p"
        " JOIN accounts a ON a.owner_kind = 'player' AND a.owner_id = p.id"
        " WHERE p.client_id = $1",
        site.client.id,
    )
    got = {(r[0], r[1]): (r[2], r[3]) for r in rows}
    for player in players:
        paid = sum(amounts[key] for key in amounts if owner[key] == player)
        cash = FUNDS - paid + adjusted[(player, "cash")]
        assert got[(player, "cash")] == (cash, 0), player
        assert got[(player, "free")] == (adjusted[(player, "free")], 0), player
    assert await site.one.run(admin.audit()) == []
    # A detected deadlock is counted when its victim's backend reports its statistics, at the
    # latest when it exits: close both pools, then give the report a moment to arrive.
    await site.one.close()
    await site.two.close()
    for _ in range(20):
        if await _deadlocks(pg_url) != before:
            break
        await asyncio.sleep(0.1)
    assert await _deadlocks(pg_url) == before, "PostgreSQL detected a deadlock"


async def test_migration_0011_goes_down_and_up_again(pg_url: str) -> None:
    """0011 replaces two functions in place; down restores 0007's lock and 0009's batch."""
    from alembic import command

    from gamewallet.store.migrate import alembic_config

    async def state() -> tuple[bool, bool, list[str] | None]:
        conn = await asyncpg.connect(pg_url)
        try:
            row = await conn.fetchrow(
                "SELECT (SELECT prosrc FROM pg_proc WHERE proname = 'gw_lock_players_v1'),"
                " (SELECT prosrc FROM pg_proc WHERE proname = 'gw_seamless_batch_v2'),"
                " (SELECT proconfig FROM pg_proc WHERE proname = 'gw_seamless_batch_v2')"
            )
        finally:
            await conn.close()
        assert row is not None
        return "JOIN accounts" in row[0], "v_answer := gw_seamless_call_v1(" in row[1], row[2]

    await asyncio.to_thread(migrate.upgrade, pg_url)
    assert await state() == (False, True, ["enable_seqscan=off"])
    await asyncio.to_thread(command.downgrade, alembic_config(pg_url), "0010")
    assert await state() == (True, False, ["enable_seqscan=off"])
    await asyncio.to_thread(migrate.upgrade, pg_url)
    assert await state() == (False, True, ["enable_seqscan=off"])
