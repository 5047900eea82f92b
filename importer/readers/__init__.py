"""Readers: one per input family, all emitting the canonical frame (:mod:`importer.schema`).

Access logs go through :class:`importer.readers.detect.LogReader` (formats in ``detect.FORMATS``);
exports through a column map, with :mod:`.csv`, :mod:`.parquet` or :mod:`.ndjson`. Importing this
package loads only the small shared types; :func:`reader_for` imports the reader a source needs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .base import Batch, FormatError, Reader, Rejected, check_encoding

if TYPE_CHECKING:  # pragma: no cover
    from ..mapping.columnmap import ColumnMap
    from ..sources import Source

__all__ = ["Batch", "FormatError", "Reader", "Rejected", "reader_for"]


def reader_for(
    source: Source,
    *,
    log_format: str | None = None,
    column_map: ColumnMap | None = None,
    custom_format: str | None = None,
    timezone: str = "UTC",
    previous: Reader | None = None,
    encoding: str = "utf-8",
    time_format: str | None = None,
) -> Reader:
    """Choose the reader for one source.

    A mapping with an ``[input]`` column map reads CSV/Parquet/NDJSON exports (by its ``format``
    or the file's extension); otherwise the source is an access log, whose layout is
    ``log_format`` (a name), ``custom_format`` (an nginx ``log_format`` or Apache
    ``LogFormat`` string) or, by default, detected from the file itself. Times written
    without a zone are read in ``timezone``. ``previous`` is the reader of the source before
    this one: a W3C log that starts without a ``#Fields:`` line goes on with its columns.
    ``encoding`` is a log's text encoding; ``time_format`` (strftime) reads the time field of
    a ``custom_format`` that is neither of the server's usual time variables.
    """
    # Imported here, not at the top: the format modules build their patterns at import, and
    # the command line's start-up should not pay for readers a run does not use.
    from .export import format_for, is_export_name

    if column_map is not None and (column_map.format or is_export_name(source.name)):
        return _export_reader(format_for(source, column_map), column_map)
    if is_export_name(source.name):
        raise FormatError(
            f"{source.name}: a CSV or Parquet export needs a mapping with an [input.columns] table "
            "that says which column holds what (see the README, 'Mapping files')"
        )
    from .custom import compile_format
    from .detect import LogReader, format_named
    from .normalise import check_timezone

    try:
        timezone = check_timezone(timezone)
    except ValueError as exc:
        raise FormatError(str(exc)) from None
    encoding = check_encoding(encoding)
    fields = previous.carried_fields() if isinstance(previous, LogReader) else None
    if custom_format is not None:
        return LogReader(compile_format(custom_format, time_format), timezone, encoding=encoding)
    if log_format is not None:
        return LogReader(format_named(log_format), timezone, fields, encoding)
    return LogReader(None, timezone, fields, encoding)


def _export_reader(fmt: str, column_map: ColumnMap) -> Reader:
    if fmt == "parquet":
        from .parquet import ParquetReader

        return ParquetReader(column_map)
    if fmt == "csv":
        from .csv import CsvReader

        return CsvReader(column_map)
    from .ndjson import NdjsonReader

    return NdjsonReader(column_map)
