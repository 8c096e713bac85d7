"""How the back-office writes and reads times, amounts and CSV cells (pure functions).

Times are shown in UTC (ISO 8601, millisecond precision) so that staff in different zones
talk about the same instant; dates typed into filters are UTC days. Amounts are exact
decimal strings (:func:`gamewallet.core.money.format_minor`), never floats. CSV cells that
a spreadsheet would run as a formula are defused with a leading quote.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta

from gamewallet.core.money import AmountError, format_minor, parse_amount

_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def iso(ms: int | None) -> str | None:
    """``2026-01-01T00:00:00.000Z`` for epoch milliseconds (None stays None)."""
    if ms is None:
        return None
    moment = datetime.fromtimestamp(ms / 1000, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def short_time(ms: int | None) -> str:
    """``2026-01-01 00:00:00`` (UTC) for tables; an em dash for None."""
    if ms is None:
        return "—"
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M:%S")


def day_label(ms: int) -> str:
    """``01-31`` for the UTC day containing ``ms`` (chart axes)."""
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%m-%d")


def minute_label(ms: int) -> str:
    """``13:05`` for the UTC minute containing ``ms`` (chart axes)."""
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%H:%M")


class FormatError(ValueError):
    """A value typed by a person or a script that cannot be read; the message says why."""


def parse_time(text: str | None, *, end_of_day: bool = False) -> int | None:
    """Epoch ms of ``YYYY-MM-DD`` (UTC midnight; the next midnight with ``end_of_day``, so a
    date range includes its last day) or of an ISO 8601 date-time (UTC when no zone)."""
    if text is None or not text.strip():
        return None
    text = text.strip()
    try:
        if _DATE.fullmatch(text):
            day = date.fromisoformat(text) + timedelta(days=1 if end_of_day else 0)
            return int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp() * 1000)
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise FormatError(f"not a date or ISO 8601 time: {text!r}") from exc
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


def money(minor: int) -> str:
    """An exact decimal string for minor units."""
    return format_minor(minor)


def money_grouped(minor: int) -> str:
    """An exact decimal with thousands separators, for people (``1,234.5``)."""
    text = format_minor(minor)
    sign = "-" if text.startswith("-") else ""
    whole, _, fraction = text.lstrip("-").partition(".")
    grouped = f"{int(whole):,}"
    return f"{sign}{grouped}.{fraction}" if fraction else f"{sign}{grouped}"


def parse_signed_amount(text: str) -> int:
    """Minor units of a signed decimal typed by staff (``-12.5``, ``+3``); never zero."""
    cleaned = text.strip().replace(",", "").replace(" ", "")
    if cleaned.startswith("+"):
        cleaned = cleaned[1:]
    try:
        return parse_amount(cleaned, allow_negative=True)
    except AmountError as exc:
        raise FormatError(f"amount {text!r}: {exc.reason}") from exc


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_text(value: str) -> str:
    """A text cell that a spreadsheet will not run as a formula."""
    return "'" + value if value.startswith(_FORMULA_START) else value
