"""Per-client rate limits: a token bucket per client, one second's worth of burst.

A client over its rate is refused before its request is read (seamless: HTTP 429 with
errorCode 100; HRG: HTTP 429 with code 9999; JDB: status 9019), nothing moves, and other
clients are not affected. The rate is the ``rate_limit_per_client`` setting unless the client's
config says ``rate_limit_per_s``; 0 means unlimited. Time is the fake clock.
"""

from __future__ import annotations

import dataclasses
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.security import calls
from tests.security.world import World

from gamewallet.app import create_app
from gamewallet.service.common import FakeClock
from gamewallet.service.context import Services
from gamewallet.service.ratelimit import RateLimiter, SharedBuckets, client_rate
from gamewallet.store.records import ClientRecord

RATE = 5


def _client(client_id: int = 1, **config: object) -> ClientRecord:
    return ClientRecord(client_id, "hrg", "a", "u", None, "THB", None, 1, config)


def test_the_bucket_allows_a_burst_then_the_rate() -> None:
    clock = FakeClock()
    limiter = RateLimiter(clock, default_per_s=RATE)
    client = _client()
    assert [limiter.allow(client) for _ in range(RATE + 2)] == [True] * RATE + [False, False]
    clock.advance(0.2)  # one token back
    assert limiter.allow(client)
    assert not limiter.allow(client)
    clock.advance(10)  # refilled, but never beyond one second's worth
    assert sum(limiter.allow(client) for _ in range(3 * RATE)) == RATE


def test_buckets_are_per_client_and_zero_is_unlimited() -> None:
    clock = FakeClock()
    limiter = RateLimiter(clock, default_per_s=1)
    first, second = _client(1), _client(2)
    assert limiter.allow(first)
    assert not limiter.allow(first)
    assert limiter.allow(second)
    unlimited = RateLimiter(clock, default_per_s=0)
    assert all(unlimited.allow(first) for _ in range(1000))


def test_a_client_config_overrides_the_default() -> None:
    assert client_rate(_client(rate_limit_per_s=2), 50) == 2
    assert client_rate(_client(rate_limit_per_s=0), 50) == 0
    for bad in (-1, "3", True, None, 2.5):
        assert client_rate(_client(rate_limit_per_s=bad), 50) == 50


def test_a_clock_stepping_back_refills_nothing() -> None:
    clock = FakeClock()
    limiter = RateLimiter(clock, default_per_s=1)
    client = _client()
    assert limiter.allow(client)
    clock.advance(-5)
    assert not limiter.allow(client)


@pytest.mark.settings(rate_limit_per_client=RATE)
async def test_each_protocol_refuses_a_client_over_its_rate(
    http: httpx.AsyncClient, world: World, clock: FakeClock
) -> None:
    s, h, j = world.seamless[0], world.hrg[0], world.jdb[0]
    for _ in range(RATE):
        ok = await calls.seamless(http, s, "getBalance")
        assert ok.status_code == 200
        assert "errorCode" not in ok.json()
    refused = await calls.seamless(http, s, "withdraw", calls.seamless_withdraw(s))
    assert refused.status_code == 429
    assert refused.json()["errorCode"] == 100
    assert refused.headers["retry-after"] == "1"

    for _ in range(RATE):
        ok = await calls.hrg(http, h, "get_balance", calls.hrg_balance(h), clock)
        assert ok.json()["code"] == "0000"
    refused = await calls.hrg(http, h, "get_balance", calls.hrg_balance(h), clock)
    assert refused.status_code == 429
    assert refused.json()["code"] == "9999"

    info = {"action": 15, "uid": j.uid}
    assert [await calls.jdb_status(http, j, info, clock) for _ in range(RATE + 1)] == [
        "0000"
    ] * RATE + ["9019"]

    # The other clients still have their whole burst; a second later so do these.
    assert "errorCode" not in (await calls.seamless(http, world.seamless[1], "getBalance")).json()
    other = world.hrg[1]
    assert (await calls.hrg(http, other, "get_balance", calls.hrg_balance(other), clock)).json()[
        "code"
    ] == "0000"
    assert (
        await calls.jdb_status(http, world.jdb[1], {"action": 15, "uid": world.jdb[1].uid}, clock)
        == "0000"
    )
    clock.advance(1)
    assert "errorCode" not in (await calls.seamless(http, s, "getBalance")).json()
    assert await calls.jdb_status(http, j, info, clock) == "0000"


@pytest.mark.settings(rate_limit_per_client=1000)
@pytest.mark.world_config(
    gamea={"rate_limit_per_s": 2}, agenta={"rate_limit_per_s": 2}, dca={"rate_limit_per_s": 2}
)
async def test_a_client_specific_rate_applies_to_that_client_only(
    http: httpx.AsyncClient, world: World, clock: FakeClock
) -> None:
    s = world.seamless[0]
    codes = [(await calls.seamless(http, s, "getBalance")).status_code for _ in range(3)]
    assert codes == [200, 200, 429]
    j = world.jdb[0]
    statuses = [
        await calls.jdb_status(http, j, {"action": 15, "uid": j.uid}, clock) for _ in range(3)
    ]
    assert statuses == ["0000", "0000", "9019"]
    others = [
        (await calls.seamless(http, world.seamless[1], "getBalance")).status_code for _ in range(10)
    ]
    assert others == [200] * 10


async def test_by_default_there_is_no_limit(
    http: httpx.AsyncClient, world: World, clock: FakeClock
) -> None:
    s = world.seamless[0]
    codes = {(await calls.seamless(http, s, "getBalance")).status_code for _ in range(50)}
    assert codes == {200}


# --- buckets shared by processes (GAMEWALLET_RATE_LIMIT_FILE) ----------------------------------


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(1, 3), st.integers(-500, 1500), st.integers(0, 12)),
        min_size=1,
        max_size=25,
    ),
    st.integers(1, 9),
)
def test_a_shared_bucket_counts_like_a_bucket_of_the_process(
    tmp_path_factory: pytest.TempPathFactory,
    steps: list[tuple[int, int, int]],
    rate: int,
) -> None:
    """The same calls, clock moves (back too) and clients: the same answers, call by call."""
    path = tmp_path_factory.mktemp("rate") / "buckets"
    clock = FakeClock()
    shared = SharedBuckets(path)
    try:
        alone = RateLimiter(clock, default_per_s=rate)
        together = RateLimiter(clock, default_per_s=rate, shared=shared)
        for client_id, advance_ms, n in steps:
            clock.now += advance_ms
            client = _client(client_id)
            for _ in range(n):
                assert together.allow(client) == alone.allow(client)
    finally:
        shared.close()


def test_a_shared_bucket_is_one_bucket_for_every_limiter_naming_the_file(tmp_path: Path) -> None:
    clock = FakeClock()
    first, second = SharedBuckets(tmp_path / "b"), SharedBuckets(tmp_path / "b")
    try:
        a = RateLimiter(clock, default_per_s=RATE, shared=first)
        b = RateLimiter(clock, default_per_s=RATE, shared=second)
        answers = [(a if i % 2 else b).allow(_client()) for i in range(2 * RATE)]
        assert answers == [True] * RATE + [False] * RATE
        assert b.allow(_client(2))  # another client's bucket is its own
    finally:
        first.close()
        second.close()


def test_a_file_that_is_not_a_bucket_table_is_refused(tmp_path: Path) -> None:
    stranger = tmp_path / "notes.txt"
    stranger.write_text("hello")
    with pytest.raises(ValueError, match="not a gamewallet rate-limit file"):
        SharedBuckets(stranger)
    assert stranger.read_text() == "hello"


def test_clients_beyond_the_table_get_a_bucket_of_the_process(tmp_path: Path) -> None:
    class Tiny(SharedBuckets):
        SLOTS = 2

    clock = FakeClock()
    tiny = Tiny(tmp_path / "tiny")
    try:
        limiter = RateLimiter(clock, default_per_s=1, shared=tiny)
        for client_id in (1, 2, 3):  # the third finds no slot: limited all the same
            assert limiter.allow(_client(client_id))
            assert not limiter.allow(_client(client_id))
        assert tiny.take(3, 1, clock.now_ms()) is None
    finally:
        tiny.close()


_CONTENDER = """
import sys, time
from pathlib import Path
from gamewallet.service.ratelimit import SharedBuckets
path, go, rate, tries = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
buckets = SharedBuckets(path)
deadline = time.monotonic() + 30
while not go.exists() and time.monotonic() < deadline:
    time.sleep(0.001)
print(sum(bool(buckets.take(7, rate, 1_000)) for _ in range(tries)))
"""


def test_processes_taking_at_once_never_take_more_than_the_bucket_holds(tmp_path: Path) -> None:
    """Three processes take from one bucket at the same frozen instant, 4,000 times each:
    exactly the bucket's 5,000 tokens go, none twice (the file lock serialises them)."""
    rate, tries = 5_000, 4_000
    go = tmp_path / "go"
    contenders = [
        subprocess.Popen(
            [sys.executable, "-c", _CONTENDER, str(tmp_path / "b"), str(go), str(rate), str(tries)],
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    time.sleep(1.0)  # all three started and waiting
    go.touch()
    taken = []
    for process in contenders:
        out, _ = process.communicate(timeout=60)
        assert process.returncode == 0
        taken.append(int(out))
    assert sum(taken) == rate
    assert all(t > 0 for t in taken), taken  # they did run at once


async def test_two_apps_sharing_the_file_refuse_together(
    services: Services, world: World, tmp_path: Path
) -> None:
    """Two apps (as two server processes would be) on one file: a client's calls count in
    one bucket whichever app serves them, through the protocol's own refusal."""
    settings_ = dataclasses.replace(
        services.settings, rate_limit_per_client=RATE, rate_limit_file=str(tmp_path / "b")
    )
    apps: list[Services] = []
    clients: list[httpx.AsyncClient] = []
    try:
        for _ in range(2):
            twin = Services(settings_, services.store, services.clock)
            await twin.start(start_store=False)
            apps.append(twin)
            app: Any = create_app(twin, manage_store=False)
            transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 40000))
            clients.append(httpx.AsyncClient(transport=transport, base_url="http://testserver"))
        s = world.seamless[0]
        codes = [
            (await calls.seamless(clients[i % 2], s, "getBalance")).status_code
            for i in range(2 * RATE)
        ]
        assert codes == [200] * RATE + [429] * RATE
    finally:
        for client in clients:
            await client.aclose()
        for twin in apps:
            if twin.rate_buckets is not None:
                twin.rate_buckets.close()
