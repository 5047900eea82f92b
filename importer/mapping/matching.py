"""Which rule each kept row matches: the first whose conditions all hold (-1: none, the default).

Path conditions are evaluated once per distinct path of the batch, column conditions once per
distinct value of their column among a rule's candidate rows (see :mod:`.batch`); a rule's
conditions beyond the path are only looked at for the rows no earlier rule took.
"""

from __future__ import annotations

import functools

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .arrow import any_regex, as_string, np_bool, positions
from .batch import Columns, Tally
from .model import ColumnCondition, Mapping, Rule


def match_rules(rules: tuple[Rule, ...], columns: Columns) -> np.ndarray:
    """Per row, the index of the first rule it matches; -1 for none."""
    choice = np.full(columns.n, -1, np.intp)
    open_rows = np.arange(columns.n)  # the rows no rule took yet
    paths, path_at = columns.distinct("path")
    verdicts = path_verdicts(rules, paths)
    open_paths = path_at  # (kept in step with open_rows)
    for j, rule in enumerate(rules):
        rows = open_rows
        if rule.has_path_condition:
            rows = rows[verdicts[:, j][open_paths]]
        if not len(rows):
            continue
        matched = rows[_conditions_hold(rule, columns, rows)]
        if len(matched):
            choice[matched] = rule.index
            still_open = choice[open_rows] < 0
            open_rows, open_paths = open_rows[still_open], open_paths[still_open]
    return choice


def path_verdicts(rules: tuple[Rule, ...], paths: pa.Array) -> np.ndarray:
    """A row per (distinct) path, a column per rule: a listed path or glob matches, and the
    path_regex (rules without path conditions hold everywhere)."""
    out = np.ones((len(paths), len(rules)), bool)
    ids = {literal: i for i, literal in enumerate(sorted({p for r in rules for p in r.path_literals}))}
    literal_at = (
        positions(pc.fill_null(pc.index_in(paths, value_set=pa.array(list(ids), pa.string())), -1))
        if ids
        else np.full(len(paths), -1)
    )  # which rule literal each path is: one lookup for all
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


def count_rules(mapping: Mapping, choice: np.ndarray, tally: Tally) -> np.ndarray:
    """Count each rule's rows (in rule order, then the default; rows of a rule that drops them
    also as filtered under ``rule:<label>``, or ``no_rule``); return which rows are kept."""
    counts = np.bincount(choice + 1, minlength=len(mapping.rules) + 1)
    drops = np.zeros(len(mapping.rules) + 1, bool)  # per rule index + 1 (0: the default)
    for rule in mapping.rules:
        count = int(counts[rule.index + 1])
        if count:
            tally.rules[rule.label] = tally.rules.get(rule.label, 0) + count
            if rule.drop:
                tally.filtered["rule:" + rule.label] += count
        drops[rule.index + 1] = rule.drop
    if counts[0]:
        tally.rules[mapping.default_label] = tally.rules.get(mapping.default_label, 0) + int(counts[0])
        if mapping.default_drop:
            tally.filtered["no_rule"] += int(counts[0])
    drops[0] = mapping.default_drop
    kept: np.ndarray = ~drops[choice + 1]
    return kept


def _conditions_hold(rule: Rule, columns: Columns, rows: np.ndarray) -> np.ndarray:
    """Which of some rows meet the rule's conditions beyond the path (each once per distinct value)."""
    ok = np.ones(len(rows), bool)
    if rule.methods:
        methods = pa.array(rule.methods, pa.string())
        ok &= columns.per_row("method", lambda v: pc.is_in(as_string(v), value_set=methods), rows)
    if rule.status is not None:
        ok &= rule.status.holds(columns["status"].take(pa.array(rows)))
    for cond in rule.columns:
        if not ok.any():
            break
        ok &= columns.per_row(cond.column, functools.partial(_holds, cond), rows)
    return ok


def _holds(condition: ColumnCondition, values: pa.Array) -> pa.Array:
    return condition.holds(as_string(values))
