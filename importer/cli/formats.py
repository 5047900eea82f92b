"""``plausible-import formats`` and ``plausible-import preview``: see what the importer makes of a log.

Neither command touches the network. ``preview`` reads only the first rows of each file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from .common import (
    CustomFormat,
    Encoding,
    FormatName,
    LogTimezone,
    OldTimezoneForLogs,
    TimeFormat,
    fail,
    read_options,
    write_run_html,
)

PREVIEW_COLUMNS = (
    "source_line",
    "timestamp",
    "ip",
    "method",
    "host",
    "path",
    "query",
    "status",
    "bytes",
    "referrer",
    "user_agent",
)
WIDTH = {
    "source_line": 6,
    "timestamp": 19,
    "ip": 15,
    "method": 6,
    "host": 16,
    "path": 24,
    "query": 14,
    "status": 3,
    "bytes": 7,
    "referrer": 22,
    "user_agent": 30,
}
HEAD = {"source_line": "line", "timestamp": "time (UTC)", "user_agent": "user agent"}


def _cell(value, width: int) -> str:
    if value is None:
        text = ""
    elif hasattr(value, "strftime"):
        text = value.strftime("%Y-%m-%d %H:%M:%S")
    else:
        text = str(value)
    return text if len(text) <= width else text[: width - 1] + "…"


def _table(rows: list[dict], columns: tuple[str, ...], extra: list[str] | None = None) -> list[str]:
    head = "  ".join(HEAD.get(c, c).ljust(WIDTH[c]) for c in columns)
    if extra is not None:
        head += "  -> event"
    out = [head, "-" * len(head)]
    for i, row in enumerate(rows):
        line = "  ".join(_cell(row.get(c), WIDTH[c]).ljust(WIDTH[c]) for c in columns)
        if extra is not None:
            line += "  " + extra[i]
        out.append(line)
    return out


PREVIEW_ROWS = 10_000  # preview reads blocks until it has this many rows (or the input ends)


def _first_rows(batches, wanted: int):
    """Merge the first batches of a reader until ``wanted`` rows were read; None for an empty input."""
    tables, rejected, notices, rows_read = [], [], [], 0
    for batch in batches:
        tables.append(batch.table)
        rejected.extend(batch.rejected)
        notices.extend(batch.notices)
        rows_read += batch.rows_read
        if rows_read >= wanted:
            break
    if not tables:
        return None
    import pyarrow as pa

    from ..readers import Batch

    return Batch(table=pa.concat_tables(tables), rows_read=rows_read, rejected=rejected, notices=notices)


def formats_command() -> None:
    """List every log format the importer reads, with an example line."""
    from ..readers.detect import FORMATS

    for fmt in FORMATS:
        typer.echo(f"{fmt.name}  ({fmt.family})")
        typer.echo(f"  {fmt.description}")
        for line in fmt.example.splitlines():
            typer.echo(f"    {line}")
        typer.echo("")
    typer.echo("custom  (--log-format)")
    typer.echo("  your server's nginx log_format or Apache LogFormat string, compiled into a parser, e.g.")
    typer.echo("    --log-format '$remote_addr - $remote_user [$time_local] \"$request\" $status $body_bytes_sent'")
    typer.echo('    --log-format \'%h %l %u %t "%r" %>s %b "%{Referer}i" "%{User-Agent}i"\'')
    typer.echo("")
    typer.echo("CSV and Parquet exports are read through a mapping with an [input] table (see the README).")


def preview_command(
    files: list[str] = typer.Argument(..., help="Log files (or directories, globs, - for stdin)."),
    mapping: str | None = typer.Option(None, "--mapping", "-m", help="Also show the events rows become."),
    domain: str = typer.Option("example.com", "--domain", "-d", help="Domain for URLs of rows without a host."),
    log_format: FormatName = None,
    custom_format: CustomFormat = None,
    log_timezone: LogTimezone = "UTC",
    encoding: Encoding = "utf-8",
    time_format: TimeFormat = None,
    rows: int = typer.Option(10, "--rows", "-n", help="How many parsed rows to show per file."),
    timezone: OldTimezoneForLogs = None,
    html: Path | None = typer.Option(
        None, "--html", help="Also write an HTML report of what the first rows would send (mapping: web unless -m)."
    ),
) -> None:
    """Show the detected format, the first parsed rows, and why rejected lines failed (no network)."""
    from ..mapping import Mapper, MappingError
    from ..mapping import load as load_mapping
    from ..options import ConfigError
    from ..pipeline import export_columns, reader_of
    from ..readers import FormatError
    from ..remote import RemoteError
    from ..report import Report
    from ..sources import SourceError, expand

    read = read_options(mapping or "web", log_format, custom_format, log_timezone, None, None, encoding, time_format)
    try:
        read.check_formats()
        sources = expand(files)
    except (ConfigError, SourceError) as exc:
        fail(str(exc))
    mapper: Any = None
    loaded: Any = None
    if mapping is not None or html is not None:
        try:
            loaded = load_mapping(mapping or "web")
        except MappingError as exc:
            fail(str(exc))
        mapper = Mapper(loaded, domain)
    column_map = export_columns(loaded, read.log_timezone) if loaded is not None else None
    failed = False
    report = Report(dry_run=True)  # what the rows read would send, for --html
    previous = None  # a rotated W3C log goes on with the previous file's #Fields
    for source in sources:
        typer.echo(f"== {source.name}")
        try:
            reader = previous = reader_of(source, read, column_map, previous)
            batch = _first_rows(reader.read(source), PREVIEW_ROWS)
        except (FormatError, RemoteError, OSError) as exc:
            typer.echo(f"   cannot read: {exc}")
            report.skipped_sources.append(f"{source.name}: {exc}")
            failed = True
            continue
        typer.echo(f"   format: {reader.name}")
        report.sources.append((source.name, reader.name))
        if batch is None:
            typer.echo("   (empty)")
            continue
        table = batch.table
        typer.echo(f"   first {batch.rows_read:,} rows: {table.num_rows:,} parsed, {len(batch.rejected):,} rejected")
        shown = table.slice(0, rows)
        row_dicts = shown.select(list(PREVIEW_COLUMNS)).to_pylist()
        extra = _row_events(mapper, shown) if mapper is not None else None
        for line in _table(row_dicts, PREVIEW_COLUMNS, extra):
            typer.echo("   " + line)
        if mapper is not None:
            whole = mapper.apply(table)
            _add_to_report(report, batch, whole)
            typer.echo(f"   mapping {loaded.name}: {whole.events.num_rows:,} events from {table.num_rows:,} rows")
            for reason, count in sorted(whole.filtered.items(), key=lambda kv: -kv[1]):
                typer.echo(f"     filtered {reason}: {count:,}")
            for rule, count in sorted(getattr(whole, "rules", {}).items(), key=lambda kv: -kv[1]):
                typer.echo(f"     rule {rule}: {count:,}")
        _echo_rejected(batch, rows)
    if html is not None:
        write_run_html(html, report, f"plausible-import preview (the first {PREVIEW_ROWS:,} rows of each input)")
    if failed:
        raise typer.Exit(1)


def _echo_rejected(batch: Any, rows: int) -> None:
    """The first rejected lines with their reasons (addresses redacted), then the notes."""
    from ..report import redact_ips

    if batch.rejected:
        typer.echo(f"   rejected lines ({len(batch.rejected):,}):")
        for rejected in batch.rejected[:rows]:
            typer.echo(f"     line {rejected.line}: {redact_ips(rejected.reason)}")
            typer.echo(f"       {redact_ips(rejected.text)[:200]!r}")
    for notice in batch.notices:
        typer.echo(f"   note: {notice.reason}")


def _row_events(mapper: Any, shown: Any) -> list[str]:
    """What the mapping makes of each shown row: its event, or why it was filtered."""
    out = []
    for i in range(shown.num_rows):
        result = mapper.apply(shown.slice(i, 1))
        if result.events.num_rows:
            event = result.events.slice(0, 1).to_pylist()[0]
            out.append(f"{event['name']} {event['url']}")
        else:
            out.append("filtered: " + ", ".join(result.filtered) if result.filtered else "no event")
    return out


def _add_to_report(report: Any, batch: Any, mapped: Any) -> None:
    """Count a previewed batch and what the mapping made of it, as ``send --dry-run`` would."""
    report.rows_read += batch.rows_read
    report.rows_invalid += len(batch.rejected)
    report.invalid_samples.extend(f"{r.file}:{r.line}: {r.reason}" for r in batch.rejected[:5])
    report.notices.extend(notice.reason for notice in batch.notices)
    report.rows_filtered.update(mapped.filtered)
    report.extra_events += mapped.extra_events
    report.count_events(mapped.events)


__all__ = ["formats_command", "preview_command"]
