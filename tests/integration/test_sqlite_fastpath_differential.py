"""The SQLite fast path against the generic path: same answers, same rows, byte for byte.

Two real SQLite files are set up identically (same clients, players, sessions, limits), one
served by a :class:`SqliteStore` with its fast path on, one with it off (every call driven as
its generic use case). A random sequence of seamless calls (reused ids, wrong amounts and
currencies, expired and unknown tokens, blocked players, clock jumps past the replay window, a
credit limit, notes with quotes and non-ASCII) goes to both. Every answer must be identical,
and at the end so must every row of every ledger table, ids included: the fast path writes the
same rows in the same order. The audit of both must be clean.

A concurrency test runs many asyncio callers on few players through the fast store, with
duplicate ids racing each other, and checks exact balances and the audit.
"""

from __future__ import annotations

import asyncio
import random
import sqlite3
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from tests.integration.sqlite_twins import dump, with_shards

from gamewallet.core.errors import WalletError
from gamewallet.core.states import Call
from gamewallet.protocols.seamless.routes import _render_tx
from gamewallet.service import admin, seamless
from gamewallet.service.common import FakeClock
from gamewallet.store import sqlite_fastpath
from gamewallet.store.records import ClientRecord
from gamewallet.store.sqlite import SqliteStore

PLAYERS = ("alice", "bob", "carol")
CURRENCY = "EUR"
RETENTION_S = 600
STEPS = 500
ENDPOINTS = (
    ("withdraw", seamless.KIND_WITHDRAW, Call.OPEN),
    ("confirmWithdrawal", seamless.KIND_WITHDRAW, Call.CONFIRM),
    ("rollbackWithdrawal", seamless.KIND_WITHDRAW, Call.ROLLBACK),
    ("deposit", seamless.KIND_DEPOSIT, Call.OPEN),
    ("confirmDeposit", seamless.KIND_DEPOSIT, Call.CONFIRM),
    ("rollbackDeposit", seamless.KIND_DEPOSIT, Call.ROLLBACK),
)
#: The last two hit 106 and 111; deposits of 2_500_000 soon reach max_balance (105).
AMOUNTS = (10_000, 25_000, 10_000, 2_500_000, 60_000_000)
#: What every walk reaches (besides "ok"), so that the comparison covers each branch.
REACHED = {
    "ok",
    "UNKNOWN_TOKEN",
    "SESSION_EXPIRED",
    "PLAYER_BLOCKED",
    "CURRENCY_MISMATCH",
    "ID_REUSED",
    "NOT_FOUND",
    "ALREADY_FINALIZED",
    "LIMIT_EXCEEDED",
    "BALANCE_LIMIT_EXCEEDED",
}


@dataclass
class World:
    """One database: its store, the client, and its players' tokens."""

    store: SqliteStore
    path: Path
    client: ClientRecord
    tokens: dict[str, str]
    expired: dict[str, str]


async def _world(
    path: Path, fast: bool, clock: FakeClock, credit_limit: int | None, shards: int
) -> World:
    store = SqliteStore(f"sqlite:///{path}", fast_path=fast)
    await store.start()
    config = {"max_amount": 50_000_000, "max_balance": 6_000_000}
    new = admin.NewClient("seamless", "casino", "casino", "pw", None, credit_limit, config)
    client = await store.run(admin.create_client(new, clock.now_ms(), b"k" * 32))
    client = with_shards(path, client, shards)
    tokens, expired = {}, {}
    counter = iter(range(1000))
    for index, player in enumerate(PLAYERS):
        balance = (index + 1) * 1_000_000
        await store.run(
            admin.create_player(client, player, CURRENCY, player, balance, clock.now_ms())
        )
        # Deterministic tokens, so that both files hold the very same rows.
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(admin, "new_token", lambda: f"tok-{next(counter)}")
            session, _ = await store.run(admin.open_session(client, player, 3600, clock.now_ms()))
            old, _ = await store.run(admin.open_session(client, player, 1, clock.now_ms()))
        tokens[player], expired[player] = session.token, old.token
    return World(store, path, client, tokens, expired)


@pytest.fixture(params=[(None, 16), (6_100_000, 1), (6_100_000, 3)], ids=str)
async def worlds(
    tmp_path: Path, request: pytest.FixtureRequest
) -> AsyncIterator[tuple[World, World, FakeClock]]:
    credit_limit, shards = request.param
    clock = FakeClock()
    fast = await _world(tmp_path / "fast.db", True, clock, credit_limit, shards)
    slow = await _world(tmp_path / "slow.db", False, clock, credit_limit, shards)
    try:
        yield fast, slow, clock
    finally:
        await fast.store.close()
        await slow.store.close()


def _token(world: World, call: dict[str, Any]) -> str:
    if call["token"] == "unknown":
        return "no-such-token"
    if call["token"] == "expired":
        return world.expired[call["player"]]
    return world.tokens[call["player"]]


async def _answer(world: World, call: dict[str, Any], now_ms: int) -> tuple[Any, ...]:
    wallet_call = seamless.WalletCall(
        world.client,
        call["endpoint"],
        call["kind"],
        call["call"],
        _token(world, call),
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
            "note": rng.choice([None, "late", 'ünï "q"']) if call is Call.ROLLBACK else None,
        }
    opening = call is not Call.ROLLBACK
    note = None
    if call is Call.OPEN and rng.random() < 0.3:
        note = rng.choice(["spin", 'quote " and \\ slash', "ünïcode"])
    if call is Call.ROLLBACK and rng.random() < 0.5:
        note = rng.choice(["timeout", "game crashed", "«reason»"])
    if call is Call.CONFIRM and rng.random() < 0.2:
        note = "confirmed by hand"
    return {
        "endpoint": endpoint,
        "kind": kind,
        "call": call,
        "player": rng.choice(PLAYERS),
        "token": rng.choices(["live", "expired", "unknown"], [0.85, 0.12, 0.03])[0],
        "ext_id": rng.choice(sorted(opened))
        if opened and rng.random() < 0.3
        else f"t{rng.randrange(400)}",
        "amount": rng.choice(AMOUNTS) if opening else None,
        "currency": (CURRENCY if rng.random() < 0.95 else "USD") if opening else None,
        "note": note,
    }


@pytest.mark.parametrize("seed", [1, 2])
async def test_random_sequences_answer_and_write_alike(
    worlds: tuple[World, World, FakeClock], seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    fast, slow, clock = worlds
    taken: list[str] = []
    real = sqlite_fastpath.SqliteFastPath.seamless_call

    def counting(self: sqlite_fastpath.SqliteFastPath, r: Any) -> Any:
        taken.append(r.endpoint)
        return real(self, r)

    monkeypatch.setattr(sqlite_fastpath.SqliteFastPath, "seamless_call", counting)
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
        if step % 20 == 0:  # rows, not only answers: a later generic call could mask a gap
            assert dump(fast.path) == dump(slow.path), f"step {step}: {call}"
    assert len(taken) == STEPS, "every call must have gone through the fast path"
    assert await fast.store.run(admin.audit()) == []
    assert await slow.store.run(admin.audit()) == []
    assert dump(fast.path) == dump(slow.path)
    # The random walk reached refusals and successes of every endpoint.
    assert {e for e, o in outcomes if o == "ok"} == {e for e, _, _ in ENDPOINTS}, outcomes
    codes = {o for _, o in outcomes}
    assert codes >= REACHED | (
        {"CREDIT_LIMIT_EXCEEDED"} if fast.client.credit_limit_minor else set()
    )


async def test_the_generic_store_never_takes_the_fast_path(
    worlds: tuple[World, World, FakeClock], monkeypatch: pytest.MonkeyPatch
) -> None:
    _, slow, clock = worlds

    def forbidden(self: sqlite_fastpath.SqliteFastPath, r: Any) -> Any:
        raise AssertionError("fast path used with fast_path=False")

    monkeypatch.setattr(sqlite_fastpath.SqliteFastPath, "seamless_call", forbidden)
    call = _random_call(random.Random(5), {})
    assert (await _answer(slow, {**call, "token": "live"}, clock.now_ms()))[0] in {"ok", "error"}


async def test_a_declined_offer_runs_the_generic_use_case(
    worlds: tuple[World, World, FakeClock], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A decline after writing is rolled back and the generic path answers alone."""
    fast, slow, clock = worlds
    real = sqlite_fastpath.SqliteFastPath.seamless_call

    def write_then_decline(self: sqlite_fastpath.SqliteFastPath, r: Any) -> Any:
        real(self, r)  # does the whole call, then claims it did not
        return sqlite_fastpath.DECLINE

    monkeypatch.setattr(sqlite_fastpath.SqliteFastPath, "seamless_call", write_then_decline)
    rng = random.Random(9)
    opened: dict[str, dict[str, Any]] = {}
    for _ in range(60):
        call = _random_call(rng, opened)
        if call["call"] is Call.OPEN:
            opened[call["ext_id"]] = call
        now = clock.now_ms()
        assert await _answer(fast, call, now) == await _answer(slow, call, now)
    assert dump(fast.path) == dump(slow.path)


# --- concurrency ---------------------------------------------------------------------------


async def test_concurrent_callers_with_duplicates_keep_exact_balances(tmp_path: Path) -> None:
    clock = FakeClock()
    world = await _world(tmp_path / "busy.db", True, clock, None, 16)
    try:
        rng = random.Random(11)
        calls = []
        for n in range(150):
            player = PLAYERS[n % len(PLAYERS)]
            amount = rng.choice((100, 2_500, 10_000))
            calls.append((player, f"w{n}", amount))
        withdraw_fields = {"endpoint": "withdraw", "kind": "withdraw", "call": Call.OPEN}
        confirm_fields = {"endpoint": "confirmWithdrawal", "kind": "withdraw"}

        async def pair(player: str, ext_id: str, amount: int) -> list[tuple[Any, ...]]:
            base = {"player": player, "token": "live", "ext_id": ext_id, "note": None}
            opening = {**base, **withdraw_fields, "amount": amount, "currency": CURRENCY}
            confirming = {**opening, **confirm_fields, "call": Call.CONFIRM}
            # Each id is sent three times at once (a retry storm), then confirmed twice.
            opened = await asyncio.gather(
                *(_answer(world, opening, clock.now_ms()) for _ in range(3))
            )
            confirmed = await asyncio.gather(
                *(_answer(world, confirming, clock.now_ms()) for _ in range(2))
            )
            return [*opened, *confirmed]

        results = await asyncio.gather(*(pair(*c) for c in calls))
        for (_, ext_id, _), answers in zip(calls, results, strict=True):
            assert all(a[0] == "ok" for a in answers), (ext_id, answers)
            assert len(set(answers[:3])) == 1, ext_id  # the duplicates replay one answer
            assert len(set(answers[3:])) == 1, ext_id
        taken = {p: sum(a for q, _, a in calls if q == p) for p in PLAYERS}
        conn = sqlite3.connect(world.path)
        try:
            rows = dict(
                conn.execute(
                    "SELECT p.external_id, a.posted_minor - a.held_minor FROM players p"
                    " JOIN accounts a ON a.owner_kind = 'player' AND a.owner_id = p.id"
                    " AND a.bucket = 'cash' WHERE a.held_minor = 0"
                ).fetchall()
            )
            postings = conn.execute("SELECT count(*) FROM postings").fetchone()[0]
        finally:
            conn.close()
        expected = {p: (i + 1) * 1_000_000 - taken[p] for i, p in enumerate(PLAYERS)}
        assert rows == expected
        assert postings == 2 * len(PLAYERS) + 2 * len(calls)  # funding + one posting per pair
        assert await world.store.run(admin.audit()) == []
    finally:
        await world.store.close()
