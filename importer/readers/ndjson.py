"""Newline-delimited JSON exports (GA4's BigQuery export as JSON, PostHog, Umami...), a block of
whole lines at a time, so that memory stays bounded whatever the file's size."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.json as pajson

from .. import schema
from ..mapping.columnmap import ColumnMap
from ..sources import LineBlock, Source, line_blocks, open_source
from .base import Batch, FormatError, Rejected, too_long_rejects, valid_utf8
from .export import ROWS_PER_BATCH, absent, named, to_batch

# On a 245 MB GA4 export (280,000 events) 8 MiB blocks peak at ~350 MB of memory whatever the
# file's size (parsing it whole: ~550 MB, growing with the file) and cost ~9% more time; Arrow
# parses each block in 2 MiB pieces on both cores.
NDJSON_BLOCK_BYTES = 8 << 20
NDJSON_PARSE_BYTES = 2 << 20
NDJSON_MAX_LINE_BYTES = 16 << 20  # one exported event (GA4's ecommerce items can make long lines)
NDJSON_MAX_KEY_BYTES = 4096  # the longest key looked for across a block boundary


class NdjsonReader:
    """Reads an NDJSON file through a column map."""

    name = "ndjson"

    def __init__(self, column_map: ColumnMap):
        self.column_map = column_map

    def read(self, source: Source) -> Iterator[Batch]:
        """Newline-delimited JSON, a block of whole lines at a time (memory stays bounded
        whatever the file's size). Each block is parsed on its own, so a field that first
        appears late is found where it appears; a line that is not a JSON object, or whose
        values do not fit the types the rest of its block has, is rejected on its own."""
        opened = open_source(source)
        try:
            blocks = line_blocks(opened, block_bytes=NDJSON_BLOCK_BYTES, max_line_bytes=NDJSON_MAX_LINE_BYTES)
            missing = set(self.column_map.source_columns())  # named in the mapping, not seen yet
            waiting = _Waiting()
            checked = False
            block = next(blocks, None)
            while block is not None:
                following = next(blocks, None)
                rejected = too_long_rejects(block, source.name, NDJSON_MAX_LINE_BYTES)
                parts = _parse_json_lines(block, source.name, rejected)
                for table, _ in parts:
                    missing = absent(missing, table.column_names, table.schema)
                if not checked and (parts or following is None):
                    # Once, at the first rows: a column the mapping names must be in the file.
                    # When these rows lack it, the rest of the file is searched before any row
                    # goes out (a field can first appear late).
                    checked = True
                    if missing:
                        _check_later_columns(source, missing, rest_exists=following is not None)
                if following is None and missing:
                    # stdin (not searched ahead), or a file whose text has the key only as
                    # a value: the rows went out without the columns, which the report says.
                    waiting.notices.append(
                        Rejected(
                            source.name,
                            block.first_line + block.line_count,
                            f"{named(missing)} never appeared: no row had a value for them",
                            "",
                        )
                    )
                converted = [to_batch(table, self.column_map, source.name, lines) for table, lines in parts]
                rejected += [r for batch in converted for r in batch.rejected]
                waiting.rows_read += (
                    sum(len(lines) for _, lines in parts) + len(rejected) - sum(len(b.rejected) for b in converted)
                )
                waiting.rejected += sorted(rejected, key=lambda r: r.line or 0)
                waiting.tables += [batch.table for batch in converted if batch.table.num_rows]
                if block.truncated:
                    end = block.first_line + block.line_count
                    waiting.notices.append(Rejected(source.name, end, block.truncated, ""))
                    waiting.damaged = True
                # Blocks of small lines are many rows, of long ones few: batches of about
                # ROWS_PER_BATCH rows either way, which is what the later stages are fastest at.
                if following is None or sum(t.num_rows for t in waiting.tables) >= ROWS_PER_BATCH:
                    yield from waiting.batches(opened.position.consumed)
                    waiting = _Waiting()
                block = following
        finally:
            if not source.stdin:
                opened.raw.close()


def _check_later_columns(source: Source, missing: set[str], rest_exists: bool) -> None:
    """Columns the first block lacks: an error unless the file names them further on
    (found by their keys in the raw text, one more read of the file; stdin cannot be read
    twice, so there the columns are trusted to come, and a notice at the end of the
    stream says so when they never did)."""
    if rest_exists and source.stdin:
        return
    if rest_exists:
        keys = {c: [b'"' + part.encode() + b'"' for part in c.split(".")] for c in missing}
        opened = open_source(source)
        try:
            tail = b""
            while keys:
                try:
                    chunk = opened.stream.read(NDJSON_BLOCK_BYTES)
                except Exception:  # a damaged compressed tail (reading reports it): search what came before
                    break
                if not chunk:
                    break
                text = tail + chunk
                keys = {c: [k for k in ks if k not in text] for c, ks in keys.items()}
                keys = {c: ks for c, ks in keys.items() if ks}
                tail = text[-NDJSON_MAX_KEY_BYTES:]
        finally:
            if not source.stdin:
                opened.raw.close()
        missing = set(keys)
    if missing:
        raise FormatError(f"{source.name}: {named(missing)} are not in the file")


@dataclass
class _Waiting:
    """Rows converted from NDJSON blocks, not yet handed on."""

    tables: list[pa.Table] = field(default_factory=list)
    rows_read: int = 0
    rejected: list[Rejected] = field(default_factory=list)
    notices: list[Rejected] = field(default_factory=list)
    damaged: bool = False

    def batches(self, position: int) -> Iterator[Batch]:
        table = (
            pa.concat_tables(self.tables)
            if len(self.tables) > 1
            else (self.tables[0] if self.tables else schema.empty_frame())
        )
        for start in range(0, max(table.num_rows, 1), ROWS_PER_BATCH):
            first = start == 0
            yield Batch(
                table=table.slice(start, ROWS_PER_BATCH),
                rows_read=self.rows_read if first else 0,
                rejected=self.rejected if first else [],
                notices=self.notices if first else [],
                position=position,
                damaged=self.damaged and first,
            )


def _parse_json_lines(
    block: LineBlock, source_name: str, rejected: list[Rejected]
) -> list[tuple[pa.Table, np.ndarray]]:
    """A block of NDJSON lines as tables, each with the line number of each of its rows.

    The block is parsed in one go; when that fails, in halves, down to the single lines that
    are at fault, which go to ``rejected`` (blank lines hold no row)."""
    data = valid_utf8(block.data)  # an invalid byte becomes U+FFFD and the row is kept
    if not data:
        return []
    if block.first_line == 1 and data.startswith(b"\xef\xbb\xbf"):
        data = b"   " + data[3:]  # a byte order mark: blanked, so offsets and columns stay
    buf = np.frombuffer(data, dtype=np.uint8)
    ends = np.flatnonzero(buf == 10)
    if len(ends) == 0 or ends[-1] != len(buf) - 1:
        ends = np.append(ends, len(buf))
    starts = np.concatenate(([0], ends[:-1] + 1))
    lengths = ends - starts
    # A line holds a row unless it is blank: most start with "{", the others are looked at.
    filled = lengths > 0
    unsure = np.flatnonzero(filled & (buf[np.minimum(starts, len(buf) - 1)] != ord("{")))
    for i in unsure.tolist():
        filled[i] = bool(data[starts[i] : ends[i]].strip())
    rows = np.flatnonzero(filled)
    out: list[tuple[pa.Table, np.ndarray]] = []
    # (a loop over a stack, not a recursive closure: that would be a reference cycle holding
    # the block until the garbage collector runs)
    todo = [(0, len(rows))] if len(rows) else []
    while todo:
        lo, hi = todo.pop()
        text = data[starts[rows[lo]] : ends[rows[hi - 1]]]
        try:
            table = pajson.read_json(
                pa.BufferReader(text), read_options=pajson.ReadOptions(block_size=NDJSON_PARSE_BYTES)
            )
            fault = None if table.num_rows == hi - lo else "not one JSON object"  # Arrow saw a blank or two rows
        except pa.ArrowInvalid as exc:
            table, fault = None, exc
        if fault is None:
            out.append((table, block.first_line + rows[lo:hi]))
        elif hi - lo == 1:
            reason = fault if isinstance(fault, str) else _json_line_fault(text, fault)
            rejected.append(
                Rejected(source_name, block.first_line + int(rows[lo]), reason, text[:200].decode("utf-8", "replace"))
            )
        else:  # the halves, the first on top
            middle = (lo + hi) // 2
            todo += [(middle, hi), (lo, middle)]
    return out


def _json_line_fault(text: bytes, exc: Exception) -> str:
    """Why one NDJSON line cannot be read, in words."""
    try:
        value = json.loads(text)
    except ValueError as err:
        return f"not valid JSON ({err})"
    if not isinstance(value, dict):
        return f"not a JSON object (a {type(value).__name__})"
    return "not readable as a row: " + re.sub(r"^JSON parse error: |\s*in row \d+$", "", str(exc))
