"""Whether a send goes on: the one stop flag that the reader, the lanes and every waiting event
watch, and why it was raised (an interrupt, an unusable endpoint, a state file that failed)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from ..report import Report
from ..state import StateError


class RunControl:
    """The stop flag and its reasons, shared by the sender and the deliveries it runs.

    ``fatal`` is the one-line reason a run stopped early (``None`` for an interrupt alone);
    ``deadline`` is when in-flight requests must have finished after a stop that drains.
    Created before the event loop runs, so that a signal at any moment finds it (asyncio's
    primitives bind to the loop on first use).
    """

    def __init__(self, report: Report, stop_reading: Callable[[], None], drain_s: float):
        self.report = report
        self.stop_reading = stop_reading
        self.drain_s = drain_s
        self.stop = asyncio.Event()
        self.fatal: str | None = None
        self.interrupted: int | None = None  # the signal that stopped the run
        self.state_error: str | None = None  # the state file failed: sending stopped
        self.deadline: float | None = None

    @property
    def stopped(self) -> bool:
        return self.stop.is_set()

    def stopped_how(self) -> str:
        """In words, for the failed file: ``stopped early`` or ``interrupted``."""
        return "stopped early" if self.fatal else "interrupted"

    def interrupt(self, signum: int) -> None:
        """Stop reading and sending; what is in flight may finish within ``drain_s``."""
        self.interrupted = signum
        self._drain_and_stop()

    def stop_run(self, message: str) -> None:
        """Stop sending: the endpoint is wrong. Events not sent yet fail, to be sent by the next run."""
        if self.fatal is None:
            self.fatal = f"stopped early: {message}"
            self.report.endpoint_error = message
        self.stop.set()
        self.stop_reading()

    def stop_for_state(self, exc: StateError) -> None:
        """Progress can no longer be saved: every event sent from now on would be sent again by
        the next run, so stop at once and let only what is in flight finish."""
        self.state_error = f"{exc}; stopped sending"
        self.fatal = self.state_error
        self._drain_and_stop()

    def _drain_and_stop(self) -> None:
        self.stop.set()
        self.stop_reading()
        self.deadline = time.monotonic() + self.drain_s

    async def sleep(self, seconds: float) -> None:
        """Sleep ``seconds``, or less when the run stops meanwhile."""
        try:
            await asyncio.wait_for(self.stop.wait(), timeout=seconds)
        except TimeoutError:
            pass
