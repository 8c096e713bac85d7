"""Two server processes on one SQLite file, over real HTTP on loopback.

Concurrent withdraw + confirm pairs of one player land on both processes (the kernel spreads
connections over them); every call is answered, the balance moves by exactly what was
confirmed, replays answer as before, the ledger audit is clean, and /metrics shows the write
turn the processes took (store/sqlite_writelock.py).
"""

from __future__ import annotations

import asyncio
import re
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.admin.conftest import basic
from tests.admin.live import server
from tests.admin.test_observability import _seed

from gamewallet.store import migrate, open_store, ops
from gamewallet.store.port import do
from gamewallet.store.sqlite_writelock import TURN_SUFFIX

LANES = 16
PAIRS_PER_LANE = 15
AMOUNT = Decimal("1.50")


def _auth(sm: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": basic(sm["username"], sm["password"])}


async def _lane(base: str, sm: dict[str, Any], lane: int) -> list[str]:
    money = {"amount": float(AMOUNT), "currencyCode": "XAG"}
    answers: list[str] = []
    # One connection per lane: the lanes reach both processes.
    async with httpx.AsyncClient(base_url=base, headers=_auth(sm), timeout=30) as http:
        for k in range(PAIRS_PER_LANE):
            body = {"token": sm["token"], "mmTransactionId": f"two-{lane}-{k}", "amount": money}
            for endpoint in ("withdraw", "confirmWithdrawal"):
                reply = await http.post(f"/wallet/{endpoint}", json=body)
                assert reply.status_code == 200, reply.text
                assert "errorCode" not in reply.json(), reply.text
                answers.append(reply.text)
    return answers


async def _balance(base: str, sm: dict[str, Any]) -> Decimal:
    async with httpx.AsyncClient(base_url=base, headers=_auth(sm), timeout=30) as http:
        reply = await http.post("/wallet/getBalance", json={"token": sm["token"]})
    assert reply.status_code == 200, reply.text
    return Decimal(str(reply.json()["balance"]["amount"]))


@pytest.mark.slow
def test_two_processes_on_one_sqlite_file_lose_nothing(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/gw.db"
    migrate.upgrade(url)
    sm = asyncio.run(_seed(url))["seamless"]
    with server(url, tmp_path / "server.log", workers=2) as base:
        before = asyncio.run(_balance(base, sm))

        async def play() -> list[list[str]]:
            return await asyncio.gather(*(_lane(base, sm, i) for i in range(LANES)))

        answers = asyncio.run(play())
        after = asyncio.run(_balance(base, sm))
        assert before - after == AMOUNT * LANES * PAIRS_PER_LANE

        async def replay_first_lane() -> list[str]:
            return await _lane(base, sm, 0)

        assert asyncio.run(replay_first_lane()) == answers[0]  # stored answers, nothing new
        assert asyncio.run(_balance(base, sm)) == after
        counter = re.compile(r"^gamewallet_sqlite_write_turn_wait_seconds_total \S+$", re.M)
        scrapes = [httpx.get(base + "/metrics").text for _ in range(6)]  # either process
        assert any(counter.search(text) for text in scrapes), "no write-turn counter on /metrics"
    assert (tmp_path / f"gw.db{TURN_SUFFIX}").exists()

    async def audit() -> list[str]:
        store = open_store(url)
        await store.start()
        try:
            return await store.run(do(ops.Audit()))
        finally:
            await store.close()

    assert asyncio.run(audit()) == []
