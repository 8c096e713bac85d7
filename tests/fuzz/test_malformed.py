"""Hypothesis-driven malformed requests: each one must get the protocol's parameter error.

A correct request of each protocol (valid credentials, a real player) has one of its fields
replaced by a bad value: a wrong type, a huge number, an exponent, NaN or Infinity, 5+ decimal
places, a negative or zero amount, odd unicode, deep nesting; or the whole body replaced by
something that is not the protocol's JSON at all (truncated, not UTF-8, not an object, nested
100,000 deep, 1 MB). Expected answers:

* seamless: HTTP 200 with errorCode 101 (111 is also right for a well-formed but huge amount),
  HTTP 413 with 101 over 64 KiB;
* HRG: 2001 (3003 for a malformed user id, 4005 for a well-formed huge amount), 413 + 2001;
* JDB: its parameter family 8000/8001/8010/8014, 7601 for a uid, 9006 for a payload that
  cannot be read, 9005/9007 for a broken ``ts``/``action``, 6009/6001 for huge amounts;
  413 + 8000.

Never a 5xx, never 100/9999, never success; and nothing moves (balances and audit checked).
Cases per test: ``GAMEWALLET_FUZZ_CASES`` (1,000 in ``make fuzz``).
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.fuzz.live import cases_per_protocol
from tests.security import calls
from tests.security.world import OPENING_MINOR, World, xts

from gamewallet.service import admin
from gamewallet.service.common import FakeClock
from gamewallet.service.context import Services
from gamewallet.store import ops
from gamewallet.store.port import do

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)

FUZZ = settings(
    max_examples=cases_per_protocol(),
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
BODY_MAX = 64 * 1024
#: A raw JSON text standing for a value (so that NaN, exponents and huge numbers survive).
Raw = str


def _dump(value: Any) -> Raw:
    return json.dumps(value)


# --- bad values, as raw JSON text ---------------------------------------------------------

#: Values of the wrong JSON type for any field (numbers are wrong for string fields only).
WRONG_TYPES: st.SearchStrategy[Raw] = st.sampled_from(
    ["true", "false", "null", "[]", "{}", "[1, 2]", '{"a": 1}']
)
#: ... for an optional field, where null means "absent" and is fine.
WRONG_TYPES_NOT_NULL = WRONG_TYPES.filter(lambda raw: raw != "null")
NUMBERS_FOR_STRINGS: st.SearchStrategy[Raw] = st.sampled_from(["0", "-1", "1.5", "7"])
#: Number texts that are never a valid positive amount of at most 3-4 decimal places.
NUMBER_TRAPS: st.SearchStrategy[Raw] = st.one_of(
    st.sampled_from(
        [
            "NaN",
            "Infinity",
            "-Infinity",
            "nan",
            "1e3",
            "1E-2",
            "1e308",
            "1e-400",
            "0x10",
            "1,5",
            "1_000",
            "١٢٣",
        ]
    ),
    # Exponents of every kind (even where the value itself would be fine, like 15e-1).
    st.builds(lambda m, e: f"{m}e{e}", st.integers(1, 99), st.integers(-400, 400)),
    # Five or more decimal places (the last one not a zero).
    st.builds(
        lambda i, d, n: f"{i}.{str(d).zfill(n - 1)}{n % 9 + 1}",
        st.integers(0, 10**6),
        st.integers(0, 10**12),
        st.integers(5, 30),
    ),
    # Huge magnitudes and long digit strings, and negatives.
    st.builds(lambda n: "9" * n, st.integers(17, 1000)),
    st.builds(lambda i: str(-i), st.integers(1, 10**30)),
)
#: Zero, where an amount must be positive.
ZEROS: st.SearchStrategy[Raw] = st.sampled_from(["0", "0.0", "-0", "0.0000"])
BAD_STRINGS: st.SearchStrategy[Raw] = st.one_of(
    st.sampled_from(
        [
            '""',
            '" "',
            '"\\u0000"',
            '"\\ud800"',
            '"\\u202e"',
            '"😀"',
            '"\\n"',
            '"a b"',
            _dump("x" * 5000),
            _dump("é" * 80),
        ]
    ),
    st.text(
        alphabet=st.characters(exclude_categories=["Cs"], min_codepoint=0x80),
        min_size=1,
        max_size=80,
    ).map(_dump),
    st.text(min_size=300, max_size=2000).map(_dump),
)


def nested(depth: int) -> Raw:
    """A JSON value nested ``depth`` deep."""
    return "[" * depth + "]" * depth


DEEP = st.sampled_from(
    [nested(100), nested(10_000), nested(100_000), '{"a":' * 5000 + "1" + "}" * 5000]
)

#: Whole bodies that are not the protocol's JSON object.
BAD_BODIES: st.SearchStrategy[bytes] = st.one_of(
    st.sampled_from(
        [
            b"",
            b" ",
            b"{",
            b"}",
            b"[]",
            b"1",
            b'"x"',
            b"null",
            b"{}{}",
            b'{"a":1,}',
            b"\xff\xfe\xfd",
            b"\xef\xbb\xbf{}",
            b'{"token": "\xff"}',
            b"{'token': 1}",
            nested(100_000).encode(),
            b"\x00" * 64,
        ]
    ),
    st.binary(min_size=1, max_size=2000),
    st.text(max_size=500).map(str.encode),
)


def body_with(template: dict[str, Raw], field: str, bad: Raw) -> bytes:
    """``template`` (field -> raw JSON) as a body, with ``field`` set to ``bad``."""
    fields = {**template, field: bad}
    return ("{" + ", ".join(f"{json.dumps(k)}: {v}" for k, v in fields.items()) + "}").encode()


async def untouched(services: Services, world: World) -> None:
    """No player of the world has moved; the ledger is sound."""
    for client in await services.store.run(do(ops.ListClients())):
        name = {"seamless": "player", "hrg": "user", "jdb": "uid"}[client.protocol]
        player = await services.store.run(admin.get_player(client, name + client.name[-1]))
        assert player.cash.balance.available_minor == OPENING_MINOR, client.name
    assert await services.store.run(admin.audit()) == []


# --- seamless -----------------------------------------------------------------------------

SEAMLESS_FIELDS = {
    "amount": st.one_of(NUMBER_TRAPS, ZEROS, WRONG_TYPES, BAD_STRINGS, DEEP),
    "currency": st.one_of(
        WRONG_TYPES,
        NUMBERS_FOR_STRINGS,
        BAD_STRINGS,
        st.sampled_from(['"thb"', '"TH"', '"THBB"', '"ТНВ"', '"T1B"']),
    ),
    "token": st.one_of(WRONG_TYPES, NUMBERS_FOR_STRINGS, DEEP, BAD_STRINGS),
    "mmTransactionId": st.one_of(WRONG_TYPES, NUMBERS_FOR_STRINGS, DEEP, BAD_STRINGS),
    "txDescription": st.one_of(st.sampled_from(["1", "true", "[]", "{}", _dump("d" * 256)]), DEEP),
}


def seamless_body(world: World, field: str, bad: Raw) -> bytes:
    side = world.seamless[0]
    amount = {"amount": "1.5", "currencyCode": '"THB"'}
    if field == "amount":
        amount["amount"] = bad
    if field == "currency":
        amount["currencyCode"] = bad
    template = {
        "token": _dump(side.token),
        "mmTransactionId": _dump("fz" + str(abs(hash(bad)))[:20]),
        "amount": "{"
        + ", ".join(
            f'"{k}": {v}'
            for k, v in (("amount", amount["amount"]), ("currencyCode", amount["currencyCode"]))
        )
        + "}",
    }
    if field in ("token", "mmTransactionId", "txDescription"):
        return body_with(template, field, bad)
    return body_with(template, "mmTransactionId", template["mmTransactionId"])


def seamless_ok(response: httpx.Response, field: str) -> None:
    assert response.status_code in (200, 413), response.status_code
    code = response.json()["errorCode"]
    allowed = {101, 111} if field == "amount" else {101}
    assert code in allowed, (field, response.text)


@FUZZ
@given(data=st.data())
async def test_seamless_malformed_fields_are_101(
    http: httpx.AsyncClient, world: World, services: Services, data: st.DataObject
) -> None:
    field = data.draw(st.sampled_from(sorted(SEAMLESS_FIELDS)), label="field")
    bad = data.draw(SEAMLESS_FIELDS[field], label="bad")
    # confirm* has no txDescription (unknown fields are ignored, as the vendor's clients add
    # fields of their own).
    endpoints = ["withdraw", "deposit"] + (
        [] if field == "txDescription" else ["confirmWithdrawal"]
    )
    endpoint = data.draw(st.sampled_from(endpoints))
    body = seamless_body(world, field, bad)
    response = await http.post(
        f"/wallet/{endpoint}",
        content=body,
        headers={"Authorization": world.seamless[0].auth(), "Content-Type": "application/json"},
    )
    seamless_ok(response, field)
    await untouched(services, world)


@FUZZ
@given(
    body=BAD_BODIES,
    endpoint=st.sampled_from(["getBalance", "withdraw", "rollbackDeposit", "payment/initiate"]),
)
async def test_seamless_bodies_that_are_not_json_objects_are_101(
    http: httpx.AsyncClient, world: World, body: bytes, endpoint: str
) -> None:
    response = await http.post(
        f"/wallet/{endpoint}",
        content=body,
        headers={"Authorization": world.seamless[0].auth(), "Content-Type": "application/json"},
    )
    assert response.status_code == (413 if len(body) > BODY_MAX else 200)
    assert response.json()["errorCode"] == 101, response.text


# --- HRG ----------------------------------------------------------------------------------

HRG_FIELDS: dict[str, tuple[st.SearchStrategy[Raw], set[str]]] = {
    "amount": (
        st.one_of(
            NUMBER_TRAPS.map(_dump),
            ZEROS.map(_dump),
            NUMBERS_FOR_STRINGS,
            WRONG_TYPES,
            DEEP,
            BAD_STRINGS,
        ),
        {"2001", "4005"},
    ),
    "agentId": (
        st.one_of(WRONG_TYPES, NUMBERS_FOR_STRINGS, DEEP, st.sampled_from(['""', _dump("a" * 51)])),
        {"2001"},
    ),
    "userId": (
        st.one_of(
            WRONG_TYPES,
            NUMBERS_FOR_STRINGS,
            DEEP,
            BAD_STRINGS,
            st.sampled_from(['"User1"', '"u-1"', _dump("u" * 51)]),
        ),
        {"2001", "3003"},
    ),
    "transactionCode": (
        st.one_of(
            WRONG_TYPES,
            NUMBERS_FOR_STRINGS,
            DEEP,
            st.sampled_from(['""', _dump("t" * 31), '"t x"', '"t\u00e9"']),
        ),
        {"2001"},
    ),
    "freeCredit": (
        st.one_of(NUMBER_TRAPS.map(_dump), NUMBERS_FOR_STRINGS, WRONG_TYPES_NOT_NULL, DEEP),
        {"2001", "4005"},
    ),
}


@FUZZ
@given(data=st.data())
async def test_hrg_malformed_fields_are_2001(
    http: httpx.AsyncClient, world: World, services: Services, clock: FakeClock, data: st.DataObject
) -> None:
    side = world.hrg[0]
    field = data.draw(st.sampled_from(sorted(HRG_FIELDS)), label="field")
    strategy, allowed = HRG_FIELDS[field]
    bad = data.draw(strategy, label="bad")
    template = {
        "agentId": _dump(side.agent),
        "userId": _dump(side.user),
        "amount": '"1.5"',
        "transactionCode": _dump("fz" + str(abs(hash(bad)))[:20]),
    }
    response = await http.post(
        "/api/deposit",
        content=body_with(template, field, bad),
        headers={
            "Authorization": side.auth(),
            "xts": xts(clock.now_ms()),
            "Content-Type": "application/json",
        },
    )
    assert response.status_code in (200, 413)
    assert response.json()["code"] in allowed, (field, response.text)
    await untouched(services, world)


@FUZZ
@given(body=BAD_BODIES, name=st.sampled_from(["get_balance", "withdraw", "create_user"]))
async def test_hrg_bodies_that_are_not_json_objects_are_2001(
    http: httpx.AsyncClient, world: World, clock: FakeClock, body: bytes, name: str
) -> None:
    side = world.hrg[0]
    response = await http.post(
        f"/api/{name}",
        content=body,
        headers={
            "Authorization": side.auth(),
            "xts": xts(clock.now_ms()),
            "Content-Type": "application/json",
        },
    )
    assert response.status_code == (413 if len(body) > BODY_MAX else 200)
    assert response.json()["code"] == "2001", response.text


# --- JDB ----------------------------------------------------------------------------------

JDB_PARAMETER = {"8000", "8001", "8010", "8014", "7601"}
JDB_FIELDS: dict[str, tuple[st.SearchStrategy[Any], set[str]]] = {
    # Exponent forms are JDB numbers like any other (see the test below), so not traps here.
    "amount": (
        st.one_of(
            # Negative amounts are withdrawals in JDB, so not traps either.
            NUMBER_TRAPS.filter(lambda raw: "e" not in raw.lower() and not raw.startswith("-")),
            ZEROS,
            WRONG_TYPES,
            BAD_STRINGS,
            DEEP,
        ),
        JDB_PARAMETER | {"6009", "6001", "9006"},
    ),
    "uid": (st.one_of(WRONG_TYPES, BAD_STRINGS, DEEP), JDB_PARAMETER | {"9006"}),
    "serialNo": (st.one_of(WRONG_TYPES, BAD_STRINGS, DEEP), JDB_PARAMETER | {"9006"}),
    "allCashOutFlag": (
        # "" means the default ("0"), like an absent flag.
        st.one_of(
            WRONG_TYPES_NOT_NULL,
            BAD_STRINGS.filter(lambda raw: raw != '""'),
            st.sampled_from(['"2"', '"01"', "2"]),
        ),
        JDB_PARAMETER | {"9006"},
    ),
    "remark": (
        # A number is taken as its text (operators send numeric remarks).
        st.one_of(st.sampled_from(["[]", "{}", _dump("r" * 16)]), DEEP),
        JDB_PARAMETER | {"9006"},
    ),
    "ts": (st.one_of(WRONG_TYPES, NUMBER_TRAPS, BAD_STRINGS), JDB_PARAMETER | {"9005", "9006"}),
    "action": (
        st.one_of(WRONG_TYPES, BAD_STRINGS, st.sampled_from(["NaN", "Infinity", "1.5", "19.5"])),
        JDB_PARAMETER | {"9006", "9007"},
    ),
}


@FUZZ
@given(data=st.data())
async def test_jdb_malformed_payload_fields_are_parameter_errors(
    http: httpx.AsyncClient, world: World, services: Services, clock: FakeClock, data: st.DataObject
) -> None:
    side = world.jdb[0]
    field = data.draw(st.sampled_from(sorted(JDB_FIELDS)), label="field")
    strategy, allowed = JDB_FIELDS[field]
    bad = data.draw(strategy, label="bad")
    template = {
        "action": "19",
        "ts": str(clock.now_ms()),
        "parent": _dump(side.parent),
        "uid": _dump(side.uid),
        "serialNo": _dump("fz" + str(abs(hash(bad)))[:20]),
        "amount": "1.5",
    }
    plain = body_with(template, field, bad).decode("utf-8", "surrogatepass")
    from gamewallet.protocols.jdb.crypto import JdbCipher

    x = JdbCipher(side.key, side.iv).encrypt(plain.encode("utf-8", "surrogatepass"))
    response = await calls.jdb(http, side, {}, clock, x=x)
    status = response.json()["status"]
    if response.status_code == 413:  # the encrypted payload itself is over the body limit
        assert status == "8000"
    else:
        assert response.status_code == 200
        assert status in allowed, (field, bad[:80], response.text)
    await untouched(services, world)


@FUZZ
@given(
    mantissa=st.integers(1, 99_999),
    exponent=st.integers(-3, 4),
    upper=st.booleans(),
)
async def test_jdb_reads_exponent_amounts_exactly(
    http: httpx.AsyncClient,
    world: World,
    services: Services,
    clock: FakeClock,
    mantissa: int,
    exponent: int,
    upper: bool,
) -> None:
    """[decided, JDB] An amount written with an exponent is the exact decimal it denotes:
    JDB's vendor types amounts as Double, and Java writes 10000000.0 as ``1.0E7``. The value
    must still have at most 3 decimal places (else 8014), and it is never read as a float."""
    side = world.jdb[0]
    text = f"{mantissa}{'E' if upper else 'e'}{exponent}"
    before = await _jdb_cash(services, side.dc, side.uid)
    serial = f"ex{mantissa}x{exponent + 10}{int(upper)}{clock.now_ms() % 10**6}"
    plain = (
        f'{{"action": 19, "ts": {clock.now_ms()}, "parent": "{side.parent}", '
        f'"uid": "{side.uid}", "serialNo": "{serial}", "amount": {text}}}'
    )
    from gamewallet.protocols.jdb.crypto import JdbCipher

    x = JdbCipher(side.key, side.iv).encrypt(plain)
    response = await calls.jdb(http, side, {}, clock, x=x)
    value = Decimal(text)
    moved = await _jdb_cash(services, side.dc, side.uid) - before
    if response.json()["status"] == "0000":
        assert Decimal(moved) / 10_000 == value, (text, moved)
    else:
        places = value.as_tuple().exponent
        assert isinstance(places, int)
        # Refused: a repeat, over the 9-digit limits, or more than 3 decimal places.
        refusals = ("6005", "6009", "6010")
        assert response.json()["status"] in refusals or places < -3, response.text
        assert moved == 0
    clock.advance(0.001)


async def _jdb_cash(services: Services, dc: str, uid: str) -> int:
    clients = await services.store.run(do(ops.ListClients(protocol="jdb")))
    client = next(c for c in clients if c.name == dc)
    player = await services.store.run(admin.get_player(client, uid))
    return player.cash.balance.available_minor


@FUZZ
@given(body=BAD_BODIES)
async def test_jdb_payloads_that_are_not_json_objects_are_9006(
    http: httpx.AsyncClient, world: World, clock: FakeClock, body: bytes
) -> None:
    from gamewallet.protocols.jdb.crypto import JdbCipher

    side = world.jdb[0]
    x = JdbCipher(side.key, side.iv).encrypt(body)
    response = await calls.jdb(http, side, {}, clock, x=x)
    assert response.status_code == (413 if len(x) > BODY_MAX else 200)
    assert response.json()["status"] in {"9006", "8000"}, (body[:80], response.text)


@pytest.mark.parametrize("size", [64 * 1024 + 1, 1024 * 1024])
async def test_one_megabyte_bodies_are_413_with_each_protocols_parameter_error(
    http: httpx.AsyncClient, world: World, clock: FakeClock, size: int
) -> None:
    junk = b"{" + b" " * size + b"}"
    s, h, j = world.seamless[0], world.hrg[0], world.jdb[0]
    response = await http.post(
        "/wallet/withdraw",
        content=junk,
        headers={"Authorization": s.auth(), "Content-Type": "application/json"},
    )
    assert (response.status_code, response.json()["errorCode"]) == (413, 101)
    response = await http.post(
        "/api/deposit",
        content=junk,
        headers={
            "Authorization": h.auth(),
            "xts": xts(clock.now_ms()),
            "Content-Type": "application/json",
        },
    )
    assert (response.status_code, response.json()["code"]) == (413, "2001")
    response = await http.post(
        calls.JDB_PATH,
        content=b"dc=" + j.dc.encode() + b"&x=" + b"A" * size,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert (response.status_code, response.json()["status"]) == (413, "8000")
