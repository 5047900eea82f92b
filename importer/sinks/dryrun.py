"""The dry run: nothing is sent; events are counted, and written as JSON lines on request."""

from __future__ import annotations

import json
import signal
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

import pyarrow as pa

from ..events import dry_run_record
from ..report import open_private


class DryRunWriter:
    """Writes each event as one JSON line (``--output``; ``-``: standard output), or only lets them
    be counted."""

    def __init__(self, output: Path | None, on_settled: Callable[[int], None] | None = None):
        self.output = output
        self.on_settled = on_settled or (lambda n: None)
        self.interrupted: int | None = None
        self.state_error: str | None = None  # a dry run keeps no state
        self.fatal: str | None = None

    def interrupt(self, signum: int = signal.SIGINT) -> None:
        """Stop after the batch being written: what was written stays whole."""
        self.interrupted = signum

    def run(self, batches: Iterator[pa.Table]) -> None:
        if self.output is None:
            for table in batches:
                if self.interrupted is not None:
                    return
                self.on_settled(table.num_rows)
            return
        if str(self.output) == "-":
            self._write(batches, sys.stdout)
            sys.stdout.flush()
            return
        with open_private(self.output, "w") as out:  # the events carry visitors' addresses
            self._write(batches, out)

    def _write(self, batches: Iterator[pa.Table], out: IO[str]) -> None:
        for table in batches:
            if self.interrupted is not None:
                return
            for record_batch in table.to_batches(max_chunksize=4096):
                lines = [
                    json.dumps(dry_run_record(event), ensure_ascii=False, separators=(",", ":"))
                    for event in record_batch.to_pylist()
                ]
                if lines:
                    out.write("\n".join(lines) + "\n")
            self.on_settled(table.num_rows)
