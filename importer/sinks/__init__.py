"""Where events go: one small protocol for the HTTP sender and the dry-run writer.

The pipeline builds its sink with :func:`make_sink`, hands it the event batches with
:meth:`Sink.run`, and reads afterwards how the run ended (``interrupted``, ``state_error``,
``fatal``); the counters themselves are in the :class:`~importer.report.Report` both update.
"""

from __future__ import annotations

import signal
import ssl
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Protocol

import pyarrow as pa

from ..ledger import Ledger
from ..report import RejectsFile, Report
from .dryrun import DryRunWriter
from .http import HttpSender, SendOptions


class Sink(Protocol):
    @property
    def interrupted(self) -> int | None:
        """The signal that stopped the run, if one did."""

    @property
    def state_error(self) -> str | None:
        """The state file failed mid-run and sending stopped."""

    @property
    def fatal(self) -> str | None:
        """Why the run stopped early, in one line."""

    def run(self, batches: Iterator[pa.Table]) -> None: ...

    def interrupt(self, signum: int = signal.SIGINT) -> None: ...


def make_sink(
    report: Report,
    *,
    dry_run: bool,
    output: Path | None = None,
    options: SendOptions | None = None,
    rejects: RejectsFile | None = None,
    failed: RejectsFile | None = None,
    ledger: Ledger | None = None,
    on_settled: Callable[[int], None] | None = None,
    on_first_batch: Callable[[pa.Table], None] | None = None,
    on_retry: Callable[[str], None] | None = None,
    stop_reading: Callable[[], None] | None = None,
    tls: ssl.SSLContext | bool = True,
) -> Sink:
    """The dry-run writer (``output`` or only counting) or the HTTP sender (``options``)."""
    if dry_run:
        return DryRunWriter(output, on_settled=on_settled)
    options = options or SendOptions()
    report.window = options.window
    return HttpSender(
        options,
        report,
        rejects or RejectsFile(None),
        on_settled=on_settled,
        on_first_batch=on_first_batch,
        failed=failed,
        ledger=ledger,
        stop_reading=stop_reading,
        tls=tls,
        on_retry=on_retry,
    )
