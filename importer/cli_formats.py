"""``plausible-import formats`` and ``plausible-import preview``: see what the importer makes of a log.

Neither command touches the network. ``preview`` reads only the first rows of each file.
"""

from __future__ import annotations

from typing import Optional

import typer

from .cli import _fail, app

PREVIEW_COLUMNS = ("source_line", "timestamp", "ip", "method", "host", "path", "query", "status", "bytes",
                   "referrer", "user_agent")
WIDTH = {"source_line": 6, "timestamp": 19, "ip": 15, "method": 6, "host": 16, "path": 24, "query": 14, "status": 3,
         "bytes": 7, "referrer": 22, "user_agent": 30}
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

    from .readers import Batch

    return Batch(table=pa.concat_tables(tables), rows_read=rows_read, rejected=rejected, notices=notices)


@app.command("formats")
def formats_command() -> None:
    """List every log format the importer reads, with an example line."""
    from .readers.detect import FORMATS

    for fmt in FORMATS:
        typer.echo(f"{fmt.name}  ({fmt.family})")
        typer.echo(f"  {fmt.description}")
        for line in fmt.example.splitlines():
            typer.echo(f"    {line}")
        typer.echo("")
    typer.echo("custom  (--log-format)")
    typer.echo("  your server's nginx log_format or Apache LogFormat string, compiled into a parser, e.g.")
    typer.echo("    --log-format '$remote_addr - $remote_user [$time_local] \"$request\" $status $body_bytes_sent'")
    typer.echo("    --log-format '%h %l %u %t \"%r\" %>s %b \"%{Referer}i\" \"%{User-Agent}i\"'")
    typer.echo("")
    typer.echo("CSV and Parquet exports are read through a mapping with an [input] table (see the README).")


@app.command("preview")
def preview_command(
    files: list[str] = typer.Argument(..., help="Log files (or directories, globs, - for stdin)."),
    mapping: Optional[str] = typer.Option(None, "--mapping", "-m", help="Also show the events rows become."),
    domain: str = typer.Option("example.com", "--domain", "-d", help="Domain for URLs of rows without a host."),
    log_format: Optional[str] = typer.Option(None, "--format", help="A format name instead of detection."),
    custom_format: Optional[str] = typer.Option(None, "--log-format", help="Your server's log_format / LogFormat."),
    timezone: str = typer.Option("UTC", "--timezone", help="IANA zone for times written without one."),
    rows: int = typer.Option(10, "--rows", "-n", help="How many parsed rows to show per file."),
) -> None:
    """Show the detected format, the first parsed rows, and why rejected lines failed (no network)."""
    from .mapping import Mapper, MappingError
    from .mapping import load as load_mapping
    from .pipeline import ConfigError, check_log_options
    from .readers import FormatError, reader_for
    from .remote import RemoteError
    from .report import redact_ips
    from .sources import SourceError, expand

    try:
        check_log_options(log_format, custom_format, timezone)
        sources = expand(files)
    except (ConfigError, SourceError) as exc:
        _fail(str(exc))
        return
    mapper = None
    loaded = None
    if mapping is not None:
        try:
            loaded = load_mapping(mapping)
        except MappingError as exc:
            _fail(str(exc))
            return
        mapper = Mapper(loaded, domain)
    column_map = loaded.column_map if loaded is not None else None
    failed = False
    for source in sources:
        typer.echo(f"== {source.name}")
        try:
            reader = reader_for(source, log_format=log_format, column_map=column_map,
                                custom_format=custom_format, timezone=timezone)
            batch = _first_rows(reader.read(source), PREVIEW_ROWS)
        except (FormatError, RemoteError, OSError) as exc:
            typer.echo(f"   cannot read: {exc}")
            failed = True
            continue
        typer.echo(f"   format: {reader.name}")
        if batch is None:
            typer.echo("   (empty)")
            continue
        table = batch.table
        typer.echo(f"   first {batch.rows_read:,} rows: {table.num_rows:,} parsed, {len(batch.rejected):,} rejected")
        shown = table.slice(0, rows)
        row_dicts = shown.select(list(PREVIEW_COLUMNS)).to_pylist()
        extra = None
        if mapper is not None:
            extra = []
            for i in range(shown.num_rows):
                result = mapper.apply(shown.slice(i, 1))
                if result.events.num_rows:
                    event = result.events.slice(0, 1).to_pylist()[0]
                    extra.append(f"{event['name']} {event['url']}")
                else:
                    extra.append("filtered: " + ", ".join(result.filtered) if result.filtered else "no event")
        for line in _table(row_dicts, PREVIEW_COLUMNS, extra):
            typer.echo("   " + line)
        if mapper is not None:
            whole = mapper.apply(table)
            typer.echo(f"   mapping {loaded.name}: {whole.events.num_rows:,} events from {table.num_rows:,} rows")
            for reason, count in sorted(whole.filtered.items(), key=lambda kv: -kv[1]):
                typer.echo(f"     filtered {reason}: {count:,}")
            for rule, count in sorted(getattr(whole, "rules", {}).items(), key=lambda kv: -kv[1]):
                typer.echo(f"     rule {rule}: {count:,}")
        if batch.rejected:
            typer.echo(f"   rejected lines ({len(batch.rejected):,}):")
            for rejected in batch.rejected[:rows]:
                typer.echo(f"     line {rejected.line}: {redact_ips(rejected.reason)}")
                typer.echo(f"       {redact_ips(rejected.text)[:200]!r}")
        for notice in batch.notices:
            typer.echo(f"   note: {notice.reason}")
    if failed:
        raise typer.Exit(1)


__all__ = ["formats_command", "preview_command"]
