"""device-detector over many user agents at once: each regex of its database runs once, in RE2,
over every distinct agent of the run, instead of once per agent in Python.

device-detector resolves one user agent by walking its regex lists (bots, operating systems,
clients, then thousands of device brands and their models) and calling ``search`` on each
regex until one matches: about a thousand Python regex searches per agent, plus compiling
every regex it reaches (most of its ~10-60 ms per agent). Nearly all of those searches fail.

Here device-detector still makes every decision itself, from its own YAML files read at run
time; only the question "could this regex match this agent?" is answered from a table. The
first time a regex is asked about any agent of the batch, RE2 (Arrow's
``match_substring_regex``) evaluates it over the whole array of distinct agents in one call
and keeps the positions that match. A regex whose table says "no" returns no match without
running; one that says "maybe" runs the real regex, so names, versions and capture groups
come from device-detector as before. For that to give identical answers the table must
never say "no" where the real regex matches, so it is used only where RE2 and Python's
``regex`` agree:

* only for printable-ASCII agents (``\\d``, ``\\w``, ``\\b``, ``\\s`` and case folding differ
  on other characters), and only for a plain ``search(text)`` of a whole agent;
* lookarounds are removed before RE2 sees a pattern (which only widens what it matches);
* a pattern RE2 rejects (backreferences, possessive quantifiers...) or writes differently
  (``{,n}``) is never filtered: the real regex runs.

The table is consulted through a patch of device-detector's lazily compiled regex class,
installed only while :func:`resolve` runs.
"""

from __future__ import annotations

import functools
import multiprocessing
import os
import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..useragents import _without_lookarounds

_PRINTABLE_ASCII = re.compile(r"[\x20-\x7e]*")
# Quantifiers written ``{,n}``: Python's regex reads {0,n}, RE2 a literal. Never filtered.
_OPEN_LOWER_BOUND = re.compile(r"\{,\d")

# Below this many new agents one process is quicker than forking a second one.
PARALLEL_FROM = 400

T = TypeVar("T")

EVERY = None  # a pattern the table cannot judge: every agent may match


@dataclass(frozen=True)
class Group:
    """Regexes device-detector tries one after another (one YAML list, or the models or
    versions of one entry), evaluated together; ``scope`` is the entry's regex, which the
    library matches before it tries its models or versions."""

    members: tuple[object, ...]
    scope: object | None = None
    entries: list[dict] | None = None  # a whole YAML list (the library's object): its entries


Entry = tuple[frozenset[int] | None, frozenset[int] | None]  # (positions judged or None: all, hits or EVERY)


class MatchTable:
    """The distinct agents of a batch and, per regex asked about, the agents it may match.

    The regexes of one group are evaluated together with RE2's FilteredRE2 (it runs only the
    regexes whose literal parts occur in an agent). A scoped group is evaluated over its
    scope's hits only: other agents asked about its regexes are not judged (the real regex
    runs). A regex in no group is evaluated alone over all agents.
    """

    def __init__(self, agents: Sequence[str], groups: Sequence[Group]) -> None:
        self.judged = [ua for ua in dict.fromkeys(agents) if _PRINTABLE_ASCII.fullmatch(ua)]
        self.position = {ua: i for i, ua in enumerate(self.judged)}
        self.group_of = {id(lazy): group for group in groups for lazy in group.members}
        self.listed = {id(group.entries): group for group in groups if group.entries is not None}
        self.candidates: dict[int, list[tuple[int, ...]]] = {}  # id(list group) -> per position
        self.by_id: dict[int, Entry] = {}  # grouped regexes (alive as long as their group)
        self.by_pattern: dict[tuple[str, int], Entry] = {}  # the others
        self.evaluated = 0  # regexes evaluated over agents
        self.skipped = 0  # searches answered "no match" without running

    def narrowed(self, entries: object, text: str | None) -> list[dict] | None:
        """The entries of a YAML list whose regex may match ``text``, in order (None: all)."""
        group = self.listed.get(id(entries))
        position = None if text is None else self.position.get(text)
        if group is None or group.entries is None or position is None:
            return None
        rows = self.candidates.get(id(group))
        if rows is None:
            self._evaluate_group(group)
            rows = self.candidates[id(group)]
        return [group.entries[i] for i in rows[position]]

    def entry(self, lazy: object) -> Entry:
        known = self.by_id.get(id(lazy))
        if known is not None:
            return known
        group = self.group_of.get(id(lazy))
        if group is not None:
            self._evaluate_group(group)
            return self.by_id[id(lazy)]
        key = (_read(lazy, "pattern"), _read(lazy, "flags"))
        entry = self.by_pattern.get(key)
        if entry is None:
            entry = self.by_pattern[key] = (None, self._evaluate_alone(*key))
        return entry

    def _evaluate_group(self, group: Group) -> None:
        judged = None if group.scope is None else self.entry(group.scope)[1]
        patterns = [_translate(lazy) for lazy in group.members]
        matcher, candidates = _filter(patterns)
        every = [i for i, pattern in enumerate(patterns) if pattern is None]
        hits: list[set[int]] = [set() for _ in group.members]
        rows: list[tuple[int, ...]] = []
        positions = range(len(self.judged)) if judged is None else sorted(judged)
        for position in positions:
            found = [candidates[i] for i in matcher.Match(self.judged[position]) or ()] if candidates else []
            for i in found:
                hits[i].add(position)
            if judged is None:
                rows.append(tuple(sorted([*found, *every])))
        self.evaluated += len(candidates)
        every_set = set(every)
        for i, lazy in enumerate(group.members):
            self.by_id[id(lazy)] = (judged, EVERY if i in every_set else frozenset(hits[i]))
        if group.entries is not None and judged is None:
            self.candidates[id(group)] = rows

    def _evaluate_alone(self, pattern: str, flags: int) -> frozenset[int] | None:
        translated = _translate_pattern(pattern, flags)
        if translated is None:
            return EVERY
        try:
            matched = pc.match_substring_regex(pa.array(self.judged, pa.string()), translated)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            return EVERY
        self.evaluated += 1
        return frozenset(np.flatnonzero(matched.to_numpy(zero_copy_only=False)).tolist())


def _read(lazy: object, name: str):
    return object.__getattribute__(lazy, name)  # RegexLazy compiles on any other attribute access


def _translate(lazy: object) -> str | None:
    return _translate_pattern(_read(lazy, "pattern"), _read(lazy, "flags"))


@functools.cache
def _translate_pattern(pattern: str, flags: int) -> str | None:
    """The pattern for RE2 (matching a superset on printable ASCII), or None if there is none."""
    import regex

    if _OPEN_LOWER_BOUND.search(pattern) or flags & ~(regex.IGNORECASE | regex.VERSION0):
        return None
    return ("(?i)" if flags & regex.IGNORECASE else "") + _without_lookarounds(pattern)


def _filter(patterns: list[str | None]) -> tuple[Any, list[int]]:
    """A FilteredRE2 of the patterns RE2 accepts, and the index in ``patterns`` of each; the
    ones it rejects are set to None in ``patterns`` (every agent may match them)."""
    import re2

    matcher, candidates = re2.Filter(), []
    for i, pattern in enumerate(patterns):
        if pattern is None:
            continue
        try:
            matcher.Add(pattern)
        except re2.error:
            patterns[i] = None
            continue
        candidates.append(i)
    if candidates:
        matcher.Compile()
    return matcher, candidates


def groups() -> list[Group]:
    """device-detector's regex lists as groups: each YAML list, and per entry its models and
    its versions (scoped by the entry's regex)."""
    from device_detector.yaml_loader import RegexLoader, regex_list

    out: list[Group] = []
    classes, seen = [RegexLoader], set()
    while classes:
        cls = classes.pop()
        classes.extend(cls.__subclasses__())
        files = getattr(cls, "fixture_files", ())
        if not files or tuple(files) in seen:
            continue
        seen.add(tuple(files))
        listed = regex_list(tuple(files))
        entries = [entry for entry in listed if "regex" in entry]
        whole = listed if len(entries) == len(listed) else None
        out.append(Group(tuple(entry["regex"] for entry in entries), entries=whole))
        for entry in entries:
            for nested in ("models", "versions"):
                if entry.get(nested):
                    out.append(Group(tuple(item["regex"] for item in entry[nested]), entry["regex"]))
    return out


@contextmanager
def _searches_through(table: MatchTable) -> Iterator[None]:
    """Meanwhile, device-detector's parsers walk only the entries of a YAML list whose regex
    may match their agent, and its other ``regex.search(text)`` calls consult ``table``."""
    from device_detector.lazy_regex import RegexLazy
    from device_detector.yaml_loader import RegexLoader

    original: Callable = RegexLazy.__getattribute__
    whole_list = RegexLoader.__dict__["regex_list"]
    position_of, known = table.position.get, table.by_id.get

    def search(lazy: RegexLazy, text: str, *args, **kwargs):
        if not args and not kwargs:
            position = position_of(text)
            if position is not None:
                judged, hits = known(id(lazy)) or table.entry(lazy)
                if hits is not EVERY and position not in hits and (judged is None or position in judged):
                    table.skipped += 1
                    return None
        return original(lazy, "search")(text, *args, **kwargs)

    def attribute(lazy: RegexLazy, name: str):
        if name == "search":
            return functools.partial(search, lazy)
        return original(lazy, name)

    def narrowed_list(parser: RegexLoader) -> list[dict]:
        entries = whole_list.fget(parser)
        if getattr(parser, "client_hints", None):  # hints are matched against every entry
            return entries
        narrowed = table.narrowed(entries, getattr(parser, "user_agent", None))
        return entries if narrowed is None else narrowed

    RegexLazy.__getattribute__ = attribute
    RegexLoader.regex_list = property(narrowed_list)
    try:
        yield
    finally:
        RegexLazy.__getattribute__ = original
        RegexLoader.regex_list = whole_list


def _resolve_here(agents: Sequence[str], convert: Callable[[object], T]) -> list[T | None]:
    from device_detector import DeviceDetector

    table = MatchTable(agents, groups())
    out: list[T | None] = []
    with _searches_through(table):
        for ua in agents:
            try:
                out.append(convert(DeviceDetector(ua).parse()))
            except Exception:
                out.append(None)
    return out


def resolve(agents: Sequence[str], convert: Callable[[object], T], workers: int = 0) -> list[T | None]:
    """``convert(DeviceDetector(agent).parse())`` for each agent, in order (None where the
    library raised). With more than :data:`PARALLEL_FROM` agents, ``workers`` forked
    processes (default: one per core) share them."""
    workers = workers or os.cpu_count() or 1
    if workers < 2 or len(agents) < PARALLEL_FROM or "fork" not in multiprocessing.get_all_start_methods():
        return _resolve_here(agents, convert)

    shares = [list(agents[i::workers]) for i in range(workers)]
    with multiprocessing.get_context("fork").Pool(workers) as pool:
        parts = pool.starmap(_resolve_here, [(share, convert) for share in shares])
    out: list[T | None] = [None] * len(agents)
    for i, part in enumerate(parts):
        out[i::workers] = part
    return out
