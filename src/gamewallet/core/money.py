"""Exact money: integer minor units at scale 4, parsed from and rendered to the wire.

Every amount inside gamewallet is an ``int`` of minor units where one unit of account is
10,000 minor units (scale 4, so 0.0001 is the smallest amount any protocol can express).
``Decimal`` appears only here, at the edge, to convert wire values exactly: a value that
cannot be represented at the protocol's number of decimal places is refused, never rounded.
Floats are refused outright, because a float has already lost the caller's digits.

Invariant: every function returns or accepts minor units within ``±MAX_MINOR``.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

SCALE = 4
UNIT = 10**SCALE
#: Internal ceiling on any single amount or balance, in minor units (10^11 units of account).
#: It keeps every sum of balances far inside a signed 64-bit integer.
MAX_MINOR = 10**15

_DECIMAL_TEXT = re.compile(r"-?(?:0|[1-9][0-9]{0,30})(?:\.[0-9]{1,30})?")


class AmountError(ValueError):
    """An amount that is not acceptable on the wire; ``reason`` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def to_decimal(value: object) -> Decimal:
    """Turn a wire value (int, Decimal or plain decimal text) into a finite ``Decimal``.

    Text must be a plain decimal (no exponent, no sign other than a leading minus, no spaces).
    ``bool`` and ``float`` are refused: the first is not a number, the second is inexact.
    """
    if isinstance(value, bool | float):
        raise AmountError("amount must be an exact number")
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise AmountError("amount must be finite")
        return value
    if isinstance(value, str):
        if not _DECIMAL_TEXT.fullmatch(value):
            raise AmountError("amount must be a plain decimal number")
        return Decimal(value)
    raise AmountError("amount must be a number")


def decimal_places(value: Decimal) -> int:
    """The number of significant decimal places of ``value`` (``230.00`` has 0).

    Counted on the digits themselves: ``Decimal.normalize`` would first round to the context's
    28 significant digits, turning ``1.0000000000000000000000000002`` into ``1``.
    """
    _, digits, exponent = value.as_tuple()
    assert isinstance(exponent, int)  # finite values only reach here
    if exponent >= 0 or not any(digits):
        return 0
    trailing_zeros = len(digits) - len("".join(map(str, digits)).rstrip("0"))
    return max(0, -exponent - trailing_zeros)


def parse_amount(
    value: object,
    *,
    places: int = SCALE,
    allow_negative: bool = False,
    allow_zero: bool = False,
) -> int:
    """Parse a wire amount into minor units, exactly.

    ``places`` is the protocol's maximum number of decimal places (never more than 4).
    Raises :class:`AmountError` for non-numbers, too many decimal places, a sign the
    caller does not allow, or a magnitude over :data:`MAX_MINOR`.
    """
    assert 0 <= places <= SCALE
    number = to_decimal(value)
    if abs(number) > Decimal(MAX_MINOR) / UNIT:
        raise AmountError("amount is too large")
    if decimal_places(number) > places:
        raise AmountError(f"amount has more than {places} decimal places")
    try:
        minor = int((number * UNIT).to_integral_exact())
    except InvalidOperation as exc:  # pragma: no cover - excluded by the checks above
        raise AmountError("amount is not exact") from exc
    if minor < 0 and not allow_negative:
        raise AmountError("amount must be positive")
    if minor == 0 and not allow_zero:
        raise AmountError("amount must not be zero")
    return minor


def format_minor(minor: int, *, min_fraction_digits: int = 0) -> str:
    """Render minor units as a plain decimal string, trailing zeros trimmed.

    ``min_fraction_digits`` keeps that many fractional digits even when they are zero:
    0 gives ``51800`` / ``51569.5`` (seamless JSON numbers), 1 gives ``100000.0`` /
    ``-150.0`` (HRG strings and JDB doubles). Never uses an exponent.
    """
    assert abs(minor) <= MAX_MINOR * 10_000, "amount outside the ledger's range"
    sign = "-" if minor < 0 else ""
    whole, fraction = divmod(abs(minor), UNIT)
    digits = f"{fraction:0{SCALE}d}".rstrip("0")
    if len(digits) < min_fraction_digits:
        digits = digits.ljust(min_fraction_digits, "0")
    if sign and whole == 0 and not digits.strip("0"):
        sign = ""
    return f"{sign}{whole}.{digits}" if digits else f"{sign}{whole}"


def to_decimal_minor(minor: int) -> Decimal:
    """The exact ``Decimal`` value of ``minor`` minor units (for encoders that want one)."""
    return Decimal(minor).scaleb(-SCALE).normalize() if minor else Decimal(0)
