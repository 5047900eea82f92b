"""``plausible-import backfill``: write Plausible's CSV import files from logs and exports."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated

import typer

from ..options import DEFAULT_REJECTS, ConfigError
from .common import (
    ConfigOption,
    CustomFormat,
    Domain,
    Encoding,
    FormatName,
    LogTimezone,
    MappingName,
    NoProgress,
    OldTimezoneForSite,
    ProfileOption,
    RejectsPath,
    ReportPath,
    Since,
    Sources,
    TimeFormat,
    Until,
    exit_on_sigterm,
    fail,
    read_options,
)


def backfill_command(
    sources: Sources,
    domain: Domain,
    site_timezone: Annotated[
        str,
        typer.Option(
            "--site-timezone",
            help="The site's time zone in Plausible (IANA name, e.g. Europe/Berlin): the dates of the files.",
        ),
    ],
    out: Annotated[Path, typer.Option("--out", "-o", help="Directory for the ten imported_*.csv files.")],
    mapping: MappingName = "web",
    report: ReportPath = None,
    rejects: RejectsPath = DEFAULT_REJECTS,
    no_progress: NoProgress = False,
    log_format: FormatName = None,
    custom_format: CustomFormat = None,
    log_timezone: LogTimezone = "UTC",
    encoding: Encoding = "utf-8",
    time_format: TimeFormat = None,
    since: Since = None,
    until: Until = None,
    config: ConfigOption = None,
    profile: ProfileOption = None,
    timezone: OldTimezoneForSite = None,
    html: Annotated[
        Path | None, typer.Option("--html", help="Write the HTML report here (default: OUT/report.html).")
    ] = None,
    native_start: Annotated[
        str | None,
        typer.Option(
            "--native-start", help="The site's first day of Plausible data (YYYY-MM-DD): the report shows the cut."
        ),
    ] = None,
) -> None:
    """Write Plausible's ten CSV import files (history with its real dates) from logs or exports."""
    from ..backfill import backfill  # heavy imports only when the command runs
    from ..html import backfill_page, write_page
    from ..mapping import MappingError
    from ..options import BackfillOptions, OutputOptions

    read = read_options(mapping, log_format, custom_format, log_timezone, since, until, encoding, time_format)
    try:
        first_native = dt.date.fromisoformat(native_start) if native_start else None
    except ValueError:
        fail(f"--native-start {native_start!r}: give a date as YYYY-MM-DD")
    try:
        target = BackfillOptions(site_timezone=site_timezone, out_dir=out)
        outputs = OutputOptions(report=report, rejects=rejects, failed=None, progress=not no_progress)
        with exit_on_sigterm():
            result = backfill(sources, domain, target, read=read, outputs=outputs)
    except (ConfigError, MappingError) as exc:
        fail(str(exc))
    page = write_page(html or out / "report.html", backfill_page(result, first_native))
    typer.echo(result.summary(), err=True)
    typer.echo(f"report: {page}", err=True)
    raise typer.Exit(0 if result.ok else 1)
