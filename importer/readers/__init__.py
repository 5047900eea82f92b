"""Readers: one per input family, all emitting the canonical frame (:mod:`importer.schema`)."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from .base import Batch, FormatError, Reader, Rejected

if TYPE_CHECKING:  # pragma: no cover
    from ..sources import Source
    from .tabular import ColumnMap

# The names of importer.readers.detect.FORMATS, in order (detect.py checks that they agree):
# written out so that the command line's help lists them without importing every reader.
LOG_FORMATS = ("combined", "main", "vhost_combined", "common", "vhost_common", "traefik", "haproxy", "alb", "elb",
               "s3", "cloudfront", "w3c", "bunny", "caddy", "traefik_json", "gcp_lb", "cloudflare", "nginx_json")

__all__ = ["Batch", "FormatError", "Reader", "Rejected", "reader_for", "LOG_FORMATS"]

# Imported on first use (the format modules build their patterns at import).
_LAZY = {
    "compile_format": "custom",
    "FORMATS": "detect",
    "LogReader": "detect",
    "format_named": "detect",
    "check_timezone": "normalise",
    "ColumnMap": "tabular",
    "TabularReader": "tabular",
    "format_for": "tabular",
}


def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def _is_tabular_name(name: str) -> bool:
    lowered = name.lower()
    for suffix in (".gz", ".bz2", ".xz", ".zst"):
        lowered = lowered.removesuffix(suffix)
    return lowered.endswith((".csv", ".tsv", ".parquet", ".pq"))


def reader_for(
    source: Source,
    *,
    log_format: str | None = None,
    column_map: ColumnMap | None = None,
    custom_format: str | None = None,
    timezone: str = "UTC",
) -> Reader:
    """Choose the reader for one source.

    A mapping with an ``[input]`` column map reads CSV/Parquet exports (by its ``format``
    or the file's extension); otherwise the source is an access log, whose layout is
    ``log_format`` (a name), ``custom_format`` (an nginx ``log_format`` or Apache
    ``LogFormat`` string) or, by default, detected from the file itself. Times written
    without a zone are read in ``timezone``.
    """
    from .custom import compile_format
    from .detect import LogReader, format_named
    from .normalise import check_timezone
    from .tabular import TabularReader, format_for

    if column_map is not None and (column_map.format or _is_tabular_name(source.name)):
        format_for(source, column_map)
        return TabularReader(column_map)
    if _is_tabular_name(source.name) and column_map is None:
        raise FormatError(
            f"{source.name}: a CSV or Parquet export needs a mapping with an [input.columns] table "
            "that says which column holds what (see the README, 'Mapping files')"
        )
    try:
        timezone = check_timezone(timezone)
    except ValueError as exc:
        raise FormatError(str(exc)) from None
    if custom_format is not None:
        return LogReader(compile_format(custom_format), timezone)
    if log_format is not None:
        return LogReader(format_named(log_format), timezone)
    return LogReader(None, timezone)
