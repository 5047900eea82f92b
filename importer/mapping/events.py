"""A batch's kept rows -> Plausible events: each rule's names, props and revenue, rendered
once per distinct value of the one column they read (see :class:`Level`), then Plausible's
limits on names and URLs (from :mod:`importer.plausible`)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .. import events as ev
from ..arrowutil import repeat_string
from ..plausible import MAX_NAME_CHARS, MAX_PROP_VALUE_BYTES, MAX_URL_BYTES
from .arrow import as_string, chunk, np_bool
from .batch import Columns, Encoding, Tally
from .matching import count_rules, match_rules
from .model import Mapping, Rule, Template
from .props import bag_pairs, limit_value, longest_bytes, props_json, template_pairs

_NULL = pa.scalar(None, pa.string())
_SHARED = ("url", "domain", "referrer", "user_agent", "ip", "timestamp", "source_file", "source_line")


@dataclass(frozen=True)
class Level:
    """Where templates are rendered for a rule's rows: ``values`` (``size`` of each), and each
    row's position among them. When every reference reads one column (itself or its regex
    groups), that is once per distinct value of the column; with several columns, per row."""

    values: dict[str, pa.Array]
    size: int
    at: np.ndarray


class RuleRows:
    """A rule's rows, and the distinct values of the columns (and regex groups) its templates
    read, each worked out once for the rule."""

    def __init__(self, rule: Rule, columns: Columns, where: np.ndarray):
        self.rule = rule
        self.where = where
        self._columns = columns
        self._encodings: dict[str, Encoding] = {}
        self._groups: dict[tuple[str, str], pa.Array] = {}

    def level(self, refs: list[str]) -> Level:
        """Where to render templates reading ``refs``, and those refs' values there."""
        groups = self.rule.groups
        sources = {ref: groups.get(ref, (ref, "")) for ref in dict.fromkeys(refs)}  # ref -> (column, regex)
        bases = {column for column, _ in sources.values()}
        if not bases:  # constants: rendered once
            return Level({}, 1, np.zeros(len(self.where), np.intp))
        values = {ref: self._distinct(column, pattern, ref) for ref, (column, pattern) in sources.items()}
        if len(bases) == 1:
            distinct, at = self._encoding(bases.pop())
            return Level(values, len(distinct), at)
        per_row = {ref: v.take(pa.array(self._encoding(sources[ref][0])[1])) for ref, v in values.items()}
        return Level(per_row, len(self.where), np.arange(len(self.where)))

    def render(self, template: Template) -> tuple[pa.Array, np.ndarray]:
        lv = self.level(template.refs)
        return template.render(lv.values, lv.size), lv.at

    def _encoding(self, column: str) -> Encoding:
        if column not in self._encodings:
            self._encodings[column] = self._columns.distinct_at(column, self.where)
        return self._encodings[column]

    def _distinct(self, column: str, pattern: str, ref: str) -> pa.Array:
        """A column's distinct values, or those of one of a regex's groups in it."""
        distinct = self._encoding(column)[0]
        if not pattern:
            return distinct
        if (column, pattern) not in self._groups:
            self._groups[column, pattern] = pc.extract_regex(as_string(distinct), pattern)
        return pc.struct_field(self._groups[column, pattern], ref)


class Pool:
    """An event column built rule by rule: values, and each row's position among them (the
    rows no rule placed take the first value)."""

    def __init__(self, first: pa.Array, n: int):
        self._parts = [first]
        self._size = len(first)
        self.at = np.zeros(n, np.intp)

    def place(self, where: np.ndarray, values: pa.Array, at: np.ndarray) -> None:
        """The rows ``where`` take ``values[at]``."""
        self.at[where] = self._size + at
        self._parts.append(chunk(values))
        self._size += len(values)

    def values(self) -> pa.Array:
        if len(self._parts) > 1:
            self._parts = [pa.concat_arrays(self._parts)]
        return self._parts[0]


@dataclass
class Pools:
    """Per-rule values of a batch's events."""

    names: Pool
    props: Pool
    amount: Pool
    currency: Pool
    props_bad: np.ndarray  # rows whose props are over a limit under the "reject" policy
    not_interactive: np.ndarray

    @classmethod
    def start(cls, default_name: str, n: int) -> Pools:
        def nulls() -> Pool:
            return Pool(pa.nulls(1, pa.string()), n)

        return cls(
            Pool(pa.array([default_name], pa.string()), n),
            nulls(),
            nulls(),
            nulls(),
            np.zeros(n, bool),
            np.zeros(n, bool),
        )


def build_events(m: Mapping, columns: Columns, tally: Tally) -> pa.Table:
    """The events of the rows (filters already applied), the rules matched and counted."""
    if columns.n == 0:
        return ev.empty_events()
    choice = match_rules(m.rules, columns)
    keep = count_rules(m, choice, tally)
    pools = Pools.start(m.event_name, columns.n)
    for rule in m.rules:
        if not rule.drop:
            where = np.flatnonzero(choice == rule.index)
            if len(where):
                _render_rule(m, rule, columns, where, pools, tally.truncated)
    table, rows = _assemble(m, columns, pools, keep, tally)
    also = np.array([r.also_pageview for r in m.rules] + [False], bool)  # per rule index; -1: the default
    return _with_pageviews(m, table, np.flatnonzero(also[choice[rows]]), tally)


def _with_pageviews(m: Mapping, table: pa.Table, at: np.ndarray, tally: Tally) -> pa.Table:
    """The events, each of the ``at`` ones preceded by its row's pageview (as a live site sends
    the page's pageview, then the goal): the default event's name, no props, no revenue."""
    if not len(at):
        return table
    tally.extra_events += len(at)
    pageviews = table.take(pa.array(at))
    for column in ("props", "revenue_amount", "revenue_currency", "interactive"):
        i = pageviews.schema.get_field_index(column)
        pageviews = pageviews.set_column(
            i, pageviews.schema.field(i), pa.nulls(len(at), pageviews.schema.field(i).type)
        )
    i = pageviews.schema.get_field_index("name")
    pageviews = pageviews.set_column(i, pageviews.schema.field(i), repeat_string(m.event_name, len(at)))
    order = np.insert(np.arange(table.num_rows), at, table.num_rows + np.arange(len(at)))
    return pa.concat_tables([table, pageviews]).take(pa.array(order))


def _render_rule(
    m: Mapping, rule: Rule, columns: Columns, where: np.ndarray, pools: Pools, truncated: Counter[str]
) -> None:
    assert rule.name is not None  # (a rule that does not drop rows has a name)
    rows = RuleRows(rule, columns, where)
    pools.names.place(where, *rows.render(rule.name))
    if rule.props or rule.props_from is not None:
        props, at = _props(m, rows, columns, pools.props_bad, truncated)
        pools.props.place(where, props, at)
    if rule.revenue_amount is not None and rule.revenue_currency is not None:
        lv = rows.level(rule.revenue_amount.refs + rule.revenue_currency.refs)
        amount, currency = _revenue(
            rule.revenue_amount.render(lv.values, lv.size), rule.revenue_currency.render(lv.values, lv.size)
        )
        pools.amount.place(where, amount, lv.at)
        pools.currency.place(where, currency, lv.at)
    if rule.interactive is False:
        pools.not_interactive[where] = True


def _props(
    m: Mapping, rows: RuleRows, columns: Columns, bad: np.ndarray, truncated: Counter[str]
) -> tuple[pa.Array, np.ndarray]:
    """A rule's props JSON and each of its rows' position among the values: per distinct value
    when no value is over a limit (the usual case), else per row, where limits are applied."""
    rule, where = rows.rule, rows.where
    lv = rows.level([r for _, t in rule.props for r in t.refs])
    rendered = [(key, t.render(lv.values, lv.size)) for key, t in rule.props]
    if rule.props_from is None:
        props = props_json(template_pairs(rendered), lv.size)
        if longest_bytes(props) <= MAX_PROP_VALUE_BYTES:  # then no value in it is over the limit
            return props, lv.at
    at = pa.array(lv.at)
    row_bad = np.zeros(len(where), bool)
    rendered = [(k, limit_value(v.take(at), m.limit_policy, truncated, row_bad)) for k, v in rendered]
    pairs = template_pairs(rendered)
    if rule.props_from is not None:
        bag = columns[rule.props_from].take(pa.array(where))
        pairs.append(bag_pairs(bag, [k for k, _ in rule.props], m.limit_policy, truncated, row_bad, m.origin))
    bad[where] |= row_bad
    return props_json(pairs, len(where)), np.arange(len(where))


_AMOUNT = r"^-?\d+(\.\d+)?$"


def _revenue(amount: pa.Array, currency: pa.Array) -> tuple[pa.Array, pa.Array]:
    """Revenue amounts as decimal strings and ISO 4217 codes; both null unless both are valid."""
    amount = pc.utf8_trim_whitespace(amount)
    # 129.90 stays "129.90"; a float export's "1e3" or "" is not an amount.
    ok_amount = pc.fill_null(pc.match_substring_regex(amount, _AMOUNT), False)
    code = pc.utf8_upper(pc.utf8_trim_whitespace(currency))
    ok_code = pc.fill_null(pc.match_substring_regex(code, r"^[A-Z]{3}$"), False)
    ok = pc.and_(ok_amount, ok_code)
    return pc.if_else(ok, amount, _NULL), pc.if_else(ok, code, _NULL)


def _assemble(
    m: Mapping, columns: Columns, pools: Pools, keep: np.ndarray, tally: Tally
) -> tuple[pa.Table, np.ndarray]:
    """The events of the rows ``keep`` marks, within Plausible's limits: over-long names are cut
    (or, with the ``reject`` policy, left out), blank names, rejected props and over-long URLs
    left out; each counted. Also the rows the events come from."""
    rows = np.flatnonzero(keep)
    names = pools.names.values()
    # checked once per distinct name
    blank = np_bool(pc.fill_null(pc.equal(pc.utf8_length(pc.utf8_trim_whitespace(names)), 0), True))
    too_long = np_bool(pc.greater(pc.utf8_length(names), MAX_NAME_CHARS))
    name_at = pools.names.at[rows]
    drop = pools.props_bad[rows]
    _count(tally, "limit:props", drop, np.zeros(len(rows), bool))
    drop = drop | _count(tally, "limit:empty_name", blank[name_at], drop)
    if too_long.any():
        long_rows = too_long[name_at] & ~drop
        if m.limit_policy == "reject":
            drop = drop | _count(tally, "limit:name", long_rows, drop)
        else:
            tally.truncated["name"] += int(np.count_nonzero(long_rows))
            names = pc.utf8_slice_codeunits(names, 0, MAX_NAME_CHARS)
    url = columns["url"].take(pa.array(rows)) if len(rows) < columns.n else columns["url"]
    drop = drop | _count(tally, "url_too_long", np_bool(pc.greater(pc.binary_length(url), MAX_URL_BYTES)), drop)
    rows = rows[~drop]
    if len(rows) == columns.n:
        out = {k: columns[k] for k in _SHARED}
    else:
        selected = np.zeros(columns.n, bool)
        selected[rows] = True
        mask = pa.array(selected)
        out = {k: columns[k].filter(mask) for k in _SHARED}
    out["name"] = names.take(pa.array(pools.names.at[rows]))
    for k, pool in (("props", pools.props), ("revenue_amount", pools.amount), ("revenue_currency", pools.currency)):
        out[k] = pool.values().take(pa.array(pool.at[rows]))
    out["interactive"] = pc.if_else(pa.array(pools.not_interactive[rows]), False, pa.scalar(None, pa.bool_()))
    arrays = [chunk(out[f.name]) for f in ev.EVENT_SCHEMA]
    table = pa.Table.from_arrays(
        [a if a.type == f.type else a.cast(f.type) for a, f in zip(arrays, ev.EVENT_SCHEMA, strict=True)],
        schema=ev.EVENT_SCHEMA,
    )
    for field in ev.LOCATION_FIELDS:  # an export's visitor location, for the backfill
        if field in m.visitor:
            location = chunk(columns[m.visitor[field]]).cast(pa.string())
            table = table.append_column(field, location if len(rows) == columns.n else location.take(pa.array(rows)))
    return table, rows


def _count(tally: Tally, reason: str, hits: np.ndarray, dropped: np.ndarray) -> np.ndarray:
    """Count the rows ``hits`` marks that are not ``dropped`` yet under ``reason``; return ``hits``."""
    count = int(np.count_nonzero(hits & ~dropped))
    if count:
        tally.filtered[reason] += count
    return hits
