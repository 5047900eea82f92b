"""Progress while a run goes: tqdm bars on a terminal, a plain line every few seconds otherwise."""

from __future__ import annotations

import sys
import threading
import time
from typing import TextIO

from tqdm import tqdm


class Progress:
    """Two counters: rows read (with the share of input bytes) and events settled."""

    def __init__(self, enabled: bool, total_bytes: int | None, events_label: str = "events sent",
                 stream: TextIO | None = None, interval_s: float = 10.0):
        self.stream = stream or sys.stderr
        self.enabled = enabled
        self.total_bytes = total_bytes
        self.tty = enabled and self.stream.isatty()
        self.rows = 0
        self.events = 0
        self.built = 0
        self.position = 0
        self._base_position = 0
        self._lock = threading.Lock()
        self._interval = interval_s
        self._last_print = time.monotonic()
        self._started = time.monotonic()
        self._events_label = events_label
        self._rows_bar: tqdm | None = None
        self._events_bar: tqdm | None = None
        if self.tty:
            self._rows_bar = tqdm(desc="rows read", unit=" rows", unit_scale=True, position=0, file=self.stream,
                                  dynamic_ncols=True, leave=True)
            self._events_bar = tqdm(desc=events_label, unit=" ev", unit_scale=True, position=1, file=self.stream,
                                    dynamic_ncols=True, leave=True)

    def next_source(self) -> None:
        """Positions are per source; keep a running base so the share of all input is right."""
        with self._lock:
            self._base_position += self.position
            self.position = 0

    def rows_read(self, n: int, position: int) -> None:
        with self._lock:
            self.rows += n
            self.position = position
            if self._rows_bar is not None:
                self._rows_bar.update(n)
                if self.total_bytes:
                    share = (self._base_position + position) / self.total_bytes
                    self._rows_bar.set_postfix_str(f"{min(share, 1.0):.0%} of input", refresh=False)
        self._maybe_print()

    def events_built(self, n: int) -> None:
        """More events exist to settle: grows the events bar's total."""
        with self._lock:
            self.built += n
            if self._events_bar is not None:
                self._events_bar.total = self.built
                self._events_bar.refresh()

    def write(self, message: str) -> None:
        """Print a message without tearing the bars."""
        if self.tty:
            tqdm.write(message, file=self.stream)
        else:
            print(message, file=self.stream, flush=True)

    def settled(self, n: int) -> None:
        with self._lock:
            self.events += n
            if self._events_bar is not None:
                self._events_bar.update(n)
        self._maybe_print()

    def _maybe_print(self) -> None:
        if not self.enabled or self.tty:
            return
        now = time.monotonic()
        if now - self._last_print < self._interval:
            return
        self._last_print = now
        self._print_line(now)

    def _print_line(self, now: float) -> None:
        elapsed = max(now - self._started, 1e-9)
        share = ""
        if self.total_bytes:
            share = f" ({min((self._base_position + self.position) / self.total_bytes, 1.0):.0%} of input)"
        print(f"progress: {self.rows:,} rows read{share}, {self.events:,} {self._events_label} "
              f"({self.events / elapsed:,.0f}/s)", file=self.stream, flush=True)

    def close(self) -> None:
        for bar in (self._rows_bar, self._events_bar):
            if bar is not None:
                bar.close()
        if self.enabled and not self.tty:
            self._print_line(time.monotonic())
