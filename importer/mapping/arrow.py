"""Small Arrow helpers the mapping's modules share."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeAlias

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

Column: TypeAlias = "pa.Array | pa.ChunkedArray"


def chunk(value: Column) -> pa.Array:
    """A column as one array (chunks combined only when there are several)."""
    if isinstance(value, pa.ChunkedArray):
        return value.combine_chunks() if value.num_chunks != 1 else value.chunk(0)
    return value


def as_string(values: Column) -> pa.Array:
    values = chunk(values)
    return values if values.type == pa.string() else values.cast(pa.string())


def np_bool(mask: Column | np.ndarray) -> np.ndarray:
    """A boolean mask (Arrow or NumPy; nulls count as false) as a NumPy array."""
    if isinstance(mask, np.ndarray):
        return mask
    mask = chunk(mask)
    if mask.null_count:
        mask = pc.fill_null(mask, False)
    out: np.ndarray = mask.to_numpy(zero_copy_only=False)
    return out


def positions(indices: Column) -> np.ndarray:
    """Arrow integer indices (no nulls) as NumPy's own index type (indexing with int32 arrays
    is several times slower: NumPy converts them on every use)."""
    out: np.ndarray = chunk(indices).to_numpy(zero_copy_only=False).astype(np.intp, copy=False)
    return out


def with_null(values: pa.Array) -> pa.Array:
    """Values per distinct value of a column, and one more for the rows where it is null."""
    return pa.concat_arrays([values, pa.nulls(1, values.type)])


def join(*pieces: pa.Array | str, **options: Any) -> pa.Array:
    """``binary_join_element_wise`` (the last piece is the separator); text pieces repeat."""
    args = [_text(p) if isinstance(p, str) else p for p in pieces]
    return pc.binary_join_element_wise(*args, **options)


@functools.lru_cache(maxsize=4096)
def _text(text: str) -> pa.Scalar:
    """A string scalar, made once (making one costs about as much as joining a few hundred rows)."""
    return pa.scalar(text, pa.string())


def any_regex(values: pa.Array, patterns: tuple[str, ...]) -> pa.Array:
    """Does each value match any of the patterns (null: no)? RE2, so linear in the text."""
    pattern = patterns[0] if len(patterns) == 1 else "|".join(f"(?:{p})" for p in patterns)
    hit = pc.match_substring_regex(values, pattern)
    return pc.fill_null(hit, False) if hit.null_count else hit


def on_distinct(values: pa.Array, fn: Callable[[pa.Array], pa.Array]) -> pa.Array:
    """Evaluate a column function once per distinct value, then map it back to the rows."""
    encoded = values if pa.types.is_dictionary(values.type) else pc.dictionary_encode(values)
    return pc.take(fn(encoded.dictionary), encoded.indices)
