"""Mapping files: which rows count, and what Plausible event each kept row becomes.

A mapping is a TOML file (the built-in ones live in ``mappings/``; ``--mapping web`` names
one, ``--mapping ./mine.toml`` a file of your own). It is validated on load: an unknown key,
a wrong type, a bad pattern or a reference to a column that does not exist is one error that
names the file and the key, never silently ignored.

Applying a mapping to a canonical table is vectorised: every filter and every rule condition
is a boolean column (string conditions are evaluated once per distinct value and mapped back
to rows), templates are joins of columns, and props are built as JSON with Arrow string
kernels. Each dropped row is counted under the first filter it fails, in ``FILTER_ORDER``;
rows that a ``drop`` rule matches count under ``rule:<label>``, rows that no rule matches
under ``no_rule`` when the default is ``drop``, and events over Plausible's limits (with the
``reject`` policy) under ``limit:<what>``.
"""

from __future__ import annotations

import functools
import ipaddress
import json
import re
import tomllib
import warnings
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from . import events as ev
from . import resources, schema
from .plausible import MAX_NAME_CHARS, MAX_PROP_KEY_BYTES, MAX_PROP_VALUE_BYTES, MAX_PROPS, MAX_URL_BYTES
from .plausible import READ_PARAMS as PLAUSIBLE_PARAMS
from .readers.base import repeat_string
from .columnmap import BAG_TYPE, INPUT_FORMATS, MAPPABLE, TIMESTAMP_FORMATS, ColumnMap, ParamsSpec
from .useragents import REASONS, Classifier, synthetic_ip, synthetic_user_agent

MAX_RULES = 63  # one bit each in the per-path rule masks

FILTER_ORDER = (
    "bad_request",
    "date_window",
    "host",
    "unmatched_host",
    "ip",
    "empty_user_agent",
    "headless_browser",
    "monitoring",
    "http_client",
    "bot",
    "method",
    "status",
    "path",
    "static_asset",
    "url_too_long",
)



PARENT_RULES = ("after", "before", "none")  # where an extended mapping's rules go
_RULE_SOURCES = "\0rule sources"  # in a loaded mapping's data: (file, key) of each rule


class MappingError(Exception):
    """A mapping file that cannot be used; the message names the file and the key."""


_SCALAR = (str, int, float, bool)
_RULE_SPEC: dict[str, Any] = {
    "label": str,
    "name": str,
    "drop": bool,
    "when": {
        "path": (str, list),
        "path_regex": str,
        "status": [(str, int)],
        "method": [str],
        "columns": {"*": (str, int, float, bool, list, dict)},
    },
    "props": {"*": _SCALAR},
    "props_from": str,
    "revenue": {"amount": str, "currency": str},
    "interactive": bool,
}

# The shape of a mapping file: a nested dict of key -> expected type. "*" matches any key.
_SPEC: dict[str, Any] = {
    "name": str,
    "description": str,
    "extends": str,
    "parent_rules": str,
    "input": {
        "format": str,
        "timestamp_format": str,
        "timezone": str,
        "delimiter": str,
        "quote": bool,
        "header": [str],
        "null_values": [str],
        "columns": {"*": str},
        "extra": {"*": str},
        "params": {"column": str, "keys": [str], "bag": str, "exclude": [str], "exclude_prefixes": [str]},
    },
    "filters": {
        "non_human": bool,
        "methods": [str],
        "statuses": [(str, int)],
        "exclude_statuses": [(str, int)],
        "static_extensions": [str],
        "static_files": [str],
        "hosts": [str],
        "exclude_hosts": [str],
        "paths": [str],
        "exclude_paths": [str],
        "path_regex": str,
        "exclude_path_regex": str,
        "exclude_ips": [str],
    },
    "site": {"hosts": {"*": str}, "unmatched": str},
    "url": {
        "scheme": str,
        "host": str,
        "path": str,
        "query": str,
        "query_params": str,
        "keep_params": [str],
    },
    "event": {"name": str, "default": str, "scheme": str, "referrer": str},
    "rules": [_RULE_SPEC],
    "visitor": {
        "id": str,
        "device": str,
        "browser": str,
        "browser_version": str,
        "os": str,
        "os_version": str,
        "replace_ip": str,
        "country": str,
        "region": str,
        "city": str,
    },
    "limits": {"policy": str},
}


def _type_name(expected) -> str:
    if isinstance(expected, tuple):
        return " or ".join(_type_name(t) for t in expected)
    if isinstance(expected, list):
        return f"a list of {_type_name(expected[0])}"
    if isinstance(expected, dict):
        return "a table"
    return {str: "a string", bool: "true or false", int: "an integer", float: "a number",
            list: "a list", dict: "a table"}.get(expected, expected.__name__)


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
    def parse(cls, items: list, origin: str, key: str = "filters.statuses") -> "StatusRule":
        classes, codes = set(), set()
        for item in items:
            text = str(item).strip().lower()
            if len(text) == 3 and text[0] in "12345" and text[1:] == "xx":
                classes.add(int(text[0]))
            elif text.isdigit() and len(text) == 3:
                codes.add(int(text))
            else:
                raise MappingError(f"{origin}: '{key}' entry {item!r} is neither a code (304) nor a class (2xx)")
        return cls(frozenset(classes), frozenset(codes))

    def lookup(self) -> np.ndarray:
        """A table of 65,536 booleans: does status ``s`` (an int16 read as uint16) hold?"""
        table = self.__dict__.get("_lookup")
        if table is None:
            values = np.arange(65536)
            table = np.isin(values, sorted(self.codes)) | np.isin(values // 100, sorted(self.classes))
            table &= values < 32768  # negative int16 values: no code, no class
            object.__setattr__(self, "_lookup", table)
        return table

    def mask(self, status: pa.Array) -> pa.Array:
        keep = pc.is_in(status, value_set=pa.array(sorted(self.codes), type=status.type))
        if self.classes:
            cls = pc.divide(status, pa.scalar(100, status.type))
            keep = pc.or_(keep, pc.is_in(cls, value_set=pa.array(sorted(self.classes), type=cls.type)))
        return pc.fill_null(keep, False)


# --- patterns and templates --------------------------------------------------------------------

@functools.lru_cache(maxsize=256)
def _glob_matcher(regexes: tuple[str, ...]):
    """``fullmatch`` of Python's re for any of some glob_to_regex patterns. Those patterns are
    made of escaped literals, ``(?s:.*)``, ``[^/]*`` and ``[^/]`` between ``^`` and ``$``; for
    them Python's re and RE2 agree on every string (``fullmatch`` anchors at the very end, as
    RE2's ``$`` does, where Python's ``$`` would also match before a final newline)."""
    bodies = []
    for regex in regexes:
        if not (regex.startswith("^") and regex.endswith("$")):
            raise ValueError(f"not a glob pattern: {regex!r}")
        bodies.append(regex[1:-1])
    return re.compile("|".join(f"(?:{b})" for b in bodies)).fullmatch


# RE2 and Python's re read these escapes alike (on plain text, see _plain); any other escape,
# such as \pL, \z, \Q or a digit, makes _python_regex leave the pattern to RE2.
_SAME_ESCAPES = frozenset("dDwWsS") | frozenset(chr(c) for c in range(0x21, 0x7F) if not chr(c).isalnum())
_EXTENSION = re.compile("[a-z0-9]+")
_REPEATED_GROUP = re.compile(r"\)[*+{]")  # (on the pattern without its escaped characters)


@functools.lru_cache(maxsize=256)
def _python_regex(pattern: str) -> "re.Pattern[str] | None":
    """Python's re for an RE2 pattern when the two give the same matches and groups on plain
    text (printable ASCII, see _plain), else None.

    Conservative: an ASCII pattern whose escapes are \\d, \\w, \\s (and their negations) or
    escaped punctuation, without POSIX classes ("[:") or "{,", which RE2 reads as literal
    text and Python as a repeat, and without a group repeated more than once ("(a*)*"): the
    two engines match the same text but may capture different iterations. On plain text
    the remaining differences (Python's "$" also before a final newline, its Unicode
    classes, "\\s" taking "\\v") never show.
    """
    if not pattern.isascii() or "[:" in pattern or "{," in pattern:
        return None
    if _REPEATED_GROUP.search(re.sub(r"\\.", "", pattern)):
        return None
    i = pattern.find("\\")
    while i >= 0:
        if i + 1 >= len(pattern) or pattern[i + 1] not in _SAME_ESCAPES:
            return None
        i = pattern.find("\\", i + 2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # e.g. "possible nested set": a reading that may change
        try:
            return re.compile(pattern)
        except (re.error, Warning):
            return None


def _few_hits(rule: Rule, position: int, few: list[str], paths: pa.Array, few_bits: list[int],
              plain: bool) -> list[bool] | None:
    """Which of a few paths (``few``, also as ``paths``) a rule's path conditions accept, in
    Python (``few_bits``: the paths' literal-path bits); None when the rule has none. A path
    regex Python cannot stand in for runs in RE2."""
    if not rule.has_path_condition:
        return None
    regex_hits = None
    if rule.path_regex is not None:
        regex = _python_regex(rule.path_regex) if plain else None
        if regex is not None:
            regex_hits = [regex.search(p) is not None for p in few]
        else:
            regex_hits = _np_bool(_any_regex(paths, (rule.path_regex,))).tolist()
    if not (rule.path_literals or rule.path_regexes):
        return regex_hits
    bit = 1 << position
    glob = _glob_matcher(rule.path_regexes) if rule.path_regexes else None
    listed = [bool(b & bit) or (glob is not None and glob(p) is not None) for p, b in zip(few, few_bits)]
    return listed if regex_hits is None else [a and b for a, b in zip(listed, regex_hits)]


def glob_to_regex(pattern: str) -> str:
    """A path glob as an anchored RE2 pattern: ``*`` within a segment, ``**`` across, ``?`` one."""
    out, i = [], 0
    while i < len(pattern):
        c = pattern[i]
        if pattern.startswith("**", i):
            out.append("(?s:.*)")  # a newline too: ** means anything
            i += 2
            continue
        if c == "*":
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        else:
            out.append(re.escape(c))
        i += 1
    return "^" + "".join(out) + "$"


def _check_regex(pattern: str, origin: str, key: str) -> list[str]:
    """Validate an RE2 pattern (as Arrow runs it); return its named groups."""
    try:
        groups = list(re.compile(pattern).groupindex)
    except re.error as exc:
        raise MappingError(f"{origin}: '{key}' is not a valid regular expression: {exc}") from None
    try:
        pc.match_substring_regex(pa.array([""], pa.string()), pattern)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise MappingError(f"{origin}: '{key}' uses syntax the regex engine (RE2) lacks: {exc}") from None
    return groups


_REF = re.compile(r"\{([^{}]+)\}")


@dataclass(frozen=True)
class Template:
    """``"File Download"``, ``"{event_name}"``, ``"{category}: {action}"``: literals and references."""

    parts: tuple[tuple[bool, str], ...]  # (is_reference, text)
    source: str

    @classmethod
    def parse(cls, text: str, known: set[str], origin: str, key: str) -> "Template":
        parts: list[tuple[bool, str]] = []
        pos = 0
        escaped = text.replace("{{", "\0").replace("}}", "\1")
        for match in _REF.finditer(escaped):
            if match.start() > pos:
                parts.append((False, escaped[pos:match.start()]))
            ref = match.group(1).strip()
            if ref not in known:
                raise MappingError(
                    f"{origin}: '{key}' refers to {{{ref}}}, which is neither a column nor a regex group "
                    f"here (known: {', '.join(sorted(known))})"
                )
            parts.append((True, ref))
            pos = match.end()
        if pos < len(escaped):
            parts.append((False, escaped[pos:]))
        if any(not is_ref and ("{" in t or "}" in t) for is_ref, t in parts):
            raise MappingError(f"{origin}: '{key}' has an unbalanced brace (write {{{{ or }}}} for a literal one)")
        parts = [(r, t.replace("\0", "{").replace("\1", "}")) for r, t in parts]
        return cls(tuple(parts), text)

    @property
    def refs(self) -> list[str]:
        return [t for r, t in self.parts if r]

    @property
    def constant(self) -> str | None:
        return None if self.refs else "".join(t for _, t in self.parts)

    def render(self, values: dict[str, pa.Array], n: int) -> pa.Array:
        """Render for n rows: a null reference renders as ''; null when every reference is null."""
        if self.constant is not None:
            return repeat_string(self.constant, n)
        if len(self.parts) == 1:
            return _as_string(values[self.parts[0][1]])
        refs = [_as_string(values[t]) for t in self.refs]
        pieces = [pc.fill_null(_as_string(values[t]), "") if r else t for r, t in self.parts]
        joined = _join(*pieces, "")
        all_null = pc.is_null(refs[0])
        for ref in refs[1:]:
            all_null = pc.and_(all_null, pc.is_null(ref))
        return pc.if_else(all_null, pa.scalar(None, pa.string()), joined)


def _as_string(values) -> pa.Array:
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    if values.type != pa.string():
        values = values.cast(pa.string())
    return values


# --- the compiled mapping ----------------------------------------------------------------------

@dataclass(frozen=True)
class ColumnCondition:
    column: str
    op: str  # "equals" | "in" | "not_in" | "regex" | "present"
    values: tuple[str, ...] = ()
    pattern: str = ""
    groups: tuple[str, ...] = ()
    present: bool = True


@dataclass(frozen=True)
class Rule:
    label: str
    index: int
    drop: bool = False
    name: Template | None = None
    path_literals: tuple[str, ...] = ()  # any of these paths, or
    path_regexes: tuple[str, ...] = ()  # any of these (the globs with wildcards, compiled)
    path_regex: str | None = None
    path_groups: tuple[str, ...] = ()
    status: StatusRule | None = None
    methods: tuple[str, ...] = ()
    columns: tuple[ColumnCondition, ...] = ()
    props: tuple[tuple[str, Template], ...] = ()
    props_from: str | None = None
    revenue_amount: Template | None = None
    revenue_currency: Template | None = None
    interactive: bool | None = None

    @property
    def has_path_condition(self) -> bool:
        return bool(self.path_literals or self.path_regexes) or self.path_regex is not None


@dataclass(frozen=True)
class Mapping:
    """A loaded, validated mapping."""

    name: str
    origin: str
    description: str = ""
    non_human: bool = True
    methods: tuple[str, ...] = ()
    statuses: StatusRule | None = None
    exclude_statuses: StatusRule | None = None
    static_extensions: frozenset[str] = frozenset()
    static_files: frozenset[str] = frozenset()
    hosts: tuple[str, ...] = ()  # include globs
    exclude_hosts: tuple[str, ...] = ()
    paths: tuple[str, ...] = ()  # include regexes (from globs and path_regex)
    exclude_paths: tuple[str, ...] = ()
    exclude_networks: tuple = ()
    site_hosts: dict[str, str] = field(default_factory=dict)
    unmatched: str = "drop"  # or "domain"
    event_name: str = "pageview"
    default_drop: bool = False
    scheme: str = "https"
    url_host: Template | None = None
    url_path: Template | None = None
    url_query: Template | None = None
    referrer: Template | None = None
    query_params: str = "all"  # "all" | "plausible" | "none"
    keep_params: tuple[str, ...] = ()
    rules: tuple[Rule, ...] = ()
    visitor: dict[str, str] = field(default_factory=dict)
    limit_policy: str = "truncate"
    column_map: ColumnMap | None = None
    raw: dict = field(default_factory=dict, repr=False, compare=False)

    @property
    def rule_labels(self) -> list[str]:
        return [r.label for r in self.rules] + [self.default_label]

    @property
    def default_label(self) -> str:
        return "default (drop)" if self.default_drop else f"default ({self.event_name})"


def builtin_names() -> list[str]:
    return sorted(p.stem for p in resources.mappings_dir().glob("*.toml"))


def describe_builtins() -> list[tuple[str, str]]:
    """(name, description) of every built-in mapping; a broken file says so instead."""
    out = []
    for name in builtin_names():
        try:
            out.append((name, load(name).description))
        except MappingError as exc:
            out.append((name, f"(cannot be loaded: {exc})"))
    return out


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
    except OSError as exc:
        raise MappingError(f"{origin}: cannot be read: {exc.strerror or exc}") from None
    _check(data, _SPEC, "", origin)
    if "rules" in data:
        data[_RULE_SOURCES] = [(origin, f"rules[{j}]") for j in range(len(data["rules"]))]
    placement = data.pop("parent_rules", None)
    if placement is not None:
        _one_of(placement, PARENT_RULES, origin, "parent_rules")
        if "extends" not in data:
            raise MappingError(f"{origin}: 'parent_rules' says where the rules of the mapping this file "
                               f"extends go, but the file has no 'extends'")
    if "extends" in data:
        parent = _read_toml(resolve(data["extends"], path.parent), chain + (path.resolve(),))
        parent.pop("name", None)
        parent.pop("description", None)
        own = data.get("rules"), data.get(_RULE_SOURCES)
        data = _merge(parent, {k: v for k, v in data.items() if k != "extends"})
        if own[0] is not None:
            # The parent's rules run after this file's (the first match wins, so these come
            # first), unless the file puts them first or leaves them out.
            inherited = parent.get("rules", []), parent.get(_RULE_SOURCES, [])
            placement = placement or "after"
            for at, field_ in enumerate(("rules", _RULE_SOURCES)):
                data[field_] = (own[at] + inherited[at] if placement == "after" else
                                inherited[at] + own[at] if placement == "before" else own[at])
    return data


def _one_of(value: str, allowed: tuple[str, ...], origin: str, key: str) -> str:
    if value not in allowed:
        raise MappingError(f"{origin}: '{key}' must be one of {', '.join(repr(a) for a in allowed)}, not {value!r}")
    return value


def _column_map(spec: dict, origin: str) -> ColumnMap:
    if "columns" not in spec:
        raise MappingError(f"{origin}: 'input' needs an 'input.columns' table")
    fmt = spec.get("timestamp_format", "iso")
    if fmt not in TIMESTAMP_FORMATS and "%" not in fmt:
        raise MappingError(
            f"{origin}: 'input.timestamp_format' is {fmt!r}; use one of {', '.join(TIMESTAMP_FORMATS)} "
            "or a strptime pattern such as '%Y-%m-%d %H:%M:%S'"
        )
    if spec.get("format") not in (None, "auto", *INPUT_FORMATS):
        raise MappingError(f"{origin}: 'input.format' must be one of {', '.join(INPUT_FORMATS)}, not {spec['format']!r}")
    delimiter = spec.get("delimiter")
    if delimiter is not None and len(delimiter) != 1:
        raise MappingError(f"{origin}: 'input.delimiter' must be one character, not {delimiter!r}")
    params = None
    if "params" in spec:
        p = spec["params"]
        if "column" not in p:
            raise MappingError(f"{origin}: 'input.params' needs 'column' (the column holding the parameters)")
        params = ParamsSpec(column=p["column"], keys=tuple(p.get("keys", [])), bag=p.get("bag"),
                            exclude=frozenset(p.get("exclude", [])), exclude_prefixes=tuple(p.get("exclude_prefixes", [])))
    try:
        import zoneinfo
        zoneinfo.ZoneInfo(spec.get("timezone", "UTC"))
    except Exception:
        raise MappingError(f"{origin}: 'input.timezone' {spec.get('timezone')!r} is not an IANA time zone name") from None
    try:
        return ColumnMap(
            columns=dict(spec["columns"]),
            format=spec.get("format", "auto"),
            timestamp_format=fmt,
            timezone=spec.get("timezone", "UTC"),
            extra=dict(spec.get("extra", {})),
            params=params,
            delimiter=delimiter,
            quote=spec.get("quote", True),
            header=tuple(spec.get("header", [])),
            null_values=tuple(spec.get("null_values", [])),
        )
    except ValueError as exc:
        raise MappingError(f"{origin}: 'input': {exc} (mappable: {', '.join(MAPPABLE)})") from None


def _column_condition(column: str, spec: Any, origin: str, key: str) -> ColumnCondition:
    def text(v: Any) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, (str, int, float)):
            return str(v)
        raise MappingError(f"{origin}: '{key}' values must be strings, numbers or booleans, not {v!r}")

    if isinstance(spec, list):
        return ColumnCondition(column, "in", tuple(text(v) for v in spec))
    if not isinstance(spec, dict):
        return ColumnCondition(column, "equals", (text(spec),))
    if len(spec) != 1:
        raise MappingError(f"{origin}: '{key}' must hold exactly one of equals, in, not_in, regex, present")
    (op, value), = spec.items()
    if op == "equals":
        return ColumnCondition(column, "equals", (text(value),))
    if op in ("in", "not_in"):
        if not isinstance(value, list):
            raise MappingError(f"{origin}: '{key}.{op}' must be a list")
        return ColumnCondition(column, op, tuple(text(v) for v in value))
    if op == "regex":
        if not isinstance(value, str):
            raise MappingError(f"{origin}: '{key}.regex' must be a string")
        groups = _check_regex(value, origin, f"{key}.regex")
        return ColumnCondition(column, "regex", pattern=value, groups=tuple(groups))
    if op == "present":
        if not isinstance(value, bool):
            raise MappingError(f"{origin}: '{key}.present' must be true or false")
        return ColumnCondition(column, "present", present=value)
    raise MappingError(f"{origin}: unknown key '{key}.{op}' (known keys here: equals, in, not_in, regex, present)")


def _rules(data: dict, columns: set[str], origin: str, bags: set[str] = frozenset()) -> tuple[Rule, ...]:
    rules: list[Rule] = []
    labels: Counter = Counter()
    if len(data.get("rules", [])) > MAX_RULES:
        raise MappingError(f"{origin}: 'rules' has {len(data['rules'])} rules; at most {MAX_RULES} are supported")
    sources = data.get(_RULE_SOURCES)
    file_origin = origin
    for i, spec in enumerate(data.get("rules", [])):
        # errors name the file and the position the rule has there (extended files' too)
        origin, key = sources[i] if sources else (file_origin, f"rules[{i}]")
        drop = spec.get("drop", False)
        if drop and any(k in spec for k in ("name", "props", "props_from", "revenue", "interactive")):
            raise MappingError(f"{origin}: '{key}' drops rows, so it may not also set name, props, revenue or interactive")
        if not drop and "name" not in spec:
            raise MappingError(f"{origin}: '{key}' needs a 'name' (the event name) or 'drop = true'")
        when = spec.get("when", {})
        groups: list[str] = []
        path_regexes: list[str] = []
        path_literals: list[str] = []
        if "path" in when:
            globs = when["path"] if isinstance(when["path"], list) else [when["path"]]
            for j, g in enumerate(globs):
                if not isinstance(g, str):
                    raise MappingError(f"{origin}: '{key}.when.path[{j}]' must be a string")
                if "*" in g or "?" in g:
                    path_regexes.append(glob_to_regex(g))
                else:  # matched by a lookup shared by all rules (no regex to run)
                    path_literals.append(g)
        path_regex = when.get("path_regex")
        path_groups: list[str] = []
        if path_regex is not None:
            path_groups = _check_regex(path_regex, origin, f"{key}.when.path_regex")
            groups += path_groups
        conditions = []
        for column, cond in when.get("columns", {}).items():
            ckey = f"{key}.when.columns.{column}"
            if column not in columns:
                raise MappingError(f"{origin}: '{ckey}': no column named {column!r} (known: {', '.join(sorted(columns))})")
            condition = _column_condition(column, cond, origin, ckey)
            groups += condition.groups
            conditions.append(condition)
        known = columns | set(groups) | {"url", "domain"}
        name = Template.parse(spec["name"], known, origin, f"{key}.name") if "name" in spec else None
        if name is not None and name.constant is not None and not (0 < len(name.constant.strip()) <= MAX_NAME_CHARS):
            raise MappingError(f"{origin}: '{key}.name' must be 1 to {MAX_NAME_CHARS} characters")
        props = []
        for prop, value in spec.get("props", {}).items():
            if not prop.strip() or len(prop.encode()) > MAX_PROP_KEY_BYTES:
                raise MappingError(f"{origin}: '{key}.props' key {prop!r} must be 1 to {MAX_PROP_KEY_BYTES} bytes")
            text = ("true" if value else "false") if isinstance(value, bool) else str(value)
            props.append((prop, Template.parse(text, known, origin, f"{key}.props.{prop}")))
        if len(props) > MAX_PROPS:
            raise MappingError(f"{origin}: '{key}.props' has {len(props)} props; Plausible keeps at most {MAX_PROPS}")
        props_from = spec.get("props_from")
        if props_from is not None and props_from not in bags:
            raise MappingError(
                f"{origin}: '{key}.props_from' must name a parameter bag ([input.params] bag = ...), "
                f"not {props_from!r}" + (f" (bags here: {', '.join(sorted(bags))})" if bags else " (this mapping has none)")
            )
        revenue = spec.get("revenue")
        amount = currency = None
        if revenue is not None:
            if "amount" not in revenue or "currency" not in revenue:
                raise MappingError(f"{origin}: '{key}.revenue' needs both 'amount' and 'currency'")
            amount = Template.parse(revenue["amount"], known, origin, f"{key}.revenue.amount")
            currency = Template.parse(revenue["currency"], known, origin, f"{key}.revenue.currency")
        methods = tuple(m.upper() for m in when.get("method", []))
        status = StatusRule.parse(when["status"], origin, f"{key}.when.status") if when.get("status") else None
        label = spec.get("label") or ("drop" if drop else spec["name"])
        labels[label] += 1
        if labels[label] > 1:
            label = f"{label} #{labels[label]}"
        rules.append(Rule(
            label=label, index=i, drop=drop, name=name, path_literals=tuple(path_literals),
            path_regexes=tuple(path_regexes),
            path_regex=path_regex, path_groups=tuple(path_groups), status=status, methods=methods,
            columns=tuple(conditions), props=tuple(props), props_from=props_from,
            revenue_amount=amount, revenue_currency=currency, interactive=spec.get("interactive"),
        ))
    return tuple(rules)


def load(name_or_path: str) -> Mapping:
    """Load and validate a mapping by built-in name or path."""
    path = resolve(name_or_path)
    origin = str(path)
    data = _read_toml(path)
    filters = data.get("filters", {})
    event = data.get("event", {})
    url = data.get("url", {})
    column_map = _column_map(data["input"], origin) if "input" in data else None
    columns = set(schema.COLUMNS) | (set(column_map.extra_names) if column_map else set())

    if "name" in event and "default" in event:
        raise MappingError(f"{origin}: 'event.name' and 'event.default' say the same thing; keep one")
    default = event.get("default", event.get("name", "pageview"))
    default_drop = default == "drop"
    name = "pageview" if default_drop else default
    if not name.strip() or len(name) > MAX_NAME_CHARS:
        raise MappingError(f"{origin}: 'event.default' must be 1 to {MAX_NAME_CHARS} characters")
    scheme = url.get("scheme", event.get("scheme", "https"))
    _one_of(scheme, ("http", "https"), origin, "url.scheme" if "scheme" in url else "event.scheme")
    known = columns | {"domain"}
    templates = {part: Template.parse(url[part], known, origin, f"url.{part}") for part in ("host", "path", "query") if part in url}
    query_params = _one_of(url.get("query_params", "all"), ("all", "plausible", "none"), origin, "url.query_params")

    regex_keys = ("path_regex", "exclude_path_regex")
    for k in regex_keys:
        if k in filters:
            _check_regex(filters[k], origin, f"filters.{k}")
    paths = tuple(glob_to_regex(g) for g in filters.get("paths", [])) + ((filters["path_regex"],) if "path_regex" in filters else ())
    exclude_paths = tuple(glob_to_regex(g) for g in filters.get("exclude_paths", [])) + (
        (filters["exclude_path_regex"],) if "exclude_path_regex" in filters else ())
    networks = []
    for i, item in enumerate(filters.get("exclude_ips", [])):
        try:
            networks.append(ipaddress.ip_network(item.strip(), strict=False))
        except ValueError:
            raise MappingError(f"{origin}: 'filters.exclude_ips[{i}]' {item!r} is not an IP address or CIDR range") from None

    site = data.get("site", {})
    unmatched = _one_of(site.get("unmatched", "drop"), ("drop", "domain"), origin, "site.unmatched")
    site_hosts = {h.strip().lower(): d.strip().lower() for h, d in site.get("hosts", {}).items()}
    for host, domain in site_hosts.items():
        if not domain or "/" in domain or " " in domain:
            raise MappingError(f"{origin}: 'site.hosts.{host}' must be a site domain such as example.com, not {domain!r}")

    visitor = dict(data.get("visitor", {}))
    _one_of(visitor.get("replace_ip", "missing"), ("missing", "always"), origin, "visitor.replace_ip")
    for k, v in visitor.items():
        if k != "replace_ip" and v not in columns:
            raise MappingError(f"{origin}: 'visitor.{k}': no column named {v!r} (known: {', '.join(sorted(columns))})")

    policy = _one_of(data.get("limits", {}).get("policy", "truncate"), ("truncate", "reject"), origin, "limits.policy")
    return Mapping(
        name=data.get("name", path.stem),
        origin=origin,
        description=data.get("description", ""),
        non_human=filters.get("non_human", True),
        methods=tuple(m.upper() for m in filters.get("methods", [])),
        statuses=StatusRule.parse(filters["statuses"], origin) if filters.get("statuses") else None,
        exclude_statuses=(StatusRule.parse(filters["exclude_statuses"], origin, "filters.exclude_statuses")
                          if filters.get("exclude_statuses") else None),
        static_extensions=frozenset(e.lower().lstrip(".") for e in filters.get("static_extensions", [])),
        static_files=frozenset(f.lower() for f in filters.get("static_files", [])),
        hosts=tuple(glob_to_regex(h.lower()) for h in filters.get("hosts", [])),
        exclude_hosts=tuple(glob_to_regex(h.lower()) for h in filters.get("exclude_hosts", [])),
        paths=paths,
        exclude_paths=exclude_paths,
        exclude_networks=tuple(networks),
        site_hosts=site_hosts,
        unmatched=unmatched,
        event_name=name,
        default_drop=default_drop,
        scheme=scheme,
        url_host=templates.get("host"),
        url_path=templates.get("path"),
        url_query=templates.get("query"),
        referrer=Template.parse(event["referrer"], known, origin, "event.referrer") if "referrer" in event else None,
        query_params=query_params,
        keep_params=tuple(url.get("keep_params", [])),
        rules=_rules(data, columns, origin,
                     {column_map.params.bag} if column_map and column_map.params and column_map.params.bag else set()),
        visitor=visitor,
        limit_policy=policy,
        column_map=column_map,
        raw=data,
    )


# --- applying a mapping -----------------------------------------------------------------------

@dataclass
class Mapped:
    """The events a batch of rows became, and how many rows each filter dropped."""

    events: pa.Table
    filtered: dict[str, int]
    rules: dict[str, int] = field(default_factory=dict)  # event rule -> rows it matched


def _any_regex(values: pa.Array, patterns: tuple[str, ...]) -> pa.Array:
    """Does each value match any of the patterns (null: no)?"""
    if len(patterns) == 1:
        hit = pc.match_substring_regex(values, patterns[0])
    else:
        hit = pc.match_substring_regex(values, "|".join(f"(?:{p})" for p in patterns))
    return pc.fill_null(hit, False) if hit.null_count else hit


def _on_distinct(values: pa.Array, fn) -> pa.Array:
    """Evaluate a column function once per distinct value, then map back to rows."""
    if pa.types.is_dictionary(values.type):
        return pc.take(fn(values.dictionary), values.indices)
    encoded = pc.dictionary_encode(values)
    return pc.take(fn(encoded.dictionary), encoded.indices)


def _json_string(values: pa.Array) -> pa.Array:
    """Escape a string column for use inside JSON double quotes."""
    if not _needs_escape(values):
        return values  # nothing to escape (the usual case)
    out = pc.replace_substring(values, "\\", "\\\\")
    out = pc.replace_substring(out, '"', '\\"')
    if pc.any(pc.match_substring_regex(out, r"[\x00-\x1f]")).as_py():
        out = pc.replace_substring(out, "\n", "\\n")
        out = pc.replace_substring(out, "\r", "\\r")
        out = pc.replace_substring(out, "\t", "\\t")
        if pc.any(pc.match_substring_regex(out, r"[\x00-\x1f]")).as_py():
            fix = lambda s: None if s is None else re.sub(r"[\x00-\x1f]", lambda m: f"\\u{ord(m.group()):04x}", s)  # noqa: E731
            out = pa.array([fix(s) for s in out.to_pylist()], pa.string())
    return out


def _needs_escape(values: pa.Array) -> bool:
    """Does any value hold a backslash, a double quote or a control character? Read from the
    bytes themselves: in UTF-8 those are single bytes that no multi-byte character contains."""
    values = _chunk(values)
    if values.type != pa.string():
        return bool(pc.any(pc.match_substring_regex(values, r'[\\"\x00-\x1f]')).as_py())
    if not len(values):
        return False
    offsets = np.frombuffer(values.buffers()[1], np.int32, len(values) + 1, values.offset * 4)
    data = values.buffers()[2]
    if data is None or offsets[-1] == offsets[0]:
        return False
    raw = np.frombuffer(data, np.uint8, int(offsets[-1] - offsets[0]), int(offsets[0]))
    # bytes under null slots are not checked by Arrow either, but they can only add hits
    return bool(((raw < 0x20) | (raw == 0x22) | (raw == 0x5C)).any())


def _truncate_bytes(values: pa.Array, limit: int) -> pa.Array:
    """Cut strings to at most ``limit`` UTF-8 bytes without splitting a character (rows over it only)."""
    over = pc.fill_null(pc.greater(pc.binary_length(values), limit), False)
    if not pc.any(over).as_py():
        return values
    items = values.to_pylist()
    for i in np.flatnonzero(over.to_numpy(zero_copy_only=False)):
        items[i] = items[i].encode("utf-8")[:limit].decode("utf-8", "ignore")
    return pa.array(items, pa.string())


class Mapper:
    """Applies one mapping to canonical batches; holds per-run caches and notes for the summary."""

    def __init__(self, mapping: Mapping, domain: str, *, since=None, until=None):
        self.mapping = mapping
        self.domain = domain
        self.since = since
        self.until = until
        self.classifier = Classifier()
        self.unmatched_hosts: Counter = Counter()
        self.truncated: Counter = Counter()  # what -> events whose value was cut to Plausible's limit
        self._ip_cache: dict[str, bool] = {}
        self._visitor_ip: dict[str, str] = {}
        self._visitor_ua: dict[tuple, str] = {}
        # What filters and rules make of each distinct path, kept across batches.
        self._paths = _PathMemo(self._path_facts)
        self._run_pools: dict[str, "_RunPool"] | None = None
        self._run_generation = -1
        self._no_memo_props: set[int] = set()
        self._batch_plan: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None  # see _batch_facts
        self._verdicts: dict = {}  # see _Encoded._few
        self._path_only = {rule.index: _path_only(rule) for rule in mapping.rules}
        # the default event name, then the rules' constant names
        self._constant_names = [mapping.event_name] + sorted(
            {r.name.constant for r in mapping.rules if r.name is not None and r.name.constant is not None}
            - {mapping.event_name})

    # -- notes for the printed summary
    def notices(self) -> list[str]:
        out = []
        if self.unmatched_hosts:
            hosts = ", ".join(f"{h} ({c:,})" for h, c in self.unmatched_hosts.most_common(20))
            more = len(self.unmatched_hosts) - 20
            out.append(f"hosts not in the mapping's [site.hosts] table: {hosts}" + (f" and {more} more" if more > 0 else ""))
        labels = {"name": f"event names cut to {MAX_NAME_CHARS} characters",
                  "url": f"URLs cut to {MAX_URL_BYTES:,} bytes",
                  "props_count": f"events with more than {MAX_PROPS} props (extra props left out)",
                  "prop_key": f"prop keys cut to {MAX_PROP_KEY_BYTES} bytes",
                  "prop_value": f"prop values cut to {MAX_PROP_VALUE_BYTES:,} bytes"}
        for what, count in sorted(self.truncated.items()):
            out.append(f"{labels.get(what, what)}: {count:,}")
        return out

    # -- filters
    def _filters(self, table: pa.Table) -> list[tuple[str, pa.Array]]:
        """(reason, drop mask) pairs, in counting order; masks are never null."""
        m = self.mapping
        path = _chunk(table.column("path"))
        # Paths repeat: encoded once per batch, shared by the path filters and the rules, and
        # what the filters and rules make of each distinct path is remembered for the run.
        enc = self._path_encoding = pc.dictionary_encode(path)
        self._path_positions = self._paths.lookup(enc.dictionary)
        self._batch_plan = None
        # NumPy indexes far faster with its own index type than with Arrow's int32 indices
        self._path_rows = _positions(pc.fill_null(enc.indices, len(enc.dictionary)))
        drops: list[tuple[str, pa.Array]] = [("bad_request", self._path_fact("bad", True))]
        if self.since is not None or self.until is not None:
            ts = table.column("timestamp").combine_chunks()
            outside = pa.array(np.zeros(table.num_rows, bool))
            if self.since is not None:
                outside = pc.or_(outside, pc.fill_null(pc.less(ts, pa.scalar(self.since, schema.TIMESTAMP_TYPE)), True))
            if self.until is not None:
                outside = pc.or_(outside, pc.fill_null(pc.greater_equal(ts, pa.scalar(self.until, schema.TIMESTAMP_TYPE)), True))
            drops.append(("date_window", _chunk(outside)))
        host = table.column("host").combine_chunks()
        if m.hosts or m.exclude_hosts:
            def host_drop(values: pa.Array) -> pa.Array:
                drop = pa.array(np.zeros(len(values), bool))
                if m.hosts:
                    drop = pc.invert(_any_regex(values, m.hosts))
                if m.exclude_hosts:
                    drop = pc.or_(drop, _any_regex(values, m.exclude_hosts))
                return drop
            drops.append(("host", pc.fill_null(_on_distinct(host, host_drop), bool(m.hosts))))
        if m.site_hosts and m.unmatched == "drop":
            matched = pc.fill_null(pc.is_in(host, value_set=pa.array(sorted(m.site_hosts), pa.string())), False)
            drops.append(("unmatched_host", pc.invert(matched)))
        if m.exclude_networks:
            drops.append(("ip", self._ip_mask(table.column("ip").combine_chunks())))
        if m.non_human:
            # Rows without a user agent get one built from their device columns with [visitor].
            codes = self.classifier.classify_codes(_chunk(table.column("user_agent")),
                                                   None if m.visitor else "empty_user_agent")
            present = np.bincount(codes.astype(np.int64) + 1, minlength=len(REASONS) + 1)[1:]
            for code in np.flatnonzero(present):
                drops.append((REASONS[code], codes == code))
        if m.methods:
            method = _chunk(table.column("method"))
            if len(m.methods) == 1:  # one comparison is cheaper than a hash lookup
                keep = pc.equal(method, pa.scalar(m.methods[0], method.type))
            else:
                keep = pc.is_in(method, value_set=pa.array(m.methods, method.type))
            drops.append(("method", ~_np_bool(keep)))
        if m.statuses is not None or m.exclude_statuses is not None:
            codes = _status_codes(_chunk(table.column("status")))
            drop = np.zeros(table.num_rows, bool)
            if m.statuses is not None:
                drop = ~m.statuses.lookup()[codes]
            if m.exclude_statuses is not None:
                drop |= m.exclude_statuses.lookup()[codes]
            drops.append(("status", drop))
        if m.paths or m.exclude_paths:
            drops.append(("path", self._path_fact("path", False)))
        if m.static_extensions or m.static_files:
            drops.append(("static_asset", self._path_fact("static", False)))
        return drops

    def _path_fact(self, key: str, if_null) -> np.ndarray:
        """A per-path fact (see _path_facts) for each row of the batch."""
        per_distinct = self._paths.facts[key][self._path_positions]
        return np.append(per_distinct, np.array(if_null, per_distinct.dtype))[self._path_rows]

    def _path_facts(self, paths: pa.Array) -> dict[str, np.ndarray]:
        """What the filters and the rules' path conditions say of each of these (distinct) paths."""
        m = self.mapping
        # A few new paths (the usual case after the first batch): the filters' facts, literal
        # paths, the rules' globs and regexes, and names and props from them are worked out in
        # Python, where it gives the same answers as the kernels (see _plain, _glob_matcher,
        # _python_regex): the kernel calls would cost more than the work.
        few = paths.to_pylist() if len(paths) <= _FEW else None
        plain = few is not None and all(_plain(p) for p in few)
        if few is not None:
            facts = {"bad": np.array([not p.startswith("/") for p in few], bool)}
        else:
            facts = {"bad": ~_np_bool(pc.starts_with(paths, "/"))}
        if m.paths or m.exclude_paths:
            drop = np.zeros(len(paths), bool)
            if m.paths:
                drop = ~_np_bool(_any_regex(paths, m.paths))
            if m.exclude_paths:
                drop |= _np_bool(_any_regex(paths, m.exclude_paths))
            facts["path"] = drop
        if m.static_extensions or m.static_files:
            facts["static"] = self._static_few(few) if plain else _np_bool(self._static_mask(paths))
        bits = np.zeros(len(paths), np.uint64) if few is None else None
        literal_bits = self._literal_bits(paths, few)
        few_bits = literal_bits if few is not None else None  # (then Python ints)
        self._sync_run_pools()  # the memo may have started afresh: so do the pools it points into
        for position, rule in enumerate(m.rules):
            hit = None  # every path
            if few is not None:
                hit = _few_hits(rule, position, few, paths, few_bits, plain)
                if hit is not None:
                    bit = 1 << position
                    few_bits = [b | bit if h else b & ~bit for b, h in zip(few_bits, hit)]
            elif rule.has_path_condition:
                hit = np.zeros(len(paths), bool)
                if rule.path_literals:
                    hit |= (literal_bits >> np.uint64(position)) & np.uint64(1) == 1
                if rule.path_regexes:
                    hit |= _np_bool(_any_regex(paths, rule.path_regexes))
                if rule.path_regex is not None:
                    if rule.path_literals or rule.path_regexes:
                        hit &= _np_bool(_any_regex(paths, (rule.path_regex,)))
                    else:
                        hit = _np_bool(_any_regex(paths, (rule.path_regex,)))
                bits |= hit.astype(np.uint64) << np.uint64(position)
            memo_values: dict[str, pa.Array] = {}  # the paths and groups the rule's name and props read
            for what in self._path_only[rule.index]:
                facts[(what, rule.index)] = self._memo_ids(rule, what, paths, hit, memo_values, few, plain)
        facts["bits"] = bits if few_bits is None else np.array(few_bits, np.uint64)
        facts["first"], facts["pending"], facts["waits_on"] = self._first_and_pending(facts["bits"])
        return facts

    def _static_few(self, paths: list[str]) -> np.ndarray:
        """_static_mask for a few plain paths, in Python."""
        extensions, files = self.mapping.static_extensions, self.mapping.static_files
        out = []
        for path in paths:
            base = path.lower().rpartition("/")[2]
            _, dot, ext = base.rpartition(".")
            out.append(base in files or (dot == "." and _EXTENSION.fullmatch(ext) is not None and ext in extensions))
        return np.array(out, bool)

    def _literal_bits(self, paths: pa.Array, few: list | None = None) -> np.ndarray | list[int]:
        """Per path: the rules one of whose literal paths (globs without wildcards) it is, as bits;
        one lookup for all the rules (in Python when the paths are ``few``, a list: then as a
        list of ints)."""
        table = getattr(self, "_literal_table", None)
        if table is None:
            owners: dict[str, int] = {}
            for position, rule in enumerate(self.mapping.rules):
                for literal in rule.path_literals:
                    owners[literal] = owners.get(literal, 0) | (1 << position)
            literals = sorted(owners)
            table = self._literal_table = (pa.array(literals, pa.string()),
                                           np.array([owners[x] for x in literals] + [0], np.uint64), owners)
        literals, owner_bits, owners = table
        if not len(literals):
            return [0] * len(few) if few is not None else np.zeros(len(paths), np.uint64)
        if few is not None:
            return [owners.get(p, 0) for p in few]
        found = pc.fill_null(pc.index_in(paths, value_set=literals), len(literals))
        return owner_bits[_positions(found)]

    def _plan(self) -> dict:
        """What the rules' shape says once for the run: which rules hold on every path, which
        have no condition besides the path, and the null path's first rule and pending rules."""
        if getattr(self, "_plan_cache", None) is None:
            rules = self.mapping.rules
            one = np.uint64(1)
            everywhere = np.uint64(0)  # rules without path conditions hold for every path
            unconditional = np.uint64(0)  # rules with nothing but path conditions
            drop_bits = np.uint64(0)  # rules that drop rows
            for position, rule in enumerate(rules):
                if not rule.has_path_condition:
                    everywhere |= one << np.uint64(position)
                if not (rule.methods or rule.status is not None or rule.columns):
                    unconditional |= one << np.uint64(position)
                if rule.drop:
                    drop_bits |= one << np.uint64(position)
            self._plan_cache = {"everywhere": everywhere, "unconditional": unconditional, "drop_bits": drop_bits,
                                "index_of": np.array([-1] + [r.index for r in rules], np.intp),
                                # per rule + 1 (0: the default): does it drop the row?
                                "drops": np.array([self.mapping.default_drop] + [r.drop for r in rules], bool)}
            null_first, null_pending, null_waits_on = self._first_and_pending(np.zeros(1, np.uint64))
            self._plan_cache.update(null_first=null_first[0], null_pending=null_pending[0],
                                    null_waits_on=null_waits_on[0])
        return self._plan_cache

    def _first_and_pending(self, path_bits: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per path (its rules' path-condition bits): the first rule that holds and has no
        other condition (-1 when none), the rules with other conditions before it (bits), and
        the position + 1 of the first of those (0: none)."""
        plan = self._plan()
        one = np.uint64(1)
        bits = path_bits | plan["everywhere"]
        unconditional = plan["unconditional"]
        first = _lowest_bit(bits & unconditional)
        before = np.where(first < 0, ~np.uint64(0), (one << first.clip(0).astype(np.uint64)) - one)
        pending = bits & ~unconditional & before
        return first, pending, (_lowest_bit(pending) + 1).astype(np.uint8)

    def _ip_mask(self, ips: pa.Array) -> pa.Array:
        networks = self.mapping.exclude_networks
        cache = self._ip_cache

        def check(values: pa.Array) -> pa.Array:
            out = []
            for value in values.to_pylist():
                hit = cache.get(value)
                if hit is None:
                    try:
                        address = ipaddress.ip_address(value)
                        hit = any(address.version == n.version and address in n for n in networks)
                    except (ValueError, TypeError):
                        hit = False
                    cache[value] = hit
                out.append(hit)
            return pa.array(out, pa.bool_())

        return pc.fill_null(_on_distinct(ips, check), False)

    def _static_mask(self, path: pa.Array) -> pa.Array:
        encoded = path if pa.types.is_dictionary(path.type) else pc.dictionary_encode(path)
        lowered = pc.utf8_lower(encoded.dictionary)
        basename = pc.extract_regex(lowered, r"(?P<base>[^/]*)$")
        base = pc.struct_field(basename, "base")
        ext = pc.struct_field(pc.extract_regex(base, r"\.(?P<ext>[a-z0-9]+)$"), "ext")
        is_static = pc.or_(
            pc.fill_null(pc.is_in(ext, value_set=pa.array(sorted(self.mapping.static_extensions), pa.string())), False),
            pc.fill_null(pc.is_in(base, value_set=pa.array(sorted(self.mapping.static_files), pa.string())), False),
        )
        return pc.fill_null(pc.take(is_static, encoded.indices), False)

    # -- the whole step
    def apply(self, table: pa.Table) -> Mapped:
        n = table.num_rows
        filtered: Counter = Counter()
        rules_hit: dict[str, int] = {}
        if n == 0:
            return Mapped(ev.empty_events(), dict(filtered), rules_hit)
        remaining = np.ones(n, bool)
        order = {reason: i for i, reason in enumerate(FILTER_ORDER)}
        for reason, drop in sorted(self._filters(table), key=lambda item: order.get(item[0], 99)):
            drop = _np_bool(drop)
            hits = remaining & drop
            count = int(np.count_nonzero(hits))
            if count:
                filtered[reason] += count
                if reason == "unmatched_host":
                    hosts = pc.fill_null(_chunk(table.column("host")).filter(pa.array(hits)), "(no host)")
                    for item in pc.value_counts(hosts).to_pylist():
                        self.unmatched_hosts[item["values"]] += item["counts"]
                remaining &= ~drop
        if self.mapping.site_hosts and self.mapping.unmatched == "domain":
            # every row the filters kept (rule drops included, as they are counted after this)
            host = _chunk(table.column("host"))
            self._note_unmatched(host if remaining.all() else host.filter(pa.array(remaining)))
        enc = self._path_encoding
        choice = counts = path_rows = None
        match_later = False
        if self.mapping.rules and self._match_early:
            # Rows a rule drops are left out by the same single filter as the rows the filters
            # dropped. When the path alone decides which rows a rule drops, only those are found
            # here, and the rules are matched on the kept rows (compact and just read); else
            # every row is matched here, before the rows are taken apart.
            rows = np.flatnonzero(remaining)
            match_later = self._drops_by_path_alone()
            if match_later:
                path_rows = self._path_rows[rows]
                dropped = self._path_drops(path_rows, filtered, rules_hit)
            else:
                encoded = _Encoded.for_rows(table, rows, enc, self._path_rows, self._verdicts)
                path_rows = encoded.indices("path")
                choice = self._match(_Rows(table, rows), len(rows), encoded)
                dropped, counts = self._count_rules(choice, filtered, rules_hit)
            if dropped is not None:
                remaining[_compress(rows, dropped)] = False
                path_rows = _compress(path_rows, ~dropped)
                if choice is not None:
                    choice = _compress(choice, ~dropped)
        everything = bool(remaining.all())
        keep_mask = None if everything else pa.array(remaining)
        kept = table if everything else table.filter(keep_mask)
        if path_rows is None:
            path_rows = self._path_rows if everything else _compress(self._path_rows, remaining)
        self._hints = None
        events = self._events(kept, filtered, rules_hit, (enc.dictionary, path_rows), choice, counts, match_later)
        events = self._limits(events, filtered, self._hints)
        return Mapped(events, dict(filtered), rules_hit)

    @property
    def _match_early(self) -> bool:
        """Can rules be matched on the batch's own columns? Not when a condition reads a
        column that building the event rewrites (the referrer template, synthetic visitors)."""
        m = self.mapping
        rewritten = ({"referrer"} if m.referrer is not None else set()) | ({"ip", "user_agent"} if m.visitor else set())
        return not any(c.column in rewritten for r in m.rules for c in r.columns)

    def _drops_by_path_alone(self) -> bool:
        """Does the path alone decide, for every row of the batch, whether a rule drops it?
        Not when a rule that drops rows has a condition beyond the path, or is what rows fall
        back to when another rule's condition fails."""
        first, pending, _ = self._batch_facts()
        plan = self._plan()
        waiting = pending != 0
        return not ((pending & plan["drop_bits"]) != 0).any() and not (plan["drops"][first + 1] & waiting).any()

    def _path_drops(self, path_rows: np.ndarray, filtered: Counter, rules_hit: dict[str, int]) -> np.ndarray | None:
        """The rows a rule drops by their path alone (None: none), counted under their rule."""
        first, _, _ = self._batch_facts()
        plan = self._plan()
        per_path = plan["drops"][first + 1]
        if not per_path.any():
            return None
        dropped = per_path[path_rows]
        if not dropped.any():
            return None
        # every one of these rows is dropped: counted as _count_rules counts drops
        self._count_rules(plan["index_of"][first + 1][_compress(path_rows, dropped)], filtered, rules_hit)
        return dropped

    def _count_rules(self, choice: np.ndarray, filtered: Counter,
                     rules_hit: dict[str, int]) -> tuple[np.ndarray | None, np.ndarray]:
        """Count each rule's rows (in rule order, then the default); return the rows dropped
        (None: none) and the counts (the default's first)."""
        m = self.mapping
        counts = np.bincount(choice + 1, minlength=len(m.rules) + 1) if len(choice) else np.zeros(len(m.rules) + 1, int)
        dropped_rules = []
        for rule in m.rules:
            count = int(counts[rule.index + 1])
            if count:
                rules_hit[rule.label] = rules_hit.get(rule.label, 0) + count
                if rule.drop:
                    filtered["rule:" + rule.label] += count
                    dropped_rules.append(rule.index)
        count = int(counts[0])
        if count:
            rules_hit[m.default_label] = rules_hit.get(m.default_label, 0) + count
            if m.default_drop:
                filtered["no_rule"] += count
                dropped_rules.append(-1)
        if not dropped_rules:
            return None, counts
        dropping = np.zeros(len(m.rules) + 1, bool)
        dropping[np.array(dropped_rules) + 1] = True
        return dropping[choice + 1], counts

    def _note_unmatched(self, host: pa.Array) -> None:
        """With ``site.unmatched = "domain"``: note the hosts of the kept rows that go to
        --domain (with "drop", hosts are noted where their rows are filtered)."""
        m = self.mapping
        unmatched = pc.invert(pc.fill_null(pc.is_in(host, value_set=pa.array(sorted(m.site_hosts), pa.string())), False))
        if pc.any(unmatched).as_py():
            for item in pc.value_counts(pc.fill_null(host.filter(unmatched), "(no host)")).to_pylist():
                self.unmatched_hosts[item["values"]] += item["counts"]

    # -- events
    def _base(self, rows: pa.Table) -> dict[str, pa.Array]:
        """Columns every event of these rows shares, whatever rule it matched."""
        m = self.mapping
        n = rows.num_rows
        values = {name: _chunk(rows.column(name)) for name in rows.column_names}
        domain = repeat_string(self.domain, n)
        if m.site_hosts:
            keys = pa.array(sorted(m.site_hosts), pa.string())
            index = pc.index_in(values["host"], value_set=keys)
            mapped = pc.take(pa.array([m.site_hosts[k] for k in keys.to_pylist()], pa.string()), index)
            domain = pc.coalesce(mapped, domain)
        values["domain"] = domain
        host = _chunk(m.url_host.render(values, n) if m.url_host else values["host"])
        if host.null_count:
            host = pc.coalesce(host, domain)
        path = _chunk(m.url_path.render(values, n) if m.url_path else values["path"])
        if path.null_count:
            path = pc.fill_null(path, "/")
        query = _chunk(self._filter_query(m.url_query.render(values, n) if m.url_query else values["query"]))
        if query.null_count == len(query):
            values["url"] = _join(f"{m.scheme}://", host, path, "")
        else:
            # "?query" where there is a query; null (joined as nothing) where it is null or empty.
            query_part = _join("?", query, "")
            if pc.min(pc.binary_length(query)).as_py() == 0:
                query_part = pc.if_else(pc.equal(query, ""), pa.scalar(None, pa.string()), query_part)
            values["url"] = _join(f"{m.scheme}://", host, path, query_part, "",
                                                        null_handling="replace", null_replacement="")
        if m.referrer is not None:
            values["referrer"] = m.referrer.render(values, n)
        if m.visitor:
            self._synthesise_visitor(values, n)
        return values

    def _filter_query(self, query: pa.Array) -> pa.Array:
        m = self.mapping
        if m.query_params == "all":
            return query
        if m.query_params == "none":
            return pa.nulls(len(query), pa.string())
        keep = set(PLAUSIBLE_PARAMS) | set(m.keep_params)
        pattern = "^(?:" + "|".join(re.escape(k) for k in sorted(keep)) + ")(?:=|$)"

        def strip(distinct: pa.Array) -> pa.Array:
            parts = pc.split_pattern(distinct, "&")
            flat = pc.list_flatten(parts)
            parent = pc.list_parent_indices(parts).to_numpy(zero_copy_only=False)
            hit = pc.fill_null(pc.match_substring_regex(flat, pattern), False)
            hit_np = hit.to_numpy(zero_copy_only=False)
            offsets = np.zeros(len(distinct) + 1, np.int32)
            np.cumsum(np.bincount(parent[hit_np], minlength=len(distinct)), out=offsets[1:])
            kept = pa.ListArray.from_arrays(pa.array(offsets), flat.filter(hit))
            joined = pc.binary_join(kept, "&")
            return pc.if_else(pc.equal(joined, ""), pa.scalar(None, pa.string()), joined)

        return _on_distinct(query, strip)

    def _synthesise_visitor(self, values: dict[str, pa.Array], n: int) -> None:
        """Exports without IPs or user agents: a stable address and a built UA per visitor."""
        v = self.mapping.visitor
        if "id" in v:
            ids = values[v["id"]]
            cache = self._visitor_ip

            def addresses(distinct: pa.Array) -> pa.Array:
                out = []
                for value in distinct.to_pylist():
                    if value is None:
                        out.append(None)
                        continue
                    if value not in cache:
                        cache[value] = synthetic_ip(value)
                    out.append(cache[value])
                return pa.array(out, pa.string())

            synthetic = _on_distinct(ids, addresses)
            values["ip"] = synthetic if v.get("replace_ip") == "always" else pc.coalesce(values["ip"], synthetic)
        parts = [k for k in ("device", "browser", "browser_version", "os", "os_version") if k in v]
        missing_ua = pc.is_null(values["user_agent"])
        if not parts and pc.any(missing_ua).as_py():
            values["user_agent"] = pc.coalesce(values["user_agent"], pa.scalar(synthetic_user_agent()))
        elif parts and pc.any(missing_ua).as_py():
            fields = [pc.fill_null(values[v[k]], "\x00") for k in parts]
            combo = _join(*fields, "\x01")
            cache = self._visitor_ua

            def agents(distinct: pa.Array) -> pa.Array:
                out = []
                for value in distinct.to_pylist():
                    if value not in cache:
                        items = [None if x == "\x00" else x for x in value.split("\x01")]
                        cache[value] = synthetic_user_agent(**dict(zip(parts, items)))
                    out.append(cache[value])
                return pa.array(out, pa.string())

            values["user_agent"] = pc.coalesce(values["user_agent"], _on_distinct(combo, agents))

    def _batch_facts(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per distinct path of the batch, and one more for the null path: the first rule that
        holds with no condition beyond the path (-1: none), the rules with such conditions to
        try before it (bits), and the position + 1 of the first of those (0: none)."""
        if self._batch_plan is None:
            plan = self._plan()
            facts = self._paths.facts
            self._batch_plan = tuple(np.append(facts[k][self._path_positions], plan["null_" + k])
                                     for k in ("first", "pending", "waits_on"))
        return self._batch_plan

    def _match(self, values, n: int, encoded: "_Encoded") -> np.ndarray:
        """The index of the first rule each row matches; -1 for none (the default).

        Worked out per distinct path first: the first rule whose path conditions hold and that
        has no other condition, and which rules with other conditions come before it. Rows
        with no such rule before take that rule at once; the others' conditions are evaluated
        on the candidate rows only, rule by rule."""
        rules = self.mapping.rules
        plan = self._plan()
        first, pending, waits_on = self._batch_facts()
        path_rows = encoded.indices("path")
        choice = plan["index_of"][first + 1][path_rows]
        if not pending.any():
            return choice
        present = int(np.bitwise_or.reduce(pending))
        # A row can be a candidate of several rules only when its path has several pending bits;
        # only then must each rule skip the rows an earlier one took.
        if not (pending & (pending - np.uint64(1))).any():
            # Each candidate row waits on one rule: the rows are grouped by it with one stable
            # (radix) sort of a one-byte code per row, in row order within each rule.
            row_code = waits_on[path_rows]  # 0: no rule to wait on, else its position + 1
            by_rule = np.argsort(row_code, kind="stable")
            bounds = np.cumsum(np.bincount(row_code, minlength=len(rules) + 1))
            for position, rule in enumerate(rules):
                if (present >> position) & 1:
                    candidates = by_rule[bounds[position]:bounds[position + 1]]
                    ok = self._conditions_hold(rule, candidates, encoded)
                    choice[_compress(candidates, ok)] = rule.index
            return choice
        todo = np.flatnonzero((pending != 0)[path_rows])
        todo_bits = pending[path_rows[todo]]  # each candidate row's rules, found per rule by a bitwise and
        open_rows = np.ones(len(todo), bool)
        # Rows that are candidates of several rules: a column their regex conditions read is
        # encoded once for all of them (else each rule's candidates are encoded on their own).
        shared = self._shared_columns(rules, present, todo_bits, encoded, todo)
        for position, rule in enumerate(rules):
            if not (present >> position) & 1:  # no candidate row (unconditional rules never are)
                continue
            local = np.flatnonzero(todo_bits & np.uint64(1 << position))
            local = local[open_rows[local]]
            if not len(local):
                continue
            ok = self._conditions_hold(rule, todo[local], encoded, shared, local)
            matched = _compress(local, ok)
            choice[todo[matched]] = rule.index
            open_rows[matched] = False
        return choice

    @staticmethod
    def _conditions_hold(rule: Rule, candidates: np.ndarray, encoded: "_Encoded", shared: dict | None = None,
                         local: np.ndarray | None = None) -> np.ndarray:
        """Which of a rule's candidate rows meet its conditions beyond the path (``shared``:
        columns encoded for several rules' candidates, ``local`` these rows' places there)."""
        ok = np.ones(len(candidates), bool)
        if not len(candidates):
            return ok
        if rule.methods:
            ok &= encoded.on_rows("method", ("in",) + rule.methods, candidates,
                                  lambda v, r=rule: pc.is_in(v, value_set=pa.array(r.methods)))
        if rule.status is not None and ok.any():
            ok &= encoded.status_mask(rule.status, candidates)
        for cond in rule.columns:
            if not ok.any():
                break
            if cond.op == "regex" and shared and cond.column in shared:
                dictionary, codes, at = shared[cond.column]
                ok &= _np_bool(_condition(dictionary, cond))[codes[at[local]]]  # a null value: no
            elif cond.op == "regex":
                ok &= encoded.on_rows(cond.column, (cond.op, cond.pattern), candidates,
                                      lambda d, c=cond: _condition(d, c), distinct=True)
            else:
                ok &= encoded.on_rows(cond.column, (cond.op, cond.values, cond.present), candidates,
                                      lambda v, c=cond: _condition(v, c))
        return ok

    @staticmethod
    def _shared_columns(rules, present: int, todo_bits: np.ndarray, encoded: "_Encoded", todo: np.ndarray) -> dict:
        """Columns that regex conditions of several rules read: taken at the union of those
        rules' candidate rows (``todo`` rows, ``todo_bits`` the rules each is a candidate of)
        and encoded once, so each condition runs on the distinct values.
        column -> (distinct values, code per taken row, position among the taken rows per
        candidate row (-1: not taken))."""
        users: dict[str, int] = {}
        for position, rule in enumerate(rules):
            if (present >> position) & 1:
                for cond in rule.columns:
                    if cond.op == "regex":
                        users[cond.column] = users.get(cond.column, 0) | (1 << position)
        shared = {}
        for column, mask in users.items():
            if mask & (mask - 1) == 0:
                continue  # one rule only: evaluated on its own candidates
            local = np.flatnonzero(todo_bits & np.uint64(mask))
            if not len(local):
                continue
            enc = pc.dictionary_encode(_as_string(encoded.column_at(column, todo[local])), null_encoding="encode")
            at = np.full(len(todo), -1, np.int64)
            at[local] = np.arange(len(local))
            shared[column] = (enc.dictionary, _positions(enc.indices), at)
        return shared

    def _events(self, rows: pa.Table, filtered: Counter, rules_hit: dict[str, int],
                path_encoding: tuple[pa.Array, np.ndarray] | None = None,
                choice: np.ndarray | None = None, counts: np.ndarray | None = None,
                match_now: bool = False) -> pa.Table:
        """Columns that do not depend on the rule are built once for all rows. Name, props and
        revenue are built per rule, on that rule's rows only, into a pool; one ``take`` per
        column then puts every row's value in place (constant names cost nothing per row).

        ``choice`` and ``counts``: the rules matched and counted before the rows were
        filtered; ``match_now``: match and count them here (no rule drops any of these rows)."""
        m = self.mapping
        n = rows.num_rows
        if n == 0:
            return ev.empty_events()
        values = self._base(rows)
        self._props_rejected = False
        encoded = _Encoded(values, self._verdicts)
        if path_encoding is not None:
            encoded.preload("path", *path_encoding)
        counted = choice is not None or match_now  # matched and counted: rows a rule drops are gone
        if choice is None and m.rules:
            choice = self._match(values, n, encoded)
            if match_now:
                dropped, counts = self._count_rules(choice, filtered, rules_hit)
                assert dropped is None, "a row was matched late although a rule could drop it"
        by_index = {r.index: r for r in m.rules}
        constant_at = {name: i for i, name in enumerate(self._constant_names)}  # also the run name pool's first values
        keep = np.ones(n, bool)
        pools = {k: _Pool(pa.nulls(1, pa.string()), n) for k in ("revenue_amount", "revenue_currency")}
        name_index = np.zeros(n, np.int64)  # constants[0]: the default name
        interactive = None
        order = [r.index for r in m.rules] + [-1]
        props_index = None
        done: dict[int, tuple[bool, bool]] = {}  # rule -> (name, props) already in place
        if counted:
            # Rules were matched (and counted) on the batch. Names and props that are constant
            # or depend on the path alone are looked up per (rule, distinct path) in one go;
            # the run's memo works them out once per distinct path. Only the other rules'
            # rows are gathered and built group by group.
            # (``counts``, made before rows a rule drops were left out, are used for other rules only)
            d = len(self._path_positions)
            path_rows = encoded.indices("path")
            name_table = np.zeros((len(m.rules) + 1, d + 1), np.int32)  # per rule + 1 (0: the default), per path
            props_table = None
            for rule in m.rules:
                if not counts[rule.index + 1] or rule.drop:
                    continue
                row = rule.index + 1
                name_ids, props_ids = self._from_memo(rule)
                name_done = props_done = False
                if rule.name.constant is not None:
                    name_table[row] = constant_at[rule.name.constant]
                    name_done = True
                elif name_ids is not None:
                    name_table[row, :d], name_table[row, d] = name_ids, -1
                    name_done = True
                if not rule.props and rule.props_from is None:
                    props_done = True
                elif props_ids is not None:
                    if props_table is None:
                        props_table = np.zeros((len(m.rules) + 1, d + 1), np.int32)
                    props_table[row, :d], props_table[row, d] = props_ids, -1
                    props_done = True
                done[rule.index] = (name_done, props_done)
            flat = (choice + 1) * (d + 1) + path_rows  # one position for both tables
            name_index = name_table.ravel()[flat]
            if props_table is not None:
                props_index = props_table.ravel()[flat]
            for column, at in ((name_index, 0), (props_index, 1)):
                if column is not None and column.min() < 0:  # a row the memo did not cover
                    for index in np.unique(choice[column < 0]):
                        flags = list(done[int(index)])
                        flags[at] = False
                        done[int(index)] = tuple(flags)
            need_rows = [r.index for r in m.rules if r.index in done and (
                not all(done[r.index]) or r.revenue_amount is not None or r.interactive is False)]
            groups = {index: np.flatnonzero(choice == index) for index in need_rows}
        elif choice is None:
            groups = {-1: np.arange(n)}
        else:  # each rule's rows, in row order: one stable sort instead of a scan per rule
            by_rule = np.argsort((choice + 1).astype(np.int8), kind="stable")  # radix sort (<= 64 rules)
            bounds = np.cumsum(np.bincount(choice + 1, minlength=len(m.rules) + 1))
            starts = np.concatenate([[0], bounds[:-1]])
            groups = {index: by_rule[starts[index + 1]:bounds[index + 1]] for index in order}
        # the run pools as they are now (the memo may have added to them above)
        self._sync_run_pools()
        pools["name"] = _Pool(self._run_pools["name"].array(), n)
        pools["props"] = _Pool(self._run_pools["props"].array(), n)
        pools["props"].index = props_index
        for index in order:
            where = groups.get(index, ())
            if not len(where):
                continue
            rule = by_index.get(index)
            name_done, props_done = done.get(index, (False, False))
            if not counted:
                label = rule.label if rule else m.default_label
                rules_hit[label] = rules_hit.get(label, 0) + len(where)
                if (rule is not None and rule.drop) or (rule is None and m.default_drop):
                    filtered["rule:" + rule.label if rule else "no_rule"] += len(where)
                    keep[where] = False
                    continue
            if rule is None:
                continue  # the default name, no props
            count = len(where)
            subset = _Subset(values, where, encoded)
            if not (name_done or rule.name.constant is not None) or rule.revenue_amount is not None or not props_done:
                for cond in rule.columns:
                    if cond.op == "regex" and cond.groups:
                        subset.groups(cond.column, cond.pattern, cond.groups)
                if rule.path_groups:
                    subset.groups("path", rule.path_regex, rule.path_groups)
            if name_done:
                pass
            elif rule.name.constant is not None:
                name_index[where] = constant_at[rule.name.constant]
            else:
                if count <= _FEW_ROWS:
                    names = pa.array(_render_few(rule, "name", {r: subset[r] for r in rule.name.refs}, count), pa.string())
                else:
                    names = subset.per_distinct(rule.name.refs, rule.name.render, count)
                name_index[where] = pools["name"].add(names)
            if not props_done and (rule.props or rule.props_from is not None):
                pools["props"].place(where, self._props(rule, subset, count))
            if rule.revenue_amount is not None:
                amount, currency = _revenue(rule.revenue_amount.render(subset, count),
                                            rule.revenue_currency.render(subset, count))
                pools["revenue_amount"].place(where, amount)
                pools["revenue_currency"].place(where, currency)
            if rule.interactive is False:
                if interactive is None:
                    interactive = np.ones(n, bool)
                interactive[where] = False
        selected = None if keep.all() else np.flatnonzero(keep)
        if selected is not None and not len(selected):
            return ev.empty_events()
        total = n if selected is None else len(selected)
        columns: dict[str, pa.Array] = {}
        if selected is not None:
            mask = pa.array(keep)
            for k in ("url", "domain", "referrer", "user_agent", "ip", "timestamp", "source_file", "source_line"):
                columns[k] = _chunk(values[k]).filter(mask)
        else:
            for k in ("url", "domain", "referrer", "user_agent", "ip", "timestamp", "source_file", "source_line"):
                columns[k] = values[k]
        # Names are checked against Plausible's limits once per distinct value (see _limits).
        names = pools["name"].array()
        rows_name = name_index if selected is None else name_index[selected]
        if len(names) == 1 or not rows_name.any():
            columns["name"] = repeat_string(names[0].as_py(), total) if names[0].is_valid else pa.nulls(total, pa.string())
        else:
            columns["name"] = names.take(pa.array(rows_name))
        run_blank, run_long = self._run_pools["name"].name_checks()
        if len(names) > len(run_blank):  # names built on this batch's rows
            blank, long_name = _name_checks(names.slice(len(run_blank)))
            blank, long_name = np.concatenate([run_blank, blank]), np.concatenate([run_long, long_name])
        else:
            blank, long_name = run_blank, run_long
        self._hints = {"props_rejects": self._props_rejected,
                       "name_blank": blank[rows_name] if blank.any() else None,
                       "name_long": long_name[rows_name] if long_name.any() else None}
        for k in ("props", "revenue_amount", "revenue_currency"):
            columns[k] = pools[k].column(selected, total)
        if interactive is None:
            columns["interactive"] = pa.nulls(total, pa.bool_())
        else:
            flags = interactive if selected is None else interactive[selected]
            # false where a rule set it, else null: the validity bits, and all-zero values
            validity = np.packbits(~flags, bitorder="little")
            columns["interactive"] = pa.Array.from_buffers(
                pa.bool_(), total, [pa.py_buffer(validity), pa.py_buffer(np.zeros(len(validity), np.uint8))])
        arrays = []
        for f in ev.EVENT_SCHEMA:
            value = _chunk(columns[f.name])
            arrays.append(value.cast(f.type) if value.type != f.type else value)
        table = pa.Table.from_arrays(arrays, schema=ev.EVENT_SCHEMA)
        for k in ev.LOCATION_FIELDS:  # an export's visitor location, for the backfill
            if k in m.visitor:
                value = _chunk(values[m.visitor[k]]).cast(pa.string())
                table = table.append_column(k, value if selected is None else value.take(pa.array(selected)))
        return table

    def _sync_run_pools(self) -> None:
        """Run-wide pools of names and props the path memo points into (afresh with the memo)."""
        if self._run_pools is None or self._run_generation != self._paths.generation:
            self._run_pools = {"name": _RunPool(pa.array(self._constant_names, pa.string())),
                               "props": _RunPool(pa.nulls(1, pa.string()))}
            self._run_generation = self._paths.generation

    def _from_memo(self, rule: Rule) -> tuple[np.ndarray | None, np.ndarray | None]:
        """Per distinct path of the batch: positions of the rule's name and props in the run
        pools, when those depend on the path alone (else None: they are built on the rows).
        Paths the rule's path conditions reject get -1."""
        facts = self._paths.facts
        out = []
        for what in ("name", "props"):
            ids = facts.get((what, rule.index))
            if ids is None or (what == "props" and rule.index in self._no_memo_props):
                out.append(None)
            else:
                out.append(ids[self._path_positions])
        return out[0], out[1]

    def _memo_ids(self, rule: Rule, what: str, paths: pa.Array, hit: np.ndarray | list[bool] | None,
                  values: dict, few: list | None = None, plain: bool = False) -> np.ndarray:
        """A rule's name or props for each of these (new, distinct) paths its path conditions
        accept (``hit``; None: all), added to the run pool: their positions there, -1 elsewhere.
        ``values`` keeps the accepted paths and their regex groups for the rule's next call
        (Python lists when the paths are ``few``, also as a list)."""
        ids = np.full(len(paths), -1, np.int64)
        if hit is None:
            need = np.arange(len(paths))
        else:
            need = [i for i, h in enumerate(hit) if h] if isinstance(hit, list) else np.flatnonzero(hit)
        if not len(need) or (what == "props" and rule.index in self._no_memo_props):
            return ids
        if not values and few is not None:
            values["path"] = [few[i] for i in need]
            if rule.path_groups:
                regex = _python_regex(rule.path_regex) if plain else None
                if regex is not None:  # (the accepted paths all match)
                    extracted = [regex.search(p).groupdict("") for p in values["path"]]
                else:
                    found = pc.extract_regex(paths, rule.path_regex).to_pylist()
                    extracted = [found[i] for i in need]
                for g in rule.path_groups:
                    values[g] = [groups[g] for groups in extracted]
        elif not values:
            values["path"] = paths if len(need) == len(paths) else paths.take(pa.array(need))
            if rule.path_groups:
                extracted = pc.extract_regex(values["path"], rule.path_regex)
                for g in rule.path_groups:
                    values[g] = pc.struct_field(extracted, g)
        small = _render_few(rule, what, values, len(need)) if len(need) <= _FEW else None
        if small is _OVER_LIMIT:
            self._no_memo_props.add(rule.index)  # limits are applied per row
            return ids
        if small is None:  # the kernels do the work: on Arrow columns
            for key, value in values.items():
                if isinstance(value, list):
                    values[key] = pa.array(value, pa.string())
        if small is not None:
            out = pa.array(small, pa.string())
        elif what == "name":
            out = rule.name.render(values, len(need))
        else:
            self._over_limit = False
            single = len(rule.props) == 1  # then the pair comes braced, as in _props
            fragment = self._template_pairs(rule, values, len(need), None, braces=single)
            if self._over_limit:
                self._no_memo_props.add(rule.index)  # limits are applied per row
                return ids
            out = fragment if single else _join("{", fragment, "}", "")  # fragment is null or not empty
        ids[need] = self._run_pools[what].add(out)
        return ids

    def _props(self, rule: Rule | None, values, n: int) -> pa.Array:
        """Props as a JSON object per row (null when none): template props, then the bag's."""
        if rule is None or (not rule.props and rule.props_from is None):
            return pa.nulls(n, pa.string())
        refs = [r for _, t in rule.props for r in t.refs]
        if n <= _FEW_ROWS and rule.props_from is None:
            # A few rows: the kernel calls would cost more than rendering them in Python.
            small = _render_few(rule, "props", {r: values[r] for r in refs}, n)
            if isinstance(small, list):
                return pa.array(small, pa.string())
        bad = np.zeros(n, bool)
        braces = len(rule.props) == 1 and rule.props_from is None  # one prop: the pair comes braced
        if rule.props and refs:
            # All template props at once, per distinct value when they share a basis column.
            self._over_limit = False
            fragment = values.per_distinct(
                refs, lambda v, count: self._template_pairs(rule, v, count, None, braces), n)
            if self._over_limit:
                fragment = self._template_pairs(rule, values, n, bad, braces)  # exact per-row limits handling
        elif rule.props:
            fragment = self._template_pairs(rule, values, n, bad, braces)
        pieces = [fragment] if rule.props else []
        if rule.props_from is not None:
            pieces.append(self._bag_pairs(_chunk(values[rule.props_from]), [k for k, _ in rule.props], n, bad))
        if len(pieces) == 1:
            joined = pieces[0]
        else:
            joined = _join_present(pieces, ",")
        props = joined if braces else _join("{", joined, "}", "")  # joined is null or not empty
        if bad.any():
            self._props_rejected = True
            # Marked with a sentinel that _limits turns into a rejection.
            props = pc.if_else(pa.array(bad), pa.scalar(_REJECT_PROPS), props)
        return props

    def _template_pairs(self, rule: Rule, values, n: int, bad: np.ndarray | None, braces: bool = False) -> pa.Array:
        """'"k":"v","k2":"v2"' for a rule's template props (null when none has a value); with
        ``braces`` and a single prop, '{"k":"v"}' (one join fewer).

        With ``bad`` None (per distinct value), a value over Plausible's limit yields the
        marker _OVER_LIMIT so the caller redoes the work per row, where limits are applied.
        """
        braces = braces and len(rule.props) == 1
        reject = self.mapping.limit_policy == "reject"
        pieces = []
        for key, template in rule.props:
            value = template.render(values, n)
            ok = _not_blank(value)  # None: no value is null or blank
            longest = _longest_bytes(value)
            if longest is not None and longest > MAX_PROP_VALUE_BYTES:
                over = pc.fill_null(pc.greater(pc.binary_length(value), MAX_PROP_VALUE_BYTES), False)
                if bad is None:
                    self._over_limit = True
                    return pc.if_else(over, pa.scalar(_OVER_LIMIT), pa.nulls(n, pa.string()))
                if reject:
                    bad |= over.to_numpy(zero_copy_only=False)
                else:
                    self.truncated["prop_value"] += pc.sum(over).as_py()
                    value = _truncate_bytes(value, MAX_PROP_VALUE_BYTES)
            pair = _join(("{" if braces else "") + f'"{_json_text(key)}":"', _json_string(value),
                         '"}' if braces else '"', "")
            pieces.append(pair if ok is None else pc.if_else(ok, pair, pa.scalar(None, pa.string())))
        if len(pieces) == 1:
            return pieces[0]
        return _join_present(pieces, ",")

    def _bag_pairs(self, bag: pa.Array, taken: list[str], n: int, bad: np.ndarray) -> pa.Array:
        """A parameter bag -> per row '"k":"v",...' (null when empty), within Plausible's limits."""
        if bag.type != BAG_TYPE:
            raise MappingError(f"{self.mapping.origin}: props_from names a column that is not a parameter bag")
        reject = self.mapping.limit_policy == "reject"
        flat = pc.list_flatten(bag)
        parent = pc.list_parent_indices(bag).to_numpy(zero_copy_only=False).astype(np.int64)
        key, val = pc.struct_field(flat, "key"), pc.struct_field(flat, "value")
        ok = pc.fill_null(pc.greater(pc.utf8_length(pc.utf8_trim_whitespace(val)), 0), False)
        ok = pc.and_(ok, pc.fill_null(pc.greater(pc.utf8_length(key), 0), False))
        if taken:
            ok = pc.and_(ok, pc.invert(pc.fill_null(pc.is_in(key, value_set=pa.array(taken, pa.string())), False)))
        okn = ok.to_numpy(zero_copy_only=False)
        parent, key, val = _compress(parent, okn), key.filter(ok), val.filter(ok)
        limit = MAX_PROPS - len(taken)
        counts = np.bincount(parent, minlength=n)
        if (counts > limit).any():
            over_rows = counts > limit
            if reject:
                bad |= over_rows
            else:
                self.truncated["props_count"] += int(over_rows.sum())
                rank = np.arange(len(parent)) - np.repeat(np.cumsum(counts) - counts, counts)
                keep = rank < limit
                parent, key, val = _compress(parent, keep), key.filter(pa.array(keep)), val.filter(pa.array(keep))
        for what, limit_bytes in (("prop_key", MAX_PROP_KEY_BYTES), ("prop_value", MAX_PROP_VALUE_BYTES)):
            column = key if what == "prop_key" else val
            over = pc.fill_null(pc.greater(pc.binary_length(column), limit_bytes), False).to_numpy(zero_copy_only=False)
            if over.any():
                if reject:
                    bad[np.unique(parent[over])] = True
                else:
                    self.truncated[what] += int(len(np.unique(parent[over])))
                    if what == "prop_key":
                        key = _truncate_bytes(key, limit_bytes)
                    else:
                        val = _truncate_bytes(val, limit_bytes)
        pairs = _join('"', _json_string(key), '":"', _json_string(val), '"', "")
        offsets = np.zeros(n + 1, np.int32)
        np.cumsum(np.bincount(parent, minlength=n), out=offsets[1:])
        joined = pc.binary_join(pa.ListArray.from_arrays(pa.array(offsets), pairs), ",")
        return pc.if_else(pa.array(offsets[1:] > offsets[:-1]), joined, pa.scalar(None, pa.string()))

    def _limits(self, events: pa.Table, filtered: Counter, hints: dict | None = None) -> pa.Table:
        """Plausible's limits on each event. ``hints`` from _events say which checks can be
        skipped or were already made on the distinct names (None: check every row)."""
        n = events.num_rows
        if n == 0:
            return events
        reject = self.mapping.limit_policy == "reject"
        drop = np.zeros(n, bool)
        if hints is None or hints["props_rejects"]:
            props_bad = _np_bool(pc.equal(events.column("props"), _REJECT_PROPS))
            if props_bad.any():
                filtered["limit:props"] += int(props_bad.sum())
                drop |= props_bad
        name = events.column("name")
        if hints is None:
            blank = _np_bool(pc.fill_null(pc.equal(pc.utf8_length(pc.utf8_trim_whitespace(name)), 0), True))
            long_name = _np_bool(pc.greater(pc.utf8_length(name), MAX_NAME_CHARS))
        else:
            blank, long_name = hints["name_blank"], hints["name_long"]
        if blank is not None:
            hits = int(np.count_nonzero(blank & ~drop))
            if hits:
                filtered["limit:empty_name"] += hits
                drop |= blank
        cut = False
        if long_name is not None:
            hits = int(np.count_nonzero(long_name & ~drop))
            if hits and reject:
                filtered["limit:name"] += hits
                drop |= long_name
            elif hits:
                self.truncated["name"] += hits
                cut = True
        long_url = _np_bool(pc.greater(pc.binary_length(events.column("url")), MAX_URL_BYTES))
        hits = int(np.count_nonzero(long_url & ~drop))
        if hits:
            # A cut URL would point somewhere else: over-long URLs are always left out.
            filtered["url_too_long"] += hits
            drop |= long_url
        if cut:
            events = events.set_column(0, "name", _chunk(pc.utf8_slice_codeunits(name, 0, MAX_NAME_CHARS)))
        if drop.any():
            events = events.filter(pa.array(~drop))
        return events


_REJECT_PROPS = "\x00reject"
_OVER_LIMIT = "\x00over"


def _path_only(rule: Rule) -> tuple[str, ...]:
    """Which of the rule's name and props depend on nothing but the path (and its regex
    groups), so can be worked out once per distinct path for the run."""
    basis = {"path", *rule.path_groups}
    out = ()
    if rule.name is not None and rule.name.constant is None and set(rule.name.refs) <= basis:
        out += ("name",)
    if rule.props and rule.props_from is None and all(set(t.refs) <= basis for _, t in rule.props):
        out += ("props",)
    return out


_FEW = 256  # distinct values few enough to render in Python (the kernel calls cost more)
_FEW_ROWS = 64  # rows few enough to render in Python, each on its own


def _plain(text: str | None) -> bool:
    """Printable ASCII (or null): text Arrow's kernels and Python's str methods treat alike
    (the only whitespace is the space, the only JSON escapes are backslash and quote)."""
    return text is None or (text.isascii() and text.isprintable())


def _render_py(template: Template, columns: dict[str, list], i: int) -> str | None:
    """Template.render for one value (same rules: a null reference renders as '', null when
    every reference is null; a template of a single reference is that value)."""
    if template.constant is not None:
        return template.constant
    if len(template.parts) == 1:
        return columns[template.parts[0][1]][i]
    if all(columns[t][i] is None for r, t in template.parts if r):
        return None
    return "".join((columns[t][i] or "") if r else t for r, t in template.parts)


def _render_few(rule: Rule, what: str, values: dict[str, pa.Array], n: int):
    """A rule's name, or props JSON (as _template_pairs then the braces), for a few distinct
    values, in Python: a list of strings, _OVER_LIMIT when a prop value is over Plausible's
    limit, or None when a value is not plain text (the Arrow kernels then do the work)."""
    templates = [rule.name] if what == "name" else [t for _, t in rule.props]
    refs = {r for t in templates for r in t.refs}
    columns = {r: values[r] if isinstance(values[r], list) else _as_string(values[r]).to_pylist() for r in refs}
    if what == "name":
        return [_render_py(rule.name, columns, i) for i in range(n)]
    if not all(_plain(v) for r in refs for v in columns[r]):
        return None
    if not all(_plain(t) for tpl in templates for _, t in tpl.parts):
        return None
    heads = [f'"{_json_text(key)}":"' for key, _ in rule.props]
    out = []
    for i in range(n):
        present = []
        for head, template in zip(heads, templates):
            value = _render_py(template, columns, i)
            if value is None:
                continue
            if len(value) > MAX_PROP_VALUE_BYTES:  # ASCII: one byte per character
                return _OVER_LIMIT
            if value.strip(" ") != "":
                present.append(head + value.replace("\\", "\\\\").replace('"', '\\"') + '"')
        out.append("{" + ",".join(present) + "}" if present else None)
    return out


def _join_present(pieces: list[pa.Array], separator: str) -> pa.Array:
    """Join strings row-wise, skipping nulls; null where all are null.

    (``binary_join_element_wise(..., null_handling="skip")`` loses rows whose inputs are all
    null in the pyarrow this was written against, so the pairs are folded one by one.)
    """
    out = pieces[0]
    for piece in pieces[1:]:
        both = _join(out, piece, separator)
        out = pc.coalesce(both, out, piece)
    return out


def _not_blank(values: pa.Array) -> pa.Array | None:
    """Which values are neither null nor blank (only whitespace); None when all are, which the
    first bytes show without a kernel call in the usual case: a blank value starts with an
    ASCII control or space, or with a multi-byte character (the Unicode spaces)."""
    values = _chunk(values)
    if values.type == pa.string() and len(values) and not values.null_count:
        offsets = np.frombuffer(values.buffers()[1], np.int32, len(values) + 1, values.offset * 4)
        if np.diff(offsets).min() > 0:
            first = np.frombuffer(values.buffers()[2], np.uint8)[offsets[:-1]]
            if not ((first <= 0x20) | (first >= 0x7F)).any():
                return None
    return pc.fill_null(pc.not_equal(pc.utf8_trim_whitespace(values), ""), False)


def _longest_bytes(values: pa.Array) -> int | None:
    """The byte length of the longest value, from the offsets (null slots count too, which can
    only make it larger: callers then check each value exactly)."""
    values = _chunk(values)
    if values.type != pa.string() or not len(values):
        return pc.max(pc.binary_length(values)).as_py()
    offsets = np.frombuffer(values.buffers()[1], np.int32, len(values) + 1, values.offset * 4)
    return int(np.diff(offsets).max())


def _json_text(text: str) -> str:
    """A Python string escaped for use inside JSON double quotes."""
    return json.dumps(text, ensure_ascii=False)[1:-1]


class _PathMemo:
    """What the mapping makes of each distinct path, worked out once per run.

    Paths repeat across batches: a batch's distinct paths are looked up among those already
    seen (one hash lookup each, in Arrow) and only new ones are evaluated. ``compute(paths)``
    gives arrays of per-path facts (some of them positions in the mapper's run-wide pools of
    names and props, which start afresh with the memo: ``generation`` tells).
    """

    LIMIT = 50_000  # a run over more distinct paths starts afresh (the lookup rebuilds its table)

    def __init__(self, compute):
        self._compute = compute
        self.known: pa.Array | None = None
        self.facts: dict[str, np.ndarray] = {}
        self.generation = 0  # bumped when the memo starts afresh

    def lookup(self, dictionary: pa.Array) -> np.ndarray:
        """Positions in the memo of each value of ``dictionary`` (new values are added)."""
        if self.known is None or not len(self.known):
            positions = np.full(len(dictionary), -1, np.int64)
        else:
            found = pc.index_in(dictionary, value_set=self.known)
            positions = pc.fill_null(found, -1).to_numpy(zero_copy_only=False).astype(np.int64)
        new = np.flatnonzero(positions < 0)
        if not len(new):
            return positions
        if self.known is not None and len(self.known) + len(new) > self.LIMIT:
            self.known, self.facts = None, {}
            self.generation += 1
            new = np.arange(len(dictionary))
        fresh = dictionary.take(pa.array(new)) if len(new) < len(dictionary) else dictionary
        facts = self._compute(fresh)
        start = 0 if self.known is None else len(self.known)
        if self.known is None:
            self.known, self.facts = fresh, facts
        else:
            self.known = pa.concat_arrays([self.known, fresh])
            self.facts = {k: np.concatenate([v, facts[k]]) for k, v in self.facts.items()}
        positions[new] = np.arange(start, start + len(new))
        return positions


class _RunPool:
    """Values kept for the whole run; positions in it stay valid as it grows."""

    def __init__(self, first: pa.Array):
        self.parts = [first]
        self.size = len(first)
        self._array: pa.Array | None = first

    def add(self, values: pa.Array) -> np.ndarray:
        values = _chunk(values)
        self.parts.append(values)
        self._array = None
        start, self.size = self.size, self.size + len(values)
        return np.arange(start, self.size)

    def array(self) -> pa.Array:
        if self._array is None:
            self._array = pa.concat_arrays(self.parts)
            self.parts = [self._array]
        return self._array

    def name_checks(self) -> tuple[np.ndarray, np.ndarray]:
        """_name_checks of every value, worked out once each."""
        values = self.array()
        checked = getattr(self, "_checks", (np.zeros(0, bool), np.zeros(0, bool)))
        if len(checked[0]) < len(values):
            blank, long_name = _name_checks(values.slice(len(checked[0])))
            checked = self._checks = (np.concatenate([checked[0], blank]), np.concatenate([checked[1], long_name]))
        return checked


class _Pool:
    """Values built group by group, and each row's position among them (0: the first value)."""

    def __init__(self, first: pa.Array, rows: int):
        self.parts = [first]
        self.size = len(first)
        self.rows = rows
        self.index: np.ndarray | None = None  # per row, once a group was placed

    def add(self, values: pa.Array) -> np.ndarray:
        """Append one group's values; return their positions in the pool."""
        values = _chunk(values)
        start = self.size
        self.parts.append(values)
        self.size += len(values)
        return np.arange(start, self.size)

    def place(self, where: np.ndarray, values: pa.Array) -> None:
        """The rows ``where`` take ``values`` (one each, in order)."""
        if self.index is None:
            self.index = np.zeros(self.rows, np.int64)
        self.index[where] = self.add(values)

    def array(self) -> pa.Array:
        if len(self.parts) > 1:
            self.parts = [pa.concat_arrays(self.parts)]
        return self.parts[0]

    def take(self, index: np.ndarray | None, selected: np.ndarray | None) -> pa.Array:
        """Each (selected) row's value; rows never placed get the first value."""
        if index is None:
            index = self.index if self.index is not None else np.zeros(self.rows, np.int64)
        pool = pa.concat_arrays(self.parts) if len(self.parts) > 1 else self.parts[0]
        return pool.take(pa.array(index if selected is None else index[selected]))

    def column(self, selected: np.ndarray | None, total: int) -> pa.Array:
        if self.index is None:
            return pa.nulls(total, self.parts[0].type)
        return self.take(None, selected)


class _Rows:
    """Some rows of a table, each column taken only when asked for."""

    def __init__(self, table: pa.Table, rows: np.ndarray):
        self._table = table
        self._np_rows = rows
        self._rows = pa.array(rows)
        self._cache: dict[str, pa.Array] = {}

    def take_at(self, name: str, local: np.ndarray) -> pa.Array:
        """The column at some of these rows (positions among them)."""
        if name in self._cache:
            return self._cache[name].take(pa.array(local))
        return _chunk(self._table.column(name)).take(pa.array(self._np_rows[local]))

    def column_and_rows(self, name: str, local: np.ndarray) -> tuple[pa.Array, np.ndarray]:
        """A column these rows can be read from, and where they are in it."""
        if name in self._cache:
            return self._cache[name], local
        return self._table.column(name), self._np_rows[local]

    def __getitem__(self, name: str) -> pa.Array:
        if name not in self._cache:
            self._cache[name] = _chunk(self._table.column(name)).take(self._rows)
        return self._cache[name]

    def __len__(self) -> int:
        return len(self._rows)


class _Encoded:
    """Per-batch dictionary encodings of columns, so conditions run once per distinct value."""

    def __init__(self, values, verdicts: dict | None = None):
        self.values = values
        self.verdicts = verdicts  # the run's: condition -> {value: does it hold}, for a few rows at a time
        self._encoded: dict[str, tuple[pa.Array, pa.Array]] = {}
        self._masks: dict[tuple, np.ndarray] = {}

    @classmethod
    def for_rows(cls, table: pa.Table, rows: np.ndarray, path: pa.DictionaryArray, path_rows: np.ndarray,
                 verdicts: dict | None = None) -> "_Encoded":
        """The rows ``rows`` of ``table``, whose path column is already encoded as ``path``."""
        encoded = cls(_Rows(table, rows), verdicts)
        encoded.preload("path", path.dictionary, path_rows[rows])
        return encoded

    def on_rows(self, column: str, key: tuple, rows: np.ndarray, fn, distinct: bool = False) -> np.ndarray:
        """A condition on some rows: from the whole column's mask when there is one (or the rows
        are most of the batch), else evaluated on those rows alone."""
        n = len(self.values) if isinstance(self.values, _Rows) else len(self.values[column])
        full = (column, key) if distinct else (column, key, "direct")
        if full not in self._masks and len(rows) * 2 >= n:
            whole = self.mask(column, key, fn) if distinct else self.direct(column, key, fn)
            return whole[rows]
        if full in self._masks:
            return self._masks[full][rows]
        if len(rows) <= _FEW_ROWS and self.verdicts is not None:
            items = self.strings_at(column, rows)
            if items is None:
                items = _as_string(self.column_at(column, rows)).to_pylist()
            return self._few(column, key, items, fn)
        value = _as_string(self.column_at(column, rows))
        if distinct and len(rows) > 64:
            encoded = pc.dictionary_encode(value, null_encoding="encode")  # null: one more value, never a match
            dictionary = encoded.dictionary
            if len(dictionary) <= _FEW and self.verdicts is not None:
                verdicts = self._few(column, key, dictionary.to_pylist(), fn)  # the values seen before: no kernel
            else:
                verdicts = _np_bool(fn(dictionary))
            return verdicts[_positions(encoded.indices)]
        return _np_bool(fn(value))

    def _few(self, column: str, key: tuple, items: list, fn) -> np.ndarray:
        """A condition on a few rows' values, each value worked out once per run: a rule whose
        candidates are rare (a signup page) would otherwise cost kernel calls every batch."""
        known = self.verdicts.setdefault((column,) + key, {})
        new = [v for v in dict.fromkeys(items) if v not in known]
        if new:
            if len(known) > 50_000:
                known.clear()
            known.update(zip(new, _np_bool(fn(pa.array(new, pa.string()))).tolist()))
        return np.array([known[v] for v in items], bool)

    def encoded(self, column: str) -> tuple[pa.Array, pa.Array]:
        if column not in self._encoded:
            value = _as_string(_chunk(self.values[column]))
            enc = pc.dictionary_encode(value)
            self._encoded[column] = (enc.dictionary, enc.indices)
        return self._encoded[column]

    def column_and_rows(self, column: str, rows: np.ndarray) -> tuple[pa.Array | pa.ChunkedArray, np.ndarray]:
        """A column the rows can be read from in place, and where they are in it."""
        if isinstance(self.values, _Rows):
            return self.values.column_and_rows(column, rows)
        return self.values[column], rows

    def strings_at(self, column: str, rows: np.ndarray) -> list[str | None] | None:
        """A few rows' values of a string column, read from its buffers (None: not plain strings)."""
        return _strings_at(*self.column_and_rows(column, rows))

    def column_at(self, column: str, rows: np.ndarray) -> pa.Array:
        if isinstance(self.values, _Rows):
            return self.values.take_at(column, rows)
        return _chunk(self.values[column]).take(pa.array(rows))

    def status_mask(self, rule: "StatusRule", rows: np.ndarray) -> np.ndarray:
        """Does the status of each of ``rows`` satisfy the rule? (Read from the column's
        buffers: a take would cost a kernel call for what are often a few rows.)"""
        codes = _integers_at(*self.column_and_rows("status", rows))
        if codes is None:
            return rule.lookup()[_status_codes(self.column_at("status", rows))]
        return rule.lookup()[codes.astype(np.intp) & 0xFFFF]

    def preload(self, column: str, dictionary: pa.Array, rows: np.ndarray) -> None:
        """A column already encoded: its dictionary and each row's position in it (nulls at
        ``len(dictionary)``)."""
        self._encoded[column] = (dictionary, None)
        self._encoded["\0np:" + column] = rows

    def is_encoded(self, column: str) -> bool:
        return column in self._encoded

    def direct(self, column: str, key: tuple, fn) -> np.ndarray:
        """A condition evaluated on the rows themselves (for cheap kernels such as is_in)."""
        if (column, key, "direct") not in self._masks:
            value = _as_string(_chunk(self.values[column]))
            self._masks[(column, key, "direct")] = pc.fill_null(fn(value), False).to_numpy(zero_copy_only=False)
        return self._masks[(column, key, "direct")]

    def indices(self, column: str) -> np.ndarray:
        """Row -> dictionary position, with nulls at an extra last position."""
        key = "\0np:" + column
        if key not in self._encoded:
            dictionary, indices = self.encoded(column)
            self._encoded[key] = _positions(pc.fill_null(indices, len(dictionary)))
        return self._encoded[key]

    def mask(self, column: str, key: tuple, fn) -> np.ndarray:
        if (column, key) not in self._masks:
            dictionary, _ = self.encoded(column)
            on_distinct = pc.fill_null(fn(dictionary), False).to_numpy(zero_copy_only=False)
            on_distinct = np.append(on_distinct, False)  # null rows match nothing
            self._masks[(column, key)] = on_distinct[self.indices(column)]
        return self._masks[(column, key)]


class _Subset:
    """The columns of some rows (one rule's), taken from the batch only when a template needs them.

    Every name also has a *basis*: the batch column it derives from (itself, or the column a
    regex group was extracted from). Work on names of one basis is done once per distinct
    value of that column and then taken onto the rows (:meth:`per_distinct`).
    """

    def __init__(self, values: dict[str, pa.Array], where: np.ndarray, encoded: _Encoded):
        self._values = values
        self._where = where
        self._take = pa.array(where)
        self._encoded = encoded
        self._cache: dict[str, pa.Array] = {}
        self._groups: dict[str, tuple[str, pa.Array]] = {}  # group -> (basis column, values per distinct)
        self._rows: dict[str, pa.Array] = {}

    def __getitem__(self, name: str) -> pa.Array:
        if name not in self._cache:
            if name in self._groups:
                basis, distinct = self._groups[name]
                self._cache[name] = pc.take(distinct, self._rows_of(basis))
            else:
                self._cache[name] = _chunk(self._values[name]).take(self._take)
        return self._cache[name]

    def __contains__(self, name: str) -> bool:
        return name in self._cache or name in self._values or name in self._groups

    def _rows_of(self, basis: str) -> pa.Array:
        if basis not in self._rows:
            # null values of the basis sit at an extra last position (see _with_null)
            self._rows[basis] = pa.array(self._encoded.indices(basis)[self._where])
        return self._rows[basis]

    def groups(self, column: str, pattern: str, names: tuple[str, ...]) -> None:
        """Named regex groups of a column, extracted once per distinct value (on the rows
        themselves when they are few and the column is not encoded yet)."""
        if not self._encoded.is_encoded(column) and len(self._where) * 4 < len(self._values[column]):
            extracted = pc.extract_regex(_as_string(self[column]), pattern)
            for g in names:
                self._groups.pop(g, None)
                self._cache[g] = pc.struct_field(extracted, g)
            return
        dictionary, _ = self._encoded.encoded(column)
        extracted = pc.extract_regex(dictionary, pattern)
        for g in names:
            self._groups[g] = (column, _with_null(pc.struct_field(extracted, g)))
            self._cache.pop(g, None)

    def per_distinct(self, refs: list[str], fn, n: int) -> pa.Array:
        """``fn(values, count)`` computed once per distinct basis value when all refs share one basis."""
        bases = {self._groups[r][0] if r in self._groups else r for r in refs}
        if len(bases) != 1 or not refs:
            return fn(self, n)
        (basis,) = bases
        if basis not in self._values or basis in ("timestamp", "source_line"):
            return fn(self, n)
        if not self._encoded.is_encoded(basis) and n * 4 < len(self._values[basis]):
            return fn(self, n)  # encoding the whole column would cost more than these few rows
        dictionary, _ = self._encoded.encoded(basis)
        dictionary = _with_null(dictionary)
        level = {r: (self._groups[r][1] if r in self._groups else dictionary) for r in refs}
        return pc.take(fn(level, len(dictionary)), self._rows_of(basis))


def _lowest_bit(bits: np.ndarray) -> np.ndarray:
    """The position of each value's lowest set bit; -1 for 0."""
    lowest = bits & (~bits + np.uint64(1))
    out = np.full(len(bits), -1, np.int64)
    nonzero = lowest != 0
    out[nonzero] = np.round(np.log2(lowest[nonzero].astype(np.float64))).astype(np.int64)
    return out


_SCALARS: dict[str, pa.Scalar] = {}


def _join(*pieces, **options) -> pa.Array:
    """``binary_join_element_wise`` (the last piece is the separator), with literal text
    passed as cached scalars: converting Python strings costs more than joining a few rows."""
    args = []
    for piece in pieces:
        if isinstance(piece, str):
            scalar = _SCALARS.get(piece)
            if scalar is None:
                scalar = pa.scalar(piece, pa.string())
                if len(_SCALARS) < 10_000:
                    _SCALARS[piece] = scalar
            piece = scalar
        args.append(piece)
    return pc.binary_join_element_wise(*args, **options)


def _name_checks(names: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """Which event names are blank (or null), which are over Plausible's length limit."""
    if len(names) <= _FEW:
        items = names.to_pylist()
        if all(_plain(v) for v in items):  # then the only whitespace is the space
            blank = np.array([v is None or v.strip(" ") == "" for v in items], bool)
            return blank, np.array([v is not None and len(v) > MAX_NAME_CHARS for v in items], bool)
    blank = _np_bool(pc.fill_null(pc.equal(pc.utf8_length(pc.utf8_trim_whitespace(names)), 0), True))
    return blank, _np_bool(pc.greater(pc.utf8_length(names), MAX_NAME_CHARS))


def _np_bool(mask) -> np.ndarray:
    """A boolean mask (Arrow or NumPy; nulls count as false) as a NumPy array."""
    if isinstance(mask, np.ndarray):
        return mask
    mask = _chunk(mask)
    if mask.null_count and mask.type == pa.bool_():
        # value bit AND validity bit, from the bitmaps (a fill_null kernel call costs more)
        validity, values = mask.buffers()[0], mask.buffers()[1]
        span = slice(mask.offset, mask.offset + len(mask))
        bits = np.unpackbits(np.frombuffer(values, np.uint8), bitorder="little")[span]
        valid = np.unpackbits(np.frombuffer(validity, np.uint8), bitorder="little")[span]
        return (bits & valid).astype(bool)
    if mask.null_count:
        mask = pc.fill_null(mask, False)
    return mask.to_numpy(zero_copy_only=False)


def _status_codes(status: pa.Array) -> np.ndarray:
    """Statuses as positions in a StatusRule.lookup table: no status is 0 (never a code, never a
    class), negatives wrap to >= 32768 (never either)."""
    if status.null_count:
        status = pc.fill_null(status, 0)
    return status.to_numpy(zero_copy_only=False).astype(np.intp) & 0xFFFF


def _compress(values: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """``values[mask]``: the same, several times faster on a long mask of mixed values
    (boolean indexing branches on every element)."""
    return np.compress(mask, values)


def _positions(indices: pa.Array) -> np.ndarray:
    """Arrow integer indices (no nulls) as NumPy's index type: indexing with int32 arrays
    is several times slower, as NumPy converts them on every use."""
    return _chunk(indices).to_numpy(zero_copy_only=False).astype(np.intp, copy=False)


def _single_chunk(values) -> pa.Array | None:
    """An array as one chunk, without copying (None: a column of several chunks)."""
    if isinstance(values, pa.ChunkedArray):
        return values.chunk(0) if values.num_chunks == 1 else None
    return values


def _valid_at(values: pa.Array, rows: np.ndarray) -> np.ndarray:
    """Whether each of some rows of an array (with nulls) holds a value, from its validity bits."""
    at = rows + values.offset
    return ((np.frombuffer(values.buffers()[0], np.uint8)[at >> 3] >> (at & 7)) & 1).astype(bool)


def _strings_at(values, rows: np.ndarray) -> list[str | None] | None:
    """Some rows' values of a string column, read from its buffers: for a few rows, a take and
    a to_pylist cost more in kernel-call overhead than these reads. None when the column is
    not a single chunk of plain strings."""
    values = _single_chunk(values)
    if values is None or values.type != pa.string():
        return None
    _, offsets, data = values.buffers()
    offsets = np.frombuffer(offsets, np.int32, len(values) + 1, values.offset * 4)
    text = memoryview(data) if data is not None else memoryview(b"")
    items = [str(text[start:end], "utf-8") for start, end in zip(offsets[rows].tolist(), offsets[rows + 1].tolist())]
    if values.null_count:
        items = [item if ok else None for item, ok in zip(items, _valid_at(values, rows).tolist())]
    return items


def _integers_at(values, rows: np.ndarray) -> np.ndarray | None:
    """Some rows of an integer column as NumPy integers (0 where null), read from its buffers;
    None when the column is not a single chunk of integers."""
    values = _single_chunk(values)
    if values is None or not pa.types.is_integer(values.type):
        return None
    data = values.buffers()[1]
    codes = np.frombuffer(data, values.type.to_pandas_dtype(), values.offset + len(values))[rows + values.offset]
    if values.null_count:
        codes = np.where(_valid_at(values, rows), codes, 0)
    return codes


def _with_null(values: pa.Array) -> pa.Array:
    """Values per distinct value of a column, and one more for the rows where it is null."""
    return pa.concat_arrays([values, pa.nulls(1, values.type)])


def _chunk(value) -> pa.Array:
    if isinstance(value, pa.ChunkedArray):
        return value.combine_chunks() if value.num_chunks != 1 else value.chunk(0)
    return value


def _condition(values: pa.Array, cond: ColumnCondition) -> pa.Array:
    if cond.op == "equals":
        return pc.equal(values, cond.values[0])
    if cond.op == "in":
        return pc.is_in(values, value_set=pa.array(cond.values, pa.string()))
    if cond.op == "not_in":
        return pc.invert(pc.fill_null(pc.is_in(values, value_set=pa.array(cond.values, pa.string())), False))
    if cond.op == "regex":
        return pc.match_substring_regex(values, cond.pattern)
    present = pc.fill_null(pc.greater(pc.utf8_length(values), 0), False)
    return present if cond.present else pc.invert(present)


_AMOUNT = r"^-?\d+(\.\d+)?$"


def _revenue(amount: pa.Array, currency: pa.Array) -> tuple[pa.Array, pa.Array]:
    """Revenue amounts as decimal strings and ISO 4217 codes; both null unless both are valid."""
    amount = pc.utf8_trim_whitespace(amount)
    # 129.90 stays "129.90"; a float export's "1e3" or "" is not an amount.
    ok_amount = pc.fill_null(pc.match_substring_regex(amount, _AMOUNT), False)
    code = pc.utf8_upper(pc.utf8_trim_whitespace(currency))
    ok_code = pc.fill_null(pc.match_substring_regex(code, r"^[A-Z]{3}$"), False)
    ok = pc.and_(ok_amount, ok_code)
    none = pa.scalar(None, pa.string())
    return pc.if_else(ok, amount, none), pc.if_else(ok, code, none)


def date_bound(value, *, end: bool = False):
    """``--since`` / ``--until`` -> an aware UTC datetime (or None).

    A date (``2024-03-01``) means the start of that day UTC; for ``--until`` it means the
    end of that day (so ``--since 2024-03-01 --until 2024-03-31`` is all of March). A time
    (``2024-03-01T12:00``, ``2024-03-01 12:00:00+01:00``) is exact; without an offset it is UTC.
    ``since`` is inclusive and ``until`` exclusive. Raises ValueError with a usable message.
    """
    import datetime as dt

    if value is None or value == "":
        return None
    if isinstance(value, dt.datetime):
        parsed = value
    elif isinstance(value, dt.date):
        parsed = dt.datetime(value.year, value.month, value.day) + (dt.timedelta(days=1) if end else dt.timedelta())
    else:
        text = str(value).strip()
        try:
            if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
                parsed = dt.datetime.fromisoformat(text) + (dt.timedelta(days=1) if end else dt.timedelta())
            else:
                parsed = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            flag = "--until" if end else "--since"
            raise ValueError(f"{flag} {text!r}: give a date (2024-03-01) or a time (2024-03-01T12:00:00Z)") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.timezone.utc)
    return parsed.astimezone(dt.timezone.utc)
