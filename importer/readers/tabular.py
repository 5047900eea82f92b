"""CSV and Parquet exports, turned canonical through a column map from the mapping file.

Exports name their columns freely (``created_at``, ``page_url``, ``client_ip``...), so the
mapping file's ``[input.columns]`` table says which source column feeds which canonical one.
A source column holding a full URL may feed ``url``: it is split into host, path and query.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from .. import schema
from ..sources import Source, open_source
from .base import Batch, FormatError, Rejected, repeat_string
from .clf import normalise_hosts

# Canonical columns a map may feed, plus "url", which is split into host/path/query.
MAPPABLE = tuple(c for c in schema.COLUMNS if c not in ("source_file", "source_line")) + ("url",)
TIMESTAMP_FORMATS = ("iso", "unix_s", "unix_ms", "unix_us")

ROWS_PER_BATCH = 65_536


@dataclass(frozen=True)
class ColumnMap:
    """How an export's columns become canonical ones (the ``[input]`` table of a mapping)."""

    columns: dict[str, str]
    format: str | None = None  # "csv" | "parquet" | None (by file extension)
    timestamp_format: str = "iso"
    timezone: str = "UTC"
    constants: dict[str, str] = field(default_factory=dict)

    def __post_init__(self):
        unknown = set(self.columns) - set(MAPPABLE)
        if unknown:
            raise ValueError(f"unknown canonical column(s) {sorted(unknown)}; known: {', '.join(MAPPABLE)}")
        if "timestamp" not in self.columns:
            raise ValueError("a column map needs a 'timestamp' column")


def format_for(source: Source, column_map: ColumnMap) -> str:
    if column_map.format:
        return column_map.format
    name = source.name.lower()
    for suffix in (".gz", ".bz2", ".xz", ".zst"):
        name = name.removesuffix(suffix)
    if name.endswith(".parquet") or name.endswith(".pq"):
        return "parquet"
    if name.endswith(".csv") or name.endswith(".tsv"):
        return "csv"
    raise FormatError(f"{source.name}: cannot tell CSV from Parquet by its name; set input.format in the mapping")


class TabularReader:
    def __init__(self, column_map: ColumnMap):
        self.column_map = column_map
        self.name = "tabular"

    def read(self, source: Source) -> Iterator[Batch]:
        fmt = format_for(source, self.column_map)
        self.name = fmt
        if fmt == "parquet":
            yield from self._read_parquet(source)
        elif fmt == "csv":
            yield from self._read_csv(source)
        else:
            raise FormatError(f"unknown input format {fmt!r}; use 'csv' or 'parquet'")

    def _check_columns(self, source: Source, available: list[str]) -> None:
        missing = [c for c in set(self.column_map.columns.values()) if c not in available]
        if missing:
            raise FormatError(
                f"{source.name}: column(s) {', '.join(sorted(missing))} named in the mapping's "
                f"[input.columns] are not in the file (it has: {', '.join(available[:30])})"
            )

    def _read_parquet(self, source: Source) -> Iterator[Batch]:
        if source.path is None:
            raise FormatError("Parquet cannot be read from stdin; give a file path")
        parquet = pq.ParquetFile(source.path)
        self._check_columns(source, parquet.schema_arrow.names)
        wanted = sorted(set(self.column_map.columns.values()))
        first_row = 1
        size = source.size or 0
        total_rows = parquet.metadata.num_rows or 1
        for record_batch in parquet.iter_batches(batch_size=ROWS_PER_BATCH, columns=wanted):
            table = pa.Table.from_batches([record_batch])
            batch = self._convert(table, source, first_row)
            first_row += table.num_rows
            batch.position = int(size * min(1.0, (first_row - 1) / total_rows))
            yield batch

    def _read_csv(self, source: Source) -> Iterator[Batch]:
        opened = open_source(source)
        try:
            head = opened.stream.peek(1 << 16) if hasattr(opened.stream, "peek") else b""
            delimiter = "\t" if source.name.lower().rstrip(".gz").endswith(".tsv") else ","
            if head and head.split(b"\n", 1)[0].count(b"\t") > head.split(b"\n", 1)[0].count(b","):
                delimiter = "\t"
            malformed: list = []
            reader = pacsv.open_csv(
                opened.stream,
                read_options=pacsv.ReadOptions(block_size=4 << 20, use_threads=False),
                parse_options=pacsv.ParseOptions(
                    delimiter=delimiter,
                    newlines_in_values=True,
                    invalid_row_handler=lambda row: malformed.append(row) or "skip",
                ),
                convert_options=pacsv.ConvertOptions(
                    column_types={c: pa.string() for c in self.column_map.columns.values()},
                    include_columns=sorted(set(self.column_map.columns.values())),
                    include_missing_columns=True,
                    strings_can_be_null=False,
                ),
            )
            self._check_columns(source, reader.schema.names)
            first_row = 1
            seen_malformed = 0
            for record_batch in reader:
                table = pa.Table.from_batches([record_batch])
                batch = self._convert(table, source, first_row)
                # Row numbers are data rows; line = row + 1 because of the header line.
                new = malformed[seen_malformed:]
                seen_malformed = len(malformed)
                for row in new:
                    line = row.number
                    batch.rejected.append(
                        Rejected(source.name, line, f"expected {row.expected_columns} fields, found {row.actual_columns}", row.text)
                    )
                batch.rows_read += len(new)
                first_row += table.num_rows + len(new)
                batch.position = opened.position.consumed
                yield batch
        except pa.ArrowInvalid as exc:
            raise FormatError(f"{source.name}: not readable as CSV: {exc}") from exc
        finally:
            if source.path is not None:
                opened.raw.close()

    def _convert(self, table: pa.Table, source: Source, first_row: int) -> Batch:
        n = table.num_rows
        cmap = self.column_map.columns
        get = lambda name: table.column(cmap[name]).combine_chunks() if name in cmap else None  # noqa: E731
        columns: dict[str, pa.Array] = {}
        timestamp = to_utc_timestamps(get("timestamp"), self.column_map.timestamp_format, self.column_map.timezone)
        columns["timestamp"] = timestamp
        for name in ("ip", "user_agent", "referrer", "path", "query"):
            value = get(name)
            if value is not None:
                columns[name] = schema.null_if_missing(value.cast(pa.string()))
        if (method := get("method")) is not None:
            columns["method"] = pc.utf8_upper(schema.null_if_missing(method.cast(pa.string())))
        if (host := get("host")) is not None:
            columns["host"] = normalise_hosts(host.cast(pa.string()))
        for name, type_ in (("status", pa.int16()), ("bytes", pa.int64())):
            value = get(name)
            if value is not None:
                columns[name] = _to_int(value, type_)
        if (url := get("url")) is not None:
            parts = split_urls(url.cast(pa.string()))
            for key in ("host", "path", "query"):
                columns.setdefault(key, parts[key])
        for name, value in self.column_map.constants.items():
            columns[name] = pa.array([value] * n, type=schema.CANONICAL_SCHEMA.field(name).type)
        line_numbers = np.arange(first_row + 1, first_row + 1 + n, dtype=np.int64)
        columns["source_file"] = repeat_string(source.name, n)
        columns["source_line"] = pa.array(line_numbers)
        out = schema.conform(columns, n)
        valid = pc.is_valid(timestamp)
        rejected: list[Rejected] = []
        if not pc.all(valid).as_py():
            raw = get("timestamp").cast(pa.string()).to_pylist()
            for i in np.flatnonzero(~valid.to_numpy(zero_copy_only=False)).tolist():
                rejected.append(Rejected(source.name, int(line_numbers[i]), f"unparseable time {raw[i]!r}", ""))
            out = out.filter(valid)
        return Batch(table=out, rows_read=n, rejected=rejected)


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
    if fmt != "iso":
        naive = pc.strptime(text, format=fmt, unit="us", error_is_null=True)
        if "%z" in fmt:
            return naive.cast(schema.TIMESTAMP_TYPE)
        return pc.assume_timezone(naive, timezone, ambiguous="earliest", nonexistent="earliest").cast(schema.TIMESTAMP_TYPE)
    try:
        return text.cast(schema.TIMESTAMP_TYPE)
    except pa.ArrowInvalid:
        pass
    try:
        naive = text.cast(pa.timestamp("us"))
        return pc.assume_timezone(naive, timezone, ambiguous="earliest", nonexistent="earliest").cast(schema.TIMESTAMP_TYPE)
    except pa.ArrowInvalid:
        pass
    zone = zoneinfo.ZoneInfo(timezone)

    def parse(value: str | None):
        if value is None:
            return None
        try:
            parsed = dt.datetime.fromisoformat(value.strip())
        except ValueError:
            return None
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=zone)
        return parsed.astimezone(dt.timezone.utc)

    encoded = pc.dictionary_encode(text)
    parsed = pa.array([parse(v) for v in encoded.dictionary.to_pylist()], type=schema.TIMESTAMP_TYPE)
    return pc.take(parsed, encoded.indices)


def _to_float(values: pa.Array) -> pa.Array:
    text = values.cast(pa.string())
    ok = pc.match_substring_regex(text, r"^\s*-?\d+(\.\d*)?\s*$")
    return pc.if_else(ok, text, pa.scalar(None, pa.string())).cast(pa.float64())


_URL = (
    r"^(?:(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*):)?(?://(?P<authority>[^/?#]*))?"
    r"(?P<path>[^?#]*)(?:\?(?P<query>[^#]*))?(?:#.*)?$"
)


def split_urls(urls: pa.Array) -> dict[str, pa.Array]:
    """Full URLs -> host (lower case, no port, no credentials), path and query."""
    urls = schema.null_if_missing(urls)
    encoded = pc.dictionary_encode(urls)
    parts = pc.extract_regex(encoded.dictionary, _URL)
    authority = pc.replace_substring_regex(pc.struct_field(parts, "authority"), r"^.*@", "")
    host = normalise_hosts(authority)
    path = pc.struct_field(parts, "path")
    path = pc.if_else(pc.equal(path, ""), pa.scalar("/"), path)
    query = schema.null_if_missing(pc.struct_field(parts, "query"))
    idx = encoded.indices
    return {"host": pc.take(host, idx), "path": pc.take(path, idx), "query": pc.take(query, idx)}


def columns_in(path: Path) -> list[str]:
    """Column names of a CSV or Parquet file, for error messages and previews."""
    if str(path).endswith(".parquet"):
        return pq.ParquetFile(path).schema_arrow.names
    with open(path, "rb") as f:
        return f.readline().decode("utf-8", "replace").strip().split(",")
