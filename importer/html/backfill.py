"""The report of a ``backfill``: what Plausible's dashboard will show once the ten files are imported.

Everything shown is computed from the files that were written (:mod:`.imported`), so the page
says what Plausible will read, whatever the aggregation did; the run's report adds what was
read and the warnings.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING

from . import imported
from .chart import Series, interval_for, roll_up, svg
from .fmt import esc, number_html, text_html
from .page import (
    breakdown_html,
    figures_html,
    legend_html,
    notices_html,
    page,
    table_html,
)
from .run import reading_html

if TYPE_CHECKING:  # pragma: no cover
    from ..backfill import BackfillReport

MIN_DAYS = 3  # Plausible refuses an import range shorter than this (Date.diff(end, start) >= 2)
UPLOAD_STEPS = (
    "In Plausible, open Site settings > Imports & Exports.",
    "Choose Import data > CSV.",
    "Select all ten files below at once and start the import.",
    (
        "Plausible imports in the background; the dashboard shows the history once it is done "
        '(turn on "Include imported data" if the dashboard offers it).'
    ),
)


def kept_range(start: dt.date, end: dt.date, native_start: dt.date | None) -> tuple[dt.date, dt.date] | None:
    """The range Plausible keeps: cut at the first day of native data (inclusive); None: nothing."""
    last = end if native_start is None else min(end, native_start)
    return (start, last) if last >= start else None


def cut_notices(start: dt.date, end: dt.date, native_start: dt.date | None) -> list[str]:
    kept = kept_range(start, end, native_start)
    notes = []
    if kept is None:
        notes.append(
            f"Plausible's native data starts on {native_start}, before the first day of the files "
            f'({start}): Plausible will import nothing ("Dates Conflict").'
        )
        return notes
    if native_start is not None and native_start > end:
        notes.append(
            f"Plausible's native data starts on {native_start}, after the last day of the files: nothing is cut."
        )
    if kept[1] < end:
        notes.append(
            f"Plausible's native data starts on {native_start}: the import is cut there, and the "
            f"{(end - kept[1]).days:,} day(s) after it in the files are dropped. The figures below "
            f"are for {kept[0]} .. {kept[1]}."
        )
    if (kept[1] - kept[0]).days + 1 < MIN_DAYS:
        notes.append(
            f"The range Plausible would keep ({kept[0]} .. {kept[1]}) is shorter than {MIN_DAYS} days: "
            "Plausible refuses such an import."
        )
    return notes


def _top_figures(figures: imported.Figures) -> str:
    return figures_html(
        [
            ("Unique visitors", figures.visitors, "number"),
            ("Total visits", figures.visits, "number"),
            ("Total pageviews", figures.pageviews, "number"),
            ("Views per visit", figures.views_per_visit, "number"),
            ("Bounce rate", figures.bounce_rate, "percent"),
            ("Visit duration", figures.average_duration, "duration"),
        ],
        "Top figures",
    )


def _chart(days: list[tuple[dt.date, int, int]], cut: dt.date | None) -> str:
    dates = [day for day, _, _ in days]
    series = [
        Series("visitors", "Visitors", tuple(v for _, v, _ in days)),
        Series("pageviews", "Pageviews", tuple(p for _, _, p in days)),
    ]
    interval = interval_for(len(dates))
    periods, rolled = roll_up(dates, series, interval)
    label = f"Plausible's native data starts on {cut}: later days are not imported" if cut else ""
    chart = svg(periods, rolled, interval, f"Visitors and pageviews, one point per {interval}", cut, label)
    rows = [
        [
            esc(day.isoformat()),
            number_html(v),
            number_html(p),
            "dropped" if cut is not None and day > cut else "imported",
        ]
        for day, v, p in days
    ]
    table = table_html(
        [("Day", False), ("Visitors", True), ("Pageviews", True), ("Plausible", False)],
        rows,
        caption="Visitors and pageviews per day, from imported_visitors",
        attrs=' class="daily"',
    )
    rolled_note = f" (one point per {interval}: days would not fit)" if interval != "day" else ""
    return (
        f"<h2>Visitors and pageviews{esc(rolled_note)}</h2>{legend_html(rolled)}{chart}"
        f"<details><summary>The figures per day ({len(days):,} days)</summary>{table}</details>"
    )


def _upload(report: BackfillReport) -> str:
    steps = "".join(f"<li>{esc(step)}</li>" for step in UPLOAD_STEPS)
    rows = [
        [text_html(Path(path).name), number_html(report.rows_by_file.get(Path(path).name, 0))]
        for path in report.files.values()
    ]
    files = table_html([("File", False), ("Rows", True)], rows, caption=f"In {report.out_dir}")
    return f'<h2>How to upload</h2><ol>{steps}</ol><section class="card">{files}</section>'


def backfill_page(
    report: BackfillReport, native_start: dt.date | None = None, generated: dt.datetime | None = None
) -> str:
    """The whole page for a finished backfill (``report.files`` names the ten files)."""
    read = report.read
    warnings = [*read.reading_trailer(), *report.warnings, *(f"error: {p}" for p in report.problems)]
    if report.start is None or report.end is None or not report.files:
        body = ["<h1>Plausible import: nothing to import</h1>", notices_html(warnings, "Warnings"), reading_html(read)]
        return page("Plausible import: nothing to import", body, generated)
    start, end = report.start, report.end
    title = f"What Plausible will show: {start} .. {end}"
    frames = imported.load(report.files)
    kept = kept_range(start, end, native_start)
    shown = imported.clip(frames, *kept) if kept else imported.clip(frames, end, start)
    cut = kept[1] if kept and kept[1] < end else (start - dt.timedelta(days=1) if kept is None else None)
    body = [
        f"<h1>{esc(title)}</h1>",
        (
            f'<p class="muted">From the ten files in {text_html(report.out_dir)}: {report.days:,} days, '
            "dates in the site's time zone.</p>"
        ),
        notices_html(cut_notices(start, end, native_start), "Where Plausible cuts the import"),
        _top_figures(imported.figures(shown.get("imported_visitors"))),
        _chart(imported.daily(frames.get("imported_visitors"), start, end), cut),
        '<h2>Top lists</h2><div class="grid-2">',
        *(breakdown_html(b) for b in imported.breakdowns(shown)),
        "</div>",
        reading_html(read),
        "<h2>Warnings the command printed</h2>",
        notices_html(warnings, "Warnings") or '<p class="muted">None.</p>',
        _upload(report),
    ]
    return page(title, body, generated)
