"""``plausible-import backfill``: write Plausible's CSV import files from logs and exports."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Optional

import typer

from .cli import _fail, app
from .pipeline import DEFAULT_REJECTS


@app.command("backfill")
def backfill_command(
    sources: list[str] = typer.Argument(..., help="Log files, exports, directories, globs, or - for stdin."),
    domain: str = typer.Option(..., "--domain", "-d", help="The site's domain as set in Plausible."),
    timezone: str = typer.Option(..., "--timezone", "--tz", help="The site's time zone (IANA name, e.g. Europe/Berlin)."),
    out: Path = typer.Option(..., "--out", "-o", help="Directory for the ten imported_*.csv files."),
    mapping: str = typer.Option("web", "--mapping", "-m", help="A built-in mapping name or a TOML file."),
    report: Optional[Path] = typer.Option(None, "--report", help="Write the run's report as JSON here."),
    rejects: Path = typer.Option(DEFAULT_REJECTS, "--rejects", help="JSON lines of input that could not be read."),
    no_progress: bool = typer.Option(False, "--no-progress", help="No progress bars or progress lines."),
    log_format: Optional[str] = typer.Option(
        None, "--format", help="Log format instead of detecting it (the names: plausible-import formats)."
    ),
    custom_format: Optional[str] = typer.Option(
        None, "--log-format", help="Your server's nginx log_format or Apache LogFormat string, compiled into a parser."
    ),
    log_timezone: str = typer.Option(
        "UTC", "--log-timezone", help="IANA zone for log times written without one (send's --timezone)."
    ),
    html: Optional[Path] = typer.Option(None, "--html", help="Write the HTML report here (default: OUT/report.html)."),
    native_start: Optional[str] = typer.Option(
        None, "--native-start", help="The site's first day of Plausible data (YYYY-MM-DD): the report shows the cut."
    ),
    since: Optional[str] = typer.Option(
        None, "--since", help="Only events at or after this date (midnight in --timezone) or time (UTC unless given)."
    ),
    until: Optional[str] = typer.Option(
        None, "--until", help="Only events before this time; a date includes that whole day (in --timezone)."
    ),
) -> None:
    """Write Plausible's ten CSV import files (history with its real dates) from logs or exports."""
    from .backfill import backfill  # heavy imports only when the command runs
    from .html import backfill_page, write_page
    from .mapping import MappingError
    from .pipeline import ConfigError

    try:
        first_native = dt.date.fromisoformat(native_start) if native_start else None
    except ValueError:
        _fail(f"--native-start {native_start!r}: give a date as YYYY-MM-DD")
        return
    try:
        result = backfill(
            sources,
            domain=domain,
            timezone=timezone,
            out_dir=out,
            mapping=mapping,
            report_path=report,
            rejects_path=rejects,
            progress=not no_progress,
            log_format=log_format,
            custom_format=custom_format,
            log_timezone=log_timezone,
            since=since,
            until=until,
        )
    except (ConfigError, MappingError) as exc:
        _fail(str(exc))
    page = write_page(html or out / "report.html", backfill_page(result, first_native))
    typer.echo(result.summary(), err=True)
    typer.echo(f"report: {page}", err=True)
    raise typer.Exit(0 if result.ok else 1)
