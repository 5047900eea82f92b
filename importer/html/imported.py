"""What Plausible's dashboard computes from the ten ``imported_*`` CSV files.

The report reads the files that were written, by their documented column names, and applies
the formulas of Plausible's stats code over imported tables (``lib/plausible/stats/imported/``
and ``lib/plausible/stats/imported.ex``): the tables hold daily totals, and the dashboard
adds them up over the chosen range, so

* unique visitors = sum of ``visitors`` (a visitor who came on two days counts twice),
* total visits = sum of ``visits``, total pageviews = sum of ``pageviews``,
* views per visit = round(pageviews / visits, 2),
* bounce rate = round(100 * bounces / visits) percent,
* visit duration = round(visit_duration / visits) seconds (the files hold total seconds),

each 0 when there are no visits. ClickHouse divides in floating point and rounds halves to the
even neighbour, as Python's :func:`round` does. Breakdowns apply the same formulas per value.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

TOP_ROWS = 10

# The documented columns the report uses, per table; a missing numeric column reads as 0 and
# a missing text column as "", as in Plausible's import.
TEXT_COLUMNS = {
    "imported_visitors": ["date"],
    "imported_sources": ["date", "source", "referrer", "utm_source", "utm_medium", "utm_campaign"],
    "imported_pages": ["date", "hostname", "page"],
    "imported_entry_pages": ["date", "entry_page"],
    "imported_exit_pages": ["date", "exit_page"],
    "imported_custom_events": ["date", "name", "link_url", "path"],
    "imported_locations": ["date", "country"],
    "imported_devices": ["date", "device"],
    "imported_browsers": ["date", "browser"],
    "imported_operating_systems": ["date", "operating_system"],
}
NUMBER_COLUMNS = ("visitors", "pageviews", "bounces", "visits", "visit_duration", "entrances", "exits", "events")


@dataclass(frozen=True)
class Figures:
    """Sums over a range and the dashboard's top figures derived from them."""

    visitors: int = 0
    visits: int = 0
    pageviews: int = 0
    bounces: int = 0
    visit_duration: int = 0

    @property
    def views_per_visit(self) -> float:
        return round(self.pageviews / self.visits, 2) if self.visits else 0.0

    @property
    def bounce_rate(self) -> int:
        return round(100 * self.bounces / self.visits) if self.visits else 0

    @property
    def average_duration(self) -> int:
        return round(self.visit_duration / self.visits) if self.visits else 0


@dataclass(frozen=True)
class Breakdown:
    """One of the dashboard's top lists: the first rows and how many more there are."""

    title: str
    label: str  # the heading of the value column
    columns: tuple[tuple[str, str], ...]  # (heading, kind: number | percent | duration)
    rows: tuple[tuple[str, tuple[float, ...]], ...]
    more: int = 0
    note: str = ""


def load(files: Mapping[str, str | Path]) -> dict[str, pd.DataFrame]:
    """The written files by table name (tables without a file are left out)."""
    frames = {}
    for table, path in files.items():
        if table not in TEXT_COLUMNS:
            continue
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[])
        for column in TEXT_COLUMNS[table]:
            if column not in frame:
                frame[column] = ""
        for column in NUMBER_COLUMNS:
            frame[column] = (
                pd.to_numeric(frame[column], errors="coerce").fillna(0).astype("int64") if column in frame else 0
            )
        frames[table] = frame
    return frames


def clip(frames: Mapping[str, pd.DataFrame], start: dt.date, end: dt.date) -> dict[str, pd.DataFrame]:
    """The rows Plausible keeps for an import clamped to ``start`` .. ``end`` (inclusive)."""
    low, high = start.isoformat(), end.isoformat()
    return {table: frame[(frame["date"] >= low) & (frame["date"] <= high)] for table, frame in frames.items()}


def figures(frame: pd.DataFrame | None) -> Figures:
    """Top figures from ``imported_visitors`` rows."""
    if frame is None or frame.empty:
        return Figures()
    return Figures(
        **{key: int(frame[key].sum()) for key in ("visitors", "visits", "pageviews", "bounces", "visit_duration")}
    )


def daily(frame: pd.DataFrame | None, start: dt.date, end: dt.date) -> list[tuple[dt.date, int, int]]:
    """(day, visitors, pageviews) for every day of the range, 0 for days without a row."""
    sums: dict[str, tuple[int, int]] = {}
    if frame is not None and not frame.empty:
        grouped = frame.groupby("date")[["visitors", "pageviews"]].sum()
        sums = {day: (int(v), int(p)) for day, v, p in grouped.itertuples()}
    days = (end - start).days + 1
    out = []
    for offset in range(max(days, 0)):
        day = start + dt.timedelta(days=offset)
        visitors, pageviews = sums.get(day.isoformat(), (0, 0))
        out.append((day, visitors, pageviews))
    return out


def _top(
    frame: pd.DataFrame | None, key: str, metrics: dict[str, str], empty_label: str | None, top: int
) -> tuple[list[tuple[str, dict[str, int]]], int]:
    """Group ``frame`` by ``key`` and sum ``metrics``; rows by visitors, then value. Empty values get
    ``empty_label`` (None: left out, as the dashboard leaves out unset UTM values)."""
    if frame is None or frame.empty:
        return [], 0
    values = frame[key].astype(str)
    if empty_label is None:
        frame, values = frame[values != ""], values[values != ""]
    else:
        values = values.where(values != "", empty_label)
    sums = frame.assign(_value=values).groupby("_value")[list(set(metrics.values()))].sum()
    sums = sums.reset_index().sort_values(["visitors", "_value"], ascending=[False, True])
    rows = [
        (str(row["_value"]), {name: int(row[column]) for name, column in metrics.items()})
        for _, row in sums.head(top).iterrows()
    ]
    return rows, max(len(sums) - top, 0)


def _rate(part: int, whole: int) -> int:
    return round(100 * part / whole) if whole else 0


def _average(total: int, count: int) -> int:
    return round(total / count) if count else 0


SESSION_COLUMNS = (("Visitors", "number"), ("Bounce rate", "percent"), ("Visit duration", "duration"))


def _session_breakdown(
    title: str, label: str, frame: pd.DataFrame | None, key: str, empty_label: str | None, top: int, note: str = ""
) -> Breakdown:
    metrics = {"visitors": "visitors", "visits": "visits", "bounces": "bounces", "duration": "visit_duration"}
    rows, more = _top(frame, key, metrics, empty_label, top)
    return Breakdown(
        title,
        label,
        SESSION_COLUMNS,
        tuple(
            (value, (m["visitors"], _rate(m["bounces"], m["visits"]), _average(m["duration"], m["visits"])))
            for value, m in rows
        ),
        more,
        note,
    )


def _share_breakdown(
    title: str,
    label: str,
    frame: pd.DataFrame | None,
    key: str,
    top: int,
    empty_label: str | None = "(not set)",
    note: str = "",
) -> Breakdown:
    rows, more = _top(frame, key, {"visitors": "visitors"}, empty_label, top)
    total = int(frame["visitors"].sum()) if frame is not None and not frame.empty else 0
    return Breakdown(
        title,
        label,
        (("Visitors", "number"), ("%", "percent")),
        tuple((value, (m["visitors"], 100 * m["visitors"] / total if total else 0.0)) for value, m in rows),
        more,
        note,
    )


def breakdowns(frames: Mapping[str, pd.DataFrame], top: int = TOP_ROWS) -> list[Breakdown]:
    """The dashboard's top lists, each with the figures Plausible shows in its details view."""
    return [
        _session_breakdown("Top sources", "Source", frames.get("imported_sources"), "source", "Direct / None", top),
        _session_breakdown(
            "UTM campaigns",
            "Campaign",
            frames.get("imported_sources"),
            "utm_campaign",
            None,
            top,
            note="Visits without a campaign are not listed, as on the dashboard.",
        ),
        *_page_breakdowns(frames, top),
        _share_breakdown(
            "Countries",
            "Country",
            frames.get("imported_locations"),
            "country",
            top,
            None,
            note="Visits whose country is unknown are not listed; % is of all visitors in the locations file.",
        ),
        _share_breakdown("Devices", "Screen size", frames.get("imported_devices"), "device", top),
        _share_breakdown("Browsers", "Browser", frames.get("imported_browsers"), "browser", top),
        _share_breakdown(
            "Operating systems", "Operating system", frames.get("imported_operating_systems"), "operating_system", top
        ),
        _goals(frames, top),
    ]


def _page_breakdowns(frames: Mapping[str, pd.DataFrame], top: int) -> list[Breakdown]:
    """Top pages, entry pages and exit pages."""
    pages_rows, pages_more = _top(
        frames.get("imported_pages"), "page", {"visitors": "visitors", "pageviews": "pageviews"}, "(not set)", top
    )
    entry_rows, entry_more = _top(
        frames.get("imported_entry_pages"),
        "entry_page",
        {"visitors": "visitors", "entrances": "entrances", "bounces": "bounces", "duration": "visit_duration"},
        "(not set)",
        top,
    )
    exit_rows, exit_more = _top(
        frames.get("imported_exit_pages"), "exit_page", {"visitors": "visitors", "exits": "exits"}, "(not set)", top
    )
    return [
        Breakdown(
            "Top pages",
            "Page",
            (("Visitors", "number"), ("Pageviews", "number")),
            tuple((v, (m["visitors"], m["pageviews"])) for v, m in pages_rows),
            pages_more,
        ),
        Breakdown(
            "Entry pages",
            "Entry page",
            (
                ("Visitors", "number"),
                ("Unique entrances", "number"),
                ("Bounce rate", "percent"),
                ("Visit duration", "duration"),
            ),
            tuple(
                (
                    v,
                    (
                        m["visitors"],
                        m["entrances"],
                        _rate(m["bounces"], m["entrances"]),
                        _average(m["duration"], m["entrances"]),
                    ),
                )
                for v, m in entry_rows
            ),
            entry_more,
        ),
        Breakdown(
            "Exit pages",
            "Exit page",
            (("Visitors", "number"), ("Unique exits", "number")),
            tuple((v, (m["visitors"], m["exits"])) for v, m in exit_rows),
            exit_more,
        ),
    ]


def _goals(frames: Mapping[str, pd.DataFrame], top: int) -> Breakdown:
    events_rows, events_more = _top(
        frames.get("imported_custom_events"), "name", {"visitors": "visitors", "events": "events"}, "(not set)", top
    )
    return Breakdown(
        "Goals (custom events)",
        "Goal",
        (("Uniques", "number"), ("Total", "number")),
        tuple((v, (m["visitors"], m["events"])) for v, m in events_rows),
        events_more,
        note="Shown on the dashboard once a goal of that name is set up in Plausible.",
    )
