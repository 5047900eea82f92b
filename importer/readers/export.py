"""An export's columns -> the canonical frame, through the mapping's column map.

What the CSV, Parquet and NDJSON readers share: which reader a file needs, the check that
the columns a map names are in the file, and the conversion of one table of source columns
(times, numbers, URLs, constants, extra columns and parameter bags) to a canonical batch.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections.abc import Iterable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .. import schema
from ..arrowutil import repeat_string
from ..mapping.columnmap import INPUT_FORMATS, ColumnMap
from ..sources import Source
from .base import Batch, FormatError, Rejected
from .fields import normalise_hosts, split_urls
from .params import as_text, unpack_params

ROWS_PER_BATCH = 65_536
_COMPRESSED = (".gz", ".bz2", ".xz", ".zst")


def _bare_name(name: str) -> str:
    lowered = name.lower()
    for suffix in _COMPRESSED:
        lowered = lowered.removesuffix(suffix)
    return lowered


def is_export_name(name: str) -> bool:
    """A file name that says CSV or Parquet (which only a column map can read)."""
    return _bare_name(name).endswith((".csv", ".tsv", ".parquet", ".pq"))


def format_for(source: Source, column_map: ColumnMap) -> str:
    """``csv``, ``parquet`` or ``ndjson``: the map's ``format``, or the file name's."""
    if column_map.format and column_map.format != "auto":
        if column_map.format not in INPUT_FORMATS:
            raise FormatError(f"unknown input format {column_map.format!r}; use one of {', '.join(INPUT_FORMATS)}")
        return column_map.format
    name = _bare_name(source.name)
    if name.endswith((".parquet", ".pq")):
        return "parquet"
    if name.endswith((".csv", ".tsv")):
        return "csv"
    if name.endswith((".jsonl", ".ndjson", ".json")):
        return "ndjson"
    raise FormatError(f"{source.name}: cannot tell CSV, Parquet or NDJSON by its name; set input.format in the mapping")


def check_columns(
    source: Source, column_map: ColumnMap, available: list[str], schema_: pa.Schema | None = None
) -> None:
    """FormatError when a column the map names is not in the file."""
    missing = absent(column_map.source_columns(), available, schema_)
    if missing:
        raise FormatError(f"{source.name}: {named(missing)} are not in the file (it has: {', '.join(available[:30])})")


def to_batch(table: pa.Table, column_map: ColumnMap, source_name: str, line_numbers: np.ndarray) -> Batch:
    """The rows of ``table`` (its source columns, each row from the given line) as a canonical batch;
    rows without a readable time are rejected."""
    n = table.num_rows
    made: dict[str, pa.Array] = {}
    if column_map.params is not None:
        made = unpack_params(column_at(table, column_map.params.column), column_map.params)

    def source_column(path: str) -> pa.Array:
        if path in made:
            return made[path]
        value = column_at(table, path)
        if value is None:
            return pa.nulls(n, pa.string())
        if pa.types.is_binary(value.type) or pa.types.is_large_binary(value.type):
            return _binary_as_text(value)  # Parquet bytes columns: text, whatever bytes they hold
        return value

    nested = [(name, path) for name, path in column_map.columns.items() if pa.types.is_nested(source_column(path).type)]
    if nested:
        # A value where the mapping expects one, an object or a list in this export: its
        # rows cannot be read (the rows of other blocks, with values there, still are).
        name, path = nested[0]
        reason = f"'{path}' (the {name} column) holds {source_column(path).type} here, not a value"
        return Batch(
            table=schema.empty_frame(),
            rows_read=n,
            rejected=[Rejected(source_name, int(line), reason, "") for line in line_numbers],
        )
    nulls = pa.array(column_map.null_values, pa.string())
    mapped: dict[str, pa.Array] = {}
    for name, path in column_map.columns.items():
        value = source_column(path)
        if len(nulls) and pa.types.is_string(value.type):
            value = pc.if_else(pc.is_in(value, value_set=nulls), pa.scalar(None, pa.string()), value)
        mapped[name] = value
    columns = _canonical_columns(mapped, column_map, n)
    columns["source_file"] = repeat_string(source_name, n)
    columns["source_line"] = pa.array(line_numbers, pa.int64())
    extra = {name: as_text(source_column(path)) for name, path in column_map.extra.items()}
    for name in column_map.param_columns:
        extra.setdefault(name, made[name])
    out = schema.conform(columns, n, extra=extra)
    valid = pc.is_valid(columns["timestamp"])
    if pc.all(valid).as_py():
        return Batch(table=out, rows_read=n)
    raw = mapped["timestamp"].cast(pa.string()).to_pylist()
    rejected = [
        Rejected(source_name, int(line_numbers[i]), f"unparseable time {raw[i]!r}", "")
        for i in np.flatnonzero(~valid.to_numpy(zero_copy_only=False)).tolist()
    ]
    return Batch(table=out.filter(valid), rows_read=n, rejected=rejected)


def _canonical_columns(mapped: dict[str, pa.Array], column_map: ColumnMap, n: int) -> dict[str, pa.Array]:
    """The map's source columns (by canonical name) converted to canonical types."""
    columns = {"timestamp": to_utc_timestamps(mapped["timestamp"], column_map.timestamp_format, column_map.timezone)}
    for name in ("ip", "user_agent", "referrer", "path", "query"):
        if name in mapped:
            columns[name] = schema.null_if_missing(mapped[name].cast(pa.string()))
    if "method" in mapped:
        columns["method"] = pc.utf8_upper(schema.null_if_missing(mapped["method"].cast(pa.string())))
    if "host" in mapped:
        columns["host"] = normalise_hosts(mapped["host"].cast(pa.string()))
    for name, type_ in (("status", pa.int16()), ("bytes", pa.int64())):
        if name in mapped:
            columns[name] = _to_int(mapped[name], type_)
    if "url" in mapped:
        parts = split_urls(mapped["url"].cast(pa.string()))
        for key in ("host", "path", "query"):
            columns.setdefault(key, parts[key])
    for name, value in column_map.constants.items():
        columns[name] = pa.array([value] * n, type=schema.CANONICAL_SCHEMA.field(name).type)
    return columns


def absent(columns: Iterable[str], names: list[str], schema_: pa.Schema | None) -> set[str]:
    """Which of the mapping's source columns a file's column names (and nested fields) lack."""
    return {c for c in columns if c not in names and not _path_in_schema(c, schema_)}


def named(missing: set[str]) -> str:
    return f"column(s) {', '.join(sorted(missing))} named in the mapping's [input] table"


def _path_in_schema(path: str, schema_: pa.Schema | None) -> bool:
    if schema_ is None or "." not in path:
        return False
    parts = path.split(".")
    if parts[0] not in schema_.names:
        return False
    type_ = schema_.field(parts[0]).type
    for part in parts[1:]:
        if not pa.types.is_struct(type_) or type_.get_field_index(part) < 0:
            return False
        type_ = type_.field(part).type
    return True


def column_at(table: pa.Table, path: str) -> pa.Array | None:
    """A source column by name, or by a dotted path into struct columns; None if absent."""
    if path in table.column_names:
        return table.column(path).combine_chunks()
    parts = path.split(".")
    if parts[0] not in table.column_names:
        return None
    value = table.column(parts[0]).combine_chunks()
    for part in parts[1:]:
        if not pa.types.is_struct(value.type) or value.type.get_field_index(part) < 0:
            return None
        value = pc.struct_field(value, part)
    return value


def _binary_as_text(values: pa.Array) -> pa.Array:
    """Bytes as strings, invalid UTF-8 replaced by U+FFFD (decoded per distinct value, and only
    when a plain cast finds some invalid)."""
    try:
        return values.cast(pa.string())
    except pa.ArrowInvalid:
        encoded = pc.dictionary_encode(values)
        texts = [None if v is None else v.decode("utf-8", "replace") for v in encoded.dictionary.to_pylist()]
        return pc.take(pa.array(texts, pa.string()), encoded.indices)


def _to_int(values: pa.Array, type_: pa.DataType) -> pa.Array:
    if pa.types.is_integer(values.type):
        return values.cast(type_)
    text = values.cast(pa.string())
    ok = pc.match_substring_regex(text, r"^\s*\d{1,18}(\.0*)?\s*$")
    cleaned = pc.replace_substring_regex(pc.utf8_trim_whitespace(text), r"\.0*$", "")
    return pc.if_else(ok, cleaned, pa.scalar(None, pa.string())).cast(type_)


def to_utc_timestamps(values: pa.Array, fmt: str, timezone: str) -> pa.Array:
    """Parse a time column into timestamp[us, UTC]; unparseable values become null.

    ``fmt`` is ``iso`` (ISO 8601, with or without offset), ``unix_s``/``unix_ms``/``unix_us``, or
    a ``strptime`` pattern. Times without an offset are read in ``timezone``.
    """
    if pa.types.is_timestamp(values.type):
        if values.type.tz is None:
            values = pc.assume_timezone(values, timezone, ambiguous="earliest", nonexistent="earliest")
        return values.cast(schema.TIMESTAMP_TYPE)
    if fmt.startswith("unix_"):
        scale = {"unix_s": 1_000_000, "unix_ms": 1_000, "unix_us": 1}[fmt]
        numeric = values if pa.types.is_integer(values.type) or pa.types.is_floating(values.type) else _to_float(values)
        micros = pc.multiply(numeric.cast(pa.float64()), float(scale)).cast(pa.int64(), safe=False)
        return micros.cast(schema.TIMESTAMP_TYPE)
    text = values.cast(pa.string())
    if fmt == "iso":
        # Warehouse exports write "2024-03-14 08:26:53.512 UTC".
        text = pc.replace_substring_regex(text, r"\s+UTC$", "+00:00")
    if fmt != "iso":
        naive = pc.strptime(text, format=fmt, unit="us", error_is_null=True)
        if "%z" in fmt:
            return naive.cast(schema.TIMESTAMP_TYPE)
        return _assume_zone(naive, timezone)
    try:
        return text.cast(schema.TIMESTAMP_TYPE)
    except pa.ArrowInvalid:
        pass
    try:
        naive = text.cast(pa.timestamp("us"))
        return _assume_zone(naive, timezone)
    except pa.ArrowInvalid:
        pass
    zone = zoneinfo.ZoneInfo(timezone)

    def parse(value: str | None) -> dt.datetime | None:
        if value is None:
            return None
        try:
            parsed = dt.datetime.fromisoformat(value.strip())
        except ValueError:
            return None
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=zone)
        return parsed.astimezone(dt.UTC)

    encoded = pc.dictionary_encode(text)
    parsed = pa.array([parse(v) for v in encoded.dictionary.to_pylist()], type=schema.TIMESTAMP_TYPE)
    return pc.take(parsed, encoded.indices)


def _assume_zone(naive: pa.Array, timezone: str) -> pa.Array:
    return pc.assume_timezone(naive, timezone, ambiguous="earliest", nonexistent="earliest").cast(schema.TIMESTAMP_TYPE)


def _to_float(values: pa.Array) -> pa.Array:
    text = values.cast(pa.string())
    ok = pc.match_substring_regex(text, r"^\s*-?\d+(\.\d*)?\s*$")
    return pc.if_else(ok, text, pa.scalar(None, pa.string())).cast(pa.float64())
