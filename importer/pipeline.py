"""The library API: sources -> reader -> canonical frame -> mapping -> events -> sink.

The command line is a thin shell over :func:`send`; Python users call it directly::

    from importer import send
    report = send(["access.log.gz"], domain="example.com", dry_run=True, output="events.jsonl")
"""

from __future__ import annotations

import datetime as dt
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

import pyarrow as pa
import pyarrow.compute as pc

from .readers import FormatError, reader_for
from .remote import RemoteError
from .report import INVALID_SAMPLES, RejectsFile, Report, redact_ips, without_userinfo
from .sinks.answers import tls_context
from .sinks.dryrun import DryRunWriter
from .sinks.http import DEFAULT_ENDPOINT, HttpSender, SendOptions, parse_pace
from .sources import Source, SourceError, expand
from .state import Resume, StateError, StateStore

if TYPE_CHECKING:  # pragma: no cover
    from .mapping import Mapper, Mapping
    from .progress import Progress

# The mapping engine, progress bars (tqdm) and the follower are imported by send() when it
# runs, so that the command line's help and other commands do not pay for them.

DEFAULT_REJECTS = Path("plausible-import.rejects.jsonl")
DEFAULT_FAILED = Path("plausible-import.failed.jsonl")


class ConfigError(Exception):
    """A problem with what the user asked for (domain, mapping, inputs); exit code 2."""


def normalise_domain(domain: str) -> str:
    value = domain.strip().lower()
    if not value or "/" in value or " " in value:
        raise ConfigError(f"--domain {domain!r}: give the site's domain as it is set in Plausible, e.g. example.com")
    return value


def read_events(
    sources: Sequence[Source],
    mapper: Mapper,
    report: Report,
    rejects: RejectsFile,
    *,
    log_format: str | None = None,
    progress: Progress | None = None,
    resume: Resume | None = None,
    custom_format: str | None = None,
    timezone: str = "UTC",
) -> Iterator[pa.Table]:
    """Read every source and yield event batches, keeping the report's row accounting.

    With ``resume`` (a state file), rows already settled by an earlier run are left out.
    """
    column_map = mapper.mapping.column_map
    for source in sources:
        try:
            file_invalid = 0
            reader = reader_for(source, log_format=log_format, column_map=column_map,
                                custom_format=custom_format, timezone=timezone)
            batches = reader.read(source)
            if resume is not None:
                batches = resume.batches(source, batches)
            for batch in batches:
                report.rows_read += batch.rows_read
                report.rows_invalid += len(batch.rejected)
                for rejected in batch.rejected:
                    rejects.write(rejected.as_record())
                    file_invalid += 1
                    if file_invalid <= INVALID_SAMPLES:  # the first few bad lines of each file, quoted
                        report.invalid_samples.append(
                            f"{rejected.file}:{rejected.line}: {rejected.reason}: {redact_ips(rejected.text)[:160]!r}")
                for notice in batch.notices:
                    rejects.write(notice.as_record())
                    report.notices.append(f"{notice.file}: {notice.reason} (after line {notice.line - 1})")
                mapped = mapper.apply(batch.table)
                report.rows_filtered.update(mapped.filtered)
                events = mapped.events
                if events.num_rows:
                    report.events += events.num_rows
                    names = pc.value_counts(events.column("name"))
                    for item in names.to_pylist():
                        report.events_by_name[item["values"]] += item["counts"]
                    span = pc.min_max(events.column("timestamp"))
                    lo, hi = span["min"].as_py(), span["max"].as_py()
                    if lo is not None:
                        report.oldest = lo if report.oldest is None else min(report.oldest, lo)
                        report.newest = hi if report.newest is None else max(report.newest, hi)
                if progress is not None:
                    progress.rows_read(batch.rows_read, batch.position)
                    progress.events_built(events.num_rows)
                yield events
            bad = f", {file_invalid:,} bad line{'s' if file_invalid != 1 else ''}" if file_invalid else ""
            report.sources.append((source.name, reader.name + bad))
        except (FormatError, RemoteError) as exc:
            report.skipped_sources.append(f"{source.name}: {redact_ips(str(exc))}")
            rejects.write({"stage": "read", "file": source.name, "line": None, "reason": str(exc), "text": ""})
        if progress is not None:
            progress.next_source()


def check_log_options(log_format: str | None, custom_format: str | None, timezone: str) -> None:
    """Fail early (ConfigError) on a bad --format, --log-format or --timezone."""
    from .readers import check_timezone, compile_format, format_named

    try:
        check_timezone(timezone)
        if log_format is not None and custom_format is not None:
            raise ConfigError("give either --format (a name) or --log-format (your server's format string), not both")
        if log_format is not None:
            format_named(log_format)
        if custom_format is not None:
            compile_format(custom_format)
    except (ValueError, FormatError) as exc:
        raise ConfigError(str(exc)) from None


def expand_inputs(inputs: Sequence[str | Path]) -> list[Source]:
    """What the user named (files, directories, globs, ``-``) as sources, or a ConfigError."""
    try:
        sources = expand([str(i) for i in inputs])
    except SourceError as exc:
        raise ConfigError(str(exc)) from None
    if not sources:
        raise ConfigError("no input given")
    return sources


def time_warning(events: pa.Table, now: dt.datetime | None = None) -> str | None:
    """The one-time note that Plausible dates replayed events at arrival, when data is old."""
    now = now or dt.datetime.now(dt.timezone.utc)
    oldest = pc.min(events.column("timestamp")).as_py()
    if oldest is None or oldest > now - dt.timedelta(days=1):
        return None
    return (
        f"note: these events happened as early as {oldest:%Y-%m-%d %H:%M} UTC, but Plausible's "
        "/api/event has no timestamp field: Plausible will date every event at the moment it "
        "arrives, not when it happened. Replay is right for live and nightly forwarding; to load "
        "history with its real dates use Plausible's CSV import (see the README)."
    )


def open_resume(path: Path, endpoint: str, domain: str) -> Resume:
    """The state file for this endpoint and domain (another site is another job), keyed without
    the endpoint's password; a state keyed with it by an older version is re-keyed."""
    try:
        return Resume(StateStore(path, scope=f"{without_userinfo(endpoint)} {domain}",
                                 old_scope=f"{endpoint} {domain}"))
    except StateError as exc:
        raise ConfigError(str(exc)) from None


def send(
    inputs: Sequence[str | Path],
    *,
    domain: str,
    mapping: str | Mapping = "web",
    endpoint: str = DEFAULT_ENDPOINT,
    rate: float = 50.0,
    concurrency: int = 8,
    dry_run: bool = False,
    output: str | Path | None = None,
    report_path: str | Path | None = None,
    rejects_path: str | Path | None = DEFAULT_REJECTS,
    progress: bool = False,
    log_format: str | None = None,
    timeout_s: float = 10.0,
    max_attempts: int = 5,
    stderr: TextIO | None = None,
    failed_path: str | Path | None = DEFAULT_FAILED,
    state: str | Path | None = None,
    retry_dropped: int = 0,
    max_retry_s: float = 300.0,
    pace: str | float = "asap",
    drain_s: float = 10.0,
    backoff_s: float = 0.5,
    follow: bool = False,
    timezone: str = "UTC",
    custom_format: str | None = None,
    since=None,
    until=None,
    ca_bundle: str | Path | None = None,
) -> Report:
    """Read ``inputs``, map rows to events and send them (or, with ``dry_run``, write them).

    Raises :class:`ConfigError` (or :class:`importer.mapping.MappingError`) for a problem
    with the arguments; bad input lines never raise, they are counted and written to the
    rejects file.
    """
    from . import mapping as mapping_mod
    from .mapping import Mapper, Mapping
    from .progress import Progress

    stderr = stderr or sys.stderr
    started = time.monotonic()
    domain = normalise_domain(domain)
    loaded = mapping if isinstance(mapping, Mapping) else mapping_mod.load(mapping)
    if rate < 0:
        raise ConfigError("--rate must be 0 (unlimited) or more")
    if concurrency < 1:
        raise ConfigError("--concurrency must be at least 1")
    if output is not None and not dry_run:
        raise ConfigError("--output writes the events of a dry run; add --dry-run")
    check_log_options(log_format, custom_format, timezone)
    try:  # --since/--until: the date window (mapping.date_bound)
        window = mapping_mod.date_bound(since), mapping_mod.date_bound(until, end=True)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    if window[0] and window[1] and window[0] >= window[1]:
        raise ConfigError("--since must be before --until")
    sources = expand_inputs(inputs)
    try:
        pace_factor = parse_pace(pace)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    if retry_dropped < 0 or max_attempts < 1:
        raise ConfigError("--max-attempts must be at least 1 and --retry-dropped at least 0")
    if follow and dry_run:
        raise ConfigError("--follow forwards lines as they are written; it cannot be a dry run")
    try:
        tls = tls_context(ca_bundle)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    report = Report(dry_run=dry_run)
    resume = None
    if state is not None and not dry_run:
        if not follow:  # (--follow waits for a line's end itself)
            # A line the server is writing right now is left to the next run rather than
            # rejected as a fragment and recorded as done.
            sources = [source.complete_lines() for source in sources]
            report.notices.extend(
                f"{s.name}: its last line has no newline yet and the file changed seconds ago (being "
                f"written?): those {s.held_back:,} bytes are left for the next run" for s in sources if s.held_back)
        resume = open_resume(Path(state), endpoint, domain)
        try:
            sources = resume.plan(sources, follow=follow)
        except StateError as exc:
            resume.store.close()
            raise ConfigError(str(exc)) from None
        report.state_path = str(state)
    rejects = RejectsFile(Path(rejects_path) if rejects_path else None)
    failed = RejectsFile(Path(failed_path) if failed_path else None)
    total_bytes = sum(s.size or 0 for s in sources) or None
    stop_reading = threading.Event()  # set by the sender on SIGINT/SIGTERM
    if follow:
        from .follow import follow_sources

        sources = follow_sources(list(sources), stop_reading,
                                 plan=(lambda more: resume.plan(more, follow=True)) if resume else None)
    bar = Progress(progress, total_bytes, events_label="events written" if dry_run else "events sent", stream=stderr)
    mapper = Mapper(loaded, domain, since=window[0], until=window[1])
    events = read_events(sources, mapper, report, rejects, log_format=log_format, progress=bar,
                         resume=resume, custom_format=custom_format, timezone=timezone)
    try:
        if dry_run:
            DryRunWriter(Path(output) if output else None, on_settled=bar.settled).run(events)
        else:
            def warn_once(first: pa.Table) -> None:
                message = time_warning(first)
                if message:
                    bar.write(message)

            options = SendOptions(endpoint=endpoint, rate=rate, concurrency=concurrency,
                                  timeout_s=timeout_s, max_attempts=max_attempts, max_retry_s=max_retry_s,
                                  retry_dropped=retry_dropped, pace=pace_factor, drain_s=drain_s,
                                  backoff_base_s=backoff_s)
            report.window = options.window
            sender = HttpSender(options, report, rejects, on_settled=bar.settled, on_first_batch=warn_once,
                                failed=failed, ledger=resume.ledger if resume else None,
                                stop_reading=stop_reading.set, tls=tls)
            sender.run(events)
            report.interrupted = sender.interrupted
            report.state_error = sender.state_error
            if sender.fatal and not sender.state_error:
                report.notices.append(sender.fatal)
    finally:
        bar.close()
        rejects.close()
        failed.close()
        if failed.count:
            report.failed_path = str(failed.path)
        if resume is not None:
            report.rows_skipped = resume.rows_skipped
            report.files_skipped = resume.files_skipped
            report.notices.extend(f"not read, a copy: {copy}" for copy in resume.copies)
            resume.store.close()
        report.notices.extend(mapper.notices())  # unmatched hosts, values cut to Plausible's limits
        report.duration_s = time.monotonic() - started
        if rejects.count:
            report.rejects_path = str(rejects.path)
        if report_path:
            report.write_json(Path(report_path))
    return report
