"""A line chart over days, weeks or months, drawn as SVG by our own code (no script).

Up to :data:`MAX_DAILY` days are drawn one point per day; longer ranges are rolled up into
weeks (Monday to Sunday, as Plausible's weekly interval) and, past :data:`MAX_WEEKLY` days,
into calendar months, summing the daily figures as Plausible sums imported days. Every point
is a ``<g class="pt">`` with its figures in ``data-*`` attributes and a ``<title>`` tooltip.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from dataclasses import dataclass

from .fmt import esc, short_number

MAX_DAILY = 100
MAX_WEEKLY = 3 * 366
WIDTH, HEIGHT = 960, 280
LEFT, RIGHT, TOP, BOTTOM = 56, 16, 14, 34
MAX_LABELS = 8


@dataclass(frozen=True)
class Series:
    key: str  # an identifier: the data-* attribute and the CSS class (s-KEY)
    label: str
    values: tuple[int, ...]


@dataclass(frozen=True)
class Period:
    start: dt.date
    end: dt.date


def interval_for(days: int) -> str:
    if days <= MAX_DAILY:
        return "day"
    return "week" if days <= MAX_WEEKLY else "month"


def _period_start(day: dt.date, interval: str) -> dt.date:
    if interval == "week":
        return day - dt.timedelta(days=day.weekday())
    if interval == "month":
        return day.replace(day=1)
    return day


def roll_up(days: Sequence[dt.date], series: Sequence[Series], interval: str) -> tuple[list[Period], list[Series]]:
    """Sum consecutive days into periods; the first and last period are cut to the range."""
    periods: list[Period] = []
    sums: list[list[int]] = [[] for _ in series]
    current = None
    for i, day in enumerate(days):
        key = _period_start(day, interval)
        if key != current:
            current = key
            periods.append(Period(day, day))
            for column in sums:
                column.append(0)
        else:
            periods[-1] = Period(periods[-1].start, day)
        for column, one in zip(sums, series, strict=True):
            column[-1] += one.values[i]
    return periods, [Series(one.key, one.label, tuple(column)) for one, column in zip(series, sums, strict=True)]


def period_label(period: Period, interval: str) -> str:
    """The tooltip's name of a period; a week or month cut by the range says how many days it has."""
    days = (period.end - period.start).days + 1
    if interval == "month":
        full = period.start.day == 1 and (period.end + dt.timedelta(days=1)).day == 1
        return f"{period.start:%B %Y}" + ("" if full else f" ({days} days of it)")
    if interval == "week":
        return f"week {period.start:%Y-%m-%d} .. {period.end:%Y-%m-%d}" + (
            "" if days == 7 else f" ({days} day{'s' * (days != 1)})"
        )
    return f"{period.start:%a %Y-%m-%d}"


def _axis_max(value: int) -> int:
    if value <= 4:
        return 4
    step = 10 ** math.floor(math.log10(value / 4))
    for factor in (1, 2, 2.5, 5, 10):
        if value <= 4 * step * factor:
            return int(4 * step * factor)
    return value  # pragma: no cover - the loop always returns


def _tick_label(period: Period, interval: str, spans_years: bool) -> str:
    if interval == "month":
        return f"{period.start:%b %Y}"
    return f"{period.start:%b} {period.start.day}" + (f" {period.start:%Y}" if spans_years else "")


def svg(
    periods: Sequence[Period],
    series: Sequence[Series],
    interval: str,
    title: str,
    cut: dt.date | None = None,
    cut_label: str = "",
) -> str:
    """The chart; ``cut``: the last day kept, later periods are shaded as dropped."""
    count = max(len(periods), 1)
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    step = plot_w / count
    top = _axis_max(max((max(s.values, default=0) for s in series), default=0))
    spans_years = bool(periods) and periods[0].start.year != periods[-1].end.year

    def x(i: int) -> float:
        return LEFT + (i + 0.5) * step

    def y(value: int) -> float:
        return TOP + plot_h - plot_h * value / top

    parts = [
        (
            f'<div class="chart-box"><svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
            'aria-labelledby="chart-title">'
        ),
        f'<title id="chart-title">{esc(title)}</title>',
    ]
    for tick in range(5):
        value = top * tick // 4
        parts.append(
            f'<line class="grid" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y(value):.1f}" y2="{y(value):.1f}"/>'
            f'<text class="axis" x="{LEFT - 6}" y="{y(value) + 4:.1f}" text-anchor="end">'
            f"{esc(short_number(value))}</text>"
        )
    every = max(1, math.ceil(count / MAX_LABELS))
    parts.extend(
        f'<text class="axis" x="{x(i):.1f}" y="{HEIGHT - 12}" text-anchor="middle">'
        f"{esc(_tick_label(periods[i], interval, spans_years))}</text>"
        for i in range(0, len(periods), every)
    )
    if cut is not None and periods and cut < periods[-1].end:
        kept = sum(1 for p in periods if p.start <= cut)
        left = LEFT + kept * step
        parts.append(
            f'<rect class="dropped" x="{left:.1f}" y="{TOP}" width="{WIDTH - RIGHT - left:.1f}" '
            f'height="{plot_h}"/><line class="cut" x1="{left:.1f}" x2="{left:.1f}" y1="{TOP - 4}" '
            f'y2="{TOP + plot_h}"><title>{esc(cut_label)}</title></line>'
        )
    for one in series:
        points = " ".join(f"{x(i):.1f},{y(v):.1f}" for i, v in enumerate(one.values))
        parts.append(f'<polyline class="line s-{one.key}" points="{points}"/>')
    for i, period in enumerate(periods):
        figures = ", ".join(f"{one.values[i]:,} {one.label.lower()}" for one in series)
        data = " ".join(f'data-{one.key}="{one.values[i]}"' for one in series)
        parts.append(
            f'<g class="pt" data-start="{period.start}" data-end="{period.end}" {data}>'
            f"<title>{esc(period_label(period, interval))}: {esc(figures)}</title>"
            f'<rect class="hit" x="{LEFT + i * step:.2f}" y="{TOP}" width="{step:.2f}" height="{plot_h}"/>'
            + (
                f'<circle class="dot s-{series[0].key}" cx="{x(i):.1f}" cy="{y(series[0].values[i]):.1f}" r="2.5"/>'
                if series and interval == "day" and count <= 62
                else ""
            )
            + "</g>"
        )
    parts.append("</svg></div>")
    return "".join(parts)
