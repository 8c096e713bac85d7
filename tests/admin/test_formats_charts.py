"""Pure parts of the back-office: reading and writing times, amounts and CSV cells, and the
server-drawn SVG charts."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from gamewallet.admin import charts
from gamewallet.admin.formats import (
    FormatError,
    csv_text,
    iso,
    money_grouped,
    parse_signed_amount,
    parse_time,
    short_time,
)
from gamewallet.core.money import UNIT

JAN_1 = 1_767_225_600_000  # 2026-01-01T00:00:00Z
SVG = "{http://www.w3.org/2000/svg}"


def parse_svg(markup: object) -> ET.Element:
    """The chart's SVG as an element tree (also proves it is well-formed XML)."""
    return ET.fromstring(str(markup))  # noqa: S314 - our own drawing, not untrusted input


def test_times_are_utc_both_ways() -> None:
    assert iso(JAN_1 + 1) == "2026-01-01T00:00:00.001Z"
    assert iso(None) is None
    assert short_time(JAN_1 + 61_000) == "2026-01-01 00:01:01"
    assert parse_time("2026-01-01") == JAN_1
    assert parse_time("2026-01-01", end_of_day=True) == JAN_1 + 86_400_000
    assert parse_time("2026-01-01T01:00:00+01:00") == JAN_1
    assert parse_time("2026-01-01T00:00:00Z") == JAN_1
    assert parse_time("2026-01-01T00:00:00") == JAN_1  # no zone: UTC
    assert parse_time("  ") is None
    with pytest.raises(FormatError):
        parse_time("01/02/2026")


def test_amounts_typed_by_staff() -> None:
    assert parse_signed_amount("12.5") == 125_000
    assert parse_signed_amount("+3") == 3 * UNIT
    assert parse_signed_amount("-1,234.0001") == -(1234 * UNIT + 1)
    for bad in ("0", "1.00001", "1e3", "abc", "", "NaN"):
        with pytest.raises(FormatError):
            parse_signed_amount(bad)
    assert money_grouped(123_456_789_0000) == "123,456,789"
    assert money_grouped(-1_234_5000) == "-1,234.5"
    assert money_grouped(5) == "0.0005"


def test_csv_cells_are_defused() -> None:
    for formula in ("=1+1", "+1", "-1", "@SUM(A1)", "\t=x"):
        assert csv_text(formula) == "'" + formula
    assert csv_text("player 1") == "player 1"


def test_nice_ceilings() -> None:
    assert [charts.nice_ceiling(v) for v in (0, 0.3, 1, 3, 7, 11, 99, 101, 4500)] == [
        1,
        0.5,
        1,
        5,
        10,
        20,
        100,
        200,
        5000,
    ]


def test_axes_are_round_and_include_zero() -> None:
    assert charts.axis(0, 5, whole=True) == (0, 6, 2)
    assert charts.axis(0, 1, whole=True) == (0, 1, 1)
    assert charts.axis(-11, 290) == (-100, 300, 100)
    assert charts.axis(0.1, 0.3) == pytest.approx((0, 0.3, 0.1))
    assert charts.axis(0, 0) == (0, 1, 0.5)


def test_a_line_chart_is_accessible_escaped_svg_with_its_figures() -> None:
    chart = charts.line_chart(
        "c1",
        "Calls <per> minute",
        "A & B",
        ["10:00", "10:01", "10:02"],
        [charts.Series("seamless", [0, 4, 2]), charts.Series("hrg<script>", [1, 0, 0])],
    )
    root = parse_svg(chart.svg)
    assert root.get("role") == "img"
    assert root.get("aria-labelledby") == "c1-t c1-d"
    assert root.find(f"{SVG}title").text == "Calls <per> minute"  # type: ignore[union-attr]
    assert root.find(f"{SVG}desc").text == "A & B"  # type: ignore[union-attr]
    lines = root.findall(f"{SVG}polyline")
    assert len(lines) == 2
    assert len(lines[0].get("points", "").split()) == 3
    assert "<script>" not in str(chart.svg)
    assert chart.headers == ["", "seamless", "hrg<script>"]
    assert chart.rows == [["10:00", "0", "1"], ["10:01", "4", "0"], ["10:02", "2", "0"]]
    assert [name for name, _, _ in chart.legend] == ["seamless", "hrg<script>"]
    assert not chart.empty
    flat = charts.line_chart("c2", "t", "d", ["a", "b"], [charts.Series("s", [0, 0])])
    assert flat.empty


def test_a_bar_chart_draws_negative_values_below_zero() -> None:
    chart = charts.bar_chart(
        "g", "GGR", "d", ["d1", "d2"], [charts.Series("a", [5, -3]), charts.Series("b", [0, 2])]
    )
    root = parse_svg(chart.svg)
    bars = root.findall(f"{SVG}rect")
    assert len(bars) == 3  # zero values draw nothing
    zero = next(
        float(line.get("y1", "0"))
        for line in root.findall(f"{SVG}line")
        if "zero" in (line.get("class") or "")
    )
    positive, negative, _ = bars
    assert float(positive.get("y", "0")) + float(positive.get("height", "0")) == pytest.approx(
        zero, abs=0.2
    )
    assert float(negative.get("y", "0")) == pytest.approx(zero, abs=0.2)


def test_horizontal_bars_scale_to_the_largest_value() -> None:
    chart = charts.hbar_chart("o", "Outbox", "d", [("pending", 4, "4"), ("dead", 1, "1")])
    widths = [float(r.get("width", "0")) for r in parse_svg(chart.svg).iter(f"{SVG}rect")]
    assert widths[0] == pytest.approx(4 * widths[1])
    assert charts.hbar_chart("o", "t", "d", [("pending", 0, "0")]).empty
