"""HRG's time format, used by the `xts` header and by `createdAt`/`startTime`/`endTime` fields.

Java pattern `yyyy-MM-dd'T'HH:mm:ss.SSSZ`, e.g. `2022-10-14T23:00:00.000+0800`: always exactly
three fraction digits and an RFC 822 offset (`+HHMM`, no colon, no `Z`). Parsing is strict (the
exact shape or ValueError) and always yields an aware datetime; formatting refuses naive datetimes,
truncates to milliseconds (as Java does) and renders in HRG's zone, GMT+8 unless told otherwise.
This module is deliberately separate from the JDB one: protocol packages never import each other.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone, tzinfo

__all__ = ["HRG_TZ", "format_xts", "parse_xts"]

HRG_TZ = timezone(timedelta(hours=8))
"""HRG's documented zone (GMT+8), the default for rendering."""

# [0-9], not \d: \d also matches other scripts' digits, which int() would then happily accept.
_XTS = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})\.([0-9]{3})"
    r"([+-])([0-9]{2})([0-9]{2})"
)


def parse_xts(s: str) -> datetime:
    """Parse `yyyy-MM-ddTHH:mm:ss.SSS±HHMM` into an aware datetime; anything else is ValueError.

    Out-of-range fields (month 13, 24:00, offset minutes 60, offset of 24 h or more) are errors too.
    """
    m = _XTS.fullmatch(s)
    if m is None:
        raise ValueError(f"not an HRG time (yyyy-MM-ddTHH:mm:ss.SSS+HHMM): {s[:40]!r}")
    year, month, day, hour, minute, second, millis, sign, off_h, off_m = m.groups()
    if int(off_m) >= 60:
        raise ValueError(f"HRG time has an invalid offset: {s!r}")
    offset = timedelta(hours=int(off_h), minutes=int(off_m))
    # timezone() itself refuses offsets of 24 h or more with ValueError.
    zone = timezone(-offset if sign == "-" else offset)
    return datetime(
        int(year),
        int(month),
        int(day),
        int(hour),
        int(minute),
        int(second),
        int(millis) * 1000,
        tzinfo=zone,
    )


def format_xts(dt: datetime, tz: tzinfo = HRG_TZ) -> str:
    """Render aware `dt` in zone `tz` as `yyyy-MM-ddTHH:mm:ss.SSS±HHMM` (milliseconds truncated).

    Raises ValueError for a naive `dt` or a zone whose offset is not a whole number of minutes.
    """
    if dt.utcoffset() is None:
        raise ValueError("format_xts needs an aware datetime")
    local = dt.astimezone(tz)
    offset = local.utcoffset()
    if offset is None:  # only a broken custom tzinfo gets here; astimezone() normally refuses it
        raise ValueError("HRG zone has no UTC offset")
    total_s = int(offset.total_seconds())
    if total_s % 60 or offset.microseconds:
        raise ValueError("HRG offsets are whole minutes")
    sign = "-" if total_s < 0 else "+"
    off_h, off_m = divmod(abs(total_s) // 60, 60)
    # Built by hand: strftime('%Y') does not zero-pad years before 1000 on every platform.
    return (
        f"{local.year:04d}-{local.month:02d}-{local.day:02d}T"
        f"{local.hour:02d}:{local.minute:02d}:{local.second:02d}.{local.microsecond // 1000:03d}"
        f"{sign}{off_h:02d}{off_m:02d}"
    )
