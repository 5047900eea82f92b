"""Arrow helpers that belong to no one stage: the readers and the mapping both build columns
with them, so they live here rather than in either package (which would tie the two together)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa


def repeat_string(value: str, n: int) -> pa.Array:
    """A string column holding one value n times, built without a Python list."""
    raw = value.encode("utf-8")
    if len(raw) * n < 2**31 - 1:
        offsets = np.arange(n + 1, dtype=np.int32) * np.int32(len(raw))
        return pa.Array.from_buffers(pa.string(), n, [None, pa.py_buffer(offsets), pa.py_buffer(raw * n)])
    indices = pa.array(np.zeros(n, dtype=np.int32))
    return pa.DictionaryArray.from_arrays(indices, pa.array([value])).cast(pa.string())
