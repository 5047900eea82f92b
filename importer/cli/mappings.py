"""``plausible-import mappings``: the built-in mappings, one line each."""

from __future__ import annotations

from typing import Any

import typer

from .. import resources
from .common import fail


def mappings_command(
    show: str | None = typer.Argument(None, help="A built-in name (or a TOML path): print its rules instead."),
) -> None:
    """List the built-in mappings (use one with --mapping NAME), or show one's rules."""
    from ..mapping import MappingError, describe_builtins, load
    from ..mapping.spec import DOWNLOADS_RULE

    if show is None:
        rows = describe_builtins()
        width = max(len(name) for name, _ in rows)
        for name, description in rows:
            typer.echo(f"{name.ljust(width)}  {description}")
        typer.echo(
            f"\n(files in {resources.mappings_dir()}; `plausible-import mappings NAME` shows one's rules)", err=True
        )
        return
    try:
        m = load(show)
    except MappingError as exc:
        fail(str(exc))
        return
    typer.echo(f"{m.name}: {m.description}")
    typer.echo(f"file: {m.origin}")
    if m.column_map is not None:
        typer.echo(f"input: {m.column_map.format} export; columns {m.column_map.columns}")
        if m.column_map.extra_names:
            typer.echo(f"extra columns: {', '.join(m.column_map.extra_names)}")
    _lists(m)
    typer.echo("rules (first match wins):")
    specs = m.raw.get("rules", [])
    for i, rule in enumerate(m.rules, 1):
        spec = specs[i - 1] if i <= len(specs) else {}
        what = "drop" if rule.drop or rule.name is None else f"-> {rule.name.source!r}"
        extras = [
            f"{key} {_text(spec[key])}" for key in ("props", "props_from", "revenue", "interactive") if key in spec
        ]
        from_table = DOWNLOADS_RULE in spec  # the rule the [downloads] table stands for
        if from_table:
            extras.append('props {"url": "{url}"}')
        if rule.also_pageview:
            extras.append("also the pageview, first")
        when = "the [downloads] table" if from_table else _conditions(spec.get("when", {}))
        typer.echo(f"  {i}. {rule.label}: {when} {what}" + ("".join(f"; {x}" for x in extras)))
    typer.echo(f"  {len(m.rules) + 1}. otherwise: {'drop' if m.default_drop else repr(m.event_name)}")


def _lists(m: Any) -> None:
    """The filters' lists of what is not a page, and the [downloads] table."""
    filters = m.raw.get("filters", {})
    typer.echo(f"drop 206 Partial Content: {'yes' if m.drop_partial_content else 'no'}")
    endpoints = filters.get("endpoints", []) + filters.get("endpoints_add", [])
    for label, values in (
        ("static assets (static_extensions, static_files)", sorted(m.static_extensions) + sorted(m.static_files)),
        ("files that are not pages (not_page_extensions)", sorted(m.not_page_extensions)),
        ("endpoints that are not pages (endpoints, globs)", endpoints),
    ):
        if values:
            typer.echo(f"{label}: {', '.join(values)}")
    if m.downloads:
        typer.echo(
            f"downloads: {m.downloads.name!r} for {', '.join(sorted(m.downloads.extensions))}; one per "
            f"visitor, file and session (requests at most {m.downloads.gap_seconds // 60} minutes apart)"
        )


def _conditions(when: dict) -> str:
    """A rule's ``when`` table on one line: ``path "/docs/**", status ["2xx"], columns.method "GET"``."""
    parts = []
    for key, value in when.items():
        if key == "columns":
            parts += [f"columns.{column} {_text(condition)}" for column, condition in value.items()]
        else:
            parts.append(f"{key} {_text(value)}")
    return ("when " + ", ".join(parts)) if parts else "always"


def _text(value) -> str:
    import json

    return json.dumps(value, ensure_ascii=False)
