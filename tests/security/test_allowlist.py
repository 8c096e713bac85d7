"""IP allowlists and ``X-Forwarded-For``: a stranger cannot get in by claiming an allowed
address; a trusted proxy's claim is believed, and only the nearest untrusted hop counts.

Each world client ``game a`` / ``agent a`` / ``dc a`` allows 10.1.2.0/24 only (seamless: an
ignored call is an empty 403 in process, where the connection cannot be dropped; HRG: 1001;
JDB: 9001). Peers are played through the ASGI ``client`` address: no packet leaves the test.
"""

from __future__ import annotations

import ipaddress

import httpx
import pytest
from tests.security import calls
from tests.security.conftest import MakeHttp
from tests.security.world import World

from gamewallet.service.common import FakeClock

ALLOWED = "10.1.2.0/24"
PROXY = "127.0.0.1/32"
LIST = {"allow_ips": [ALLOWED]}
pytestmark = pytest.mark.world_config(gamea=LIST, agenta=LIST, dca=LIST)


async def outcome(
    http: httpx.AsyncClient, world: World, clock: FakeClock, xff: str | None
) -> tuple[str, str, str]:
    """(seamless, HRG, JDB) outcome of one call of each protocol with ``xff``."""
    headers = {"X-Forwarded-For": xff} if xff is not None else {}
    seamless = await calls.seamless(http, world.seamless[0], "getBalance", headers=headers)
    if seamless.status_code == 403:
        assert seamless.content == b"", "an ignored call carries no body"
        s = "ignored"
    else:
        assert seamless.status_code == 200, seamless.text
        s = "ok" if "errorCode" not in seamless.json() else str(seamless.json()["errorCode"])
    side = world.hrg[0]
    hrg = await calls.hrg(
        http, side, "get_balance", calls.hrg_balance(side), clock, headers=headers
    )
    j = world.jdb[0]
    jdb = await calls.jdb_status(http, j, {"action": 15, "uid": j.uid}, clock, headers=headers)
    return s, hrg.json()["code"], jdb


REFUSED = ("ignored", "1001", "9001")
ACCEPTED = ("ok", "0000", "0000")


async def test_a_stranger_is_refused_whatever_it_claims(
    make_http: MakeHttp, world: World, clock: FakeClock
) -> None:
    # No trusted proxies: X-Forwarded-For is never believed.
    for xff in (None, "10.1.2.3", "10.1.2.3, 127.0.0.1", "garbage", "10.1.2.3, 10.1.2.4"):
        assert await outcome(make_http("127.0.0.1"), world, clock, xff) == REFUSED, xff


async def test_a_caller_inside_the_list_is_accepted(
    make_http: MakeHttp, world: World, clock: FakeClock
) -> None:
    assert await outcome(make_http("10.1.2.77"), world, clock, None) == ACCEPTED
    # The other clients have no list: they accept anyone.
    other = await calls.seamless(make_http("192.0.2.9"), world.seamless[1], "getBalance")
    assert "errorCode" not in other.json()


@pytest.mark.settings(trusted_proxies=(ipaddress.ip_network(PROXY),))
async def test_behind_a_trusted_proxy_the_nearest_untrusted_hop_counts(
    make_http: MakeHttp, world: World, clock: FakeClock
) -> None:
    cases: list[tuple[str | None, tuple[str, str, str]]] = [
        ("10.1.2.3", ACCEPTED),  # the proxy says who called: believed
        ("192.0.2.1", REFUSED),
        ("10.1.2.3, 192.0.2.1", REFUSED),  # the nearest untrusted hop is the stranger
        ("192.0.2.1, 10.1.2.3", ACCEPTED),  # a spoofed first hop behind an allowed client
        ("not-an-address", REFUSED),
        (None, REFUSED),  # the proxy itself is not in the list
    ]
    for xff, expected in cases:
        assert await outcome(make_http("127.0.0.1"), world, clock, xff) == expected, xff


@pytest.mark.settings(trusted_proxies=(ipaddress.ip_network(PROXY),))
async def test_a_stranger_cannot_pose_as_the_trusted_proxy_through_the_header(
    make_http: MakeHttp, world: World, clock: FakeClock
) -> None:
    # The peer is a stranger; its header names the proxy and an allowed address: not believed.
    stranger = make_http("192.0.2.50")
    assert await outcome(stranger, world, clock, "10.1.2.3, 127.0.0.1") == REFUSED
