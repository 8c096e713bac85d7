"""JDB's date format `dd-MM-yyyy HH:mm:ss` (e.g. `08-12-2016 17:45:00`), zone given per domain.

Used for `payDate`, `date`, `loginTime` in responses and action 61's `starttime`/`endtime` in
requests. The text carries no offset, so the domain's zone (default GMT+8) is always explicit.
Parsing is strict (exact shape, real calendar date, and with a DST zone a local time that exists)
and yields an aware datetime; formatting refuses naive datetimes and truncates sub-seconds.
This module is deliberately separate from HRG's: protocol packages never import each other.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone, tzinfo

__all__ = ["JDB_TZ", "format_jdb_date", "parse_jdb_date"]

JDB_TZ = timezone(timedelta(hours=8))
"""The default domain zone (GMT+8) [decided in protocols.md 3.1]."""

# [0-9], not \d: \d also matches other scripts' digits, which int() would then happily accept.
_JDB_DATE = re.compile(r"([0-9]{2})-([0-9]{2})-([0-9]{4}) ([0-9]{2}):([0-9]{2}):([0-9]{2})")


def format_jdb_date(dt: datetime, tz: tzinfo = JDB_TZ) -> str:
    """Render aware `dt` as `dd-MM-yyyy HH:mm:ss` local to `tz`; ValueError if `dt` is naive."""
    if dt.utcoffset() is None:
        raise ValueError("format_jdb_date needs an aware datetime")
    local = dt.astimezone(tz)
    return (
        f"{local.day:02d}-{local.month:02d}-{local.year:04d} "
        f"{local.hour:02d}:{local.minute:02d}:{local.second:02d}"
    )


def parse_jdb_date(s: str, tz: tzinfo = JDB_TZ) -> datetime:
    """Parse `dd-MM-yyyy HH:mm:ss` as a wall-clock time in `tz`; return an aware datetime.

    Raises ValueError for any other shape, an impossible date or time, or a local time that a
    DST gap makes nonexistent in `tz`. An ambiguous local time (DST fold) takes the earlier one.
    """
    m = _JDB_DATE.fullmatch(s)
    if m is None:
        raise ValueError(f"not a JDB date (dd-MM-yyyy HH:mm:ss): {s[:40]!r}")
    day, month, year, hour, minute, second = (int(g) for g in m.groups())
    local = datetime(year, month, day, hour, minute, second, tzinfo=tz)
    # Python accepts wall times inside a DST gap silently; a UTC round trip exposes them.
    if local.astimezone(UTC).astimezone(tz).replace(tzinfo=None) != local.replace(tzinfo=None):
        raise ValueError(f"JDB date does not exist in its zone (DST gap): {s!r}")
    return local
