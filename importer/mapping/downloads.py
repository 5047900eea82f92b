"""One File Download per download: a reader's range requests of one file are one download.

Plausible's file-downloads tracking records a click on a link, once. A server log has a line
per request: a PDF viewer or a media player fetches one file in many range requests (206). So
the requests of one file by one visitor (IP + user agent) no more than ``gap_seconds`` apart
are one download, counted at the first; the others are counted as ``same_download``. The last
request of each (visitor, file) is remembered across batches, so a download split by a batch
boundary stays one.
"""

from __future__ import annotations

import threading

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .arrow import np_bool, positions
from .batch import Columns, Tally
from .filters import has_extension
from .model import Downloads, StatusRule

_DOWNLOAD_STATUS = StatusRule(frozenset({2}), frozenset({304}))
_SEP = "\x1f"  # between the parts of a (visitor, file) key; no IP, agent, host or path holds it


class DownloadMemory:
    """The time of the last request of each (visitor, file) seen so far in the run, in µs."""

    def __init__(self) -> None:
        self.last_seen: dict[str, int] = {}
        self.lock = threading.Lock()


def fold_downloads(
    downloads: Downloads, columns: Columns, keep: np.ndarray, memory: DownloadMemory, tally: Tally
) -> np.ndarray:
    """``keep`` without the requests that repeat a download (counted as ``same_download``)."""
    candidates = keep & columns.per_row("path", lambda paths: has_extension(paths, downloads.extensions))
    candidates &= _DOWNLOAD_STATUS.holds(columns["status"])
    candidates &= np_bool(pc.fill_null(pc.equal(columns["method"], "GET"), False))
    candidates &= np_bool(pc.is_valid(columns["timestamp"]))
    rows = np.flatnonzero(candidates)
    if not len(rows):
        return keep
    taken = pa.array(rows)
    parts = [pc.fill_null(columns[c].take(taken).cast(pa.string()), "") for c in ("ip", "user_agent", "host", "path")]
    encoded = pc.dictionary_encode(pc.binary_join_element_wise(*parts, _SEP))
    keys, key_at = encoded.dictionary.to_pylist(), positions(encoded.indices)
    times = columns["timestamp"].take(taken).cast(pa.int64()).to_numpy()
    order = np.lexsort((times, key_at))
    key_at, times = key_at[order], times[order]
    gap = downloads.gap_seconds * 1_000_000
    first = np.ones(len(rows), bool)
    first[1:] = key_at[1:] != key_at[:-1]
    repeat = np.zeros(len(rows), bool)
    repeat[1:] = ~first[1:] & (times[1:] - times[:-1] <= gap)
    last = np.ones(len(rows), bool)
    last[:-1] = first[1:]
    with memory.lock:
        for i in np.flatnonzero(first):
            before = memory.last_seen.get(keys[key_at[i]])
            repeat[i] = before is not None and abs(int(times[i]) - before) <= gap
        for i in np.flatnonzero(last):
            key = keys[key_at[i]]
            memory.last_seen[key] = max(int(times[i]), memory.last_seen.get(key, int(times[i])))
    repeated = rows[order[repeat]]
    if len(repeated):
        tally.filtered["same_download"] += len(repeated)
        keep = keep.copy()
        keep[repeated] = False
    return keep
