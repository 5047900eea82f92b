"""``plausible-import config``: the settings a command would use, and where each comes from."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from .common import commands, fail, setting_keys, setting_values


def config_command(
    ctx: typer.Context,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            help="TOML file (default: $PLAUSIBLE_IMPORT_CONFIG, else "
            "$XDG_CONFIG_HOME/plausible-import/config.toml if it exists).",
        ),
    ] = None,
    profile: Annotated[
        str | None,
        typer.Option("--profile", help="The [profiles.NAME] to apply; default: $PLAUSIBLE_IMPORT_PROFILE."),
    ] = None,
    command: Annotated[str, typer.Option("--command", help="Whose options to show: send or backfill.")] = "send",
) -> None:
    """Print the settings send (or backfill) takes from the config file, a profile and the
    environment, and where each comes from."""
    from .settings import SettingsError, read_config, resolve, shown

    by_name = commands(ctx)
    if command not in ("send", "backfill"):
        fail(f"--command {command!r}: give send or backfill")
    keys = setting_keys(by_name[command])
    known = {key for name in ("send", "backfill") for key in setting_keys(by_name[name])}
    try:
        path, _ = read_config(str(config) if config else None, os.environ)
        found = resolve(keys, known, str(config) if config else None, profile, os.environ)
        setting_values(by_name[command], found)
    except SettingsError as exc:
        fail(str(exc))
    params = {p.name: p for p in by_name[command].params}
    typer.echo(
        f"# plausible-import {command}: config file {path or 'none'}, profile "
        f"{profile or os.environ.get('PLAUSIBLE_IMPORT_PROFILE') or 'none'}"
    )
    for key in sorted(keys):
        if key in found:
            value, origin = found[key].value, found[key].origin
        else:
            value, origin = params[keys[key]].default, "default"
        text = "(not set)" if value is None or value == [] else shown(key, value)
        typer.echo(f"{key} = {text}  # {origin}")
