"""How an export's columns become canonical ones: the ``[input]`` table of a mapping file.

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
walks into nested records when no column has that exact name. The readers of
:mod:`importer.readers` (``csv``, ``parquet``, ``ndjson``) apply a map; this module is the model.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pyarrow as pa

from .. import schema

# Canonical columns a map may feed, plus "url", which is split into host/path/query.
MAPPABLE = (*tuple(c for c in schema.COLUMNS if c not in ("source_file", "source_line")), "url")
TIMESTAMP_FORMATS = ("iso", "unix_s", "unix_ms", "unix_us")
INPUT_FORMATS = ("csv", "parquet", "ndjson")

# The type of a parameter bag column: key -> value, both strings.
BAG_TYPE = pa.list_(pa.struct([pa.field("key", pa.string()), pa.field("value", pa.string())]))


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

    def __post_init__(self) -> None:
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
