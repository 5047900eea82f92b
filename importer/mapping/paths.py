"""What the rules' path conditions say of each distinct path, remembered for the run.

A site has a few thousand pages, and every batch of a log sees most of them again: so each
batch looks its distinct paths up among those seen before (one hash lookup in Arrow) and only
evaluates the rules' literal paths, globs and regexes on the new ones. (bench/mapping.py: with
the 10-rule mapping, this halves the cost of matching rules in the whole run.)
"""

from __future__ import annotations

import threading

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .arrow import any_regex, np_bool, positions
from .model import Rule


class PathVerdicts:
    """Per distinct path and rule: do the rule's path conditions hold? Shared by the threads
    that use one Mapper (a lock guards what is remembered)."""

    LIMIT = 20_000  # paths remembered at most (then it starts afresh: a lookup builds a hash table of them)

    def __init__(self, rules: tuple[Rule, ...]):
        self._rules = rules
        self._lock = threading.Lock()
        self._known = pa.array([], pa.string())
        self._verdicts = np.zeros((0, len(rules)), bool)

    def of(self, paths: pa.Array) -> np.ndarray:
        """A row per path (distinct ones, a null among them perhaps), a column per rule."""
        with self._lock:
            known, verdicts = self._known, self._verdicts
        out = np.zeros((len(paths), len(self._rules)), bool)
        found = positions(pc.fill_null(pc.index_in(paths, value_set=known), -1)) if len(known) else np.full(len(paths), -1)
        seen = found >= 0
        out[seen] = verdicts[found[seen]]
        new = np.flatnonzero(~seen)
        if len(new):
            fresh = paths.take(pa.array(new))
            out[new] = evaluate(self._rules, fresh)
            self._remember(fresh, out[new])
        return out

    def _remember(self, paths: pa.Array, verdicts: np.ndarray) -> None:
        valid = np_bool(pc.is_valid(paths))
        paths, verdicts = paths.filter(pa.array(valid)), verdicts[valid]
        with self._lock:
            if len(self._known) + len(paths) > self.LIMIT:
                self._known, self._verdicts = paths, verdicts
            else:
                self._known = pa.concat_arrays([self._known, paths])
                self._verdicts = np.concatenate([self._verdicts, verdicts])


def evaluate(rules: tuple[Rule, ...], paths: pa.Array) -> np.ndarray:
    """A row per path, a column per rule: a listed path or glob matches, and the path_regex
    (rules without path conditions hold everywhere)."""
    out = np.ones((len(paths), len(rules)), bool)
    ids = {literal: i for i, literal in enumerate(sorted({p for r in rules for p in r.path_literals}))}
    literal_at = (positions(pc.fill_null(pc.index_in(paths, value_set=pa.array(list(ids), pa.string())), -1))
                  if ids else np.full(len(paths), -1))  # which rule literal each path is: one lookup for all
    for j, rule in enumerate(rules):
        if not rule.has_path_condition:
            continue
        hit = np.zeros(len(paths), bool)
        if rule.path_literals:
            hit |= np.isin(literal_at, [ids[p] for p in rule.path_literals])
        if rule.path_regexes:
            hit |= np_bool(any_regex(paths, rule.path_regexes))
        if rule.path_regex is not None:
            regex_hit = np_bool(any_regex(paths, (rule.path_regex,)))
            hit = hit & regex_hit if rule.path_literals or rule.path_regexes else regex_hit
        out[:, j] = hit
    return out
