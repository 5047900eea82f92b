"""What a loaded mapping is: the Mapping, its rules, their conditions and templates.

Patterns are kept as RE2 pattern text: every user pattern (filters, globs, ``path_regex``,
column regexes) runs in Arrow's RE2 kernels, whose time is linear in the text whatever the
pattern (Python's ``re`` backtracks: ``^/\\w*\\w*...!$`` on a 41-character path never ends).
"""

from __future__ import annotations

import functools
import ipaddress
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..arrowutil import repeat_string
from .arrow import as_string, join
from .columnmap import ColumnMap
from .spec import MappingError


@dataclass(frozen=True)
class StatusRule:
    """HTTP statuses by code (304) or class (2xx)."""

    classes: frozenset[int] = frozenset()  # 2 for "2xx"
    codes: frozenset[int] = frozenset()

    @classmethod
    def parse(cls, items: list[Any], origin: str, key: str = "filters.statuses") -> StatusRule:
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

    @functools.cached_property
    def lookup(self) -> np.ndarray:
        """65,536 booleans: does status ``s`` (an int16 read as uint16) hold?"""
        values = np.arange(65536)
        table = np.isin(values, sorted(self.codes)) | np.isin(values // 100, sorted(self.classes))
        return table & (values < 32768)  # negative int16 values: no code, no class

    def holds(self, status: pa.Array) -> np.ndarray:
        """Per row: does its status hold (no status: no)?"""
        if status.null_count:
            status = pc.fill_null(status, 0)  # 0 is neither a code nor a class
        codes: np.ndarray = status.to_numpy(zero_copy_only=False).astype(np.intp) & 0xFFFF
        holds: np.ndarray = self.lookup[codes]
        return holds


def glob_to_regex(pattern: str) -> str:
    """A path glob as an anchored RE2 pattern: ``*`` within a segment, ``**`` across, ``?`` one."""
    out, i = [], 0
    while i < len(pattern):
        c = pattern[i]
        if pattern.startswith("**", i):
            out.append("(?s:.*)")  # a newline too: ** means anything
            i += 2
            continue
        out.append("[^/]*" if c == "*" else "[^/]" if c == "?" else re.escape(c))
        i += 1
    return "^" + "".join(out) + "$"


def check_regex(pattern: str, origin: str, key: str) -> list[str]:
    """Validate an RE2 pattern (as Arrow runs it); return its named groups. (Python's ``re``
    only compiles it, for the same messages as before; it never matches anything.)"""
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
    def parse(cls, text: str, known: set[str], origin: str, key: str) -> Template:
        parts: list[tuple[bool, str]] = []
        pos = 0
        escaped = text.replace("{{", "\0").replace("}}", "\1")
        for match in _REF.finditer(escaped):
            if match.start() > pos:
                parts.append((False, escaped[pos : match.start()]))
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
            return as_string(values[self.parts[0][1]])
        refs = [as_string(values[t]) for t in self.refs]
        pieces = [pc.fill_null(as_string(values[t]), "") if r else t for r, t in self.parts]
        joined = join(*pieces, "")
        all_null = pc.is_null(refs[0])
        for ref in refs[1:]:
            all_null = pc.and_(all_null, pc.is_null(ref))
        return pc.if_else(all_null, pa.scalar(None, pa.string()), joined)


@dataclass(frozen=True)
class ColumnCondition:
    column: str
    op: str  # "equals" | "in" | "not_in" | "regex" | "present"
    values: tuple[str, ...] = ()
    pattern: str = ""
    groups: tuple[str, ...] = ()
    present: bool = True

    def holds(self, values: pa.Array) -> pa.Array:
        """Per value: does the condition hold (null: it may be null, read as no)?"""
        if self.op == "equals":
            return pc.equal(values, self.values[0])
        if self.op == "in":
            return pc.is_in(values, value_set=pa.array(self.values, pa.string()))
        if self.op == "not_in":
            return pc.invert(pc.fill_null(pc.is_in(values, value_set=pa.array(self.values, pa.string())), False))
        if self.op == "regex":
            return pc.match_substring_regex(values, self.pattern)
        present = pc.fill_null(pc.greater(pc.utf8_length(values), 0), False)
        return present if self.present else pc.invert(present)


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
    also_pageview: bool = False  # the row's pageview comes first, then this event

    @property
    def has_path_condition(self) -> bool:
        return bool(self.path_literals or self.path_regexes) or self.path_regex is not None

    @property
    def groups(self) -> dict[str, tuple[str, str]]:
        """Each named regex group the rule's templates may use -> (the column, the pattern)."""
        out = {g: (c.column, c.pattern) for c in self.columns if c.op == "regex" for g in c.groups}
        if self.path_regex is not None:
            out.update(dict.fromkeys(self.path_groups, ("path", self.path_regex)))
        return out


@dataclass(frozen=True)
class Downloads:
    """Plausible's file-downloads tracking: a GET of a file with one of ``extensions`` is one
    ``name`` event per visitor (IP + user agent), file and session (requests at most
    ``gap_seconds`` apart: a reader's range requests are one download)."""

    extensions: frozenset[str]
    name: str = "File Download"
    gap_seconds: int = 30 * 60


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
    drop_partial_content: bool = False
    not_page_extensions: frozenset[str] = frozenset()
    endpoints: tuple[str, ...] = ()  # regexes (from globs) on the lower-cased path
    downloads: Downloads | None = None
    hosts: tuple[str, ...] = ()  # include globs
    exclude_hosts: tuple[str, ...] = ()
    paths: tuple[str, ...] = ()  # include regexes (from globs and path_regex)
    exclude_paths: tuple[str, ...] = ()
    exclude_networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()
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
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def rule_labels(self) -> list[str]:
        return [r.label for r in self.rules] + [self.default_label]

    @property
    def default_label(self) -> str:
        return "default (drop)" if self.default_drop else f"default ({self.event_name})"
