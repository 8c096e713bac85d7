"""Tests for the seamless payment callback signature, anchored on the vendor's own example."""

from __future__ import annotations

import pytest

from gamewallet.protocols.seamless.sign import SIGNED_FIELDS, payment_sign, verify_payment_sign

SECRET = "MKiLHWZvGPTq2258"
FIELDS = {
    "uid": "test",
    "serverId": "10001",
    "cpOrderId": "c9c35cf409344312146fa7546a94d1a6",
    "productId": "wm.spin.1",
    "productPrice": "4.99",
    "extParams": "anything; not signed",
    "ts": "1682319749000",
}
EXPECTED = "39E27178DE3254875D8470AB7A13D912"


def test_vendor_example() -> None:
    sign = payment_sign(
        "c9c35cf409344312146fa7546a94d1a6",
        "10001",
        "test",
        "4.99",
        "wm.spin.1",
        "1682319749000",
        SECRET,
    )
    assert sign == EXPECTED


def test_signed_field_order() -> None:
    assert SIGNED_FIELDS == ("cpOrderId", "serverId", "uid", "productPrice", "productId", "ts")


def test_price_is_signed_as_written() -> None:
    # "4.990" is the same number but not the same wire text, so not the same signature.
    args = ("c9c35cf409344312146fa7546a94d1a6", "10001", "test")
    assert payment_sign(*args, "4.990", "wm.spin.1", "1682319749000", SECRET) != EXPECTED


def test_verify_accepts_the_vendor_example() -> None:
    assert verify_payment_sign({**FIELDS, "sign": EXPECTED}, SECRET)


def test_verify_accepts_lower_case_hex() -> None:
    assert verify_payment_sign({**FIELDS, "sign": EXPECTED.lower()}, SECRET)


def test_ext_params_are_not_signed() -> None:
    assert verify_payment_sign({**FIELDS, "extParams": "changed", "sign": EXPECTED}, SECRET)


@pytest.mark.parametrize("name", SIGNED_FIELDS)
def test_verify_rejects_any_changed_field(name: str) -> None:
    assert not verify_payment_sign({**FIELDS, name: FIELDS[name] + "0", "sign": EXPECTED}, SECRET)


@pytest.mark.parametrize("name", [*SIGNED_FIELDS, "sign"])
def test_verify_rejects_a_missing_field(name: str) -> None:
    fields = {**FIELDS, "sign": EXPECTED}
    del fields[name]
    assert not verify_payment_sign(fields, SECRET)


@pytest.mark.parametrize("sign", ["", "39E2", EXPECTED + "0", "Ω" * 32, EXPECTED[:-1] + "3"])
def test_verify_rejects_malformed_signs(sign: str) -> None:
    assert not verify_payment_sign({**FIELDS, "sign": sign}, SECRET)


def test_verify_rejects_the_wrong_secret() -> None:
    assert not verify_payment_sign({**FIELDS, "sign": EXPECTED}, SECRET + "x")


def test_empty_secret_is_a_configuration_error() -> None:
    with pytest.raises(ValueError, match="secret"):
        payment_sign("a", "b", "c", "1", "p", "1", "")
    with pytest.raises(ValueError, match="secret"):
        verify_payment_sign({**FIELDS, "sign": EXPECTED}, "")


def test_non_ascii_fields_are_signed_as_utf8() -> None:
    sign = payment_sign("订单", "1", "玩家", "1.00", "p", "1", SECRET)
    assert len(sign) == 32
    assert sign == sign.upper()
    fields = {
        "cpOrderId": "订单",
        "serverId": "1",
        "uid": "玩家",
        "productPrice": "1.00",
        "productId": "p",
        "ts": "1",
        "sign": sign,
    }
    assert verify_payment_sign(fields, SECRET)
