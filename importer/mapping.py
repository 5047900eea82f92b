"""Mapping files: which rows count, and what Plausible event each kept row becomes.

A mapping is a TOML file (the built-in ones live in ``mappings/``; ``--mapping web`` names
one, ``--mapping ./mine.toml`` a file of your own). It is validated on load: an unknown key
or a wrong type is an error naming the file and the key, never silently ignored.

Applying a mapping to a canonical table is vectorised: every filter is a boolean column, and
each dropped row is counted under the first filter it fails, in this order: ``bad_request``,
the non-human reasons of :mod:`importer.useragents`, ``method``, ``status``,
``static_asset``, ``url_too_long``.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from . import events as ev
from . import resources
from .readers.base import repeat_string
from .readers.tabular import MAPPABLE, TIMESTAMP_FORMATS, ColumnMap
from .useragents import Classifier

MAX_URL_BYTES = 2000

FILTER_ORDER = (
    "bad_request",
    "empty_user_agent",
    "headless_browser",
    "monitoring",
    "http_client",
    "bot",
    "method",
    "status",
    "static_asset",
    "url_too_long",
)


class MappingError(Exception):
    """A mapping file that cannot be used; the message names the file and the key."""


# The shape of a mapping file: a nested dict of key -> expected type. "*" matches any key.
_SPEC: dict[str, Any] = {
    "name": str,
    "description": str,
    "extends": str,
    "input": {
        "format": str,
        "timestamp_format": str,
        "timezone": str,
        "columns": {"*": str},
    },
    "filters": {
        "non_human": bool,
        "methods": [str],
        "statuses": [(str, int)],
        "static_extensions": [str],
        "static_files": [str],
    },
    "event": {
        "name": str,
        "scheme": str,
    },
}


def _type_name(expected) -> str:
    if isinstance(expected, tuple):
        return " or ".join(_type_name(t) for t in expected)
    if isinstance(expected, list):
        return f"a list of {_type_name(expected[0])}"
    if isinstance(expected, dict):
        return "a table"
    return {str: "a string", bool: "true or false", int: "an integer"}.get(expected, expected.__name__)


def _check(value: Any, spec: Any, key: str, origin: str) -> None:
    if isinstance(spec, dict):
        if not isinstance(value, dict):
            raise MappingError(f"{origin}: '{key}' must be a table, not {type(value).__name__}")
        for sub_key, sub_value in value.items():
            full = f"{key}.{sub_key}" if key else sub_key
            if sub_key in spec:
                _check(sub_value, spec[sub_key], full, origin)
            elif "*" in spec:
                _check(sub_value, spec["*"], full, origin)
            else:
                known = ", ".join(k for k in spec if k != "*")
                raise MappingError(f"{origin}: unknown key '{full}' (known keys here: {known})")
        return
    if isinstance(spec, list):
        if not isinstance(value, list):
            raise MappingError(f"{origin}: '{key}' must be {_type_name(spec)}, not {type(value).__name__}")
        for i, item in enumerate(value):
            _check(item, spec[0], f"{key}[{i}]", origin)
        return
    allowed = spec if isinstance(spec, tuple) else (spec,)
    if isinstance(value, bool) and bool not in allowed:
        ok = False
    else:
        ok = isinstance(value, allowed)
    if not ok:
        raise MappingError(f"{origin}: '{key}' must be {_type_name(spec)}, not {value!r}")


def _merge(base: dict, override: dict) -> dict:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


@dataclass(frozen=True)
class StatusRule:
    classes: frozenset[int] = frozenset()  # 2 for "2xx"
    codes: frozenset[int] = frozenset()

    @classmethod
    def parse(cls, items: list, origin: str) -> "StatusRule":
        classes, codes = set(), set()
        for item in items:
            text = str(item).strip().lower()
            if len(text) == 3 and text[0] in "12345" and text[1:] == "xx":
                classes.add(int(text[0]))
            elif text.isdigit() and len(text) == 3:
                codes.add(int(text))
            else:
                raise MappingError(f"{origin}: 'filters.statuses' entry {item!r} is neither a code (304) nor a class (2xx)")
        return cls(frozenset(classes), frozenset(codes))

    def mask(self, status: pa.Array) -> pa.Array:
        keep = pc.is_in(status, value_set=pa.array(sorted(self.codes), type=status.type))
        if self.classes:
            cls = pc.divide(status, pa.scalar(100, status.type))
            keep = pc.or_(keep, pc.is_in(cls, value_set=pa.array(sorted(self.classes), type=cls.type)))
        return pc.fill_null(keep, False)


@dataclass(frozen=True)
class Mapping:
    """A loaded, validated mapping."""

    name: str
    origin: str
    description: str = ""
    non_human: bool = True
    methods: tuple[str, ...] = ()
    statuses: StatusRule | None = None
    static_extensions: frozenset[str] = frozenset()
    static_files: frozenset[str] = frozenset()
    event_name: str = "pageview"
    scheme: str = "https"
    column_map: ColumnMap | None = None
    raw: dict = field(default_factory=dict, repr=False, compare=False)


def builtin_names() -> list[str]:
    return sorted(p.stem for p in resources.mappings_dir().glob("*.toml"))


def resolve(name_or_path: str, relative_to: Path | None = None) -> Path:
    """A built-in name (``web``) or a path to a TOML file -> the file's path."""
    candidate = Path(name_or_path)
    if candidate.suffix == ".toml" or "/" in name_or_path or "\\" in name_or_path:
        if not candidate.is_absolute() and relative_to is not None and not candidate.exists():
            candidate = relative_to / candidate
        if not candidate.is_file():
            raise MappingError(f"{name_or_path}: no such mapping file")
        return candidate
    builtin = resources.mappings_dir() / f"{name_or_path}.toml"
    if not builtin.is_file():
        raise MappingError(
            f"no built-in mapping named {name_or_path!r} (built-in: {', '.join(builtin_names())}); "
            "give a path to use your own file"
        )
    return builtin


def _read_toml(path: Path, chain: tuple[Path, ...] = ()) -> dict:
    origin = str(path)
    if path.resolve() in chain:
        raise MappingError(f"{origin}: 'extends' forms a loop")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise MappingError(f"{origin}: not valid TOML: {exc}") from None
    except UnicodeDecodeError:
        raise MappingError(f"{origin}: not UTF-8 text") from None
    _check(data, _SPEC, "", origin)
    if "extends" in data:
        parent = _read_toml(resolve(data["extends"], path.parent), chain + (path.resolve(),))
        parent.pop("name", None)
        parent.pop("description", None)
        data = _merge(parent, {k: v for k, v in data.items() if k != "extends"})
    return data


def load(name_or_path: str) -> Mapping:
    """Load and validate a mapping by built-in name or path."""
    path = resolve(name_or_path)
    origin = str(path)
    data = _read_toml(path)
    filters = data.get("filters", {})
    event = data.get("event", {})
    column_map = None
    if "input" in data:
        spec = data["input"]
        if "columns" not in spec:
            raise MappingError(f"{origin}: 'input' needs an 'input.columns' table")
        fmt = spec.get("timestamp_format", "iso")
        if fmt not in TIMESTAMP_FORMATS and "%" not in fmt:
            raise MappingError(
                f"{origin}: 'input.timestamp_format' is {fmt!r}; use one of {', '.join(TIMESTAMP_FORMATS)} "
                "or a strptime pattern such as '%Y-%m-%d %H:%M:%S'"
            )
        if spec.get("format") not in (None, "csv", "parquet"):
            raise MappingError(f"{origin}: 'input.format' must be 'csv' or 'parquet', not {spec['format']!r}")
        try:
            column_map = ColumnMap(
                columns=dict(spec["columns"]),
                format=spec.get("format"),
                timestamp_format=fmt,
                timezone=spec.get("timezone", "UTC"),
            )
        except ValueError as exc:
            raise MappingError(f"{origin}: 'input.columns': {exc} (mappable: {', '.join(MAPPABLE)})") from None
    name = event.get("name", "pageview")
    if not name.strip() or len(name) > 120:
        raise MappingError(f"{origin}: 'event.name' must be 1 to 120 characters")
    scheme = event.get("scheme", "https")
    if scheme not in ("http", "https"):
        raise MappingError(f"{origin}: 'event.scheme' must be 'http' or 'https'")
    return Mapping(
        name=data.get("name", path.stem),
        origin=origin,
        description=data.get("description", ""),
        non_human=filters.get("non_human", True),
        methods=tuple(m.upper() for m in filters.get("methods", [])),
        statuses=StatusRule.parse(filters["statuses"], origin) if filters.get("statuses") else None,
        static_extensions=frozenset(e.lower().lstrip(".") for e in filters.get("static_extensions", [])),
        static_files=frozenset(f.lower() for f in filters.get("static_files", [])),
        event_name=name,
        scheme=scheme,
        column_map=column_map,
        raw=data,
    )


@dataclass
class Mapped:
    """The events a batch of rows became, and how many rows each filter dropped."""

    events: pa.Table
    filtered: dict[str, int]
    rules: dict[str, int] = field(default_factory=dict)  # event rule -> rows it matched


class Mapper:
    """Applies one mapping to canonical batches; holds per-run caches (user agents)."""

    def __init__(self, mapping: Mapping, domain: str):
        self.mapping = mapping
        self.domain = domain
        self.classifier = Classifier()

    def _filters(self, table: pa.Table) -> list[tuple[str, pa.Array]]:
        """(reason, drop mask) pairs, in counting order; masks are never null."""
        m = self.mapping
        path = table.column("path").combine_chunks()
        drops: list[tuple[str, pa.Array]] = [
            ("bad_request", pc.invert(pc.fill_null(pc.starts_with(path, "/"), False))),
        ]
        if m.non_human:
            reasons = self.classifier.classify_column(table.column("user_agent").combine_chunks())
            encoded = pc.dictionary_encode(reasons)
            for reason in encoded.dictionary.to_pylist():
                if reason is not None:
                    drops.append((reason, pc.fill_null(pc.equal(reasons, reason), False)))
        if m.methods:
            keep = pc.is_in(table.column("method"), value_set=pa.array(m.methods))
            drops.append(("method", pc.invert(pc.fill_null(keep, False))))
        if m.statuses is not None:
            drops.append(("status", pc.invert(m.statuses.mask(table.column("status").combine_chunks()))))
        if m.static_extensions or m.static_files:
            drops.append(("static_asset", self._static_mask(path)))
        return drops

    def _static_mask(self, path: pa.Array) -> pa.Array:
        encoded = pc.dictionary_encode(path)
        lowered = pc.utf8_lower(encoded.dictionary)
        basename = pc.extract_regex(lowered, r"(?P<base>[^/]*)$")
        base = pc.struct_field(basename, "base")
        ext = pc.struct_field(pc.extract_regex(base, r"\.(?P<ext>[a-z0-9]+)$"), "ext")
        is_static = pc.or_(
            pc.fill_null(pc.is_in(ext, value_set=pa.array(sorted(self.mapping.static_extensions), pa.string())), False),
            pc.fill_null(pc.is_in(base, value_set=pa.array(sorted(self.mapping.static_files), pa.string())), False),
        )
        return pc.fill_null(pc.take(is_static, encoded.indices), False)

    def apply(self, table: pa.Table) -> Mapped:
        n = table.num_rows
        filtered: dict[str, int] = {}
        if n == 0:
            return Mapped(ev.empty_events(), filtered)
        remaining: pa.Array | None = None
        order = {reason: i for i, reason in enumerate(FILTER_ORDER)}
        for reason, drop in sorted(self._filters(table), key=lambda item: order.get(item[0], 99)):
            hits = drop if remaining is None else pc.and_(remaining, drop)
            count = pc.sum(hits).as_py() or 0
            if count:
                filtered[reason] = filtered.get(reason, 0) + count
            remaining = pc.invert(drop) if remaining is None else pc.and_(remaining, pc.invert(drop))
        kept = table.filter(remaining) if remaining is not None else table
        events = self._events(kept)
        url_ok = pc.less_equal(pc.binary_length(events.column("url")), MAX_URL_BYTES)
        if not pc.all(url_ok).as_py():
            too_long = pc.sum(pc.invert(url_ok)).as_py()
            filtered["url_too_long"] = filtered.get("url_too_long", 0) + too_long
            events = events.filter(url_ok)
        return Mapped(events, filtered)

    def _events(self, rows: pa.Table) -> pa.Table:
        n = rows.num_rows
        if n == 0:
            return ev.empty_events()
        host = pc.coalesce(rows.column("host"), pa.scalar(self.domain))
        query = rows.column("query")
        query_part = pc.if_else(pc.fill_null(pc.greater(pc.utf8_length(query), 0), False),
                                pc.binary_join_element_wise("?", query, ""), "")
        url = pc.binary_join_element_wise(f"{self.mapping.scheme}://", host, rows.column("path"), query_part, "")
        columns = {
            "name": repeat_string(self.mapping.event_name, n),
            "url": url,
            "domain": repeat_string(self.domain, n),
            "referrer": rows.column("referrer"),
            "props": pa.nulls(n, pa.string()),
            "user_agent": rows.column("user_agent"),
            "ip": rows.column("ip"),
            "timestamp": rows.column("timestamp"),
            "source_file": rows.column("source_file"),
            "source_line": rows.column("source_line"),
        }
        arrays = []
        for f in ev.EVENT_SCHEMA:
            value = columns[f.name]
            if isinstance(value, pa.ChunkedArray):
                value = value.combine_chunks()
            arrays.append(value.cast(f.type) if value.type != f.type else value)
        return pa.Table.from_arrays(arrays, schema=ev.EVENT_SCHEMA)
