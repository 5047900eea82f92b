"""One backfill run: read the inputs, write Plausible's ten CSV import files, check them.

::

    from importer.backfill import backfill
    from importer.options import BackfillOptions
    report = backfill(["access.log.gz"], "example.com",
                      BackfillOptions(site_timezone="Europe/Berlin", out_dir="import/"))
    print(report.summary())

The same readers, filters and event rules as ``send`` (:func:`importer.pipeline.read_events`
with a :class:`importer.mapping.Mapper`) produce the events; they are sorted into site-local
days (:mod:`.spill`), turned into sessions and daily aggregates (:mod:`.aggregate`) and
written as the ten files (:mod:`.writer`), which are then read back and checked.
"""

from __future__ import annotations

import datetime as dt
import re
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO
from zoneinfo import ZoneInfo

import pyarrow as pa

from .. import mapping as mapping_mod
from ..mapping import Mapper, Mapping
from ..options import BackfillOptions, ConfigError, OutputOptions, ReadOptions, normalise_domain
from ..pipeline import expand_inputs, read_events
from ..progress import Progress
from ..report import RejectsFile, Report, SummaryTable, write_json_report
from .aggregate import DayAggregator, day_to_date
from .devices import DeviceParser
from .geo import GeoLookup
from .spill import DEFAULT_MEMORY_LIMIT, DaySpill
from .writer import TABLES, CsvWriter, validate

MIN_DAYS = 3

UPLOAD_HINT = (
    "upload: in Plausible open Site settings > Imports & Exports > Import data > CSV and "
    "select all ten files of {out} at once"
)
CLAMP_NOTE = (
    "Plausible keeps imported days only up to the first day of the site's own (native) data "
    "and skips days an earlier import covers; rows after that day are dropped silently, so "
    "import history from before you started Plausible"
)


@dataclass
class BackfillReport:
    """What a backfill read, what it wrote, and what to watch out for."""

    read: Report = field(default_factory=Report)
    out_dir: str = ""
    start: dt.date | None = None
    end: dt.date | None = None
    files: dict[str, str] = field(default_factory=dict)  # table -> path
    rows_by_file: dict[str, int] = field(default_factory=dict)  # file name -> data rows
    sessions: int = 0
    visitors: int = 0
    pageviews: int = 0
    custom_events: int = 0
    bounces: int = 0
    sessions_past_midnight: int = 0
    bot_events: int = 0  # events whose user agent Plausible drops as a bot: in no file
    pageviews_by_day: dict[dt.date, int] = field(default_factory=dict)
    user_agents_parsed: int = 0
    user_agents_from_cache: int = 0
    user_agent_seconds: float = 0.0
    ip_lookups: int = 0
    ip_seconds: float = 0.0
    geo_database: str = ""
    spills: int = 0
    spilled_bytes: int = 0
    warnings: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # read-back validation failures
    duration_s: float = 0.0

    @property
    def days(self) -> int:
        return 0 if self.start is None or self.end is None else (self.end - self.start).days + 1

    @property
    def ok(self) -> bool:
        return bool(self.files) and not self.problems and not self.read.skipped_sources

    def as_dict(self) -> dict:
        read = self.read.as_dict()
        return {
            "rows_read": read["rows_read"],
            "rows_invalid": read["rows_invalid"],
            "rows_filtered": read["rows_filtered"],
            "events": read["events"],
            "extra_events": read["extra_events"],
            "events_by_name": read["events_by_name"],
            "date_range": {
                "start": self.start.isoformat() if self.start else None,
                "end": self.end.isoformat() if self.end else None,
                "days": self.days,
            },
            "out_dir": self.out_dir,
            "files": dict(self.rows_by_file),
            "sessions": self.sessions,
            "visitors": self.visitors,
            "pageviews": self.pageviews,
            "custom_events": self.custom_events,
            "bounces": self.bounces,
            "sessions_past_midnight": self.sessions_past_midnight,
            "bot_events_dropped": self.bot_events,
            "pageviews_by_day": {d.isoformat(): n for d, n in sorted(self.pageviews_by_day.items())},
            "user_agents_parsed": self.user_agents_parsed,
            "user_agent_seconds": round(self.user_agent_seconds, 3),
            "ip_lookups": self.ip_lookups,
            "warnings": list(self.warnings),
            "problems": list(self.problems),
            "duration_s": round(self.duration_s, 3),
        }

    def summary(self) -> str:
        table = SummaryTable()
        add = table.add
        r = self.read
        r.add_reading(table)
        if self.start is not None:
            add("dates (site time zone)", f"{self.start} .. {self.end} ({self.days} days)")
        add("visits (sessions)", self.sessions)
        add("visitors (sum of days)", self.visitors)
        add("pageviews", self.pageviews)
        add("bounces", self.bounces)
        if self.sessions_past_midnight:
            add("sessions past midnight", self.sessions_past_midnight)
        if self.bot_events:
            add("bot events dropped", self.bot_events)
        add(
            "user agents parsed",
            f"{self.user_agents_parsed:,} in {self.user_agent_seconds:.1f} s"
            + (f" (+{self.user_agents_from_cache:,} from cache)" if self.user_agents_from_cache else ""),
        )
        for name in TABLES:
            path = self.files.get(name)
            if path:
                add(f"  {Path(path).name}", f"{self.rows_by_file.get(Path(path).name, 0):,} rows")
        add("duration", f"{self.duration_s:.1f} s")
        if r.rejects_path:
            add("rejects file", r.rejects_path)
        trailer = (
            r.reading_trailer() + [f"warning: {w}" for w in self.warnings] + [f"error: {p}" for p in self.problems]
        )
        return table.render(trailer)


def backfill(
    inputs: Sequence[str | Path],
    domain: str,
    target: BackfillOptions,
    *,
    read: ReadOptions | None = None,
    outputs: OutputOptions | None = None,
    memory_limit: int = DEFAULT_MEMORY_LIMIT,
    ua_cache: str | Path | None = "default",
    today: dt.date | None = None,
    stderr: TextIO | None = None,
) -> BackfillReport:
    """Read ``inputs`` and write Plausible's ten CSV import files into ``target.out_dir``.

    Raises :class:`importer.options.ConfigError` (or :class:`importer.mapping.MappingError`)
    for bad arguments, before anything is written; bad input lines never raise: they are
    counted and written to the rejects file. ``target.site_timezone`` is the site's time zone
    (the dates of the files); ``read.log_timezone`` is the zone of log times written without an
    offset, as for ``send``. ``read.since`` (inclusive) and ``read.until`` (exclusive) keep only
    events in that window: a date is midnight in the site's time zone (so ``until`` of a date
    includes that whole day), a time is exact (UTC unless it has an offset). ``ua_cache`` is the
    user-agent cache file (``"default"``: under ``~/.cache``; ``None``: none).
    """
    read, outputs = read or ReadOptions(), outputs or OutputOptions(failed=None)
    started = time.monotonic()
    domain = normalise_domain(domain)
    site_zone = ZoneInfo(target.site_timezone)  # checked by BackfillOptions
    read.check_formats()
    window = event_window(read.since, read.until, site_zone)
    loaded = read.mapping if isinstance(read.mapping, Mapping) else mapping_mod.load(str(read.mapping))
    sources = expand_inputs(inputs)
    outputs.check_writable()
    target.check_writable()
    out = Path(target.out_dir)
    report = BackfillReport(out_dir=str(out))
    rejects = RejectsFile(Path(outputs.rejects) if outputs.rejects else None)
    total_bytes = sum(s.size or 0 for s in sources) or None
    bar = Progress(outputs.progress, total_bytes, events_label="events", stream=stderr or sys.stderr)
    try:
        mapper = Mapper(loaded, domain, since=window[0], until=window[1])
        events = read_events(sources, mapper, report.read, rejects, read=read, progress=bar)
        write_files(
            _counted(events, bar),
            timezone=target.site_timezone,
            out_dir=out,
            report=report,
            memory_limit=memory_limit,
            ua_cache=ua_cache,
            today=today,
            notify=bar.write if outputs.progress else None,
        )
    finally:
        bar.close()
        rejects.close()
        report.duration_s = time.monotonic() - started
        if rejects.count:
            report.read.rejects_path = str(rejects.path)
        if outputs.report:
            write_json_report(report.as_dict(), outputs.report)
    return report


def _counted(batches: Iterable[pa.Table], bar: Progress) -> Iterator[pa.Table]:
    """The batches, each counted on the progress bar as it goes by."""
    for batch in batches:
        bar.settled(batch.num_rows)
        yield batch


def write_files(
    events: Iterable[pa.Table],
    *,
    timezone: str,
    out_dir: str | Path,
    report: BackfillReport | None = None,
    memory_limit: int = DEFAULT_MEMORY_LIMIT,
    ua_cache: str | Path | None = "default",
    today: dt.date | None = None,
    notify: Callable[[str], None] | None = None,
) -> BackfillReport:
    """Aggregate event-frame batches (:mod:`importer.events`) into the ten files in ``out_dir``.

    The lower half of :func:`backfill`, for callers that build events themselves.
    """
    zone = ZoneInfo(timezone)
    out = Path(out_dir)
    report = report or BackfillReport(out_dir=str(out))
    spill = DaySpill(timezone, memory_limit=memory_limit)
    writer: CsvWriter | None = None
    devices = geo = None
    try:
        for batch in events:
            spill.add(batch)
        days = spill.days()
        if spill.no_timestamp:
            report.warnings.append(f"{spill.no_timestamp:,} events without a time were left out")
        if not days:
            report.warnings.append("no events: nothing to import, no files written")
            return report
        devices = DeviceParser(ua_cache)
        new_agents = devices.unknown(spill.agents)
        if notify is not None and new_agents >= 200:
            notify(
                f"reading {new_agents:,} new user agents with device-detector (about {new_agents * 0.015 + 3:.0f} s; "
                "cached for later runs)"
            )
        devices.parse_many(spill.agents)  # every distinct agent once
        geo = GeoLookup()
        report.geo_database = geo.source_info
        writer = CsvWriter(out)
        aggregator = DayAggregator(zone, writer, devices, geo, spill.agents)
        for i, day in enumerate(days):
            aggregator.add_day(day, spill.take(day), last=i == len(days) - 1)
        aggregator.finish()
        report.start, report.end = day_to_date(days[0]), day_to_date(days[-1])
        paths = writer.finish(report.start, report.end)
        rows = dict(writer.rows)
        writer = None
        report.files = {table: str(path) for table, path in paths.items()}
        report.rows_by_file = {paths[t].name: n for t, n in rows.items()}
        report.problems = validate(paths, report.start, report.end, rows)
        ours = {path.name for path in paths.values()}
        stale = sorted(p.name for p in out.glob("imported_*.csv") if p.name not in ours)
        if stale:
            report.warnings.append(
                f"{out} also holds {len(stale)} other imported_*.csv file(s) from an earlier run "
                f"({stale[0]}...): upload only the ten named *_{report.start:%Y%m%d}_"
                f"{report.end:%Y%m%d}.csv"
            )
        totals = aggregator.totals
        report.sessions, report.visitors, report.pageviews = totals.sessions, totals.visitors, totals.pageviews
        report.custom_events, report.bounces = totals.custom_events, totals.bounces
        report.sessions_past_midnight = totals.carried_sessions
        report.pageviews_by_day = dict(totals.pageviews_by_day)
        report.bot_events = totals.bot_events
        _guard_rails(report, today or dt.datetime.now(zone).date())
    finally:
        if writer is not None:
            writer.abort()
        spill.close()
        if devices is not None:
            devices.save()
            report.user_agents_parsed = devices.parsed
            report.user_agents_from_cache = devices.from_cache
            report.user_agent_seconds = devices.parse_seconds
        if geo is not None:
            report.ip_lookups, report.ip_seconds = geo.lookups, geo.seconds
        report.spills, report.spilled_bytes = spill.spills, spill.spilled_bytes
    return report


def event_window(
    since: str | dt.date | dt.datetime | None, until: str | dt.date | dt.datetime | None, zone: ZoneInfo
) -> tuple[dt.datetime | None, dt.datetime | None]:
    """``--since`` / ``--until`` as UTC times; a date is that day's midnight in the site's zone."""
    bounds = []
    for value, end in ((since, False), (until, True)):
        if isinstance(value, str) and re.fullmatch(r"\d{4}-\d{2}-\d{2}", value.strip()):
            value = dt.date.fromisoformat(value.strip())
        if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
            value = dt.datetime.combine(value + dt.timedelta(days=1 if end else 0), dt.time(0), tzinfo=zone)
        try:
            bounds.append(mapping_mod.date_bound(value, end=end))
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
    if bounds[0] and bounds[1] and bounds[0] >= bounds[1]:
        raise ConfigError("--since must be before --until")
    return bounds[0], bounds[1]


def _guard_rails(report: BackfillReport, today: dt.date) -> None:
    if report.days < MIN_DAYS:
        report.warnings.append(
            f"the files cover {report.days} day(s) ({report.start} .. {report.end}); Plausible refuses an "
            f"import shorter than {MIN_DAYS} days: add older or newer logs"
        )
    if report.end is not None and report.end >= today:
        report.warnings.append(
            f"the data reaches {report.end}, today in the site's time zone: that day is "
            "incomplete, and Plausible clamps the import at the first day of native data"
        )
    report.warnings.append(CLAMP_NOTE)
    report.warnings.append(UPLOAD_HINT.format(out=report.out_dir))
