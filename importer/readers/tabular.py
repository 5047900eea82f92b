"""CSV, Parquet and NDJSON exports, turned canonical through a column map from the mapping file.

Exports name their columns freely (``created_at``, ``page_url``, ``client_ip``...), so the
mapping file's ``[input.columns]`` table says which source column feeds which canonical one.
A source column holding a full URL may feed ``url``: it is split into host, path and query.

Beyond the canonical columns, a map may keep **extra columns** for the mapping rules
(``[input.extra]``: an event name, a visitor id, device fields...), and may unpack one
**parameter bag** (``[input.params]``): GA4's repeated ``event_params`` records, a column of
JSON objects (PostHog's ``properties``, a JSON aggregate of Umami's ``event_data``) or a
struct column. Chosen keys become columns of their own; the whole bag (minus excluded keys)
can be kept as one ``list<struct<key, value>>`` column that rules turn into props.

A source column is named as it appears in the file; a dotted name (``device.web_info.browser``)
walks into nested records when no column has that exact name.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import re
import zoneinfo
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.json as pajson

from .. import schema
from ..sources import LineBlock, Source, line_blocks, open_source
from .base import Batch, FormatError, Rejected, repeat_string, too_long_rejects
from .clf import normalise_hosts

# Canonical columns a map may feed, plus "url", which is split into host/path/query.
MAPPABLE = tuple(c for c in schema.COLUMNS if c not in ("source_file", "source_line")) + ("url",)
TIMESTAMP_FORMATS = ("iso", "unix_s", "unix_ms", "unix_us")
INPUT_FORMATS = ("csv", "parquet", "ndjson")

# The type of a parameter bag column: key -> value, both strings.
BAG_TYPE = pa.list_(pa.struct([pa.field("key", pa.string()), pa.field("value", pa.string())]))

ROWS_PER_BATCH = 65_536
# NDJSON is read a block of lines at a time: on a 245 MB GA4 export (280,000 events) 8 MiB
# blocks peak at ~350 MB of memory whatever the file's size (parsing it whole: ~550 MB, growing
# with the file) and cost ~9% more time; Arrow parses each block in 2 MiB pieces on both cores.
NDJSON_BLOCK_BYTES = 8 << 20
NDJSON_PARSE_BYTES = 2 << 20
NDJSON_MAX_LINE_BYTES = 16 << 20  # one exported event (GA4's ecommerce items can make long lines)
NDJSON_MAX_KEY_BYTES = 4096  # the longest key looked for across a block boundary


@dataclass(frozen=True)
class ParamsSpec:
    """One parameter bag to unpack (the ``[input.params]`` table of a mapping)."""

    column: str
    keys: tuple[str, ...] = ()  # each becomes an extra column named after the key
    bag: str | None = None  # name of the extra column holding all params (minus exclusions)
    exclude: frozenset[str] = frozenset()
    exclude_prefixes: tuple[str, ...] = ()


@dataclass(frozen=True)
class ColumnMap:
    """How an export's columns become canonical ones (the ``[input]`` table of a mapping).

    ``format`` is ``"auto"`` (by file extension), ``"csv"``, ``"parquet"`` or ``"ndjson"``.
    """

    columns: dict[str, str]
    format: str | None = "auto"
    timestamp_format: str = "iso"
    timezone: str = "UTC"
    constants: dict[str, str] = field(default_factory=dict)
    extra: dict[str, str] = field(default_factory=dict)  # extra column name -> source column
    params: ParamsSpec | None = None
    delimiter: str | None = None  # CSV: by default "," (or tab when the header has more tabs)
    quote: bool = True  # CSV: honour double quotes
    header: tuple[str, ...] = ()  # CSV without a header line: the column names, in order
    null_values: tuple[str, ...] = ()  # more tokens that mean "no value" (PostHog's "$direct")

    def __post_init__(self):
        unknown = set(self.columns) - set(MAPPABLE)
        if unknown:
            raise ValueError(f"unknown canonical column(s) {sorted(unknown)}; known: {', '.join(MAPPABLE)}")
        if "timestamp" not in self.columns:
            raise ValueError("a column map needs a 'timestamp' column")
        clash = (set(self.extra) | set(self.param_columns)) & set(schema.COLUMNS)
        if clash:
            raise ValueError(f"extra column name(s) {sorted(clash)} are canonical names; choose others")

    @property
    def param_columns(self) -> tuple[str, ...]:
        if self.params is None:
            return ()
        return self.params.keys + ((self.params.bag,) if self.params.bag else ())

    @property
    def extra_names(self) -> tuple[str, ...]:
        """Names of the extra columns the reader appends, in order."""
        return tuple(self.extra) + tuple(k for k in self.param_columns if k not in self.extra)

    def source_columns(self) -> set[str]:
        """Source column names (dotted paths included) the map reads directly from the file."""
        params_made = set(self.params.keys) if self.params else set()
        wanted = {c for c in self.columns.values() if c not in params_made}
        wanted |= {c for c in self.extra.values() if c not in params_made}
        if self.params:
            wanted.add(self.params.column)
        return wanted


def format_for(source: Source, column_map: ColumnMap) -> str:
    if column_map.format and column_map.format != "auto":
        return column_map.format
    name = source.name.lower()
    for suffix in (".gz", ".bz2", ".xz", ".zst"):
        name = name.removesuffix(suffix)
    if name.endswith(".parquet") or name.endswith(".pq"):
        return "parquet"
    if name.endswith(".csv") or name.endswith(".tsv"):
        return "csv"
    if name.endswith((".jsonl", ".ndjson", ".json")):
        return "ndjson"
    raise FormatError(
        f"{source.name}: cannot tell CSV, Parquet or NDJSON by its name; set input.format in the mapping"
    )


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
        elif fmt == "ndjson":
            yield from self._read_ndjson(source)
        else:
            raise FormatError(f"unknown input format {fmt!r}; use one of {', '.join(INPUT_FORMATS)}")

    def _check_columns(self, source: Source, available: list[str], schema_: pa.Schema | None = None) -> None:
        missing = _absent(self.column_map.source_columns(), available, schema_)
        if missing:
            raise FormatError(
                f"{source.name}: {_named(missing)} are not in the file (it has: {', '.join(available[:30])})")

    def _read_parquet(self, source: Source) -> Iterator[Batch]:
        if source.stdin:
            raise FormatError("Parquet cannot be read from stdin; give a file path")
        import pyarrow.parquet as pq  # with pyarrow's file systems: ~20 ms, for Parquet inputs only

        parquet = pq.ParquetFile(source.path or source.open_raw())
        self._check_columns(source, parquet.schema_arrow.names, parquet.schema_arrow)
        names = parquet.schema_arrow.names
        wanted = sorted({c if c in names else c.split(".")[0] for c in self.column_map.source_columns()})
        first_row = 1
        size = source.size or 0
        total_rows = parquet.metadata.num_rows or 1
        for record_batch in parquet.iter_batches(batch_size=ROWS_PER_BATCH, columns=wanted):
            table = pa.Table.from_batches([record_batch])
            batch = self._convert(table, source, first_row)
            first_row += table.num_rows
            batch.position = int(size * min(1.0, (first_row - 1) / total_rows))
            yield batch

    def _read_ndjson(self, source: Source) -> Iterator[Batch]:
        """Newline-delimited JSON, a block of whole lines at a time (memory stays bounded
        whatever the file's size). Each block is parsed on its own, so a field that first
        appears late is found where it appears; a line that is not a JSON object, or whose
        values do not fit the types the rest of its block has, is rejected on its own."""
        opened = open_source(source)
        try:
            blocks = line_blocks(opened, block_bytes=NDJSON_BLOCK_BYTES, max_line_bytes=NDJSON_MAX_LINE_BYTES)
            missing = set(self.column_map.source_columns())  # named in the mapping, not seen yet
            waiting = _Waiting()
            checked = False
            block = next(blocks, None)
            while block is not None:
                following = next(blocks, None)
                rejected = too_long_rejects(block, source.name, NDJSON_MAX_LINE_BYTES)
                parts = _parse_json_lines(block, source.name, rejected)
                for table, _ in parts:
                    missing = _absent(missing, table.column_names, table.schema)
                if not checked and (parts or following is None):
                    # Once, at the first rows: a column the mapping names must be in the file.
                    # When these rows lack it, the rest of the file is searched before any row
                    # goes out (a field can first appear late).
                    checked = True
                    if missing:
                        self._check_later_columns(source, missing, rest_exists=following is not None)
                if following is None and missing:
                    # stdin (not searched ahead), or a file whose text has the key only as
                    # a value: the rows went out without the columns, which the report says.
                    waiting.notices.append(Rejected(source.name, block.first_line + block.line_count,
                                                    f"{_named(missing)} never appeared: no row had a value for them", ""))
                converted = [self._convert(table, source, 0, lines=lines) for table, lines in parts]
                rejected += [r for batch in converted for r in batch.rejected]
                waiting.rows_read += sum(len(lines) for _, lines in parts) + len(rejected) - sum(
                    len(b.rejected) for b in converted)
                waiting.rejected += sorted(rejected, key=lambda r: r.line)
                waiting.tables += [batch.table for batch in converted if batch.table.num_rows]
                if block.truncated:
                    waiting.notices.append(Rejected(source.name, block.first_line + block.line_count, block.truncated, ""))
                # Blocks of small lines are many rows, of long ones few: batches of about
                # ROWS_PER_BATCH rows either way, which is what the later stages are fastest at.
                if following is None or sum(t.num_rows for t in waiting.tables) >= ROWS_PER_BATCH:
                    yield from waiting.batches(opened.position.consumed)
                    waiting = _Waiting()
                block = following
        finally:
            if not source.stdin:
                opened.raw.close()

    def _check_later_columns(self, source: Source, missing: set[str], rest_exists: bool) -> None:
        """Columns the first block lacks: an error unless the file names them further on
        (found by their keys in the raw text, one more read of the file; stdin cannot be read
        twice, so there the columns are trusted to come, and a notice at the end of the
        stream says so when they never did)."""
        if rest_exists and source.stdin:
            return
        if rest_exists:
            keys = {c: [b'"' + part.encode() + b'"' for part in c.split(".")] for c in missing}
            opened = open_source(source)
            try:
                tail = b""
                while keys:
                    try:
                        chunk = opened.stream.read(NDJSON_BLOCK_BYTES)
                    except Exception:  # a damaged compressed tail (reading reports it): search what came before
                        break
                    if not chunk:
                        break
                    text = tail + chunk
                    keys = {c: [k for k in ks if k not in text] for c, ks in keys.items()}
                    keys = {c: ks for c, ks in keys.items() if ks}
                    tail = text[-NDJSON_MAX_KEY_BYTES:]
            finally:
                if not source.stdin:
                    opened.raw.close()
            missing = set(keys)
        if missing:
            raise FormatError(f"{source.name}: {_named(missing)} are not in the file")

    def _read_csv(self, source: Source) -> Iterator[Batch]:
        opened = open_source(source)
        cmap = self.column_map
        try:
            head = opened.stream.peek(1 << 16) if hasattr(opened.stream, "peek") else b""
            delimiter = "\t" if source.name.lower().rstrip(".gz").endswith(".tsv") else ","
            if head and head.split(b"\n", 1)[0].count(b"\t") > head.split(b"\n", 1)[0].count(b","):
                delimiter = "\t"
            delimiter = cmap.delimiter or delimiter
            wanted = sorted(cmap.source_columns())
            malformed: list = []
            reader = pacsv.open_csv(
                opened.stream,
                read_options=pacsv.ReadOptions(block_size=4 << 20, use_threads=False,
                                               column_names=list(cmap.header) or None),
                parse_options=pacsv.ParseOptions(
                    delimiter=delimiter,
                    quote_char='"' if cmap.quote else False,
                    newlines_in_values=cmap.quote,
                    invalid_row_handler=lambda row: malformed.append(row) or "skip",
                ),
                convert_options=pacsv.ConvertOptions(
                    column_types={c: pa.string() for c in wanted},
                    include_columns=wanted,
                    include_missing_columns=True,
                    strings_can_be_null=False,
                ),
            )
            self._check_columns(source, _header_names(head, delimiter) if head and not cmap.header
                                else list(cmap.header) or reader.schema.names)
            first_row = 1
            seen_malformed = 0
            for record_batch in reader:
                table = pa.Table.from_batches([record_batch])
                batch = self._convert(table, source, first_row, header_lines=0 if cmap.header else 1)
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
            if not source.stdin:
                opened.raw.close()

    def _convert(self, table: pa.Table, source: Source, first_row: int, header_lines: int = 1,
                 lines: np.ndarray | None = None) -> Batch:
        """The rows of ``table`` as a canonical batch; their line numbers follow from
        ``first_row`` and ``header_lines``, or are given (``lines``)."""
        n = table.num_rows
        if lines is None:
            line_numbers = np.arange(first_row + header_lines, first_row + header_lines + n, dtype=np.int64)
        else:
            line_numbers = np.asarray(lines, dtype=np.int64)
        cmap = self.column_map.columns
        made: dict[str, pa.Array] = {}
        if self.column_map.params is not None:
            made = unpack_params(column_at(table, self.column_map.params.column), self.column_map.params)

        def source_column(path: str) -> pa.Array:
            if path in made:
                return made[path]
            value = column_at(table, path)
            return value if value is not None else pa.nulls(n, pa.string())

        nested = [(name, path) for name, path in cmap.items() if pa.types.is_nested(source_column(path).type)]
        if nested:
            # A value where the mapping expects one, an object or a list in this export: its
            # rows cannot be read (the rows of other blocks, with values there, still are).
            name, path = nested[0]
            reason = f"'{path}' (the {name} column) holds {source_column(path).type} here, not a value"
            return Batch(table=schema.empty_frame(), rows_read=n,
                         rejected=[Rejected(source.name, int(line), reason, "") for line in line_numbers])

        nulls = pa.array(self.column_map.null_values, pa.string())

        def get(name: str) -> pa.Array | None:
            if name not in cmap:
                return None
            value = source_column(cmap[name])
            if len(nulls) and pa.types.is_string(value.type):
                value = pc.if_else(pc.is_in(value, value_set=nulls), pa.scalar(None, pa.string()), value)
            return value

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
        columns["source_file"] = repeat_string(source.name, n)
        columns["source_line"] = pa.array(line_numbers)
        extra: dict[str, pa.Array] = {}
        for name, path in self.column_map.extra.items():
            extra[name] = as_text(source_column(path))
        for name in self.column_map.param_columns:
            if name not in extra:
                extra[name] = made[name]
        out = schema.conform(columns, n, extra=extra)
        valid = pc.is_valid(timestamp)
        rejected: list[Rejected] = []
        if not pc.all(valid).as_py():
            raw = get("timestamp").cast(pa.string()).to_pylist()
            for i in np.flatnonzero(~valid.to_numpy(zero_copy_only=False)).tolist():
                rejected.append(Rejected(source.name, int(line_numbers[i]), f"unparseable time {raw[i]!r}", ""))
            out = out.filter(valid)
        return Batch(table=out, rows_read=n, rejected=rejected)


@dataclass
class _Waiting:
    """Rows converted from NDJSON blocks, not yet handed on."""

    tables: list[pa.Table] = field(default_factory=list)
    rows_read: int = 0
    rejected: list[Rejected] = field(default_factory=list)
    notices: list[Rejected] = field(default_factory=list)

    def batches(self, position: int) -> Iterator[Batch]:
        table = pa.concat_tables(self.tables) if len(self.tables) > 1 else (
            self.tables[0] if self.tables else schema.empty_frame())
        for start in range(0, max(table.num_rows, 1), ROWS_PER_BATCH):
            first = start == 0
            yield Batch(table=table.slice(start, ROWS_PER_BATCH), rows_read=self.rows_read if first else 0,
                        rejected=self.rejected if first else [], notices=self.notices if first else [],
                        position=position)


def _parse_json_lines(block: LineBlock, source_name: str,
                      rejected: list[Rejected]) -> list[tuple[pa.Table, np.ndarray]]:
    """A block of NDJSON lines as tables, each with the line number of each of its rows.

    The block is parsed in one go; when that fails, in halves, down to the single lines that
    are at fault, which go to ``rejected`` (blank lines hold no row)."""
    data = block.data
    if not data:
        return []
    if block.first_line == 1 and data.startswith(b"\xef\xbb\xbf"):
        data = b"   " + data[3:]  # a byte order mark: blanked, so offsets and columns stay
    buf = np.frombuffer(data, dtype=np.uint8)
    ends = np.flatnonzero(buf == 10)
    if len(ends) == 0 or ends[-1] != len(buf) - 1:
        ends = np.append(ends, len(buf))
    starts = np.concatenate(([0], ends[:-1] + 1))
    lengths = ends - starts
    # A line holds a row unless it is blank: most start with "{", the others are looked at.
    filled = lengths > 0
    unsure = np.flatnonzero(filled & (buf[np.minimum(starts, len(buf) - 1)] != ord("{")))
    for i in unsure.tolist():
        filled[i] = bool(data[starts[i]:ends[i]].strip())
    rows = np.flatnonzero(filled)
    out: list[tuple[pa.Table, np.ndarray]] = []
    # (a loop over a stack, not a recursive closure: that would be a reference cycle holding
    # the block until the garbage collector runs)
    todo = [(0, len(rows))] if len(rows) else []
    while todo:
        lo, hi = todo.pop()
        text = data[starts[rows[lo]]:ends[rows[hi - 1]]]
        try:
            table = pajson.read_json(pa.BufferReader(text), read_options=pajson.ReadOptions(block_size=NDJSON_PARSE_BYTES))
            fault = None if table.num_rows == hi - lo else "not one JSON object"  # Arrow saw a blank or two rows
        except pa.ArrowInvalid as exc:
            table, fault = None, exc
        if fault is None:
            out.append((table, block.first_line + rows[lo:hi]))
        elif hi - lo == 1:
            reason = fault if isinstance(fault, str) else _json_line_fault(text, fault)
            rejected.append(Rejected(source_name, block.first_line + int(rows[lo]), reason,
                                     text[:200].decode("utf-8", "replace")))
        else:  # the halves, the first on top
            middle = (lo + hi) // 2
            todo += [(middle, hi), (lo, middle)]
    return out


def _json_line_fault(text: bytes, exc: Exception) -> str:
    """Why one NDJSON line cannot be read, in words."""
    try:
        value = json.loads(text)
    except ValueError as err:
        return f"not valid JSON ({err})"
    if not isinstance(value, dict):
        return f"not a JSON object (a {type(value).__name__})"
    return "not readable as a row: " + re.sub(r"^JSON parse error: |\s*in row \d+$", "", str(exc))


def _absent(columns, names: list[str], schema_: pa.Schema | None) -> set[str]:
    """Which of the mapping's source columns a file's column names (and nested fields) lack."""
    return {c for c in columns if c not in names and not _path_in_schema(c, schema_)}


def _named(missing: set[str]) -> str:
    return f"column(s) {', '.join(sorted(missing))} named in the mapping's [input] table"


def _header_names(head: bytes, delimiter: str) -> list[str]:
    """The column names on a CSV file's first line (the reader itself reports every column it
    was asked for, present or not)."""
    import csv

    first = head.split(b"\n", 1)[0].decode("utf-8", "replace").rstrip("\r").lstrip("\ufeff")
    return next(csv.reader([first], delimiter=delimiter), [])


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


def as_text(values: pa.Array) -> pa.Array:
    """Any scalar column as strings (missing-value tokens become null); nested ones as JSON."""
    t = values.type
    if pa.types.is_string(t):
        return schema.null_if_missing(values)
    if pa.types.is_large_string(t) or pa.types.is_dictionary(t):
        return schema.null_if_missing(values.cast(pa.string()))
    if pa.types.is_null(t):
        return pa.nulls(len(values), pa.string())
    if pa.types.is_nested(t):
        return pa.array([None if v is None else json.dumps(v, default=str, ensure_ascii=False)
                         for v in values.to_pylist()], pa.string())
    return values.cast(pa.string())


def _param_values(values: pa.Array) -> pa.Array:
    """GA4's value record {string_value, int_value, float_value, double_value} -> one string."""
    if not pa.types.is_struct(values.type):
        return as_text(values)
    slots = [as_text(pc.struct_field(values, f.name)) for f in values.type]
    return pc.coalesce(*slots) if len(slots) > 1 else slots[0]


def _elements_from_fields(fields: dict[str, pa.Array], n: int) -> tuple[np.ndarray, pa.Array, pa.Array]:
    """Per-row fields (one array per key) -> (parent row, key, value) elements, row-major."""
    parents, keys, values = [], [], []
    for key, value in fields.items():
        text = as_text(value)
        valid = pc.is_valid(text).to_numpy(zero_copy_only=False)
        rows = np.flatnonzero(valid)
        parents.append(rows)
        keys.append(repeat_string(key, len(rows)))
        values.append(text.filter(pa.array(valid)))
    if not parents:
        return np.zeros(0, np.int64), pa.array([], pa.string()), pa.array([], pa.string())
    parent = np.concatenate(parents)
    order = np.argsort(parent, kind="stable")
    key = pa.concat_arrays(keys).take(pa.array(order))
    value = pa.concat_arrays(values).take(pa.array(order))
    return parent[order], key, value


def _json_objects(texts: pa.Array) -> tuple[np.ndarray, pa.Array, pa.Array]:
    """A column of JSON object strings -> (parent row, key, value) elements.

    Fast path: pyarrow's JSON reader on the whole column at once. A column whose keys change
    type between rows (a number here, a string there) is decoded row by row instead.
    """
    n = len(texts)
    texts = as_text(texts)
    filled = pc.fill_null(pc.replace_substring_regex(texts, r"^\s*$", "{}"), "{}")
    data = "\n".join(filled.to_pylist()).encode("utf-8") if n else b""
    try:
        parsed = pajson.read_json(io.BytesIO(data), read_options=pajson.ReadOptions(block_size=max(1 << 20, len(data) + 1)))
        if parsed.num_rows != n:
            raise pa.ArrowInvalid("row count changed")
        fields = {name: parsed.column(name).combine_chunks() for name in parsed.column_names}
        return _elements_from_fields(fields, n)
    except pa.ArrowInvalid:
        pass
    parents, keys, values = [], [], []
    for row, text in enumerate(filled.to_pylist()):
        try:
            obj = json.loads(text)
        except ValueError:
            continue
        if not isinstance(obj, dict):
            continue
        for key, value in obj.items():
            if value is None:
                continue
            parents.append(row)
            keys.append(str(key))
            if isinstance(value, bool):
                values.append("true" if value else "false")
            elif isinstance(value, (dict, list)):
                values.append(json.dumps(value, ensure_ascii=False))
            else:
                values.append(str(value))
    return np.array(parents, np.int64), pa.array(keys, pa.string()), pa.array(values, pa.string())


def unpack_params(column: pa.Array | None, spec: ParamsSpec) -> dict[str, pa.Array]:
    """A parameter bag column -> one string column per wanted key, plus the bag itself.

    The bag column may be a list of {key, value} records (GA4 ``event_params``; the value
    may be GA4's record of typed slots), a struct, or JSON object strings.
    """
    if column is None:
        return {}
    n = len(column)
    t = column.type
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        flat = pc.list_flatten(column)
        parent = pc.list_parent_indices(column).to_numpy(zero_copy_only=False).astype(np.int64)
        key = as_text(pc.struct_field(flat, "key")) if pa.types.is_struct(flat.type) else pa.nulls(len(flat), pa.string())
        value = _param_values(pc.struct_field(flat, "value")) if pa.types.is_struct(flat.type) else as_text(flat)
    elif pa.types.is_struct(t):
        parent, key, value = _elements_from_fields({f.name: pc.struct_field(column, f.name) for f in t}, n)
    else:
        parent, key, value = _json_objects(column)
    out: dict[str, pa.Array] = {}
    for wanted in spec.keys:
        hit = pc.fill_null(pc.equal(key, wanted), False)
        rows = parent[hit.to_numpy(zero_copy_only=False)]
        picked = value.filter(hit)
        # Last one wins if a key repeats within a row; scatter values onto their rows.
        index = np.full(n, -1, np.int64)
        index[rows] = np.arange(len(rows))
        take = pa.array(index, mask=index < 0)
        out[wanted] = picked.take(take) if len(picked) else pa.nulls(n, pa.string())
    if spec.bag:
        keep = pc.and_(pc.is_valid(key), pc.is_valid(value))
        if spec.exclude:
            keep = pc.and_(keep, pc.invert(pc.is_in(key, value_set=pa.array(sorted(spec.exclude), pa.string()))))
        for prefix in spec.exclude_prefixes:
            keep = pc.and_(keep, pc.invert(pc.fill_null(pc.starts_with(key, prefix), False)))
        keep = pc.fill_null(keep, False)
        kept_parent = parent[keep.to_numpy(zero_copy_only=False)]
        offsets = np.zeros(n + 1, np.int32)
        np.cumsum(np.bincount(kept_parent, minlength=n), out=offsets[1:])
        items = pa.StructArray.from_arrays([key.filter(keep), value.filter(keep)], fields=list(BAG_TYPE.value_type))
        out[spec.bag] = pa.ListArray.from_arrays(pa.array(offsets), items, type=BAG_TYPE)
    return out


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
        import pyarrow.parquet as pq

        return pq.ParquetFile(path).schema_arrow.names
    with open(path, "rb") as f:
        return f.readline().decode("utf-8", "replace").strip().split(",")
