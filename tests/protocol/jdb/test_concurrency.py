"""Concurrency of action 19: one serialNo is applied once, one player's balance never overdraws.

Requests go through httpx's ASGI transport on the test's event loop, so ``asyncio.gather``
interleaves them for real; on PostgreSQL their database transactions overlap, on SQLite the
writer thread serializes them. "Two processes" are two complete app instances (each with its
own in-flight registry, domain cache and connection pool or writer thread) on one database.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import pytest
from tests.protocol.jdb.caller import Jdb, start_services

from gamewallet.app import create_app
from gamewallet.service.common import NS_WIRE
from gamewallet.service.jdb import lock_key
from gamewallet.store import ops
from gamewallet.store.port import Store, UseCase, do

RACERS = 12


def transfer(serial_no: str, amount: Any, uid: str = "p1") -> dict[str, Any]:
    return {"action": 19, "uid": uid, "serialNo": serial_no, "amount": amount}


async def transfers(jdb: Jdb) -> int:
    _, total = await jdb.services.store.run(
        do(ops.ListOperations(client_id=jdb.clients["jb"].id, ns=NS_WIRE))
    )
    return total


async def balance(jdb: Jdb, uid: str = "p1") -> int:
    return (await jdb.get_player(uid)).cash.balance.posted_minor


@pytest.mark.parametrize("amount", [10, -10])
async def test_one_serial_no_raced_in_one_process(jdb: Jdb, amount: int) -> None:
    await jdb.player("p1", "100")
    replies = await asyncio.gather(*(jdb.call(transfer("S1", amount)) for _ in range(RACERS)))
    statuses = Counter(r["status"] for r in replies)
    assert statuses["0000"] == 1, statuses
    assert set(statuses) <= {"0000", "6012", "6005"}, statuses
    assert await transfers(jdb) == 1
    assert await balance(jdb) == (100 + amount) * 10_000
    assert (await jdb.call(transfer("S1", amount)))["status"] == "6005"


@pytest.fixture
async def second_process(jdb: Jdb, database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    """Another app instance on the same database, as a second server process would be."""
    services = await start_services(database_url, jdb.clock, migrate_pg=False)
    app = create_app(services, manage_store=False)
    transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]  # valid ASGI app
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://two.test") as client:
            yield client
    finally:
        await services.close()


async def test_one_serial_no_raced_across_processes(
    jdb: Jdb, second_process: httpx.AsyncClient
) -> None:
    await jdb.player("p1", "100")

    async def call(index: int) -> str:
        http = jdb.http if index % 2 else second_process
        response = await http.get(
            "/apiRequest.do", params={"dc": "jb", "x": jdb.x(transfer("S1", -60))}
        )
        status: str = response.json()["status"]
        return status

    statuses = Counter(await asyncio.gather(*(call(i) for i in range(RACERS))))
    assert statuses["0000"] == 1, statuses
    assert set(statuses) <= {"0000", "6012", "6005"}, statuses
    assert await transfers(jdb) == 1
    assert await balance(jdb) == 40 * 10_000


class GatedStore:
    """A store that holds every use case at the door until the test opens the gate."""

    def __init__(self, inner: Store) -> None:
        self.inner = inner
        self.kind = inner.kind
        self.entered = asyncio.Event()
        self.gate = asyncio.Event()

    async def run(self, use_case: UseCase[Any]) -> Any:
        self.entered.set()
        await self.gate.wait()
        return await self.inner.run(use_case)


async def test_in_progress_serial_no_is_6012_until_done(jdb: Jdb) -> None:
    await jdb.player("p1", "100")
    store = jdb.services.store
    gated = GatedStore(store)
    jdb.services.store = gated  # type: ignore[assignment]
    try:
        first = asyncio.create_task(jdb.call(transfer("S1", 25)))
        await gated.entered.wait()
        assert (await jdb.call(transfer("S1", 25)))["status"] == "6012"
        assert (await jdb.call({"action": 55, "serialNo": "S1"}))["status"] == "6012"
        gated.gate.set()
        assert (await first)["status"] == "0000"
    finally:
        jdb.services.store = store
    assert (await jdb.call(transfer("S1", 25)))["status"] == "6005"
    found = await jdb.call({"action": 55, "serialNo": "S1"})
    assert found["status"] == "0000"
    assert found["data"][0]["amount"] == first.result()["amount"]


async def test_serial_no_locked_by_another_database_session_is_6012(
    jdb: Jdb, database_url: str
) -> None:
    """Another process in the middle of the same serialNo holds its database lock."""
    if not database_url.startswith("postgresql"):
        pytest.skip("SQLite has one writer: no other transaction can be in progress")
    await jdb.player("p1", "100")
    key = lock_key(jdb.clients["jb"], "S1")
    other = await asyncpg.connect(database_url)
    try:
        async with other.transaction():
            await other.execute("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", key)
            assert (await jdb.call(transfer("S1", 5)))["status"] == "6012"
            assert (await jdb.call({"action": 55, "serialNo": "S1"}))["status"] == "6012"
            assert (await jdb.call(transfer("S2", 5)))["status"] == "0000"
    finally:
        await other.close()
    assert (await jdb.call(transfer("S1", 5)))["status"] == "0000"
    assert await balance(jdb) == 110 * 10_000


async def test_one_player_many_withdrawals(jdb: Jdb) -> None:
    """20 concurrent withdrawals of 10 from 100: exactly 10 succeed, the rest are 6001."""
    await jdb.player("p1", "100")
    replies = await asyncio.gather(*(jdb.call(transfer(f"W{i}", -10)) for i in range(20)))
    statuses = Counter(r["status"] for r in replies)
    assert statuses == {"0000": 10, "6001": 10}
    assert await balance(jdb) == 0
    assert await transfers(jdb) == 10


async def test_one_player_mixed_transfers_across_processes(
    jdb: Jdb, second_process: httpx.AsyncClient
) -> None:
    """Deposits and withdrawals from two processes: the final balance is the sum of those
    that succeeded, and every reported balance is one the player really had."""
    await jdb.player("p1", "50")
    amounts = [25, -30, 40, -60, -5, 15, -50, 35, -20, 10] * 2

    async def call(index: int, amount: int) -> dict[str, Any]:
        http = jdb.http if index % 2 else second_process
        x = jdb.x(transfer(f"M{index}", amount))
        response = await http.get("/apiRequest.do", params={"dc": "jb", "x": x})
        reply: dict[str, Any] = response.json()
        return reply

    replies = await asyncio.gather(*(call(i, a) for i, a in enumerate(amounts)))
    applied = [a for a, r in zip(amounts, replies, strict=True) if r["status"] == "0000"]
    assert {r["status"] for r in replies} <= {"0000", "6001"}
    assert await balance(jdb) == (50 + sum(applied)) * 10_000
    assert await transfers(jdb) == len(applied)
    assert all(r["userBalance"] >= 0 for r in replies if r["status"] == "0000")
