"""HTTP Basic auth, the IP allowlist and X-Forwarded-For (spec 1.1).

Unit tests of the header parser and of the address logic, then the whole app: a client with
an allowlist ignores other addresses before it even checks the password (in process the
connection cannot be dropped, so the answer is an empty 403; the real drop over uvicorn is in
test_e2e), and ``X-Forwarded-For`` counts only when the peer is a trusted proxy.
"""

from __future__ import annotations

import base64
import dataclasses
import ipaddress
import json

import pytest

from gamewallet.protocols.seamless.auth import address_allowed, basic_credentials, peer_address
from gamewallet.service.context import Services

from .conftest import CREDENTIALS, Wallet, World, basic, http_client

LOCAL = ipaddress.ip_network("127.0.0.1/32")
PROXIES = (ipaddress.ip_network("127.0.0.1/32"), ipaddress.ip_network("192.168.0.0/16"))


def _b64(text: bytes) -> str:
    return base64.b64encode(text).decode()


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (f"Basic {_b64(b'JohnDoe:MyPass')}", ("JohnDoe", "MyPass")),
        ("Basic Sm9obkRvZTpNeVBhc3M=", ("JohnDoe", "MyPass")),  # the seed's example
        (f"basic   {_b64(b'u:p:with:colons')}  ", ("u", "p:with:colons")),
        (f"Basic {_b64('ü:ß'.encode())}", ("ü", "ß")),
        (f"Basic {_b64(b'u:')}", ("u", "")),
        (None, None),
        ("", None),
        ("Basic", None),
        ("Basic !!!", None),
        (f"Basic {_b64(b'no-colon')}", None),
        (f"Basic {_b64(b':password')}", None),
        (f"Basic {_b64(bytes([0xFF, 0x3A, 0x41]))}", None),  # not UTF-8
        (f"Bearer {_b64(b'u:p')}", None),
        ("Basic " + "A" * 2000, None),
    ],
)
def test_basic_credentials(header: str | None, expected: tuple[str, str] | None) -> None:
    """Well-formed Basic credentials parse; everything else is None (answered 401)."""
    assert basic_credentials(header) == expected


@pytest.mark.parametrize(
    ("peer", "forwarded", "trusted", "expected"),
    [
        ("10.1.2.3", None, (), "10.1.2.3"),
        ("10.1.2.3", "1.2.3.4", (), "10.1.2.3"),  # not a trusted proxy: header ignored
        ("127.0.0.1", "1.2.3.4", PROXIES, "1.2.3.4"),
        ("127.0.0.1", "6.6.6.6, 1.2.3.4, 192.168.1.1", PROXIES, "1.2.3.4"),  # rightmost untrusted
        ("127.0.0.1", "192.168.1.1", PROXIES, "192.168.1.1"),  # all trusted: the farthest
        ("127.0.0.1", "garbage", PROXIES, None),
        ("::ffff:10.0.0.1", None, (), "10.0.0.1"),
        ("testclient", None, (), None),
        (None, None, (), None),
    ],
)
def test_peer_address(
    peer: str | None,
    forwarded: str | None,
    trusted: tuple[ipaddress.IPv4Network, ...],
    expected: str | None,
) -> None:
    """The caller's address, believing X-Forwarded-For only from trusted proxies."""
    address = peer_address(peer, forwarded, trusted)
    assert (str(address) if address else None) == expected


async def test_allowlist_matching(world: World) -> None:
    """Any address when the list is empty; else only addresses inside one of the CIDRs."""
    walled, game = world.clients["walled"], world.clients["game"]
    assert address_allowed(game, None)
    assert address_allowed(walled, ipaddress.ip_address("10.200.0.1"))
    assert not address_allowed(walled, ipaddress.ip_address("11.0.0.1"))
    assert not address_allowed(walled, ipaddress.ip_address("::1"))
    assert not address_allowed(walled, None)


async def test_401_carries_www_authenticate(wallet: Wallet, world: World) -> None:
    """Missing or wrong credentials: 401, WWW-Authenticate: Basic, an empty body."""
    for authorization in (None, basic("gameuser", "wrong"), basic("nobody", "x")):
        response = await wallet.http.post(
            "/wallet/getBalance",
            json={"token": world.tokens["$token"]},
            headers={"Authorization": authorization} if authorization else {},
        )
        assert response.status_code == 401
        assert response.headers["www-authenticate"].startswith("Basic ")
        assert response.content == b""


async def test_a_disabled_client_is_401(wallet: Wallet, world: World, services: Services) -> None:
    """Disabling a client stops its calls (the cache reloads within its TTL, here 0)."""
    from gamewallet.store import ops
    from gamewallet.store.port import do

    await services.store.run(do(ops.UpdateClient(world.clients["game"].id, {"disabled": True})))
    await services.clients.reload()
    status, _ = await wallet.post("getBalance", {"token": "$token"})
    assert status == 401


async def test_the_allowlist_is_checked_before_the_password(wallet: Wallet, world: World) -> None:
    """From outside the allowlist even a wrong password gets no 401: nothing is revealed."""
    status, raw = await wallet.post(
        "getBalance", {"token": "$token_w1"}, authorization=basic("walluser", "wrong")
    )
    assert (status, raw) == (403, b"")


async def test_forwarded_for_from_a_trusted_proxy(world: World, services: Services) -> None:
    """Behind a trusted proxy (the test client is 127.0.0.1) the forwarded address counts."""
    services.settings = dataclasses.replace(services.settings, trusted_proxies=(LOCAL,))
    body = {"token": world.tokens["$token_w1"]}
    async with http_client(services) as http:
        inside = await http.post(
            "/wallet/getBalance",
            json=body,
            headers={
                "Authorization": basic(*CREDENTIALS["walled"]),
                "X-Forwarded-For": "203.0.113.9, 10.9.8.7",
            },
        )
        outside = await http.post(
            "/wallet/getBalance",
            json=body,
            headers={
                "Authorization": basic(*CREDENTIALS["walled"]),
                "X-Forwarded-For": "10.9.8.7, 203.0.113.9",
            },
        )
        wrong = await http.post(
            "/wallet/getBalance",
            json=body,
            headers={"Authorization": basic("walluser", "nope"), "X-Forwarded-For": "10.9.8.7"},
        )
    assert inside.status_code == 200
    assert json.loads(inside.content) == {"balance": {"amount": 10, "currencyCode": "XAG"}}
    assert (outside.status_code, outside.content) == (403, b"")
    assert wrong.status_code == 401


async def test_forwarded_for_from_an_untrusted_peer_is_ignored(
    wallet: Wallet, world: World
) -> None:
    """Without trusted proxies a forged X-Forwarded-For changes nothing."""
    status, raw = await wallet.post(
        "getBalance",
        {"token": "$token_w1"},
        client="walled",
        headers={"X-Forwarded-For": "10.9.8.7"},
    )
    assert (status, raw) == (403, b"")
