"""Events sorted into site-local days with bounded memory.

Logs are mostly, not strictly, in time order, and several inputs may cover the same days, so
a day is complete only once every input has been read. Events are kept in memory per day
until the buffered total passes ``memory_limit`` bytes; then every buffered day is written to
its own Arrow IPC file in a temporary directory (one more part per spill) and the memory is
freed. Afterwards a day is loaded from its parts plus whatever is still buffered, processed,
and dropped. Peak memory is therefore about the buffer limit plus the largest single day.

User agents are long and few, so each distinct agent is stored once (``agents``) and events
carry its number (``ua_id``, -1 for none) instead of the string.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..events import LOCATION_FIELDS
from .aggregate import EVENT_COLUMNS

DEFAULT_MEMORY_LIMIT = 128 * 1024 * 1024


class DaySpill:
    def __init__(self, timezone: str, memory_limit: int = DEFAULT_MEMORY_LIMIT, tmp_dir: str | Path | None = None):
        self.timezone = timezone
        self.memory_limit = memory_limit
        self._tmp_parent = tmp_dir
        self._dir: Path | None = None
        self.buffers: dict[int, list[pa.Table]] = {}
        self.buffered_bytes = 0
        self.parts: dict[int, list[Path]] = {}
        self.spills = 0
        self.spilled_bytes = 0
        self.no_timestamp = 0
        self.agents: list[str] = []
        self._agent_ids: dict[str, int] = {}

    def add(self, events: pa.Table) -> None:
        if not events.num_rows:
            return
        names = [c for c in EVENT_COLUMNS if c != "user_agent"]
        names += [c for c in ("interactive", *LOCATION_FIELDS) if c in events.column_names]
        table = events.select(names).append_column("ua_id", self._agent_numbers(events.column("user_agent")))
        local = pc.local_timestamp(table.column("timestamp").cast(pa.timestamp("us", tz=self.timezone)))
        day = local.cast(pa.date32()).cast(pa.int32())
        if day.null_count:
            self.no_timestamp += day.null_count
            keep = pc.is_valid(day)
            table, day = table.filter(keep), day.filter(keep)
        table = table.append_column("day", day)
        distinct = pc.unique(day).to_pylist()
        if len(distinct) == 1:
            self._buffer(distinct[0], table)
        else:
            for d in distinct:
                self._buffer(d, table.filter(pc.equal(table.column("day"), d)))
        if self.buffered_bytes > self.memory_limit:
            self.spill()

    def _agent_numbers(self, column: pa.ChunkedArray) -> pa.Array:
        encoded = column.combine_chunks().dictionary_encode()
        ids = np.empty(len(encoded.dictionary) + 1, dtype=np.int32)
        for i, agent in enumerate(encoded.dictionary.to_pylist()):
            number = self._agent_ids.get(agent)
            if number is None:
                number = self._agent_ids[agent] = len(self.agents)
                self.agents.append(agent)
            ids[i] = number
        ids[-1] = -1  # null user agent
        indices = pc.fill_null(encoded.indices, len(encoded.dictionary)).to_numpy(zero_copy_only=False)
        return pa.array(ids[indices], pa.int32())

    def _buffer(self, day: int, table: pa.Table) -> None:
        self.buffers.setdefault(day, []).append(table)
        self.buffered_bytes += table.nbytes

    def spill(self) -> None:
        if self._dir is None:
            self._dir = Path(tempfile.mkdtemp(prefix="plausible-backfill-", dir=self._tmp_parent))
        for day, tables in self.buffers.items():
            table = pa.concat_tables(tables, promote_options="permissive")
            path = self._dir / f"{day}-{len(self.parts.get(day, []))}.arrow"
            with (
                pa.OSFile(str(path), "wb") as sink,
                pa.ipc.new_file(sink, table.schema, options=pa.ipc.IpcWriteOptions(compression="lz4")) as writer,
            ):
                writer.write_table(table)
            self.parts.setdefault(day, []).append(path)
            self.spilled_bytes += path.stat().st_size
        self.spills += 1
        self.buffers.clear()
        self.buffered_bytes = 0

    def days(self) -> list[int]:
        return sorted(set(self.buffers) | set(self.parts))

    def take(self, day: int) -> pa.Table:
        """All events of ``day`` (then forgotten here)."""
        tables = []
        for path in self.parts.pop(day, []):
            with pa.OSFile(str(path), "rb") as source:
                tables.append(pa.ipc.open_file(source).read_all())
            path.unlink(missing_ok=True)
        buffered = self.buffers.pop(day, [])
        self.buffered_bytes -= sum(t.nbytes for t in buffered)
        tables.extend(buffered)
        return pa.concat_tables(tables, promote_options="permissive")

    def close(self) -> None:
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None
