"""The library API: sources -> reader -> canonical frame -> mapping -> events -> sink.

The command line is a thin shell over :func:`send`; Python users call it directly::

    from importer import DeliveryOptions, OutputOptions, ReadOptions, send
    report = send(["access.log.gz"], "example.com", dry_run=True, outputs=OutputOptions(events="events.jsonl"))

Only light modules are imported here; pyarrow, the readers, the mapping engine and the sender
are imported by the functions that use them, so that ``import importer`` and the command
line's ``--help`` stay quick.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import itertools
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from .options import ConfigError, DeliveryOptions, OutputOptions, ReadOptions, check_send, normalise_domain
from .report import INVALID_SAMPLES, RejectsFile, Report, redact_ips, write_json_report

if TYPE_CHECKING:  # pragma: no cover
    import ssl

    import pyarrow as pa

    from .mapping import Mapper, Mapping
    from .progress import Progress
    from .readers import Batch, Reader
    from .sources import Source
    from .state import Resume

__all__ = ["ConfigError", "HistoryRefused", "expand_inputs", "read_events", "send"]

HISTORY_AGE = dt.timedelta(days=1)


class HistoryRefused(ConfigError):
    """The input holds data older than a day and the user did not ask to replay it onto today."""


def read_events(
    sources: Iterable[Source],
    mapper: Mapper,
    report: Report,
    rejects: RejectsFile,
    *,
    read: ReadOptions,
    progress: Progress | None = None,
    resume: Resume | None = None,
) -> Iterator[pa.Table]:
    """Read every source and yield event batches, keeping the report's row accounting.

    With ``resume`` (a state file), rows already settled by an earlier run are left out.
    """
    from .readers import FormatError
    from .remote import RemoteError

    column_map = export_columns(mapper.mapping, read.log_timezone)
    previous: Reader | None = None  # a rotated W3C log goes on with the previous file's #Fields
    for source in sources:
        file_rows = 0
        try:
            file_invalid = 0
            damaged = False
            reader = previous = reader_of(source, read, column_map, previous)
            batches = _unless_unreadable(reader.read(source), source)
            if resume is not None:
                batches = resume.batches(source, batches)
            for batch in batches:
                file_rows += batch.rows_read
                if batch.damaged and not damaged:
                    damaged = True
                    report.inputs_damaged += 1
                report.rows_read += batch.rows_read
                report.lines_skipped += batch.skipped
                report.rows_invalid += len(batch.rejected)
                for rejected in batch.rejected:
                    rejects.write(rejected.as_record())
                    file_invalid += 1
                    if file_invalid <= INVALID_SAMPLES:  # the first few bad lines of each file, quoted
                        report.invalid_samples.append(
                            f"{rejected.file}:{rejected.line}: {rejected.reason}: {redact_ips(rejected.text)[:160]!r}"
                        )
                for notice in batch.notices:
                    rejects.write(notice.as_record())
                    report.notices.append(f"{notice.file}: {notice.reason} (after line {(notice.line or 1) - 1})")
                mapped = mapper.apply(batch.table)
                report.rows_filtered.update(mapped.filtered)
                report.extra_events += mapped.extra_events
                events = mapped.events
                report.count_events(events)
                if progress is not None:
                    progress.rows_read(batch.rows_read, batch.position)
                    progress.events_built(events.num_rows)
                yield events
            bad = f", {file_invalid:,} bad line{'s' if file_invalid != 1 else ''}" if file_invalid else ""
            report.sources.append((source.name, reader.name + bad))
        except (FormatError, RemoteError, OSError) as exc:  # OSError: a file that cannot be opened (permissions, gone)
            read_before = f" ({file_rows:,} rows read before)" if file_rows else ""
            report.skipped_sources.append(f"{source.name}: {redact_ips(str(exc))}{read_before}")
            rejects.write({"stage": "read", "file": source.name, "line": None, "reason": str(exc), "text": ""})
        if progress is not None:
            progress.next_source()


def reader_of(source: Source, read: ReadOptions, column_map: Any, previous: Reader | None) -> Reader:
    """The reader for one source, as the reading options say (``previous``: the reader of the
    source before it, whose W3C ``#Fields`` a rotated log goes on with)."""
    from .readers import reader_for

    return reader_for(
        source,
        log_format=read.log_format,
        column_map=column_map,
        custom_format=read.custom_format,
        timezone=read.log_timezone,
        previous=previous,
        encoding=read.encoding,
        time_format=read.time_format,
    )


def _unless_unreadable(batches: Iterator[Batch], source: Source) -> Iterator[Batch]:
    """A reader's batches; an input that stops being readable part way (an I/O error, bytes no
    reader can make sense of) becomes a FormatError naming it, so the run goes on with the next."""
    import pyarrow as pa

    from .readers import FormatError

    try:
        yield from batches
    except (OSError, pa.ArrowException, UnicodeError) as exc:
        raise FormatError(f"{source.name}: cannot be read any further: {type(exc).__name__}: {exc}") from exc


def export_columns(mapping: Mapping, log_timezone: str) -> Any:
    """The mapping's column map for exports, reading times without an offset in ``log_timezone``
    unless the mapping's ``input.timezone`` names another zone than UTC (which then wins)."""
    column_map = mapping.column_map
    if column_map is None or column_map.timezone != "UTC" or log_timezone == "UTC":
        return column_map
    return dataclasses.replace(column_map, timezone=log_timezone)


def expand_inputs(inputs: Sequence[str | Path]) -> list[Source]:
    """What the user named (files, directories, globs, ``-``) as sources, or a ConfigError."""
    from .sources import SourceError, expand

    try:
        sources = expand([str(i) for i in inputs])
    except SourceError as exc:
        raise ConfigError(str(exc)) from None
    if not sources:
        raise ConfigError("no input given")
    return sources


def oldest_time(events: pa.Table) -> dt.datetime | None:
    import pyarrow.compute as pc

    oldest: dt.datetime | None = pc.min(events.column("timestamp")).as_py()
    return oldest


def time_warning(events: pa.Table, now: dt.datetime | None = None) -> str | None:
    """The one-time note that Plausible dates replayed events at arrival, when data is old."""
    return time_note(oldest_time(events), now)


def time_note(oldest: dt.datetime | None, now: dt.datetime | None = None) -> str | None:
    """The note on dates for events as old as ``oldest`` (None: no note needed)."""
    now = now or dt.datetime.now(dt.UTC)
    if oldest is None or oldest > now - HISTORY_AGE:
        return None
    return (
        f"note: replaying history: these events happened as early as {oldest:%Y-%m-%d %H:%M} UTC, but "
        "Plausible's /api/event has no timestamp field: Plausible will date every event at the moment it "
        "arrives, not when it happened. To load history with its real dates, use 'plausible-import backfill' "
        "and Plausible's CSV import."
    )


def open_resume(delivery: DeliveryOptions, domain: str) -> Resume:
    """The state file for this endpoint and domain (another site is another job), keyed without
    the endpoint's password; a state keyed with it by an older version is re-keyed. Another run of
    the same job holds its lock: wait up to ``delivery.wait_s`` for it, then fail."""
    from .report import without_userinfo
    from .state import Resume, StateError, StateStore

    try:
        assert delivery.state is not None
        endpoint = delivery.endpoint
        store = StateStore(
            Path(delivery.state),
            scope=f"{without_userinfo(endpoint)} {domain}",
            old_scope=f"{endpoint} {domain}",
            wait_s=delivery.wait_s,
        )
        return Resume(store, stream_key=delivery.state_key)
    except StateError as exc:
        raise ConfigError(str(exc)) from None


def history_message(oldest: dt.datetime) -> str:
    return (
        f"these events happened as early as {oldest:%Y-%m-%d %H:%M} UTC, more than a day ago, and Plausible's "
        "/api/event dates every event at the moment it arrives: sending them would put that history onto today. "
        "Load history with its real dates with 'plausible-import backfill' (Plausible's CSV import); to send it "
        "as today's traffic anyway, add --replay-history"
    )


def refuse_history(
    events: Iterator[pa.Table], confirm: Callable[[str], bool] | None, now: dt.datetime | None = None
) -> Iterator[pa.Table]:
    """``events`` again, once its first batch showed no data older than a day, or the user
    (``confirm``, asked with the reason) agreed to replay it; else HistoryRefused, before
    anything is sent."""
    head = []
    for batch in events:
        head.append(batch)
        if batch.num_rows:
            break
    oldest = oldest_time(head[-1]) if head and head[-1].num_rows else None
    if oldest is not None and oldest < (now or dt.datetime.now(dt.UTC)) - HISTORY_AGE:
        message = history_message(oldest)
        if confirm is None or not confirm(message):
            raise HistoryRefused(message)
    return itertools.chain(head, events)


def make_sink(
    dry_run: bool,
    delivery: DeliveryOptions,
    outputs: OutputOptions,
    report: Report,
    rejects: RejectsFile,
    failed: RejectsFile,
    bar: Progress,
    resume: Resume | None,
    stop_reading: Callable[[], None],
    tls: ssl.SSLContext | bool,
) -> Any:
    """Where the events go: the one place that chooses the sink (a dry run's writer or the sender)."""
    from . import sinks
    from .sinks.http import SendOptions

    def warn_once(first: pa.Table) -> None:
        message = time_warning(first)
        if message:
            bar.write(message)

    options = SendOptions(
        endpoint=delivery.endpoint,
        rate=delivery.rate,
        concurrency=delivery.concurrency,
        timeout_s=delivery.timeout_s,
        max_attempts=delivery.max_attempts,
        max_retry_s=delivery.max_retry_s,
        retry_dropped=delivery.retry_dropped,
        pace=delivery.pace_factor,
        drain_s=delivery.drain_s,
        backoff_base_s=delivery.backoff_s,
        headers=tuple(delivery.header_pairs),
        max_unanswered=delivery.max_unanswered,
        check_connection=delivery.check_connection,
    )
    return sinks.make_sink(
        report,
        dry_run=dry_run,
        output=Path(outputs.events) if outputs.events else None,
        options=options,
        rejects=rejects,
        failed=failed,
        ledger=resume.ledger if resume else None,
        on_settled=bar.settled,
        on_first_batch=warn_once,
        on_retry=bar.retrying,
        stop_reading=stop_reading,
        tls=tls,
    )


def plan_resume(
    sources: list[Source], delivery: DeliveryOptions, domain: str, report: Report
) -> tuple[list[Source], Resume]:
    """Leave out what an earlier run settled (the state file), and lines still being written."""
    from .state import StateError

    if not delivery.follow:  # (--follow waits for a line's end itself)
        # A line the server is writing right now is left to the next run rather than
        # rejected as a fragment and recorded as done.
        sources = [source.complete_lines() for source in sources]
        report.notices.extend(
            f"{s.name}: its last line has no newline yet and the file changed seconds ago (being "
            f"written?): those {s.held_back:,} bytes are left for the next run"
            for s in sources
            if s.held_back
        )
    assert delivery.state is not None
    resume = open_resume(delivery, domain)
    try:
        sources = resume.plan(sources, follow=delivery.follow)
    except StateError as exc:
        resume.store.close()
        raise ConfigError(str(exc)) from None
    report.state_path = str(delivery.state)
    return sources, resume


def send(
    inputs: Sequence[str | Path],
    domain: str,
    *,
    read: ReadOptions | None = None,
    delivery: DeliveryOptions | None = None,
    outputs: OutputOptions | None = None,
    dry_run: bool = False,
    stderr: TextIO | None = None,
    confirm_history: Callable[[str], bool] | None = None,
) -> Report:
    """Read ``inputs``, map rows to events and send them (or, with ``dry_run``, write them).

    Raises :class:`ConfigError` (or :class:`importer.mapping.MappingError`) for a problem with
    the arguments, before anything is sent; bad input lines never raise, they are counted and
    written to the rejects file. Data older than a day is sent only with
    ``DeliveryOptions(replay_history=True)`` or when ``confirm_history(reason)`` says yes;
    otherwise :class:`HistoryRefused` (a ConfigError) is raised before the first event goes out.
    """
    from .mapping import Mapper, Mapping, load
    from .progress import Progress

    read, delivery, outputs = read or ReadOptions(), delivery or DeliveryOptions(), outputs or OutputOptions()
    started = time.monotonic()
    domain = normalise_domain(domain)
    loaded = read.mapping if isinstance(read.mapping, Mapping) else load(str(read.mapping))
    read.check_formats()
    check_send(dry_run, delivery, outputs)
    sources = expand_inputs(inputs)
    tls = delivery.tls()  # a bad --ca-bundle fails here, before anything is read
    report = Report(dry_run=dry_run)
    resume = None
    if delivery.state is not None and not dry_run:
        sources, resume = plan_resume(sources, delivery, domain, report)
    report.max_dropped_share = delivery.max_dropped_share
    rejects = RejectsFile(Path(outputs.rejects) if outputs.rejects else None, run_id=report.run_id)
    failed = RejectsFile(Path(outputs.failed) if outputs.failed else None, run_id=report.run_id)
    total_bytes = sum(s.size or 0 for s in sources) or None
    stop_reading = threading.Event()  # set by the sender on SIGINT/SIGTERM
    to_read: Iterable[Source] = sources
    if delivery.follow:
        from .follow import follow_sources

        to_read = follow_sources(
            list(sources), stop_reading, plan=(lambda more: resume.plan(more, follow=True)) if resume else None
        )
    bar = Progress(
        outputs.progress,
        total_bytes,
        events_label="events written" if dry_run else "events sent",
        stream=stderr or sys.stderr,
        report=report,
    )
    since, until = read.window
    mapper = Mapper(loaded, domain, since=since, until=until)
    events = read_events(to_read, mapper, report, rejects, read=read, progress=bar, resume=resume)
    try:
        if not dry_run and not delivery.replay_history:
            events = refuse_history(events, confirm_history)
        sink = make_sink(dry_run, delivery, outputs, report, rejects, failed, bar, resume, stop_reading.set, tls)
        sink.run(events)
        report.interrupted = getattr(sink, "interrupted", None)
        report.state_error = getattr(sink, "state_error", None)
        fatal = getattr(sink, "fatal", None)
        if fatal and not report.state_error:
            report.notices.append(fatal)
    finally:
        bar.close()
        rejects.close()
        failed.close()
        finish_report(report, rejects, failed, resume, mapper, started)
        if outputs.report:
            write_json_report(report.as_dict(), outputs.report)
    return report


def finish_report(
    report: Report, rejects: RejectsFile, failed: RejectsFile, resume: Resume | None, mapper: Mapper, started: float
) -> None:
    """What the run's report learns at its end: files written, what resume skipped, notices."""
    if failed.count:
        report.failed_path = str(failed.path)
    if resume is not None:
        report.rows_skipped = resume.rows_skipped
        report.files_skipped = resume.files_skipped
        report.notices.extend(f"not read, a copy: {copy}" for copy in resume.copies)
        report.notices.extend(resume.notices)
        resume.store.close()
    report.notices.extend(mapper.notices())  # unmatched hosts, values cut to Plausible's limits
    report.duration_s = time.monotonic() - started
    if rejects.count:
        report.rejects_path = str(rejects.path)
