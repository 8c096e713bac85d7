"""The envelope of apiRequest.do: transport forms, domain, address, payload, time, action.

Every refusal here happens before any action runs, so nothing may change: the ``jdb`` fixture
audits the ledger after each test, and the money-moving cases check that no transfer exists.
"""

from __future__ import annotations

import base64
import dataclasses
import ipaddress
import json
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from tests.protocol.jdb.caller import IV, KEY, PATH, Jdb, create_domain, domain_config, encode

from gamewallet.protocols.jdb import routes
from gamewallet.protocols.jdb.auth import client_address
from gamewallet.protocols.jdb.crypto import encrypt_payload
from gamewallet.protocols.jdb.errors import STATUS_TEXT
from gamewallet.service import jdb as jdb_service
from gamewallet.store import ops
from gamewallet.store.port import StoreError, UseCase, do

#: protocols.md 3.1: the vendor-compatible test vector.
VECTOR_KEY = "testKey"
VECTOR_IV = "testIVtestIVtest"
VECTOR_TS = 1609430400000
VECTOR_X = (
    "RK3wn-eTsqaqNKQbX9kz6ngE6UktzyXXHiPZh1mQH1Oz9tITxuP7GdX8SZhtbOMPnONlHoiJ3QGgMYHm7oc-OAGBBHBY"
    "Tr9AWRkb2DgEqVaQEA2iBdBfSLtTeeLIeRA7vjw39gpYIcXqnRKvoMX7JkB58pryC-yDisadqo0TPvU"
)
ONLINE = {"action": 65}


def err(status: str) -> dict[str, str]:
    return {"status": status, "err_text": STATUS_TEXT[status]}


async def get(jdb: Jdb, **params: str) -> Any:
    response = await jdb.http.get(PATH, params=params)
    assert response.status_code == 200, response.text
    return response.json()


# --- the vendor's test vector -------------------------------------------------------------


async def test_vendor_vector_decrypts_to_an_unserved_action(jdb: Jdb) -> None:
    """The vector's payload is action 21 of agent testParent: decrypted, fresh, unknown."""
    config = {"parent": "testParent", "aes_key": VECTOR_KEY, "aes_iv": VECTOR_IV}
    await create_domain(jdb.services, jdb.clock.now_ms(), "tv", config)
    jdb.clock.now = VECTOR_TS
    assert await get(jdb, dc="tv", x=VECTOR_X) == err("9007")
    padded = VECTOR_X + "=" * (-len(VECTOR_X) % 4)
    assert await get(jdb, dc="tv", x=padded) == err("9007")
    jdb.clock.now = VECTOR_TS + 31_000
    assert await get(jdb, dc="tv", x=VECTOR_X) == err("9005")


async def test_vendor_vector_payload_is_what_we_encrypt(jdb: Jdb) -> None:
    plain = (
        '{"action":21,"ts":1609430400000,"parent":"testParent","uid":"testPlayID",'
        '"balance":1000,"lang":"en","gType":"0","mType":"8001"}'
    )
    assert encrypt_payload(plain + " ", VECTOR_KEY, VECTOR_IV) == VECTOR_X


# --- refusals of the envelope -------------------------------------------------------------


def _flip(x: str, index: int) -> str:
    """``x`` with the base64 character at ``index`` replaced by another one."""
    other = "A" if x[index] != "A" else "B"
    return x[:index] + other + x[index + 1 :]


async def test_domain_refusals(jdb: Jdb) -> None:
    x = jdb.x(ONLINE)
    assert await get(jdb, x=x) == err("9002")
    assert await get(jdb, dc="", x=x) == err("9002")
    assert await get(jdb, dc="j", x=x) == err("9002")
    assert await get(jdb, dc="zz", x=x) == err("9003")
    assert await get(jdb, dc="j" * 51, x=x) == err("9003")
    assert await get(jdb, dc="JB", x=x) == err("9003")  # domain codes are exact


async def test_disabled_and_misconfigured_domains_are_unknown(jdb: Jdb) -> None:
    await create_domain(jdb.services, jdb.clock.now_ms(), "nokey", {"parent": "testag"})
    assert await get(jdb, dc="nokey", x=jdb.x(ONLINE)) == err("9003")
    long_key = domain_config(aes_key="k" * 17)
    await create_domain(jdb.services, jdb.clock.now_ms(), "longkey", long_key)
    assert await get(jdb, dc="longkey", x=jdb.x(ONLINE)) == err("9003")
    await jdb.services.store.run(do(ops.UpdateClient(jdb.clients["jb"].id, {"disabled": True})))
    await jdb.services.clients.reload()
    assert await get(jdb, dc="jb", x=jdb.x(ONLINE)) == err("9003")


@pytest.mark.parametrize(
    ("name", "make_x", "status"),
    [
        ("missing x", None, "9004"),
        ("empty x", lambda j: "", "9004"),
        ("not base64", lambda j: "!!!!****", "9006"),
        ("one base64 character", lambda j: "A", "9006"),
        ("not whole blocks", lambda j: j.x(ONLINE)[:-5], "9006"),
        ("first block tampered", lambda j: _flip(j.x(ONLINE), 3), "9006"),
        ("last block tampered", lambda j: _flip(j.x(ONLINE), -3), "9006"),
        ("another key", lambda j: j.x(ONLINE, key="another-key-0123"), "9006"),
        ("another IV", lambda j: j.x(ONLINE, iv="another-iv-01234"), "9006"),
        ("not JSON", lambda j: encrypt_payload("hello", KEY, IV), "9006"),
        ("JSON array", lambda j: encrypt_payload("[65]", KEY, IV), "9006"),
        ("JSON with trailing text", lambda j: encrypt_payload('{"action":65} x', KEY, IV), "9006"),
        ("not UTF-8", lambda j: encrypt_payload(b'{"a":"\xff"}', KEY, IV), "9006"),
    ],
)
async def test_payload_refusals(jdb: Jdb, name: str, make_x: Any, status: str) -> None:
    params = {"dc": "jb"} if make_x is None else {"dc": "jb", "x": make_x(jdb)}
    assert await get(jdb, **params) == err(status), name


@pytest.mark.parametrize(
    ("offset_ms", "status"),
    [
        (-30_001, "9005"),
        (-30_000, "0000"),
        (0, "0000"),
        (30_000, "0000"),
        (30_001, "9005"),
        (-86_400_000, "9005"),
        (86_400_000, "9005"),
    ],
)
async def test_ts_window(jdb: Jdb, offset_ms: int, status: str) -> None:
    """ts may be at most 30 s away from our clock, in the past or in the future."""
    reply = await jdb.call(ONLINE, ts_offset_ms=-offset_ms)
    assert reply["status"] == status


async def test_ts_window_is_a_setting(jdb: Jdb) -> None:
    jdb.services.settings = dataclasses.replace(jdb.services.settings, jdb_ts_window_s=5)
    assert (await jdb.call(ONLINE, ts_offset_ms=-5_000))["status"] == "0000"
    assert await jdb.call(ONLINE, ts_offset_ms=-5_001) == err("9005")


@pytest.mark.parametrize(
    ("fields", "status"),
    [
        ({"action": 65, "ts": None}, "9005"),
        ({"action": 65, "ts": "yesterday"}, "9005"),
        ({"action": 65, "ts": True}, "9005"),
        ({"action": 65, "ts": 1767225600000.5}, "9005"),
        ({"action": 65, "ts": "1767225600000"}, "0000"),  # digits as text: accepted
        ({"action": None}, "9007"),
        ({"action": "sixty-five"}, "9007"),
        ({"action": 21}, "9007"),
        ({"action": 999}, "9007"),
        ({"action": "65"}, "0000"),
        ({"action": 999, "ts": 0}, "9005"),  # the time check comes first
        ({"action": 999, "parent": "otherag"}, "9007"),  # the action check comes before parent
        ({"action": 65, "parent": None}, "8001"),
        ({"action": 65, "parent": "otherag"}, "9003"),
        ({"action": 65, "parent": 7}, "9003"),
    ],
)
async def test_payload_fields(jdb: Jdb, fields: dict[str, Any], status: str) -> None:
    ts = fields.get("ts", jdb.clock.now_ms())
    payload = {**jdb.payload(fields), "ts": ts}
    x = encrypt_payload(encode({k: v for k, v in payload.items() if v is not None}), KEY, IV)
    reply = await get(jdb, dc="jb", x=x)
    assert reply["status"] == status, reply
    if status != "0000":
        assert reply == err(status)


async def test_top_level_parent(jdb: Jdb) -> None:
    x = jdb.x(ONLINE)
    assert (await get(jdb, dc="jb", x=x, parent="testag"))["status"] == "0000"
    assert await get(jdb, dc="jb", x=x, parent="otherag") == err("9003")


# --- transport forms ----------------------------------------------------------------------


async def test_get_and_post_forms_are_equivalent(jdb: Jdb) -> None:
    await jdb.player("p1", "100")
    fields = {"action": 15, "uid": "p1"}
    expected = (await jdb.call(fields))["data"]
    x = jdb.x(fields)
    responses = [
        await jdb.http.post(PATH, data={"dc": "jb", "x": x}),
        await jdb.http.post(PATH, json={"dc": "jb", "x": x, "parent": "testag"}),
        await jdb.http.post(PATH, params={"dc": "jb", "x": x}),
        await jdb.http.post(PATH, params={"dc": "jb"}, data={"x": x}),
        await jdb.http.post(PATH, files={"dc": (None, "jb"), "x": (None, x)}),
        await jdb.http.post(
            PATH,
            content=json.dumps({"dc": "jb", "x": x}).encode(),
            headers={"content-type": "text/plain"},
        ),
    ]
    for response in responses:
        assert response.status_code == 200, response.text
        assert response.json() == {"status": "0000", "data": expected}


async def test_body_overrides_query(jdb: Jdb) -> None:
    x = jdb.x(ONLINE)
    response = await jdb.http.post(
        PATH, params={"dc": "zz", "x": "junk"}, data={"dc": "jb", "x": x}
    )
    assert response.json()["status"] == "0000"


async def test_x_spellings(jdb: Jdb) -> None:
    """``=`` padding, URL-encoding, the standard alphabet, ``+`` sent as a space."""
    fields = {"action": 15, "uid": "p1"}
    await jdb.player("p1", "1")
    x = jdb.x(fields)
    raw = base64.urlsafe_b64decode(x + "=" * (-len(x) % 4))
    standard = base64.b64encode(raw).decode()
    # httpx encodes the query once more: the server sees x itself URL-encoded once.
    spellings = [x + "=" * (-len(x) % 4), quote(x, safe=""), quote(standard, safe=""), standard]
    for spelling in spellings:
        assert (await get(jdb, dc="jb", x=spelling))["status"] == "0000", spelling
    # A standard-alphabet x pasted unencoded into a query string: its `+` arrive as spaces.
    query = f"dc=jb&x={standard}".encode()
    response = await jdb.http.get(PATH + "?" + query.decode())
    assert response.json()["status"] == "0000"
    response = await jdb.http.post(
        PATH,
        content=b"dc=jb&x=" + standard.encode(),
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert response.json()["status"] == "0000"


@pytest.mark.parametrize(
    ("content", "content_type"),
    [
        (b'{"dc": "jb", "x": ', "application/json"),
        (b'{"dc": 12, "x": "abc"}', "application/json"),
        (b'["jb"]', "application/json"),
        (b"dc=jb&x=\xff\xfe", "application/x-www-form-urlencoded"),
    ],
)
async def test_bad_bodies_are_8000(jdb: Jdb, content: bytes, content_type: str) -> None:
    response = await jdb.http.post(PATH, content=content, headers={"content-type": content_type})
    assert response.status_code == 200
    assert response.json() == err("8000")


async def test_body_over_the_limit_is_413_with_8000(jdb: Jdb) -> None:
    limit = jdb.services.settings.max_body_bytes
    big = b"dc=jb&x=" + b"A" * limit
    response = await jdb.http.post(
        PATH, content=big, headers={"content-type": "application/x-www-form-urlencoded"}
    )
    assert response.status_code == 413
    assert response.json() == err("8000")

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: counted while read
        for _ in range(limit // 1024 + 2):
            yield b"A" * 1024

    response = await jdb.http.post(PATH, content=chunks())
    assert response.status_code == 413
    assert response.json() == err("8000")


async def test_other_methods_are_405_with_8000(jdb: Jdb) -> None:
    for method in ("PUT", "PATCH", "DELETE"):
        response = await jdb.http.request(method, PATH, params={"dc": "jb"})
        assert response.status_code == 405
        assert response.headers["allow"] == "GET, POST"
        assert response.json() == err("8000")


# --- address allowlist and rate --------------------------------------------------------------


async def test_address_allowlist(jdb: Jdb) -> None:
    """httpx's ASGI transport connects from 127.0.0.1."""
    now = jdb.clock.now_ms()
    await create_domain(jdb.services, now, "far", domain_config(allow_ips=["10.0.0.0/8"]))
    await create_domain(jdb.services, now, "near", domain_config(allow_ips=["127.0.0.1/32"]))
    await create_domain(jdb.services, now, "one", domain_config(allow_ips="127.0.0.0/8"))
    x = jdb.x(ONLINE)
    assert await get(jdb, dc="far", x=x) == err("9001")
    assert await get(jdb, dc="far", x="garbage") == err("9001")  # before the payload is read
    assert (await get(jdb, dc="near", x=x))["status"] == "0000"
    assert (await get(jdb, dc="one", x=x))["status"] == "0000"
    # X-Forwarded-For counts only when the peer is a trusted proxy.
    forwarded = {"x-forwarded-for": "10.1.2.3"}
    response = await jdb.http.get(PATH, params={"dc": "far", "x": x}, headers=forwarded)
    assert response.json() == err("9001")
    trusted = (ipaddress.ip_network("127.0.0.0/8"),)
    jdb.services.settings = dataclasses.replace(jdb.services.settings, trusted_proxies=trusted)
    response = await jdb.http.get(PATH, params={"dc": "far", "x": x}, headers=forwarded)
    assert response.json()["status"] == "0000"
    response = await jdb.http.get(PATH, params={"dc": "near", "x": x}, headers=forwarded)
    assert response.json() == err("9001")


def test_client_address() -> None:
    proxies = (ipaddress.ip_network("10.0.0.0/8"),)
    ip = ipaddress.ip_address
    assert client_address("1.2.3.4", None, proxies) == ip("1.2.3.4")
    assert client_address("1.2.3.4", "5.6.7.8", proxies) == ip("1.2.3.4")
    assert client_address("10.0.0.1", "5.6.7.8", proxies) == ip("5.6.7.8")
    assert client_address("10.0.0.1", "9.9.9.9, 5.6.7.8, 10.0.0.2", proxies) == ip("5.6.7.8")
    assert client_address("10.0.0.1", "10.0.0.3, 10.0.0.2", proxies) == ip("10.0.0.3")
    assert client_address("10.0.0.1", "junk", proxies) is None
    assert client_address("testclient", None, proxies) is None
    assert client_address(None, None, proxies) is None


async def test_rate_limit_per_domain(jdb: Jdb) -> None:
    jdb.services.settings = dataclasses.replace(jdb.services.settings, rate_limit_per_client=2)
    x = jdb.x(ONLINE)
    statuses = [(await get(jdb, dc="jb", x=x))["status"] for _ in range(3)]
    assert statuses == ["0000", "0000", "9019"]
    assert (await get(jdb, dc="jl", x=jdb.x(ONLINE)))["status"] == "0000"  # per domain
    jdb.clock.advance(1)
    assert (await get(jdb, dc="jb", x=jdb.x(ONLINE)))["status"] == "0000"


# --- failures of our own ------------------------------------------------------------------


class _BrokenStore:
    """A store whose database is gone."""

    kind = "broken"

    async def run(self, use_case: UseCase[Any]) -> Any:
        use_case.close()
        raise StoreError("connection refused")


async def test_store_failure_is_9012(jdb: Jdb) -> None:
    await jdb.player("p1", "100")
    real = jdb.services.store
    jdb.services.store = _BrokenStore()  # type: ignore[assignment]
    try:
        reply = await jdb.call({"action": 19, "uid": "p1", "serialNo": "S1", "amount": 1})
    finally:
        jdb.services.store = real
    assert reply == err("9012")
    assert (await jdb.get_player("p1")).cash.balance.posted_minor == 100 * 10_000


async def test_unexpected_error_is_9999_without_details(
    jdb: Jdb, monkeypatch: pytest.MonkeyPatch
) -> None:
    def explode(*args: object, **kwargs: object) -> UseCase[Any]:
        raise RuntimeError("secret internals")

    monkeypatch.setattr(jdb_service, "online", explode)
    response = await jdb.http.get(
        PATH, params={"dc": "jb", "x": jdb.x(ONLINE)}, headers={"x-request-id": "req-42"}
    )
    assert response.status_code == 200
    assert response.json() == err("9999")
    assert "secret" not in response.text
    assert response.headers["x-request-id"] == "req-42"


async def test_request_id(jdb: Jdb) -> None:
    response = await jdb.http.get(PATH, params={"dc": "jb", "x": jdb.x(ONLINE)})
    generated = response.headers["x-request-id"]
    assert len(generated) == 32
    response = await jdb.http.get(
        PATH, params={"dc": "j"}, headers={"x-request-id": "bad id with spaces"}
    )
    assert response.headers["x-request-id"] not in ("bad id with spaces", generated)


async def test_openapi_describes_api_request(http: httpx.AsyncClient) -> None:
    schema = (await http.get("/schema/openapi.json")).json()
    operations = schema["paths"][routes.PATH]
    assert set(operations) == {"get", "post"}
    assert {p["name"] for p in operations["get"]["parameters"]} == {"dc", "x", "parent"}
    assert "application/x-www-form-urlencoded" in operations["post"]["requestBody"]["content"]
    reply = schema["components"]["schemas"]["TransferResponse"]
    assert reply["properties"]["userBalance"]["type"] == "number"
    assert next(iter(reply["properties"])) == "status"
