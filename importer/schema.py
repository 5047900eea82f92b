"""The canonical frame: the one column schema every reader emits.

Every reader, whatever its input (an nginx log, a CSV export, a Parquet file), yields
``pyarrow.Table`` batches with exactly these columns, in this order and with these types.
Everything downstream (mapping, sinks) reads only this schema, so a new input format is a
new reader and nothing else.

Rules that hold for every column:

* A missing value is null. Never ``"-"``, never ``""``: readers translate their format's
  missing-value tokens.
* Strings are valid UTF-8. Bytes that were not are decoded with replacement characters.
* ``timestamp`` is timezone-aware UTC, so rows from logs written in different zones compare
  correctly.

========================  ==========================  ==============================================
column                    type                        meaning
========================  ==========================  ==============================================
``timestamp``             timestamp[us, tz=UTC]       when the request was received
``ip``                    string                      the client address (IPv4 or IPv6, no port)
``user_agent``            string                      the raw ``User-Agent`` header, unescaped
``method``                string                      the HTTP method, upper case
``host``                  string                      the requested host, lower case, no port
``path``                  string                      the path as received (percent-encoding kept)
``query``                 string                      the query string without the ``?``
``status``                int16                       the HTTP status code
``bytes``                 int64                       response size in bytes
``referrer``              string                      the ``Referer`` header
``source_file``           string                      the input the row came from
``source_line``           int64                       1-based line (or row) number in that input
========================  ==========================  ==============================================
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

TIMESTAMP_TYPE = pa.timestamp("us", tz="UTC")

CANONICAL_SCHEMA = pa.schema(
    [
        pa.field("timestamp", TIMESTAMP_TYPE),
        pa.field("ip", pa.string()),
        pa.field("user_agent", pa.string()),
        pa.field("method", pa.string()),
        pa.field("host", pa.string()),
        pa.field("path", pa.string()),
        pa.field("query", pa.string()),
        pa.field("status", pa.int16()),
        pa.field("bytes", pa.int64()),
        pa.field("referrer", pa.string()),
        pa.field("source_file", pa.string()),
        pa.field("source_line", pa.int64()),
    ]
)

COLUMNS: tuple[str, ...] = tuple(CANONICAL_SCHEMA.names)

# Tokens that producers write for "no value" in text columns.
MISSING_TOKENS = ("", "-")


def empty_frame() -> pa.Table:
    return CANONICAL_SCHEMA.empty_table()


def null_if_missing(column: pa.ChunkedArray | pa.Array) -> pa.ChunkedArray | pa.Array:
    """Turn the missing-value tokens ("" and "-") of a string column into nulls."""
    missing = pc.is_in(column, value_set=pa.array(MISSING_TOKENS))
    return pc.if_else(missing, pa.scalar(None, pa.string()), column)


def conform(
    columns: dict[str, pa.Array | pa.ChunkedArray],
    num_rows: int,
    extra: dict[str, pa.Array | pa.ChunkedArray] | None = None,
) -> pa.Table:
    """Build a canonical table from whatever columns a reader has; the rest become nulls.

    Raises ``KeyError`` for a column that is not in the schema, so that a reader cannot
    silently emit a misspelt column. ``extra`` columns (an export's own fields that mapping
    rules may read, such as an event name or parameters) are appended after the canonical
    ones, in the order given; their names must not collide with canonical names.
    """
    unknown = set(columns) - set(COLUMNS)
    if unknown:
        raise KeyError(f"not canonical columns: {sorted(unknown)}")
    clash = set(extra or {}) & set(COLUMNS)
    if clash:
        raise KeyError(f"extra columns may not reuse canonical names: {sorted(clash)}")
    arrays = []
    for field in CANONICAL_SCHEMA:
        value = columns.get(field.name)
        if value is None:
            arrays.append(pa.nulls(num_rows, field.type))
            continue
        if isinstance(value, pa.ChunkedArray):
            value = value.combine_chunks() if value.num_chunks != 1 else value.chunk(0)
        if value.type != field.type:
            value = value.cast(field.type)
        arrays.append(value)
    table = pa.Table.from_arrays(arrays, schema=CANONICAL_SCHEMA)
    for name, value in (extra or {}).items():
        table = table.append_column(name, value)
    return table


def validate(table: pa.Table) -> None:
    """Assert that a table is canonical (extra columns may follow); used by tests and ``preview``."""
    head = pa.schema(list(table.schema)[: len(CANONICAL_SCHEMA)])
    if head != CANONICAL_SCHEMA:
        raise TypeError(f"table is not canonical:\n{table.schema}\nexpected:\n{CANONICAL_SCHEMA}")
