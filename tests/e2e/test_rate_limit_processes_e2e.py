"""``gamewallet serve --workers 2`` counts a client's rate across both processes, over real HTTP
on loopback.

The command makes a rate-limit file of its own for its workers (service/ratelimit.py,
``SharedBuckets``) and removes it when it stops. A burst of calls from many connections, which
the kernel spreads over both processes, gets the client's one bucket: its rate's worth plus
what refills while the burst lasts, not twice that.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.admin.live import server
from tests.admin.test_observability import _seed

from gamewallet.store import migrate

RATE = 10
LANES = 12
CALLS_PER_LANE = 10


def _rate_files() -> set[Path]:
    places = [Path("/dev/shm"), Path(tempfile.gettempdir())]  # noqa: S108 - where serve makes it
    return {f for place in places if place.is_dir() for f in place.glob("gamewallet-rate-*")}


async def _lane(base: str, sm: dict[str, Any]) -> list[int]:
    auth = (sm["username"], sm["password"])
    statuses: list[int] = []
    async with httpx.AsyncClient(base_url=base, auth=auth, timeout=30) as http:
        for _ in range(CALLS_PER_LANE):
            reply = await http.post("/wallet/getBalance", json={"token": sm["token"]})
            statuses.append(reply.status_code)
            if reply.status_code == 429:
                assert reply.json()["errorCode"] == 100
            else:
                assert "errorCode" not in reply.json(), reply.text
    return statuses


@pytest.mark.slow
def test_two_workers_share_one_bucket_per_client(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/gw.db"
    migrate.upgrade(url)
    sm = asyncio.run(_seed(url))["seamless"]
    before = _rate_files()
    env = {"GAMEWALLET_RATE_LIMIT_PER_CLIENT": str(RATE)}
    with server(url, tmp_path / "server.log", workers=2, cli=True, env=env) as base:
        made = _rate_files() - before
        assert len(made) == 1, made  # the command's own file, for its two workers

        async def burst() -> list[list[int]]:
            return await asyncio.gather(*(_lane(base, sm) for _ in range(LANES)))

        started = time.monotonic()
        lanes = asyncio.run(burst())
        elapsed = time.monotonic() - started
        statuses = [status for lane in lanes for status in lane]
        served = statuses.count(200)
        assert served + statuses.count(429) == LANES * CALLS_PER_LANE
        # One bucket: the burst it holds, plus the refill while the calls went on.
        assert RATE <= served <= RATE + RATE * elapsed + 1, (served, elapsed)
    assert _rate_files() - before == set()  # removed when the server stopped
