"""Jepsen-style bank check: concurrent transfers between many players, concurrent reads, and
the total never changes.

Transfers move money from one player to another in one database transaction, built from the
same use-case fragments the protocols use (:func:`gamewallet.service.common.move`, players
locked in id order first, then the client's account row), some of them beyond the payer's
balance and so refused. While they run, readers take snapshots of every player's balance (one
statement) and check that they add up to the opening total, that none is negative, and that
the ledger audit (double entry, postings = balances) is clean at that moment. A second test
does the same with the HRG protocol's own calls over HTTP (withdraw from one player, deposit
to another), where the money between the two calls sits in the agent's account: there the
ledger-wide total (players + agent) is what must never change.

On PostgreSQL this is real concurrency: a pool of connections, transactions interleaving and
waiting on row locks. Bounded: a fixed number of transfers and a deadline.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.security.world import basic, xts

from gamewallet.app import create_app
from gamewallet.core.errors import ErrorCode, WalletError
from gamewallet.core.money import UNIT, format_minor
from gamewallet.core.states import OpState
from gamewallet.service import admin
from gamewallet.service.common import SystemClock, move
from gamewallet.service.context import Services
from gamewallet.settings import Settings
from gamewallet.store import migrate, open_store, ops
from gamewallet.store.port import UseCase, do
from gamewallet.store.records import ClientRecord

PLAYERS = 24
OPENING_MINOR = 1000 * UNIT
WRITERS = 12
TRANSFERS_PER_WRITER = 40
READERS = 3
DEADLINE_S = 120.0
POOL_SIZE = 8
CURRENCY = "THB"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh database of each real store."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/bank.db"
    url: str = request.getfixturevalue("pg_url")
    return url


@pytest.fixture
async def services(database_url: str) -> AsyncIterator[Services]:
    """Started services on a migrated database, with a connection pool for real concurrency."""
    await asyncio.to_thread(migrate.upgrade, database_url)
    settings = Settings(database_url=database_url, client_cache_ttl_s=0.0)
    svc = Services(settings, open_store(database_url, pool_size=POOL_SIZE), SystemClock())
    await svc.start()
    try:
        yield svc
    finally:
        await svc.close()


async def open_bank(services: Services, protocol: str = "hrg") -> ClientRecord:
    """An HRG agent (one account row: it has a credit limit, far away) and its players."""
    now_ms = services.clock.now_ms()
    client = await services.store.run(
        admin.create_client(
            admin.NewClient("hrg", "bank", "bank-id", "bank-secret", CURRENCY, 10**12, {}),
            now_ms,
            services.key,
        )
    )
    for index in range(PLAYERS):
        name = f"p{index:02d}"
        await services.store.run(
            admin.create_player(client, name, CURRENCY, name, OPENING_MINOR, now_ms)
        )
    await services.clients.reload()
    return client


def bank_transfer(
    client: ClientRecord, payer: str, payee: str, amount_minor: int, ref: str, now_ms: int
) -> UseCase[None]:
    """Move ``amount_minor`` from ``payer`` to ``payee`` in one transaction (refused with
    INSUFFICIENT_FUNDS beyond the payer's available balance)."""
    first = yield from admin.get_player(client, payer)
    second = yield from admin.get_player(client, payee)
    # The global lock order: player rows by id, then the client's account row (in move).
    locked = {}
    for player_id in sorted((first.id, second.id)):
        row = yield from do(ops.GetPlayer(player_id=player_id, lock=True))
        assert row is not None
        locked[player_id] = row
    source, target = locked[first.id], locked[second.id]
    if source.cash.balance.available_minor < amount_minor:
        raise WalletError(ErrorCode.INSUFFICIENT_FUNDS)
    operation = yield from do(
        ops.InsertOperation(
            client.id,
            "bank",
            ref,
            "bank",
            source.id,
            CURRENCY,
            amount_minor,
            0,
            OpState.COMPLETED,
            now_ms,
        )
    )
    assert operation is not None, "transfer references are unique"
    yield from move(client, source, operation.id, now_ms, cash_minor=-amount_minor)
    yield from move(client, target, operation.id, now_ms, cash_minor=amount_minor)


@dataclass
class Tally:
    """What the run did and saw."""

    done: int = 0
    refused: int = 0
    reads: int = 0
    audits: int = 0
    violations: list[str] = field(default_factory=list)


async def snapshot(services: Services, client: ClientRecord) -> list[int]:
    """Every player's available balance, from one statement."""
    players, total = await services.store.run(
        do(ops.ListPlayers(client_id=client.id, limit=PLAYERS))
    )
    assert total == PLAYERS
    return [p.cash.balance.available_minor for p in players]


async def reader(
    services: Services,
    client: ClientRecord,
    tally: Tally,
    stop: asyncio.Event,
    *,
    players_total: bool,
) -> None:
    """Read until told to stop: the players' total (when transfers are atomic), no negative
    balance, and a clean audit every few reads."""
    while not stop.is_set():
        balances = await snapshot(services, client)
        tally.reads += 1
        if players_total and sum(balances) != PLAYERS * OPENING_MINOR:
            tally.violations.append(
                f"read {tally.reads}: players hold {format_minor(sum(balances))}"
            )
        if min(balances) < 0:
            tally.violations.append(f"read {tally.reads}: a negative balance {min(balances)}")
        if tally.reads % 5 == 0:
            problems = await services.store.run(admin.audit())
            tally.audits += 1
            tally.violations += [f"audit during the run: {p}" for p in problems]
        await asyncio.sleep(0)


async def run_bank(services: Services, client: ClientRecord, seed: int) -> Tally:
    """Writers and readers at once; returns the tally."""
    tally = Tally()
    stop = asyncio.Event()

    async def writer(index: int) -> None:
        rng = random.Random(f"{seed}:{index}")
        for n in range(TRANSFERS_PER_WRITER):
            payer, payee = rng.sample(range(PLAYERS), 2)
            # Mostly affordable amounts, one in six far beyond any balance.
            amount = rng.randint(1, 300 * UNIT) if rng.random() > 1 / 6 else 5000 * UNIT
            try:
                await services.store.run(
                    bank_transfer(
                        client,
                        f"p{payer:02d}",
                        f"p{payee:02d}",
                        amount,
                        f"w{index}n{n}",
                        services.clock.now_ms(),
                    )
                )
            except WalletError as exc:
                if exc.code is not ErrorCode.INSUFFICIENT_FUNDS:
                    raise
                tally.refused += 1
            else:
                tally.done += 1

    readers = [
        asyncio.create_task(reader(services, client, tally, stop, players_total=True))
        for _ in range(READERS)
    ]
    try:
        async with asyncio.timeout(DEADLINE_S):
            await asyncio.gather(*(writer(i) for i in range(WRITERS)))
    finally:
        stop.set()
        await asyncio.gather(*readers)
    return tally


async def test_concurrent_transfers_never_change_the_total(services: Services) -> None:
    client = await open_bank(services)
    tally = await run_bank(services, client, seed=7)
    assert tally.violations == []
    assert tally.done + tally.refused == WRITERS * TRANSFERS_PER_WRITER
    assert tally.done > WRITERS * TRANSFERS_PER_WRITER // 2, "most transfers went through"
    assert tally.refused > 0, "some transfers were beyond the balance and refused"
    assert tally.reads >= READERS, "the readers ran while the writers did"
    final = await snapshot(services, client)
    assert sum(final) == PLAYERS * OPENING_MINOR
    assert await services.store.run(admin.audit()) == []
    # Every completed transfer is in the ledger once: as many operations as successes.
    _, recorded = await services.store.run(
        do(ops.ListOperations(client_id=client.id, ns="bank", limit=1))
    )
    assert recorded == tally.done


async def test_protocol_transfers_keep_the_ledger_total(services: Services) -> None:
    """HRG withdraw from one player and deposit to another, many pairs at once over the
    app's HTTP interface; readers check the ledger (players + agent sum to zero, postings
    match balances) throughout, and at the end the players' total is the opening one."""
    client = await open_bank(services)
    app: Any = create_app(services, manage_store=False)
    transport = httpx.ASGITransport(app=app)
    auth = basic("bank-id", "bank-secret")
    tally = Tally()
    stop = asyncio.Event()

    async def call(http: httpx.AsyncClient, name: str, body: dict[str, Any]) -> str:
        headers = {"Authorization": auth, "xts": xts(services.clock.now_ms())}
        code: str = (await http.post(f"/api/{name}", json=body, headers=headers)).json()["code"]
        return code

    async def writer(index: int) -> None:
        rng = random.Random(f"http:{index}")
        async with httpx.AsyncClient(transport=transport, base_url="http://bank") as http:
            for n in range(TRANSFERS_PER_WRITER // 2):
                payer, payee = rng.sample(range(PLAYERS), 2)
                amount = format_minor(rng.randint(1, 300 * UNIT))
                out = await call(
                    http,
                    "withdraw",
                    {
                        "agentId": "bank",
                        "userId": f"p{payer:02d}",
                        "allWithdraw": False,
                        "amount": amount,
                        "transactionCode": f"o{index}x{n}",
                    },
                )
                if out != "0000":
                    assert out == "4001", out
                    tally.refused += 1
                    continue
                back = await call(
                    http,
                    "deposit",
                    {
                        "agentId": "bank",
                        "userId": f"p{payee:02d}",
                        "amount": amount,
                        "transactionCode": f"i{index}x{n}",
                    },
                )
                assert back == "0000", back
                tally.done += 1

    readers = [
        asyncio.create_task(reader(services, client, tally, stop, players_total=False))
        for _ in range(READERS)
    ]
    try:
        async with asyncio.timeout(DEADLINE_S):
            await asyncio.gather(*(writer(i) for i in range(WRITERS)))
    finally:
        stop.set()
        await asyncio.gather(*readers)
    assert tally.violations == []
    assert tally.done > 0
    assert sum(await snapshot(services, client)) == PLAYERS * OPENING_MINOR
    assert await services.store.run(admin.audit()) == []
