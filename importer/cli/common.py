"""What the commands share: the options that mean the same in each (defined once here), the
config file and environment layer, errors and exit codes.

Only typer and the light option module are imported: each command imports what it runs.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer

from ..options import ConfigError, ReadOptions

# Options that take no value from a config file or the environment.
NOT_SETTINGS = {"config", "profile", "help", "version", "timezone", "tz"}


def fail(message: str) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2)


# --- settings from a config file and the environment -------------------------------------

# (typer carries its own copy of Click, so parameters and commands are told apart by what they
# have, not by Click's classes.)


def setting_keys(command: Any) -> dict[str, str]:
    """Config key (long option without dashes) -> parameter name, for one command."""
    keys = {}
    for param in command.params:
        if param.param_type_name == "option":
            for opt in param.opts:
                key = opt.lstrip("-")
                if opt.startswith("--") and key not in NOT_SETTINGS and param.name:
                    keys[key] = param.name
    return keys


def commands(ctx: typer.Context) -> dict[str, Any]:
    """The command line's commands by name."""
    found: dict[str, Any] = getattr(ctx.find_root().command, "commands", {})
    return found


def all_setting_keys(ctx: typer.Context) -> set[str]:
    return {key for command in commands(ctx).values() for key in setting_keys(command)}


def _apply_settings(ctx: typer.Context, param: Any, value: str | None) -> str | None:
    """Eager callback of --config and --profile: once both are known, the file, the profile and
    the environment become the command's defaults (the command line still wins)."""
    from .settings import SettingsError, resolve

    if param.name:
        ctx.meta[f"importer.{param.name}"] = value
    keys = setting_keys(ctx.command)
    try:
        found = resolve(
            keys, all_setting_keys(ctx), ctx.meta.get("importer.config"), ctx.meta.get("importer.profile"), os.environ
        )
        defaults = setting_values(ctx.command, found)
    except SettingsError as exc:
        fail(str(exc))
    ctx.default_map = {**(ctx.default_map or {}), **defaults}
    return value


def setting_values(command: Any, found: dict[str, Any]) -> dict[str, Any]:
    """Parameter name -> value of each setting ``found`` for ``command`` (config key -> Setting),
    of the option's type; SettingsError for a value that is not."""
    from .settings import typed

    keys = setting_keys(command)
    params = {p.name: p for p in command.params}
    values = {}
    for key, setting in found.items():
        target = params[keys[key]]
        values[keys[key]] = typed(setting, target.type_descriptor.annotation, target.multiple)
    return values


ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config",
        is_eager=True,
        callback=_apply_settings,
        help="TOML file of option values and [profiles.NAME] "
        "(default: $PLAUSIBLE_IMPORT_CONFIG, else $XDG_CONFIG_HOME/plausible-import/config.toml if it exists).",
    ),
]
ProfileOption = Annotated[
    str | None,
    typer.Option(
        "--profile",
        is_eager=True,
        callback=_apply_settings,
        help="Use the config file's [profiles.NAME] (one per site); default: $PLAUSIBLE_IMPORT_PROFILE.",
    ),
]


# --- options that two or more commands share -------------------------------------------


def _renamed(new: str, meaning: str) -> Any:
    def callback(ctx: typer.Context, param: Any, value: str | None) -> None:
        if value is not None:
            fail(f"--timezone was renamed: use {new} ({meaning})")

    return callback


Sources = Annotated[list[str], typer.Argument(help="Log files, exports, directories, globs, or - for stdin.")]
Domain = Annotated[str, typer.Option("--domain", "-d", help="The site's domain as set in Plausible.")]
MappingName = Annotated[str, typer.Option("--mapping", "-m", help="A built-in mapping name or a TOML file.")]
ReportPath = Annotated[
    Path | None, typer.Option("--report", help="Write the run's report as JSON here (-: standard output).")
]
RejectsPath = Annotated[
    Path, typer.Option("--rejects", help="JSON lines of input that could not be used, with the reason.")
]
NoProgress = Annotated[bool, typer.Option("--no-progress", help="No progress bars or progress lines.")]
FormatName = Annotated[
    str | None, typer.Option("--format", help="Log format instead of detecting it (see: plausible-import formats).")
]
CustomFormat = Annotated[
    str | None,
    typer.Option(
        "--log-format", help="Your server's nginx log_format or Apache LogFormat string, compiled into a parser."
    ),
]
LogTimezone = Annotated[
    str,
    typer.Option(
        "--log-timezone",
        help="IANA zone of times written without an offset, in logs and exports (a mapping's "
        "input.timezone other than UTC wins for its exports).",
    ),
]
Encoding = Annotated[
    str, typer.Option("--encoding", help="The logs' text encoding when it is not UTF-8 (latin-1, cp1252, big5...).")
]
TimeFormat = Annotated[
    str | None,
    typer.Option("--time-format", help="strftime format of the time in your --log-format (e.g. '%d.%m.%Y %H:%M:%S')."),
]
Since = Annotated[str | None, typer.Option("--since", help="Only rows at or after this date/time (UTC unless given).")]
Until = Annotated[
    str | None, typer.Option("--until", help="Only rows before this time; a date includes that whole day.")
]
OldTimezoneForLogs = Annotated[
    str | None,
    typer.Option(
        "--timezone",
        hidden=True,
        is_eager=True,
        expose_value=False,
        callback=_renamed("--log-timezone", "the zone of log times written without an offset"),
    ),
]
OldTimezoneForSite = Annotated[
    str | None,
    typer.Option(
        "--timezone",
        "--tz",
        hidden=True,
        is_eager=True,
        expose_value=False,
        callback=_renamed(
            "--site-timezone",
            "the site's time zone in Plausible; --log-timezone is the zone of log times written without an offset",
        ),
    ),
]


def read_options(
    mapping: str,
    log_format: str | None,
    custom_format: str | None,
    log_timezone: str,
    since: str | None,
    until: str | None,
    encoding: str = "utf-8",
    time_format: str | None = None,
) -> ReadOptions:
    """The shared reading options as a ReadOptions, or the one-line error."""
    try:
        return ReadOptions(
            mapping=mapping,
            log_format=log_format,
            custom_format=custom_format,
            log_timezone=log_timezone,
            since=since,
            until=until,
            encoding=encoding,
            time_format=time_format,
        )
    except ConfigError as exc:
        fail(str(exc))


def write_run_html(path: Path, report: Any, title: str) -> None:
    """The HTML report of a send or preview run (what would be or was sent, per day and name)."""
    from ..html import run_page, write_page
    from ..pipeline import time_note

    note = time_note(report.oldest)
    page = write_page(path, run_page(report, title, note.removeprefix("note: ") if note else None))
    typer.echo(f"report: {page}", err=True)


@contextmanager
def exit_on_sigterm() -> Iterator[None]:
    """SIGTERM ends the command as Ctrl-C does: cleanup runs (backfill's temporary spill files,
    which hold visitors' addresses, are removed), and the exit status is 143."""

    def stop(signum: int, frame: object) -> None:
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
