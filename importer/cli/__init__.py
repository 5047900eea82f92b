"""The ``plausible-import`` command: a thin shell over the library API.

Each command lives in its own module of this package and imports what it runs when it runs;
those modules import only :mod:`.common` (shared options) and the light option module, never
this one, which puts them together.

Exit codes: 0 every event settled as accepted or dropped (or a clean dry run); 1 some events
were rejected or failed, or an input was skipped; 2 a usage or configuration error; 130 / 143
interrupted by SIGINT / SIGTERM (state saved, in-flight requests drained).
"""

from __future__ import annotations

import typer

from .. import __version__
from . import backfill, config, formats, mappings, receiver, send

app = typer.Typer(
    help="Move web traffic you already have (access logs, analytics exports) into Plausible Analytics.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    # Plain help: rich's panels would import rich and markdown-it, three times the start-up of
    # everything else that `--help` needs.
    rich_markup_mode=None,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"plausible-import {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version."),
) -> None:
    pass


app.command("send")(send.send_command)
app.command("backfill")(backfill.backfill_command)
app.command("preview")(formats.preview_command)
app.command("formats")(formats.formats_command)
app.command("mappings")(mappings.mappings_command)
app.command("receiver")(receiver.receiver_command)
app.command("demo")(receiver.demo_command)
app.command("config")(config.config_command)


def run() -> None:  # pragma: no cover - console script entry point
    app()
