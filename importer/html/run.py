"""The report of a ``send`` or ``preview`` run: what was read, what would be or was sent, per day."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Sequence

from ..report import EXTRA_EVENTS_LABEL, Report
from .chart import Series, interval_for, roll_up, svg
from .fmt import esc, number_html, text_html
from .page import counts_html, figures_html, legend_html, notices_html, page, table_html

MAX_NAME_COLUMNS = 6  # event names with their own column in the per-day table; the rest are "other"


def reading_html(report: Report) -> str:
    """Inputs with their formats, rows read, invalid and filtered by reason, events by name."""
    inputs = table_html(
        [("Input", False), ("Format detected", False)],
        [[text_html(name), text_html(fmt)] for name, fmt in report.sources],
    )
    rows = {"rows read": report.rows_read, "rows invalid": report.rows_invalid}
    rows.update({f"filtered: {reason}": count for reason, count in report.rows_filtered.items()})
    rows["events"] = report.events
    if report.extra_events:
        rows[EXTRA_EVENTS_LABEL] = report.extra_events
    return (
        f'<h2>The run</h2><div class="grid-2"><section class="card"><h3>Inputs</h3>{inputs}</section>'
        f'<section class="card"><h3>Rows</h3>'
        f"{table_html([('', False), ('Count', True)], [[esc(k), number_html(v)] for k, v in rows.items()])}"
        f"</section>" + counts_html("Events by name", dict(report.events_by_name), "Event name") + "</div>"
    )


def _day_range(counts: Counter) -> list[dt.date]:
    days = sorted({day for day, _ in counts if day is not None})
    if not days:
        return []
    return [days[0] + dt.timedelta(days=i) for i in range((days[-1] - days[0]).days + 1)]


def per_day_html(counts: Counter, title: str) -> str:
    """A chart of events per UTC day and the day-by-name table behind it (collapsed)."""
    days = _day_range(counts)
    if not days:
        return '<p class="muted">No events.</p>'
    totals: Counter = Counter()
    per_day: Counter = Counter()
    for (day, name), count in counts.items():
        if day is not None:  # an event without a time has no day
            totals[name] += count
            per_day[day] += count
    names = [name for name, _ in totals.most_common(MAX_NAME_COLUMNS)]
    interval = interval_for(len(days))
    daily = Series("events", "Events", tuple(per_day[day] for day in days))
    periods, rolled = roll_up(days, [daily], interval)
    chart = svg(periods, rolled, interval, f"{title}, one point per {interval}")
    other = len(totals) > len(names)
    headers = [("Day (UTC)", False)] + [(name, True) for name in names] + ([("other", True)] if other else [])
    rows = []
    for day, total in zip(days, daily.values, strict=True):
        cells = [esc(day.isoformat())] + [number_html(counts.get((day, name), 0)) for name in names]
        if other:
            cells.append(number_html(total - sum(counts.get((day, name), 0) for name in names)))
        rows.append(cells)
    table = table_html(headers, rows, caption="Events per day and event name", attrs=' class="daily"')
    return (
        f"<h2>{esc(title)}</h2>{legend_html(rolled)}{chart}"
        f"<details><summary>The figures per day ({len(days):,} days)</summary>{table}</details>"
    )


def _outcome(report: Report) -> list[tuple[str, float, str]]:
    if report.dry_run:
        return [("Events", report.events, "number"), ("Sent", 0, "number")]
    return [
        ("Events", report.events, "number"),
        ("Accepted", report.accepted, "number"),
        ("Dropped", report.dropped, "number"),
        ("Rejected", report.rejected, "number"),
        ("Failed", report.failed, "number"),
    ]


OUTCOMES = ("accepted", "dropped", "rejected", "failed")


def _outcomes_per_day(counts: Counter[tuple[dt.date, str]]) -> str:
    """A table of the outcomes of the events of each day (the day each happened, UTC)."""
    days = sorted({day for day, _ in counts})
    if not days:
        return ""
    rows = [[esc(day.isoformat()), *(number_html(counts.get((day, o), 0)) for o in OUTCOMES)] for day in days]
    headers = [("Day (UTC)", False), *((o.capitalize(), True) for o in OUTCOMES)]
    return table_html(headers, rows, caption="Outcome per day the events happened", attrs=' class="outcomes"')


def run_page(
    report: Report,
    title: str,
    date_note: str | None = None,
    extra_notices: Sequence[str] = (),
    generated: dt.datetime | None = None,
) -> str:
    """The page for ``send`` (dry or real) and ``preview``.

    Plausible's ``/api/event`` dates every event when it arrives, so the days shown are the
    days the rows happened (UTC), not the days Plausible will file them under.
    """
    span = (
        f"{report.oldest:%Y-%m-%d %H:%M} .. {report.newest:%Y-%m-%d %H:%M} UTC"
        if report.oldest is not None
        else "no events"
    )
    what = "What would be sent" if report.dry_run else "What was sent"
    outcome = figures_html(_outcome(report), "Outcome")
    if not report.dry_run:
        outcome += _outcomes_per_day(report.outcomes_by_day)
    notices = [*([date_note] if date_note else []), *extra_notices, *report.reading_trailer()]
    body = [
        f'<h1>{esc(title)}</h1><p class="muted">Events from {esc(span)}.</p>',
        notices_html(notices, "Notes and warnings"),
        f"<h2>{esc(what)}</h2>",
        outcome,
        per_day_html(report.events_by_day, "Events per day (UTC)"),
        reading_html(report),
    ]
    return page(title, body, generated)
