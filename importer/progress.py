"""Progress while a run goes: a tqdm bar on a terminal, a plain line every few seconds otherwise.

Progress and ETA are measured in input bytes, the one total known from the start: counting
events would put a 1M-line file at 95% while a fifth of it was read. The events' outcomes
(accepted, dropped, rejected, failed) are shown live next to it, from the run's report.
"""

from __future__ import annotations

import sys
import threading
import time
from typing import TYPE_CHECKING, TextIO

from tqdm import tqdm

if TYPE_CHECKING:  # pragma: no cover
    from .report import Report


class Progress:
    """Input bytes read (share and ETA when the total is known), rows read, and event outcomes."""

    def __init__(
        self,
        enabled: bool,
        total_bytes: int | None,
        events_label: str = "events sent",
        stream: TextIO | None = None,
        interval_s: float = 10.0,
        report: Report | None = None,
    ):
        self.stream = stream or sys.stderr
        self.enabled = enabled
        self.total_bytes = total_bytes
        self.report = report  # outcomes come from here; without it only a count of settled events
        self.tty = enabled and self.stream.isatty()
        self.rows = 0
        self.events = 0
        self.built = 0
        self.position = 0
        self.retry_message = ""
        self._base_position = 0
        self._lock = threading.Lock()
        self._interval = interval_s
        self._last_print = time.monotonic()
        self._started = time.monotonic()
        self._events_label = events_label
        self._bar: tqdm | None = None
        if self.tty:
            self._bar = tqdm(
                desc="input",
                total=total_bytes,
                unit="B",
                unit_scale=True,
                unit_divisor=1024,
                file=self.stream,
                dynamic_ncols=True,
                leave=True,
            )

    @property
    def bytes_read(self) -> int:
        return self._base_position + self.position

    def next_source(self) -> None:
        """Positions are per source; keep a running base so the share of all input is right."""
        with self._lock:
            self._base_position += self.position
            self.position = 0

    def rows_read(self, n: int, position: int) -> None:
        with self._lock:
            self.rows += n
            self.position = position
            if self._bar is not None:
                self._bar.update(max(0, self.bytes_read - self._bar.n))
                self._bar.set_postfix_str(self._outcomes(), refresh=False)
        self._maybe_print()

    def events_built(self, n: int) -> None:
        """More events were built (counted only: the share shown is of input bytes)."""
        with self._lock:
            self.built += n

    def write(self, message: str) -> None:
        """Print a message without tearing the bar."""
        if self.tty:
            tqdm.write(message, file=self.stream)
        else:
            print(message, file=self.stream, flush=True)

    def settled(self, n: int) -> None:
        with self._lock:
            self.events += n
            if self._bar is not None:
                self._bar.set_postfix_str(self._outcomes(), refresh=False)
        self._maybe_print()

    def retrying(self, message: str) -> None:
        """The sender's last retry, in a few words ("retrying: connection refused by HOST, attempt 3/5")."""
        with self._lock:
            self.retry_message = message
            if self._bar is not None:
                self._bar.set_postfix_str(self._outcomes(), refresh=True)
        self._maybe_print()

    def _outcomes(self) -> str:
        report = self.report
        if report is None or report.dry_run:
            counts = f"{self.events:,} {self._events_label}"
        else:
            counts = (
                f"accepted {report.accepted:,}, dropped {report.dropped:,}, rejected {report.rejected:,}, "
                f"failed {report.failed:,}"
            )
        return f"{self.rows:,} rows, {counts}" + (f"; {self.retry_message}" if self.retry_message else "")

    def _maybe_print(self) -> None:
        if not self.enabled or self.tty:
            return
        now = time.monotonic()
        if now - self._last_print < self._interval:
            return
        self._last_print = now
        self._print_line(now)

    def _share(self, now: float) -> str:
        """``45% of input, ETA 00:42``, by bytes; empty when the total is unknown (stdin)."""
        if not self.total_bytes:
            return ""
        done = min(self.bytes_read / self.total_bytes, 1.0)
        elapsed = now - self._started
        if 0 < done < 1 and elapsed > 0:
            left = elapsed * (1 - done) / done
            return f"{done:.0%} of input, ETA {int(left // 60):02d}:{int(left % 60):02d}; "
        return f"{done:.0%} of input; "

    def _print_line(self, now: float) -> None:
        elapsed = max(now - self._started, 1e-9)
        print(
            f"progress: {self._share(now)}{self._outcomes()} ({self.events / elapsed:,.0f} events/s)",
            file=self.stream,
            flush=True,
        )

    def close(self) -> None:
        """End the bar where the input stopped: an interrupted run does not show 100%."""
        if self._bar is not None:
            self._bar.set_postfix_str(self._outcomes(), refresh=False)
            self._bar.close()
        if self.enabled and not self.tty:
            self._print_line(time.monotonic())
