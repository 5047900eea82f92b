"""Parameter bags of exports (GA4's ``event_params``, PostHog's ``properties``...) unpacked
into the columns a mapping asks for (its ``[input.params]`` table)."""

from __future__ import annotations

import io
import json

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pajson

from .. import schema
from ..arrowutil import repeat_string
from ..mapping.columnmap import BAG_TYPE, ParamsSpec


def as_text(values: pa.Array) -> pa.Array:
    """Any scalar column as strings (missing-value tokens become null); nested ones as JSON."""
    t = values.type
    if pa.types.is_string(t):
        return schema.null_if_missing(values)
    if pa.types.is_large_string(t) or pa.types.is_dictionary(t):
        return schema.null_if_missing(values.cast(pa.string()))
    if pa.types.is_null(t):
        return pa.nulls(len(values), pa.string())
    if pa.types.is_nested(t):
        return pa.array(
            [None if v is None else json.dumps(v, default=str, ensure_ascii=False) for v in values.to_pylist()],
            pa.string(),
        )
    return values.cast(pa.string())


def _param_values(values: pa.Array) -> pa.Array:
    """GA4's value record {string_value, int_value, float_value, double_value} -> one string."""
    if not pa.types.is_struct(values.type):
        return as_text(values)
    slots = [as_text(pc.struct_field(values, f.name)) for f in values.type]
    return pc.coalesce(*slots) if len(slots) > 1 else slots[0]


def _elements_from_fields(fields: dict[str, pa.Array], n: int) -> tuple[np.ndarray, pa.Array, pa.Array]:
    """Per-row fields (one array per key) -> (parent row, key, value) elements, row-major."""
    parents, keys, values = [], [], []
    for key, value in fields.items():
        text = as_text(value)
        valid = pc.is_valid(text).to_numpy(zero_copy_only=False)
        rows = np.flatnonzero(valid)
        parents.append(rows)
        keys.append(repeat_string(key, len(rows)))
        values.append(text.filter(pa.array(valid)))
    if not parents:
        return np.zeros(0, np.int64), pa.array([], pa.string()), pa.array([], pa.string())
    parent = np.concatenate(parents)
    order = np.argsort(parent, kind="stable")
    key = pa.concat_arrays(keys).take(pa.array(order))
    value = pa.concat_arrays(values).take(pa.array(order))
    return parent[order], key, value


def _json_objects(texts: pa.Array) -> tuple[np.ndarray, pa.Array, pa.Array]:
    """A column of JSON object strings -> (parent row, key, value) elements.

    Fast path: pyarrow's JSON reader on the whole column at once. A column whose keys change
    type between rows (a number here, a string there) is decoded row by row instead.
    """
    n = len(texts)
    texts = as_text(texts)
    filled = pc.fill_null(pc.replace_substring_regex(texts, r"^\s*$", "{}"), "{}")
    data = "\n".join(filled.to_pylist()).encode("utf-8") if n else b""
    try:
        options = pajson.ReadOptions(block_size=max(1 << 20, len(data) + 1))
        parsed = pajson.read_json(io.BytesIO(data), read_options=options)
        if parsed.num_rows != n:
            raise pa.ArrowInvalid("row count changed")
        fields = {name: parsed.column(name).combine_chunks() for name in parsed.column_names}
        return _elements_from_fields(fields, n)
    except pa.ArrowInvalid:
        pass
    parents, keys, values = [], [], []
    for row, text in enumerate(filled.to_pylist()):
        try:
            obj = json.loads(text)
        except ValueError:
            continue
        if not isinstance(obj, dict):
            continue
        for key, value in obj.items():
            if value is None:
                continue
            parents.append(row)
            keys.append(str(key))
            if isinstance(value, bool):
                values.append("true" if value else "false")
            elif isinstance(value, (dict, list)):
                values.append(json.dumps(value, ensure_ascii=False))
            else:
                values.append(str(value))
    return np.array(parents, np.int64), pa.array(keys, pa.string()), pa.array(values, pa.string())


def unpack_params(column: pa.Array | None, spec: ParamsSpec) -> dict[str, pa.Array]:
    """A parameter bag column -> one string column per wanted key, plus the bag itself.

    The bag column may be a list of {key, value} records (GA4 ``event_params``; the value
    may be GA4's record of typed slots), a struct, or JSON object strings.
    """
    if column is None:
        return {}
    n = len(column)
    t = column.type
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        flat = pc.list_flatten(column)
        parent = pc.list_parent_indices(column).to_numpy(zero_copy_only=False).astype(np.int64)
        struct = pa.types.is_struct(flat.type)
        key = as_text(pc.struct_field(flat, "key")) if struct else pa.nulls(len(flat), pa.string())
        value = _param_values(pc.struct_field(flat, "value")) if struct else as_text(flat)
    elif pa.types.is_struct(t):
        parent, key, value = _elements_from_fields({f.name: pc.struct_field(column, f.name) for f in t}, n)
    else:
        parent, key, value = _json_objects(column)
    out: dict[str, pa.Array] = {}
    for wanted in spec.keys:
        hit = pc.fill_null(pc.equal(key, wanted), False)
        rows = parent[hit.to_numpy(zero_copy_only=False)]
        picked = value.filter(hit)
        # Last one wins if a key repeats within a row; scatter values onto their rows.
        index = np.full(n, -1, np.int64)
        index[rows] = np.arange(len(rows))
        take = pa.array(index, mask=index < 0)
        out[wanted] = picked.take(take) if len(picked) else pa.nulls(n, pa.string())
    if spec.bag:
        keep = pc.and_(pc.is_valid(key), pc.is_valid(value))
        if spec.exclude:
            keep = pc.and_(keep, pc.invert(pc.is_in(key, value_set=pa.array(sorted(spec.exclude), pa.string()))))
        for prefix in spec.exclude_prefixes:
            keep = pc.and_(keep, pc.invert(pc.fill_null(pc.starts_with(key, prefix), False)))
        keep = pc.fill_null(keep, False)
        kept_parent = parent[keep.to_numpy(zero_copy_only=False)]
        offsets = np.zeros(n + 1, np.int32)
        np.cumsum(np.bincount(kept_parent, minlength=n), out=offsets[1:])
        items = pa.StructArray.from_arrays([key.filter(keep), value.filter(keep)], fields=list(BAG_TYPE.value_type))
        out[spec.bag] = pa.ListArray.from_arrays(pa.array(offsets), items, type=BAG_TYPE)
    return out
