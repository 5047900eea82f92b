"""The ten CSV files of Plausible's import: exact names, columns and types (``input_structures`` in
Plausible's ``lib/plausible/imported/csv_importer.ex``).

Rows are appended day by day to temporary files; when the run ends and the date range is
known, each file gets its final name ``imported_{table}_{YYYYMMDD}_{YYYYMMDD}.csv`` (the same
range on every file, as Plausible takes the range from the names). Then every file is read
back and checked: header, types, date range, and that the tables agree with each other.
"""

from __future__ import annotations

import csv
import datetime as dt
from pathlib import Path

import pandas as pd

# Table -> [(column, ClickHouse type)], in Plausible's order. ``imported_pages`` is written
# with its six documented columns, which every importer version accepts; the scroll-depth
# and time-on-page columns need engagement events that logs do not have (missing numeric
# columns are read as 0).
TABLES: dict[str, list[tuple[str, str]]] = {
    "imported_visitors": [
        ("date", "Date"),
        ("visitors", "UInt64"),
        ("pageviews", "UInt64"),
        ("bounces", "UInt64"),
        ("visits", "UInt64"),
        ("visit_duration", "UInt64"),
    ],
    "imported_sources": [
        ("date", "Date"),
        ("source", "String"),
        ("referrer", "String"),
        ("utm_source", "String"),
        ("utm_medium", "String"),
        ("utm_campaign", "String"),
        ("utm_content", "String"),
        ("utm_term", "String"),
        ("pageviews", "UInt64"),
        ("visitors", "UInt64"),
        ("visits", "UInt64"),
        ("visit_duration", "UInt64"),
        ("bounces", "UInt32"),
    ],
    "imported_pages": [
        ("date", "Date"),
        ("hostname", "String"),
        ("page", "String"),
        ("visits", "UInt64"),
        ("visitors", "UInt64"),
        ("pageviews", "UInt64"),
    ],
    "imported_entry_pages": [
        ("date", "Date"),
        ("entry_page", "String"),
        ("visitors", "UInt64"),
        ("entrances", "UInt64"),
        ("visit_duration", "UInt64"),
        ("bounces", "UInt32"),
        ("pageviews", "UInt64"),
    ],
    "imported_exit_pages": [
        ("date", "Date"),
        ("exit_page", "String"),
        ("visitors", "UInt64"),
        ("visit_duration", "UInt64"),
        ("exits", "UInt64"),
        ("bounces", "UInt32"),
        ("pageviews", "UInt64"),
    ],
    "imported_custom_events": [
        ("date", "Date"),
        ("name", "String"),
        ("link_url", "String"),
        ("path", "String"),
        ("visitors", "UInt64"),
        ("events", "UInt64"),
    ],
    "imported_locations": [
        ("date", "Date"),
        ("country", "String"),
        ("region", "String"),
        ("city", "UInt64"),
        ("visitors", "UInt64"),
        ("visits", "UInt64"),
        ("visit_duration", "UInt64"),
        ("bounces", "UInt32"),
        ("pageviews", "UInt64"),
    ],
    "imported_devices": [
        ("date", "Date"),
        ("device", "String"),
        ("visitors", "UInt64"),
        ("visits", "UInt64"),
        ("visit_duration", "UInt64"),
        ("bounces", "UInt32"),
        ("pageviews", "UInt64"),
    ],
    "imported_browsers": [
        ("date", "Date"),
        ("browser", "String"),
        ("browser_version", "String"),
        ("visitors", "UInt64"),
        ("visits", "UInt64"),
        ("visit_duration", "UInt64"),
        ("bounces", "UInt32"),
        ("pageviews", "UInt64"),
    ],
    "imported_operating_systems": [
        ("date", "Date"),
        ("operating_system", "String"),
        ("operating_system_version", "String"),
        ("visitors", "UInt64"),
        ("visits", "UInt64"),
        ("visit_duration", "UInt64"),
        ("bounces", "UInt32"),
        ("pageviews", "UInt64"),
    ],
}

MAX_FILE_BYTES = 1_000_000_000  # Plausible refuses larger uploads
UINT32_MAX = 2**32 - 1


def columns(table: str) -> list[str]:
    return [name for name, _ in TABLES[table]]


def file_name(table: str, start: dt.date, end: dt.date) -> str:
    return f"{table}_{start:%Y%m%d}_{end:%Y%m%d}.csv"


class CsvWriter:
    """Appends rows to the ten files; :meth:`finish` names them for the date range."""

    def __init__(self, out_dir: Path):
        self.out_dir = out_dir
        out_dir.mkdir(parents=True, exist_ok=True)
        self.rows = dict.fromkeys(TABLES, 0)
        self._tmp = {table: out_dir / f".{table}.partial.csv" for table in TABLES}
        self._files = {}
        for table, path in self._tmp.items():
            handle = open(path, "w", encoding="utf-8", newline="")
            csv.writer(handle, quoting=csv.QUOTE_ALL, lineterminator="\n").writerow(columns(table))
            self._files[table] = handle
        self.paths: dict[str, Path] = {}

    def write(self, table: str, frame: pd.DataFrame) -> None:
        """Append rows: ``frame`` has the table's columns (``date`` as datetime.date or str)."""
        if frame.empty:
            return
        frame = frame[columns(table)]
        # Strings quoted, numbers bare: ClickHouse's CSVWithNames reads both, and quoting keeps
        # spaces, commas and a literal \N in paths intact.
        frame.to_csv(self._files[table], header=False, index=False, quoting=csv.QUOTE_NONNUMERIC, lineterminator="\n")
        self.rows[table] += len(frame)

    def finish(self, start: dt.date, end: dt.date) -> dict[str, Path]:
        for handle in self._files.values():
            handle.close()
        for table, tmp in self._tmp.items():
            final = self.out_dir / file_name(table, start, end)
            tmp.replace(final)
            self.paths[table] = final
        return self.paths

    def abort(self) -> None:
        for handle in self._files.values():
            handle.close()
        for tmp in self._tmp.values():
            tmp.unlink(missing_ok=True)


def read_table(path: Path, table: str) -> pd.DataFrame:
    """Read one written file back with the types Plausible will use."""
    dtypes = {}
    for name, kind in TABLES[table]:
        dtypes[name] = "string" if kind in ("String", "Date") else "int64"
    return pd.read_csv(path, dtype=dtypes, keep_default_na=False, na_values=[])


def validate(paths: dict[str, Path], start: dt.date, end: dt.date, expected_rows: dict[str, int]) -> list[str]:
    """Read every file back; return the problems found (an empty list when all is well)."""
    problems: list[str] = []
    frames: dict[str, pd.DataFrame] = {}
    for table, path in paths.items():
        try:
            frame = read_table(path, table)
        except Exception as exc:  # a file we cannot read back is a bug worth saying loudly
            problems.append(f"{path.name}: cannot be read back: {exc}")
            continue
        frames[table] = frame
        if list(frame.columns) != columns(table):
            problems.append(f"{path.name}: header {list(frame.columns)} != {columns(table)}")
            continue
        if len(frame) != expected_rows.get(table, len(frame)):
            problems.append(f"{path.name}: {len(frame)} rows read back, {expected_rows[table]} written")
        dates = pd.to_datetime(frame["date"], format="%Y-%m-%d", errors="coerce")
        if dates.isna().any():
            problems.append(f"{path.name}: {int(dates.isna().sum())} rows with a date that is not YYYY-MM-DD")
        elif len(frame) and (dates.min().date() < start or dates.max().date() > end):
            problems.append(f"{path.name}: dates outside {start}..{end}")
        for name, kind in TABLES[table]:
            if kind.startswith("UInt"):
                values = frame[name]
                if len(values) and values.min() < 0:
                    problems.append(f"{path.name}: negative {name}")
                if kind == "UInt32" and len(values) and values.max() > UINT32_MAX:
                    problems.append(f"{path.name}: {name} over UInt32")
        if path.stat().st_size > MAX_FILE_BYTES:
            problems.append(f"{path.name}: {path.stat().st_size:,} bytes, over Plausible's 1 GB upload limit")
    problems += _cross_checks(frames, paths)
    return problems


SESSION_TABLES = {  # table -> its column counting sessions
    "imported_sources": "visits",
    "imported_devices": "visits",
    "imported_browsers": "visits",
    "imported_operating_systems": "visits",
    "imported_entry_pages": "entrances",
    "imported_exit_pages": "exits",
}


def _cross_checks(frames: dict[str, pd.DataFrame], paths: dict[str, Path]) -> list[str]:
    """The tables agree with each other the way Plausible's exporter makes them agree."""
    usable = {t: f for t, f in frames.items() if list(f.columns) == columns(t)}
    visitors = usable.get("imported_visitors")
    if visitors is None:
        return []
    problems = []
    pages = usable.get("imported_pages")
    # imported_visitors.pageviews counts pageview events by their own day, as imported_pages does
    if pages is not None and int(pages["pageviews"].sum()) != int(visitors["pageviews"].sum()):
        problems.append(
            f"{paths['imported_visitors'].name}: total pageviews {int(visitors['pageviews'].sum())} != "
            f"{int(pages['pageviews'].sum())} in imported_pages"
        )
    # the session tables split the same sessions by different dimensions: their totals agree
    # (locations leaves out sessions of unknown country, so it may hold fewer)
    total = {k: int(visitors[k].sum()) for k in ("visits", "visit_duration", "bounces")}
    session_pageviews = None
    for table, count in SESSION_TABLES.items():
        frame = usable.get(table)
        if frame is None:
            continue
        got = {
            "visits": int(frame[count].sum()),
            "visit_duration": int(frame["visit_duration"].sum()),
            "bounces": int(frame["bounces"].sum()),
        }
        for key, value in total.items():
            if got[key] != value:
                problems.append(f"{paths[table].name}: total {key} {got[key]} != {value} in imported_visitors")
        pageviews = int(frame["pageviews"].sum())
        if session_pageviews is not None and pageviews != session_pageviews[1]:
            problems.append(
                f"{paths[table].name}: total pageviews {pageviews} != {session_pageviews[1]} in {session_pageviews[0]}"
            )
        session_pageviews = session_pageviews or (table, pageviews)
    locations = usable.get("imported_locations")
    if locations is not None and int(locations["visits"].sum()) > total["visits"]:
        problems.append(f"{paths['imported_locations'].name}: more visits than imported_visitors")
    return problems
