"""Charts drawn on the server as inline SVG: no JavaScript, no CDN, nothing to build.

Each chart is an ``<svg role="img">`` with a ``<title>`` and a ``<desc>`` that says what it
shows, a legend in HTML, and the same figures as a table (the pages put it in a
``<details>`` element), so the numbers are there for screen readers and for copying.
Colours are the Okabe-Ito palette, which people with colour-vision deficiencies can tell
apart; the lines also differ in dash pattern. Floats appear only as drawing coordinates:
the labels come from the caller's exact formatter.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from html import escape

from markupsafe import Markup

#: Okabe-Ito colours, darkest first, each readable on white as a line or a bar.
PALETTE = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#8A6100", "#56B4E9", "#000000")
DASHES = ("", "6 3", "2 3", "8 3 2 3", "1 2", "10 4", "4 4")
#: Default drawing size: about the size a wide chart is shown at on a desktop, so its
#: 11-12 pixel labels stay that size; smaller screens scale the whole drawing down.
WIDTH, HEIGHT = 1120, 260
LEFT, RIGHT, TOP, BOTTOM = 72, 16, 14, 30


@dataclass(frozen=True)
class Series:
    """One line or one set of bars: a name and one value per x position."""

    name: str
    values: Sequence[float]


@dataclass
class Chart:
    """A drawn chart with its legend and its figures as a table."""

    svg: Markup
    legend: list[tuple[str, str, str]] = field(default_factory=list)  # name, colour, dash
    headers: list[str] = field(default_factory=list)
    rows: list[list[str]] = field(default_factory=list)
    empty: bool = False
    #: The same chart drawn for narrow screens (pages show one or the other with CSS).
    narrow: Markup | None = None


def nice_ceiling(value: float) -> float:
    """The smallest 1, 2 or 5 times 10^k at or above ``value`` (1 for nothing)."""
    if value <= 0:
        return 1.0
    exponent = math.floor(math.log10(value))
    for step in (1, 2, 5, 10):
        candidate = step * 10.0**exponent
        if candidate >= value:
            return candidate
    return 10.0 ** (exponent + 1)  # pragma: no cover - the loop always returns


def _attrs(**values: object) -> str:
    return " ".join(
        f'{k.rstrip("_").replace("_", "-")}="{escape(str(v))}"' for k, v in values.items()
    )


@dataclass(frozen=True)
class _Plot:
    """Where the plot area of a chart of ``width`` x ``height`` lies."""

    width: int
    height: int

    @property
    def plot_w(self) -> float:
        return self.width - LEFT - RIGHT

    @property
    def plot_h(self) -> float:
        return self.height - TOP - BOTTOM


def _frame(
    chart_id: str, title: str, description: str, body: list[str], width: int, height: int
) -> Markup:
    head = (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}"'
        f' role="img" aria-labelledby="{chart_id}-t {chart_id}-d" class="chart"'
        f' preserveAspectRatio="xMidYMid meet">'
        f'<title id="{chart_id}-t">{escape(title)}</title>'
        f'<desc id="{chart_id}-d">{escape(description)}</desc>'
    )
    return Markup(head + "".join(body) + "</svg>")  # noqa: S704 - every text above is escaped


def axis(
    low: float, high: float, *, whole: bool = False, ticks: int = 4
) -> tuple[float, float, float]:
    """A round axis covering [low, high] (zero included): its ends and its step, a 1, 2 or 5
    times a power of ten (at least 1 for ``whole`` numbers such as counts)."""
    low, high = min(low, 0.0), max(high, 0.0)
    if high - low <= 0:
        high = low + 1
    step = nice_ceiling((high - low) / ticks)
    if whole:
        step = max(step, 1.0)
    return math.floor(low / step) * step, math.ceil(high / step) * step, step


def _tick_label(value: float, step: float) -> str:
    """A grid label: thousands grouped, decimals only when the step needs them."""
    return f"{value:,.0f}" if step >= 1 else f"{value:,.2f}"


def _y_axis(
    plot: _Plot,
    low: float,
    high: float,
    step: float,
    y_of: Callable[[float], float],
) -> list[str]:
    """A grid line and its label every ``step`` from ``low`` to ``high``."""
    parts: list[str] = []
    count = round((high - low) / step)
    for i in range(count + 1):
        value = low + step * i
        y = f"{y_of(value):.1f}"
        label_y = f"{y_of(value) + 4:.1f}"
        zero = " zero" if abs(value) < step / 1000 else ""
        parts.append(
            f"<line {_attrs(x1=LEFT, x2=plot.width - RIGHT, y1=y, y2=y)}"
            f' class="gridline{zero}"/>'
            f'<text {_attrs(x=LEFT - 8, y=label_y)} class="tick" text-anchor="end">'
            f"{escape(_tick_label(value, step))}</text>"
        )
    return parts


def _x_labels(
    plot: _Plot, labels: Sequence[str], x_of: Callable[[int], float], every: int
) -> list[str]:
    parts: list[str] = []
    last = len(labels) - 1
    for i, label in enumerate(labels):
        # Every ``every``-th label, and the last one unless it would touch its neighbour.
        if i % every and (i != last or last % every < every / 2):
            continue
        x = f"{x_of(i):.1f}"
        parts.append(
            f'<text {_attrs(x=x, y=plot.height - 10)} class="tick" text-anchor="middle">'
            f"{escape(label)}</text>"
        )
    return parts


def _table(
    x_labels: Sequence[str], series: Sequence[Series], fmt: Callable[[float], str]
) -> tuple[list[str], list[list[str]]]:
    """The figures as table rows (rows where every series is zero are left out)."""
    rows = [
        [label, *(fmt(s.values[i]) for s in series)]
        for i, label in enumerate(x_labels)
        if any(s.values[i] for s in series)
    ]
    return ["", *(s.name for s in series)], rows


def line_chart(
    chart_id: str,
    title: str,
    description: str,
    x_labels: Sequence[str],
    series: Sequence[Series],
    *,
    fmt: Callable[[float], str] = lambda v: f"{v:g}",
    label_every: int = 10,
    width: int = WIDTH,
    height: int = HEIGHT,
) -> Chart:
    """Lines over shared x positions of whole numbers (e.g. calls per minute, one line per
    protocol)."""
    plot = _Plot(width, height)
    count = len(x_labels)
    _, top, step = axis(0, max((max(s.values, default=0) for s in series), default=0), whole=True)

    def x_of(i: int) -> float:
        return LEFT + (plot.plot_w * i / (count - 1) if count > 1 else plot.plot_w / 2)

    def y_of(v: float) -> float:
        return TOP + plot.plot_h * (1 - v / top)

    body = _y_axis(plot, 0, top, step, y_of) + _x_labels(plot, x_labels, x_of, label_every)
    legend = []
    for n, s in enumerate(series):
        colour, dash = PALETTE[n % len(PALETTE)], DASHES[n % len(DASHES)]
        points = " ".join(f"{x_of(i):.1f},{y_of(v):.1f}" for i, v in enumerate(s.values))
        dashes = f" {_attrs(stroke_dasharray=dash)}" if dash else ""
        body.append(
            f'<polyline {_attrs(points=points, stroke=colour)} fill="none" stroke-width="2.5"'
            f' stroke-linejoin="round"{dashes}><title>{escape(s.name)}</title></polyline>'
        )
        legend.append((s.name, colour, dash))
    headers, rows = _table(x_labels, series, fmt)
    return Chart(
        _frame(chart_id, title, description, body, width, height),
        legend,
        headers,
        rows,
        empty=not series or not rows,
    )


def bar_chart(
    chart_id: str,
    title: str,
    description: str,
    x_labels: Sequence[str],
    series: Sequence[Series],
    *,
    fmt: Callable[[float], str] = lambda v: f"{v:g}",
    label_every: int = 1,
    width: int = WIDTH,
    height: int = HEIGHT,
) -> Chart:
    """Grouped bars, one group per x position and one bar per series; negative values hang
    below the zero line (e.g. revenue per day per client)."""
    plot = _Plot(width, height)
    count = max(len(x_labels), 1)
    values = [v for s in series for v in s.values]
    low, high, step = axis(min(values, default=0), max(values, default=0))
    group_w = plot.plot_w / count
    bar_w = max(1.0, min(group_w * 0.8 / max(len(series), 1), 48.0))

    def y_of(v: float) -> float:
        return TOP + plot.plot_h * (high - v) / (high - low)

    def x_of(i: int) -> float:
        return LEFT + group_w * (i + 0.5)

    body = _y_axis(plot, low, high, step, y_of) + _x_labels(plot, x_labels, x_of, label_every)
    legend = []
    for n, s in enumerate(series):
        colour = PALETTE[n % len(PALETTE)]
        for i, v in enumerate(s.values):
            if not v:
                continue
            x = x_of(i) - bar_w * len(series) / 2 + bar_w * n
            y0, y1 = sorted((y_of(0), y_of(v)))
            box = _attrs(x=f"{x:.1f}", y=f"{y0:.1f}", width=f"{bar_w:.1f}")
            size = _attrs(height=f"{max(y1 - y0, 1):.1f}", fill=colour)
            tip = escape(f"{s.name} {x_labels[i]}: {fmt(v)}")
            body.append(f"<rect {box} {size}><title>{tip}</title></rect>")
        legend.append((s.name, colour, ""))
    headers, rows = _table(x_labels, series, fmt)
    return Chart(
        _frame(chart_id, title, description, body, width, height),
        legend,
        headers,
        rows,
        empty=not series or not rows,
    )


def hbar_chart(
    chart_id: str,
    title: str,
    description: str,
    items: Sequence[tuple[str, float, str]],
    *,
    width: int = 540,
    label_w: int = 200,
    value_w: int = 130,
    stacked: bool = False,
) -> Chart:
    """Horizontal bars, one per (label, value, shown value): e.g. outbox depth by state,
    open operations by client. Lengths are relative to the largest value. ``stacked`` puts
    each label above its bar instead of beside it (for narrow screens)."""
    row_h = 48 if stacked else 32
    bar_x = 0 if stacked else label_w
    height = max(len(items), 1) * row_h + 8
    top = max((value for _, value, _ in items), default=0) or 1
    span = width - bar_x - value_w
    body: list[str] = []
    for i, (label, value, shown) in enumerate(items):
        y = 4 + i * row_h
        bar_y = y + 20 if stacked else y + 5
        length = max(span * value / top, 2 if value else 0)
        bar = _attrs(x=bar_x, y=bar_y, width=f"{length:.1f}", height=20)
        caption = (
            f'<text {_attrs(x=0, y=y + 13)} class="tick">{escape(label)}</text>'
            if stacked
            else f'<text {_attrs(x=label_w - 10, y=y + 21)} class="tick" text-anchor="end">'
            f"{escape(label)}</text>"
        )
        body.append(
            caption + f"<rect {bar} {_attrs(fill=PALETTE[0])}>"
            f"<title>{escape(f'{label}: {shown}')}</title></rect>"
            f'<text {_attrs(x=f"{bar_x + length + 8:.1f}", y=bar_y + 15)} class="value">'
            f"{escape(shown)}</text>"
        )
    return Chart(
        _frame(chart_id, title, description, body, width, height),
        [],
        ["", "value"],
        [[label, shown] for label, _, shown in items],
        empty=not any(value for _, value, _ in items),
    )
