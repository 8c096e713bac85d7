"""Unit tests of the HRG edge without a database: the code table, wire conversions, auth."""

from __future__ import annotations

import base64
import ipaddress
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gamewallet.core.errors import ErrorCode
from gamewallet.core.money import MAX_MINOR, UNIT, format_minor
from gamewallet.protocols.hrg import auth, errors, schemas
from gamewallet.protocols.hrg.errors import HrgError

# --- the status table --------------------------------------------------------------------

SPEC_2_3 = {
    "0000": "Success",
    "1001": "Authorization failed",
    "1002": "Request time (xts) missing or out of range",
    "2001": "Invalid parameter",
    "2002": "Agent not found",
    "3001": "User not found",
    "3002": "User already exists",
    "3003": "Invalid user id",
    "4001": "Insufficient balance",
    "4002": "Insufficient free credit",
    "4003": "Duplicate transaction code",
    "4004": "Transaction not found",
    "4005": "Amount over limit",
    "4006": "Agent credit limit exceeded",
    "9999": "Unknown error",
}

#: The core outcomes HRG's use cases can produce, in core precedence order.
PRODUCED = [
    ErrorCode.PLAYER_NOT_FOUND,
    ErrorCode.PLAYER_EXISTS,
    ErrorCode.ID_REUSED,
    ErrorCode.NOT_FOUND,
    ErrorCode.LIMIT_EXCEEDED,
    ErrorCode.BALANCE_LIMIT_EXCEEDED,
    ErrorCode.CREDIT_LIMIT_EXCEEDED,
    ErrorCode.INSUFFICIENT_FUNDS,
    ErrorCode.INSUFFICIENT_FREE_CREDIT,
]


def test_status_table_is_spec_2_3() -> None:
    assert errors.STATUS == SPEC_2_3
    assert all(len(code) == 4 for code in errors.STATUS)


def test_every_core_outcome_is_mapped_to_an_error_code() -> None:
    assert set(errors.FROM_CORE) == set(ErrorCode)
    assert all(c in errors.STATUS and c != errors.SUCCESS for c in errors.FROM_CORE.values())


def test_table_order_follows_core_precedence() -> None:
    """Where both apply, the code listed first in STATUS is the core outcome checked first."""
    assert sorted(PRODUCED, key=lambda c: c.precedence) == PRODUCED
    order = list(errors.STATUS)
    positions = [order.index(errors.from_core(c)) for c in PRODUCED]
    assert positions == sorted(positions)


def test_only_authorization_failures_are_401() -> None:
    assert {c for c in errors.STATUS if errors.http_status(c) != 200} == {"1001"}


def test_only_invalid_parameter_carries_detail() -> None:
    assert errors.describe("2001", "amount x") == "Invalid parameter: amount x"
    assert errors.describe("4001", "ignored") == "Insufficient balance"
    assert errors.error_body("2002") == b'{"code":"2002","desc":"Agent not found"}'


# --- amounts -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("minor", "text"),
    [
        (0, "0.0"),
        (1, "0.0001"),
        (1_000_000_000, "100000.0"),
        (-1_500_000, "-150.0"),
        (123_456, "12.3456"),
        (10 * UNIT + 5000, "10.5"),
        (MAX_MINOR, "100000000000.0"),
    ],
)
def test_money_rendering(minor: int, text: str) -> None:
    assert schemas.money(minor) == text


@given(st.integers(min_value=0, max_value=MAX_MINOR))
def test_amounts_round_trip_exactly(minor: int) -> None:
    assert schemas.amount_minor(schemas.money(minor), "amount") == minor
    assert schemas.amount_minor(format_minor(minor), "amount") == minor


@given(st.decimals(min_value=0, max_value=10**6, places=8, allow_nan=False))
def test_more_than_four_places_is_refused(value: Decimal) -> None:
    text = f"{value:f}"
    if value == value.quantize(Decimal("0.0001")):
        assert schemas.amount_minor(text, "amount") == int(value * UNIT)
    else:
        with pytest.raises(HrgError) as caught:
            schemas.amount_minor(text, "amount")
        assert caught.value.code == "2001"


@pytest.mark.parametrize("text", ["100000000000.0001", "1" + "0" * 30, "99999999999999999.5"])
def test_amounts_over_the_ceiling_become_over_limit(text: str) -> None:
    assert schemas.amount_minor(text, "amount") == schemas.OVER_CEILING


@pytest.mark.parametrize(
    "text", ["-1", "-100000000000.0001", "1e3", "NaN", "inf", "0x10", "1_000", "", " 1", "1 "]
)
def test_malformed_amounts_are_invalid_parameters(text: str) -> None:
    with pytest.raises(HrgError) as caught:
        schemas.amount_minor(text, "freeCredit")
    assert caught.value.code == "2001"
    assert caught.value.detail is not None
    assert caught.value.detail.startswith("freeCredit ")


def test_absent_amount_is_zero() -> None:
    assert schemas.amount_minor(None, "amount") == 0


# --- decoding ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        b'{"agentId":"a","userId":"u","allWithdraw":"true","transactionCode":"t"}',
        b'{"agentId":"a","userId":"u","allWithdraw":true,"transactionCode":"t","amount":1}',
        b'{"agentId":"a","userId":"u","allWithdraw":true,"transactionCode":"t","amount":1.5}',
        b'{"agentId":"a","userId":"u","allWithdraw":true,"transactionCode":7}',
        b'{"agentId":"a","userId":"u","allWithdraw":true}',
        b"\xff\xfe",
        b"",
    ],
)
def test_decoding_is_strict(body: bytes) -> None:
    with pytest.raises(HrgError) as caught:
        schemas.decode(body, schemas.HrgWithdrawRequest)
    assert caught.value.code == "2001"


def test_decoding_uses_the_vendor_field_names() -> None:
    body = (
        b'{"agentId":"a","userId":"u","allWithdraw":false,"transactionCode":"t","freeCredit":"1"}'
    )
    request = schemas.decode(body, schemas.HrgWithdrawRequest)
    assert (request.agent_id, request.user_id, request.all_withdraw) == ("a", "u", False)
    assert (request.transaction_code, request.amount, request.free_credit) == ("t", None, "1")


# --- ids and times -----------------------------------------------------------------------


@given(st.from_regex(r"\A[a-z0-9]{1,50}\Z"))
def test_valid_user_ids(value: str) -> None:
    assert schemas.user_id(value) == value


@given(
    st.text(max_size=60).filter(
        lambda s: (
            not (0 < len(s) <= 50 and s.isascii() and all(c.islower() or c.isdigit() for c in s))
        )
    )
)
def test_invalid_user_ids(value: str) -> None:
    with pytest.raises(HrgError) as caught:
        schemas.user_id(value)
    assert caught.value.code == "3003"


@given(st.integers(min_value=0, max_value=253_402_300_799_000 - 8 * 3600_000))
def test_xts_round_trips_to_the_millisecond(ms: int) -> None:
    text = schemas.xts(ms)
    assert text.endswith("+0800")
    assert schemas.xts_ms(text, "startTime") == ms


def test_xts_examples() -> None:
    assert schemas.xts(1_767_225_600_000) == "2026-01-01T08:00:00.000+0800"
    assert schemas.xts_ms("2022-10-14T23:00:00.000+0800", "t") == int(
        datetime(2022, 10, 14, 15, tzinfo=UTC).timestamp() * 1000
    )


# --- auth --------------------------------------------------------------------------------


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("Basic " + _b64("id:secret"), ("id", "secret")),
        ("basic " + _b64("id:se:cret"), ("id", "se:cret")),
        ("  Basic   " + _b64("id:secret") + " ", ("id", "secret")),
        (None, None),
        ("", None),
        ("Bearer " + _b64("id:secret"), None),
        ("Basic", None),
        ("Basic " + _b64("idsecret"), None),
        ("Basic " + _b64(":secret"), None),
        ("Basic " + _b64("id:"), None),
        ("Basic " + base64.b64encode(b"\xff:\xfe").decode(), None),
        ("Basic not*base64", None),
        ("Basic " + "A" * 2000, None),
    ],
)
def test_parse_basic(header: str | None, expected: tuple[str, str] | None) -> None:
    assert auth.parse_basic(header) == expected


PROXIES = (ipaddress.ip_network("10.0.0.0/8"),)


@pytest.mark.parametrize(
    ("peer", "forwarded", "expected"),
    [
        ("203.0.113.5", None, "203.0.113.5"),
        ("203.0.113.5", "198.51.100.1", "203.0.113.5"),  # not a trusted proxy: ignored
        ("10.0.0.2", "198.51.100.1", "198.51.100.1"),
        ("10.0.0.2", "198.51.100.9, 198.51.100.1, 10.0.0.3", "198.51.100.1"),
        ("10.0.0.2", "10.0.0.4, 10.0.0.3", "10.0.0.2"),
        (None, "198.51.100.1", None),
    ],
)
def test_caller_address(peer: str | None, forwarded: str | None, expected: str | None) -> None:
    assert auth.caller_address(peer, forwarded, PROXIES) == expected


@pytest.mark.parametrize(
    ("allow", "address", "expected"),
    [
        (None, "1.2.3.4", True),
        ([], "1.2.3.4", True),
        (["1.2.3.0/24"], "1.2.3.4", True),
        (["1.2.3.0/24"], "1.2.4.4", False),
        (["1.2.3.0/24", "2001:db8::/32"], "2001:db8::1", True),
        (["1.2.3.0/24"], None, False),
        (["1.2.3.0/24"], "testclient", False),
    ],
)
def test_address_allowed(allow: list[str] | None, address: str | None, expected: bool) -> None:
    assert auth.address_allowed(allow, address) is expected


NOW = 1_767_225_600_000


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("2026-01-01T08:00:00.000+0800", True),
        ("2026-01-01T08:05:00.000+0800", True),
        ("2026-01-01T07:55:00.000+0800", True),
        ("2026-01-01T08:05:00.001+0800", False),
        ("2026-01-01T07:54:59.999+0800", False),
        ("2026-01-01T00:00:00.000+0000", True),
        ("2026-01-01T08:00:00.000", False),
        ("2026-01-01 08:00:00.000+0800", False),
        (None, False),
    ],
)
def test_check_xts(value: str | None, ok: bool) -> None:
    if ok:
        auth.check_xts(value, NOW, 300)
    else:
        with pytest.raises(HrgError) as caught:
            auth.check_xts(value, NOW, 300)
        assert caught.value.code == "1002"
