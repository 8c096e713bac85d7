"""Per-client rate limits: a token bucket per client, one second's worth of burst.

A client over its rate is refused before its request is read (seamless: HTTP 429 with
errorCode 100; HRG: HTTP 429 with code 9999; JDB: status 9019), nothing moves, and other
clients are not affected. The rate is the ``rate_limit_per_client`` setting unless the client's
config says ``rate_limit_per_s``; 0 means unlimited. Time is the fake clock.
"""

from __future__ import annotations

import httpx
import pytest
from tests.security import calls
from tests.security.world import World

from gamewallet.service.common import FakeClock
from gamewallet.service.ratelimit import RateLimiter, client_rate
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
