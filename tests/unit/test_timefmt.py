"""Tests for the HRG `xts` and JDB `dd-MM-yyyy HH:mm:ss` time formats."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gamewallet.protocols.hrg.timefmt import HRG_TZ, format_xts, parse_xts
from gamewallet.protocols.jdb.timefmt import JDB_TZ, format_jdb_date, parse_jdb_date

GMT8 = timezone(timedelta(hours=8))
aware_datetimes = st.datetimes(
    min_value=datetime(1000, 1, 2),  # noqa: DTZ001  # hypothesis bounds must be naive
    max_value=datetime(9999, 12, 30),  # noqa: DTZ001  # (same)
    timezones=st.just(UTC),
)


# --- HRG xts -----------------------------------------------------------------------------------


def test_parse_xts_vendor_example() -> None:
    dt = parse_xts("2022-10-14T23:00:00.000+0800")
    assert dt == datetime(2022, 10, 14, 15, 0, tzinfo=UTC)
    assert dt.utcoffset() == timedelta(hours=8)


def test_parse_xts_milliseconds_and_negative_offsets() -> None:
    dt = parse_xts("2022-01-01T00:00:00.123-0530")
    assert dt.microsecond == 123_000
    assert dt.utcoffset() == -timedelta(hours=5, minutes=30)
    assert parse_xts("2022-01-01T00:00:00.000-0000").utcoffset() == timedelta(0)


def test_format_xts_default_zone_is_gmt8() -> None:
    assert HRG_TZ.utcoffset(None) == timedelta(hours=8)
    dt = datetime(2022, 10, 14, 15, 0, tzinfo=UTC)
    assert format_xts(dt) == "2022-10-14T23:00:00.000+0800"
    assert format_xts(dt, UTC) == "2022-10-14T15:00:00.000+0000"
    assert format_xts(dt, timezone(-timedelta(hours=3, minutes=30))) == (
        "2022-10-14T11:30:00.000-0330"
    )


def test_format_xts_truncates_to_milliseconds() -> None:
    dt = datetime(2022, 12, 31, 15, 59, 59, 999_999, tzinfo=UTC)
    assert format_xts(dt) == "2022-12-31T23:59:59.999+0800"


def test_format_xts_pads_early_years() -> None:
    dt = datetime(999, 1, 1, 0, 0, tzinfo=GMT8)
    assert format_xts(dt) == "0999-01-01T00:00:00.000+0800"


def test_format_xts_with_zoneinfo() -> None:
    dt = datetime(2022, 7, 1, 12, 0, tzinfo=UTC)
    assert format_xts(dt, ZoneInfo("Asia/Shanghai")) == "2022-07-01T20:00:00.000+0800"


def test_format_xts_refuses_naive_and_odd_offsets() -> None:
    with pytest.raises(ValueError, match="aware"):
        format_xts(datetime(2022, 1, 1))  # noqa: DTZ001  # naive on purpose
    with pytest.raises(ValueError, match="minutes"):
        format_xts(datetime(2022, 1, 1, tzinfo=UTC), timezone(timedelta(seconds=30)))


@pytest.mark.parametrize(
    "text",
    [
        "",
        "2022-10-14T23:00:00+0800",  # no milliseconds
        "2022-10-14T23:00:00.00+0800",
        "2022-10-14T23:00:00.0000+0800",
        "2022-10-14T23:00:00.000+08:00",  # ISO offset, not RFC 822
        "2022-10-14T23:00:00.000Z",
        "2022-10-14T23:00:00.000",
        "2022-10-14 23:00:00.000+0800",
        "2022-10-14t23:00:00.000+0800",
        " 2022-10-14T23:00:00.000+0800",
        "2022-10-14T23:00:00.000+0800\n",
        "2022-13-14T23:00:00.000+0800",
        "2022-02-30T23:00:00.000+0800",
        "2022-10-14T24:00:00.000+0800",
        "2022-10-14T23:60:00.000+0800",
        "2022-10-14T23:00:60.000+0800",
        "2022-10-14T23:00:00.000+0860",
        "2022-10-14T23:00:00.000+2400",
        "\u0662\u0660\u0662\u0662-10-14T23:00:00.000+0800",  # non-ASCII digits
        "22-10-14T23:00:00.000+0800",
    ],
)
def test_parse_xts_is_strict(text: str) -> None:
    with pytest.raises(ValueError, match=r"."):
        parse_xts(text)


@given(aware_datetimes)
def test_xts_round_trip(dt: datetime) -> None:
    text = format_xts(dt)
    parsed = parse_xts(text)
    assert parsed == dt.replace(microsecond=dt.microsecond // 1000 * 1000)
    assert format_xts(parsed) == text


# --- JDB dd-MM-yyyy HH:mm:ss -------------------------------------------------------------------


def test_jdb_vendor_example() -> None:
    dt = parse_jdb_date("08-12-2016 17:45:00")
    assert dt == datetime(2016, 12, 8, 9, 45, tzinfo=UTC)
    assert format_jdb_date(dt) == "08-12-2016 17:45:00"
    assert JDB_TZ.utcoffset(None) == timedelta(hours=8)


def test_jdb_other_zone() -> None:
    dt = datetime(2024, 1, 31, 23, 30, 15, 999_999, tzinfo=UTC)
    assert format_jdb_date(dt) == "01-02-2024 07:30:15"
    assert format_jdb_date(dt, UTC) == "31-01-2024 23:30:15"
    assert parse_jdb_date("31-01-2024 23:30:15", UTC) == dt.replace(microsecond=0)


def test_jdb_refuses_naive() -> None:
    with pytest.raises(ValueError, match="aware"):
        format_jdb_date(datetime(2022, 1, 1))  # noqa: DTZ001  # naive on purpose


def test_jdb_dst_gap_rejected_and_fold_takes_the_earlier_time() -> None:
    berlin = ZoneInfo("Europe/Berlin")
    with pytest.raises(ValueError, match="DST"):
        parse_jdb_date("31-03-2024 02:30:00", berlin)
    ambiguous = parse_jdb_date("27-10-2024 02:30:00", berlin)
    assert ambiguous.utcoffset() == timedelta(hours=2)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "2016-12-08 17:45:00",
        "08-12-2016T17:45:00",
        "08-12-2016 17:45",
        "08-12-2016 17:45:00.000",
        "8-12-2016 17:45:00",
        "08/12/2016 17:45:00",
        "08-12-16 17:45:00",
        "32-12-2016 17:45:00",
        "29-02-2023 17:45:00",
        "08-13-2016 17:45:00",
        "08-12-2016 24:00:00",
        "08-12-2016 17:45:00 ",
        "\u0660\u0668-12-2016 17:45:00",
    ],
)
def test_parse_jdb_date_is_strict(text: str) -> None:
    with pytest.raises(ValueError, match=r"."):
        parse_jdb_date(text)


@given(aware_datetimes)
def test_jdb_round_trip(dt: datetime) -> None:
    text = format_jdb_date(dt)
    assert parse_jdb_date(text) == dt.replace(microsecond=0)
    assert format_jdb_date(parse_jdb_date(text)) == text
