"""Readers: one per input family, all emitting the canonical frame (:mod:`importer.schema`)."""

from __future__ import annotations

from ..sources import Source
from .base import Batch, FormatError, Reader, Rejected
from .clf import LAYOUTS, LAYOUTS_BY_NAME, ClfReader
from .tabular import ColumnMap, TabularReader, format_for

LOG_FORMATS = tuple(layout.name for layout in LAYOUTS)

__all__ = ["Batch", "FormatError", "Reader", "Rejected", "reader_for", "LOG_FORMATS"]


def _is_tabular_name(name: str) -> bool:
    lowered = name.lower()
    for suffix in (".gz", ".bz2", ".xz", ".zst"):
        lowered = lowered.removesuffix(suffix)
    return lowered.endswith((".csv", ".tsv", ".parquet", ".pq"))


def reader_for(source: Source, *, log_format: str | None = None, column_map: ColumnMap | None = None) -> Reader:
    """Choose the reader for one source.

    A mapping with an ``[input]`` column map reads CSV/Parquet exports (by its ``format``
    or the file's extension); otherwise the source is an access log, whose layout is
    ``log_format`` or, by default, detected from the file itself.
    """
    if column_map is not None and (column_map.format or _is_tabular_name(source.name)):
        format_for(source, column_map)
        return TabularReader(column_map)
    if _is_tabular_name(source.name) and column_map is None:
        raise FormatError(
            f"{source.name}: a CSV or Parquet export needs a mapping with an [input.columns] table "
            "that says which column holds what (see the README, 'Mapping files')"
        )
    if log_format is not None:
        if log_format not in LAYOUTS_BY_NAME:
            raise FormatError(f"unknown log format {log_format!r}; known: {', '.join(LOG_FORMATS)}")
        return ClfReader(LAYOUTS_BY_NAME[log_format])
    return ClfReader()
