"""Amounts with many digits: the decimal-places check is exact however long the number.

Found by the malformed-body fuzzing: ``1.0000000000000000000000000002`` (29 significant
digits) was taken as ``1``, because the check normalised the value under Python's default
28-digit decimal context first. Now any text with more significant decimal places than a
protocol allows is refused, and what is accepted is converted without losing a digit.
"""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gamewallet.core.money import AmountError, decimal_places, parse_amount


@given(
    whole=st.integers(0, 10**11 - 1),
    fraction=st.text(alphabet="0123456789", min_size=1, max_size=30),
)
def test_decimal_places_counts_the_significant_fraction_digits_exactly(
    whole: int, fraction: str
) -> None:
    text = f"{whole}.{fraction}"
    assert decimal_places(Decimal(text)) == len(fraction.rstrip("0"))


@given(
    whole=st.integers(0, 10**6),
    zeros=st.integers(0, 28),
    last=st.integers(1, 9),
)
def test_a_tiny_fifth_decimal_is_never_rounded_away(whole: int, zeros: int, last: int) -> None:
    text = f"{whole}.0000{'0' * zeros}{last}"
    with pytest.raises(AmountError):
        parse_amount(text)


@given(
    whole=st.integers(0, 10**11 - 1),
    fraction=st.integers(0, 9999),
    padding=st.integers(0, 26),
)
def test_accepted_amounts_lose_no_digit(whole: int, fraction: int, padding: int) -> None:
    text = f"{whole}.{fraction:04d}{'0' * padding}"
    if whole == 0 and fraction == 0:
        return
    assert parse_amount(text) == whole * 10_000 + fraction


def test_zero_has_no_decimal_places() -> None:
    assert decimal_places(Decimal("0.000")) == 0
    assert decimal_places(Decimal("230.00")) == 0
    assert decimal_places(Decimal("1E+3")) == 0
    assert decimal_places(Decimal("1.50")) == 1
