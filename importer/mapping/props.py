"""Props as Plausible's JSON object per event, within Plausible's limits (from
:mod:`importer.plausible`): at most ``MAX_PROPS`` props, keys of at most ``MAX_PROP_KEY_BYTES``
and values of at most ``MAX_PROP_VALUE_BYTES`` bytes. Over a limit, the ``truncate`` policy
cuts (and counts) and the ``reject`` policy marks the event to be left out."""

from __future__ import annotations

import json
import re
from collections import Counter

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..plausible import MAX_PROP_KEY_BYTES, MAX_PROP_VALUE_BYTES, MAX_PROPS
from .arrow import join, np_bool
from .columnmap import BAG_TYPE
from .spec import MappingError

_NULL = pa.scalar(None, pa.string())


def longest_bytes(values: pa.Array) -> int:
    return int(pc.max(pc.binary_length(values)).as_py() or 0) if len(values) else 0


def props_json(pairs: list[pa.Array], n: int) -> pa.Array:
    """'{"k":"v",...}' from pieces of '"k":"v"' pairs (null pieces left out; null when all are)."""
    if not pairs:
        return pa.nulls(n, pa.string())
    joined = pairs[0]
    for piece in pairs[1:]:
        # (binary_join_element_wise's "skip" loses rows whose pieces are all null in older pyarrow)
        joined = pc.coalesce(join(joined, piece, ","), joined, piece)
    return join("{", joined, "}", "")


def limit_value(value: pa.Array, policy: str, truncated: Counter[str], bad: np.ndarray) -> pa.Array:
    """A prop's values, those over Plausible's limit cut (and counted) or, with the ``reject``
    policy, their rows marked in ``bad``."""
    if longest_bytes(value) <= MAX_PROP_VALUE_BYTES:
        return value
    over = np_bool(pc.greater(pc.binary_length(value), MAX_PROP_VALUE_BYTES))
    if policy == "reject":
        bad |= over
        return value
    truncated["prop_value"] += int(over.sum())
    return truncate_bytes(value, MAX_PROP_VALUE_BYTES)


def template_pairs(rendered: list[tuple[str, pa.Array]]) -> list[pa.Array]:
    """'"k":"v"' per prop (null where the value is null or blank)."""
    pairs = []
    for key, value in rendered:
        pair = join(f'"{json_text(key)}":"', json_string(value), '"', "")  # null where the value is
        pairs.append(pc.if_else(pc.equal(pc.utf8_trim_whitespace(value), ""), _NULL, pair))
    return pairs


def bag_pairs(
    bag: pa.Array, taken: list[str], policy: str, truncated: Counter[str], bad: np.ndarray, origin: str
) -> pa.Array:
    """A parameter bag -> per row '"k":"v",...' (null when empty), within Plausible's limits."""
    if bag.type != BAG_TYPE:
        raise MappingError(f"{origin}: props_from names a column that is not a parameter bag")
    n = len(bag)
    flat = pc.list_flatten(bag)
    parent = pc.list_parent_indices(bag).to_numpy(zero_copy_only=False).astype(np.int64)
    key, val = pc.struct_field(flat, "key"), pc.struct_field(flat, "value")
    ok = pc.and_(
        pc.fill_null(pc.greater(pc.utf8_length(pc.utf8_trim_whitespace(val)), 0), False),
        pc.fill_null(pc.greater(pc.utf8_length(key), 0), False),
    )
    if taken:
        ok = pc.and_(ok, pc.invert(pc.fill_null(pc.is_in(key, value_set=pa.array(taken, pa.string())), False)))
    okn = ok.to_numpy(zero_copy_only=False)
    parent, key, val = parent[okn], key.filter(ok), val.filter(ok)
    limit = MAX_PROPS - len(taken)
    counts = np.bincount(parent, minlength=n)
    if (counts > limit).any():
        over_rows = counts > limit
        if policy == "reject":
            bad |= over_rows
        else:
            truncated["props_count"] += int(over_rows.sum())
            keep = np.arange(len(parent)) - np.repeat(np.cumsum(counts) - counts, counts) < limit
            parent, key, val = parent[keep], key.filter(pa.array(keep)), val.filter(pa.array(keep))
    key = _bag_limit(key, parent, "prop_key", MAX_PROP_KEY_BYTES, policy, truncated, bad)
    val = _bag_limit(val, parent, "prop_value", MAX_PROP_VALUE_BYTES, policy, truncated, bad)
    pairs = join('"', json_string(key), '":"', json_string(val), '"', "")
    offsets = np.zeros(n + 1, np.int32)
    np.cumsum(np.bincount(parent, minlength=n), out=offsets[1:])
    joined = pc.binary_join(pa.ListArray.from_arrays(pa.array(offsets), pairs), ",")
    return pc.if_else(pa.array(offsets[1:] > offsets[:-1]), joined, _NULL)


def _bag_limit(
    values: pa.Array, parent: np.ndarray, what: str, limit: int, policy: str, truncated: Counter[str], bad: np.ndarray
) -> pa.Array:
    over = np_bool(pc.greater(pc.binary_length(values), limit))
    if not over.any():
        return values
    rows = np.unique(parent[over])
    if policy == "reject":
        bad[rows] = True
        return values
    truncated[what] += len(rows)
    return truncate_bytes(values, limit)


def truncate_bytes(values: pa.Array, limit: int) -> pa.Array:
    """Cut strings to at most ``limit`` UTF-8 bytes without splitting a character (rows over it only)."""
    over = np_bool(pc.greater(pc.binary_length(values), limit))
    if not over.any():
        return values
    items = values.to_pylist()
    for i in np.flatnonzero(over):
        items[i] = items[i].encode("utf-8")[:limit].decode("utf-8", "ignore")
    return pa.array(items, pa.string())


def json_string(values: pa.Array) -> pa.Array:
    """Escape a string column for use inside JSON double quotes."""
    if not pc.any(pc.match_substring_regex(values, r'[\\"\x00-\x1f]')).as_py():
        return values  # nothing to escape (the usual case)
    out = pc.replace_substring(values, "\\", "\\\\")
    out = pc.replace_substring(out, '"', '\\"')
    out = pc.replace_substring(out, "\n", "\\n")
    out = pc.replace_substring(out, "\r", "\\r")
    out = pc.replace_substring(out, "\t", "\\t")
    if pc.any(pc.match_substring_regex(out, r"[\x00-\x1f]")).as_py():
        out = pa.array([None if s is None else _CONTROL.sub(_escape_control, s) for s in out.to_pylist()], pa.string())
    return out


_CONTROL = re.compile(r"[\x00-\x1f]")


def _escape_control(match: re.Match[str]) -> str:
    return f"\\u{ord(match.group()):04x}"


def json_text(text: str) -> str:
    """A Python string escaped for use inside JSON double quotes."""
    return json.dumps(text, ensure_ascii=False)[1:-1]
