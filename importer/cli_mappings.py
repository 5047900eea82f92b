"""``plausible-import mappings``: the built-in mappings, one line each."""

from __future__ import annotations

from typing import Optional

import typer

from . import resources
from .cli import _fail, app


@app.command("mappings")
def mappings_command(
    show: Optional[str] = typer.Argument(None, help="A built-in name (or a TOML path): print its rules instead."),
) -> None:
    """List the built-in mappings (use one with --mapping NAME), or show one's rules."""
    from .mapping import MappingError, describe_builtins, load

    if show is None:
        rows = describe_builtins()
        width = max(len(name) for name, _ in rows)
        for name, description in rows:
            typer.echo(f"{name.ljust(width)}  {description}")
        typer.echo(f"\n(files in {resources.mappings_dir()}; `plausible-import mappings NAME` shows one's rules)", err=True)
        return
    try:
        m = load(show)
    except MappingError as exc:
        _fail(str(exc))
        return
    typer.echo(f"{m.name}: {m.description}")
    typer.echo(f"file: {m.origin}")
    if m.column_map is not None:
        typer.echo(f"input: {m.column_map.format} export; columns {m.column_map.columns}")
        if m.column_map.extra_names:
            typer.echo(f"extra columns: {', '.join(m.column_map.extra_names)}")
    typer.echo("rules (first match wins):")
    for i, rule in enumerate(m.rules, 1):
        what = "drop" if rule.drop else f"-> {rule.name.source!r}"
        typer.echo(f"  {i}. {rule.label}: {what}")
    typer.echo(f"  {len(m.rules) + 1}. otherwise: {'drop' if m.default_drop else repr(m.event_name)}")
