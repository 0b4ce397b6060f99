"""Geometry of the page's inline SVG charts: plain numbers in, coordinates out.

The page draws its charts as server-rendered SVG (no charting library, no CDN, no build step),
so the arithmetic lives here where it can be read and tested, and the templates only place
shapes at the coordinates computed here. Text (account names) is never put in SVG here: the
templates escape it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any


def nice_ceiling(value: float) -> float:
    """The smallest of 1, 2, 2.5, 5 x 10^k at or above ``value`` (axis maxima people can read)."""
    if value <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    for step in (1.0, 2.0, 2.5, 5.0, 10.0):
        if value <= step * power + 1e-9:
            return step * power
    return 10.0 * power


def nice_round(value: float) -> float:
    """The nearest of 1, 2, 2.5, 5 x 10^k (tick labels people can read)."""
    if value <= 0:
        return 0.0
    power = 10 ** math.floor(math.log10(value))
    return min((step * power for step in (1.0, 2.0, 2.5, 5.0, 10.0)), key=lambda v: abs(v - value))


def _fmt(value: float) -> str:
    return f"{value:g}" if value < 1000 else f"{value / 1000:g}k"


@dataclass(frozen=True)
class Tick:
    position: float
    label: str


# -- bars ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Bar:
    label: str
    value: int
    css: str
    x: float
    y: float
    width: float
    height: float


@dataclass(frozen=True)
class BarChart:
    width: int
    height: int
    baseline: float
    bars: list[Bar]
    total: int


def bar_chart(items: Sequence[tuple[str, int, str]], width: int = 420, height: int = 240) -> BarChart:
    """Vertical bars for (label, value, css class) items, scaled to the largest value."""
    top, bottom, gap = 24.0, 28.0, 14.0
    baseline = height - bottom
    slot = width / max(len(items), 1)
    largest = max((v for _, v, _ in items), default=0) or 1
    bars = []
    for i, (label, value, css) in enumerate(items):
        h = (baseline - top) * value / largest
        bars.append(Bar(label, value, css, i * slot + gap / 2, baseline - h, slot - gap, h))
    return BarChart(width, height, baseline, bars, sum(v for _, v, _ in items))


# -- scatter ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Point:
    account_id: int
    label: str
    x_value: float
    y_value: float
    cx: float
    cy: float
    css: str
    flagged: bool


@dataclass(frozen=True)
class Scatter:
    width: int
    height: int
    left: float
    right: float
    top: float
    bottom: float
    x_threshold: float
    y_threshold: float
    x_ticks: list[Tick]
    y_ticks: list[Tick]
    points: list[Point]


class _SqrtScale:
    """A square-root axis: engagement points are skewed (a few accounts score hundreds), and a
    square root keeps the crowd near zero readable without a log scale's trouble with zero."""

    def __init__(self, maximum: float, start: float, end: float) -> None:
        self.maximum, self.start, self.end = maximum, start, end

    def __call__(self, value: float) -> float:
        share = math.sqrt(max(0.0, min(value, self.maximum)) / self.maximum)
        return self.start + (self.end - self.start) * share

    def ticks(self) -> list[Tick]:
        values = sorted({0.0, *(nice_round(self.maximum * f * f) for f in (0.25, 0.5, 0.75)), self.maximum})
        return [Tick(self(v), _fmt(v)) for v in values if v <= self.maximum]


def scatter(
    points: Sequence[dict[str, Any]],
    x_key: str,
    y_key: str,
    x_threshold: float,
    y_threshold: float,
    flagged: Sequence[str],
    width: int = 640,
    height: int = 420,
) -> Scatter:
    """Accounts placed by two scores (square-root axes), with the "high" thresholds drawn."""
    left, right, top, bottom = 56.0, width - 16.0, 16.0, height - 44.0
    x_max = nice_ceiling(max([float(p.get(x_key) or 0.0) for p in points] + [x_threshold * 2, 1.0]))
    y_max = nice_ceiling(max([float(p.get(y_key) or 0.0) for p in points] + [y_threshold * 2, 1.0]))
    xs, ys = _SqrtScale(x_max, left, right), _SqrtScale(y_max, bottom, top)
    placed = []
    for p in points:
        x, y = float(p.get(x_key) or 0.0), float(p.get(y_key) or 0.0)
        alignment = p.get("alignment") or "unknown"
        placed.append(Point(int(p["id"]), str(p.get("name") or p.get("crm_id") or p["id"]), x, y, round(xs(x), 1),
                            round(ys(y), 1), alignment, alignment in flagged))
    # Agreeing accounts first, so flagged ones are drawn on top.
    placed.sort(key=lambda pt: pt.flagged)
    return Scatter(width, height, left, right, top, bottom, round(xs(x_threshold), 1), round(ys(y_threshold), 1),
                   xs.ticks(), ys.ticks(), placed)


# -- lines -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Series:
    key: str
    label: str
    css: str
    points: str  # "x,y x,y ..." for <polyline>
    dots: list[tuple[float, float, str]]  # markers (x, y, tooltip) where there are few days
    last_value: float | None


@dataclass(frozen=True)
class LineChart:
    width: int
    height: int
    left: float
    right: float
    top: float
    bottom: float
    x_ticks: list[Tick]
    y_ticks: list[Tick]
    series: list[Series] = field(default_factory=list)
    days: int = 0


def line_chart(
    rows: Sequence[dict[str, Any]],
    series: Sequence[tuple[str, str, str]],
    width: int = 1080,
    height: int = 300,
    dot_limit: int = 45,
) -> LineChart:
    """Daily values (``rows`` with ``day`` ISO dates) as lines, one per (key, label, css) series."""
    left, right, top, bottom = 44.0, width - 16.0, 12.0, height - 30.0
    days = [date.fromisoformat(str(r["day"])) for r in rows]
    values = [float(r[k]) for r in rows for k, _, _ in series if r.get(k) is not None]
    y_max = nice_ceiling(max(values + [100.0]))
    first, last = (days[0], days[-1]) if days else (date.today(), date.today())
    span = max((last - first).days, 1)

    def x_of(day: date) -> float:
        return round(left + (right - left) * ((day - first).days / span if days and last != first else 0.5), 1)

    def y_of(value: float) -> float:
        return round(bottom - (bottom - top) * value / y_max, 1)

    lines = []
    for key, label, css in series:
        pts = [(x_of(d), y_of(float(r[key])), f"{d.isoformat()}: {float(r[key]):.1f}")
               for d, r in zip(days, rows, strict=True) if r.get(key) is not None]
        lines.append(Series(key, label, css, " ".join(f"{x},{y}" for x, y, _ in pts),
                            pts if len(pts) <= dot_limit else pts[-1:],
                            float(rows[-1][key]) if rows and rows[-1].get(key) is not None else None))
    y_ticks = [Tick(y_of(y_max * i / 4), _fmt(y_max * i / 4)) for i in range(5)]
    x_ticks: list[Tick] = []
    if days:
        count = min(6, len(days))
        picks = sorted({round(i * (len(days) - 1) / max(count - 1, 1)) for i in range(count)})
        x_ticks = [Tick(x_of(days[i]), f"{days[i]:%b %d}") for i in picks]
    return LineChart(width, height, left, right, top, bottom, x_ticks, y_ticks, lines, len(days))
