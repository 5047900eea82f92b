"""Replays events to Plausible's ``POST /api/event``: paced, concurrent, retrying, exact.

Every event ends in exactly one of four outcomes, counted in the report:

* **accepted**: 202 without ``x-plausible-dropped``; no other answer counts as delivered;
* **dropped**: 202 with ``x-plausible-dropped`` (Plausible took it for a bot, throttled it,
  or does not know the site); retried only with ``retry_dropped`` (throttling is one of
  Plausible's drop reasons), since a retry of a real drop changes nothing;
* **rejected**: 400 with Plausible's ``{"errors": ...}`` body, the payload is invalid; never
  retried, written to the rejects file with the server's error body;
* **failed**: retries exhausted (connection errors, timeouts, 429 and 5xx are retried with
  exponential backoff, full jitter and ``Retry-After``, within ``max_attempts`` and
  ``max_retry_s``), a status that no retry can fix (404, 405, 413, a 400 that is not
  Plausible's...), or not sent at all because the run was interrupted or stopped; written to
  the failed file with the last error.

Plausible answers 202 or an error, so another 2xx, any 3xx (never followed: a redirect would
carry visitors' IPs elsewhere) and an untrusted TLS certificate stop the run at once; a run of
errors no retry fixes (404s, 400s) with nothing accepted stops it too. A try that got no answer
within the timeout may still have been recorded: it is retried, and counted (``timeouts``,
``maybe_duplicated``) so the summary says how many events may have arrived twice.

Events of one visitor (same IP and user agent) always go through the same lane, one request
at a time (there are a few lanes per connection), so they leave in their original order,
which matters because Plausible builds sessions from arrival order.

Progress is kept by a :class:`~importer.state.Ledger`: at most :attr:`SendOptions.window`
events may be undecided (or decided but not yet saved to the state file) at once, and new
events are let in only as decisions are saved. That bounds what a re-run after ``kill -9``
sends again.

The sender runs the lanes and the reader that feeds them; one event's tries, what each answer
means and the backoff are in :mod:`importer.sinks.delivery`; how an event ends is written down by
:mod:`importer.sinks.outcomes`; the stop flag all of them watch is :mod:`importer.sinks.control`.

The transport is aiohttp: on this project's 2-core machine it carries ~4,000-10,000 requests/s
to a local nginx where httpx's AsyncClient manages ~400 (see the README's design notes).
"""

from __future__ import annotations

import asyncio
import random
import signal
import ssl
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from ..ledger import Entry, Ledger
from ..plausible import DEFAULT_ENDPOINT
from ..report import RejectsFile, Report
from ..state import StateError
from .control import RunControl
from .delivery import Delivery, Link
from .endpoint import probe
from .outcomes import Outcomes
from .pacing import TokenBucket, proxy_for

# Lanes per connection: a lane waiting out a backoff holds no connection, so one visitor's
# retries delay only the few visitors that share its lane.
LANES_PER_CONNECTION = 4


@dataclass(frozen=True)
class SendOptions:
    endpoint: str = DEFAULT_ENDPOINT
    rate: float = 50.0  # events per second; 0 = unlimited
    concurrency: int = 8
    timeout_s: float = 10.0
    max_attempts: int = 5
    max_retry_s: float = 300.0  # give up retrying an event after this long
    backoff_base_s: float = 0.5
    backoff_cap_s: float = 30.0
    queue_per_worker: int = 32
    retry_dropped: int = 0  # extra tries for an event answered 202 + x-plausible-dropped
    pace: float = 0.0  # 0: as fast as allowed; 1: original gaps; k: gaps divided by k
    drain_s: float = 10.0  # on interrupt, how long in-flight requests may take to finish
    checkpoint_s: float = 0.02  # how often the decided prefix is saved
    # Stop after this many tries in a row without an answer (connection errors, timeouts), or
    # answered 5xx while nothing was accepted; 0: retry every event to its own limits.
    max_unanswered: int = 20
    check_connection: bool = True  # one connection to the endpoint before reading anything
    # Sent with every request (--header), e.g. for an authenticating proxy; never written anywhere.
    headers: tuple[tuple[str, str], ...] = field(default=(), repr=False)

    @property
    def window(self) -> int:
        """The most events undecided at once: in flight plus queued (the re-send bound)."""
        return max(1, self.concurrency) * (self.queue_per_worker + 1)


class HttpSender:
    """Consumes event batches and delivers them; updates the report as events settle.

    ``rejects`` receives 400s; ``failed`` (default: ``rejects``) receives events that failed,
    with the last error. ``ledger`` keeps progress in input order (and saves it, when it has a
    state store). ``stop_reading`` is set when the run is interrupted, for sources that wait
    for more input (``--follow``).
    """

    def __init__(
        self,
        options: SendOptions,
        report: Report,
        rejects: RejectsFile,
        on_settled: Callable[[int], None] | None = None,
        on_first_batch: Callable[[pa.Table], None] | None = None,
        seed: int | None = None,
        failed: RejectsFile | None = None,
        ledger: Ledger | None = None,
        stop_reading: Callable[[], None] | None = None,
        handle_signals: bool = True,
        tls: ssl.SSLContext | bool = True,
        on_retry: Callable[[str], None] | None = None,
    ):
        self.options = options
        self.report = report
        self.on_first_batch = on_first_batch
        self.ledger = ledger if ledger is not None else Ledger()
        self.handle_signals = handle_signals
        self.tls = tls
        self.on_retry = on_retry or (lambda message: None)
        self._rng = random.Random(seed)
        # Everything interrupt() and the lanes share exists before run(), so that a signal at
        # any moment finds it (asyncio's primitives bind to the loop on first use).
        self.control = RunControl(report, stop_reading or (lambda: None), options.drain_s)
        self.outcomes = Outcomes(
            report,
            rejects,
            failed if failed is not None else rejects,
            self.ledger,
            self.control,
            on_settled or (lambda n: None),
        )
        connections = max(1, options.concurrency)
        self._slots = asyncio.Semaphore(connections)
        self._bucket = TokenBucket(options.rate, burst=1.0 + options.rate * 0.02)
        self._room = asyncio.Event()
        self._queues: list[asyncio.Queue[tuple[dict[str, Any], Entry] | None]] = [
            asyncio.Queue(maxsize=options.queue_per_worker) for _ in range(connections * LANES_PER_CONNECTION)
        ]
        self._workers: list[asyncio.Task[None]] = []
        self._settled_at_interrupt = 0

    @property
    def failed_file(self) -> RejectsFile:
        """Where failed events are written (``rejects`` unless ``failed`` was given)."""
        return self.outcomes.failed

    @property
    def fatal(self) -> str | None:
        """Why the run stopped early, in one line."""
        return self.control.fatal

    @property
    def interrupted(self) -> int | None:
        """The signal that stopped the run, if one did."""
        return self.control.interrupted

    @property
    def state_error(self) -> str | None:
        """The state file failed mid-run and sending stopped."""
        return self.control.state_error

    # -- running -------------------------------------------------------------------------

    def run(self, batches: Iterator[pa.Table]) -> None:
        asyncio.run(self._run(batches))
        self.report.failed_resolved += self.failed_file.prune(self.ledger.redecided)
        if self.interrupted is not None:
            report = self.report
            report.interrupted = self.interrupted
            report.drained = report.settled - self._settled_at_interrupt - report.cut_off

    def interrupt(self, signum: int = signal.SIGINT) -> None:
        """Stop reading, let in-flight requests finish (within ``drain_s``), account the rest.

        A second call stops at once. Safe to call from the event loop only (signal handlers
        installed by :meth:`run` do so).
        """
        if self.interrupted is None:
            self._settled_at_interrupt = self.report.settled
            self.control.interrupt(signum)
        else:
            self._hard_stop()

    async def _run(self, batches: Iterator[pa.Table]) -> None:
        o = self.options
        connections = max(1, o.concurrency)
        loop = asyncio.get_running_loop()
        installed = self._install_signals(loop) if self.handle_signals else []
        import aiohttp  # only when sending: its import costs ~0.1 s, which a dry run need not pay

        connector = aiohttp.TCPConnector(limit=connections, limit_per_host=connections, ttl_dns_cache=300, ssl=self.tls)
        # Connecting and waiting for the answer each get timeout_s, so that a connection that
        # could not be made (the request never left: ConnectionTimeoutError) is told apart from
        # an answer that did not come (the server may have recorded the event). The total only
        # stops a server that trickles its answer.
        timeout = aiohttp.ClientTimeout(total=3 * o.timeout_s, connect=o.timeout_s, sock_read=o.timeout_s)
        try:
            # Proxies from the environment are looked up once here: aiohttp's trust_env does it
            # per request through a thread, which costs half the throughput.
            proxy = proxy_for(o.endpoint)
            if o.check_connection and not self.control.stopped:
                unreachable = await probe(o.endpoint, proxy, self.tls, o.timeout_s)
                if unreachable:
                    self.control.stop_run(unreachable)
            async with aiohttp.ClientSession(connector=connector, timeout=timeout, trust_env=False) as session:
                link = Link(session, proxy, self._slots, self._bucket)
                delivery = Delivery(o, link, self.control, self.outcomes, self._rng, self.on_retry)
                self._workers = [asyncio.create_task(self._worker(q, delivery)) for q in self._queues]
                keeper = asyncio.create_task(self._keep_checkpoints())
                try:
                    await self._produce(batches)
                finally:
                    await self._close_lanes()
                    keeper.cancel()
                    await asyncio.gather(keeper, return_exceptions=True)
                    self._checkpoint()
        finally:
            for sig in installed:
                loop.remove_signal_handler(sig)

    def _install_signals(self, loop: asyncio.AbstractEventLoop) -> list[int]:
        installed: list[int] = []
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                loop.add_signal_handler(sig, self.interrupt, sig)
            except (NotImplementedError, RuntimeError, ValueError):  # not the main thread
                continue
            installed.append(sig)
        return installed

    async def _close_lanes(self) -> None:
        """Let every lane finish; after an interrupt, only within the drain time."""

        async def close() -> None:
            for q in self._queues:
                await q.put(None)
            await asyncio.gather(*self._workers, return_exceptions=True)

        closing = asyncio.ensure_future(close())
        while not closing.done():
            budget = None
            if self.control.deadline is not None:
                budget = max(0.0, self.control.deadline - time.monotonic())
            done, _ = await asyncio.wait({closing}, timeout=budget if budget is not None else 0.25)
            if not done and self.control.deadline is not None and time.monotonic() >= self.control.deadline:
                self._hard_stop()
                await asyncio.gather(*self._workers, return_exceptions=True)
                closing.cancel()
                await asyncio.gather(closing, return_exceptions=True)
                break
        # Whatever is still queued (the lanes were cancelled) was never sent.
        for q in self._queues:
            while not q.empty():
                item = q.get_nowait()
                if item is not None:
                    self.outcomes.not_sent(*item)

    def _hard_stop(self) -> None:
        """Stop now: cancel the lanes (their in-flight events fail) and empty their queues."""
        self.control.stop.set()
        for task in self._workers:
            task.cancel()
        for q in self._queues:
            while not q.empty():
                item = q.get_nowait()
                if item is not None:
                    self.outcomes.not_sent(*item)

    async def _keep_checkpoints(self) -> None:
        while True:
            await asyncio.sleep(self.options.checkpoint_s)
            self._checkpoint()

    def _checkpoint(self) -> None:
        try:
            saved = self.ledger.flush()
        except StateError as exc:
            self.control.stop_for_state(exc)
            saved = 1
        if saved:
            self._room.set()

    # -- producing -----------------------------------------------------------------------

    async def _produce(self, batches: Iterator[pa.Table]) -> None:
        first = True
        lanes = len(self._queues)
        queues = self._queues
        ledger = self.ledger
        window = self.options.window
        pace = self.options.pace
        pace_origin: tuple[float, float] | None = None
        while not self.control.stopped:
            try:
                table = await asyncio.to_thread(next, batches, None)
            except StateError as exc:  # the reader could not record what it wrote to the rejects file
                self.control.stop_for_state(exc)
                return
            ledger.absorb_marks()
            if table is None:
                return
            if table.num_rows == 0:
                continue
            if first and self.on_first_batch is not None:
                self.on_first_batch(table)
            first = False
            for record_batch in table.to_batches(max_chunksize=2048):
                for event in record_batch.to_pylist():
                    if self.control.stopped:
                        self.outcomes.not_sent(event, ledger.add(event["source_file"], event["source_line"]))
                        continue
                    if pace and event.get("timestamp") is not None:
                        stamp = event["timestamp"].timestamp()
                        if pace_origin is None:
                            pace_origin = (time.monotonic(), stamp)
                        due = pace_origin[0] + (stamp - pace_origin[1]) / pace
                        wait = due - time.monotonic()
                        if wait > 0.001:
                            await self.control.sleep(wait)
                            if self.control.stopped:
                                self.outcomes.not_sent(event, ledger.add(event["source_file"], event["source_line"]))
                                continue
                    while ledger.undecided >= window:  # wait until decisions are saved
                        self._room.clear()
                        self._checkpoint()
                        if ledger.undecided >= window:
                            try:  # the checkpoint task wakes us; look again ourselves now and then
                                await asyncio.wait_for(self._room.wait(), timeout=0.1)
                            except TimeoutError:
                                pass
                    entry = ledger.add(event["source_file"], event["source_line"])
                    key = f"{event['ip']}\x00{event['user_agent']}".encode("utf-8", "surrogatepass")
                    await queues[zlib.crc32(key) % lanes].put((event, entry))

    # -- delivering ----------------------------------------------------------------------

    async def _worker(self, queue: asyncio.Queue[tuple[dict[str, Any], Entry] | None], delivery: Delivery) -> None:
        while True:
            item = await queue.get()
            if item is None:
                return
            event, entry = item
            if self.control.stopped:
                self.outcomes.not_sent(event, entry)
                continue
            try:
                await delivery.deliver(event, entry)
            except asyncio.CancelledError:
                if not entry.done:
                    self.outcomes.fail(event, entry, "interrupted while sending", resend=True)
                raise
            except Exception as exc:
                if not entry.done:
                    self.outcomes.fail(event, entry, f"could not be sent: {type(exc).__name__}: {exc}", resend=True)
                self.control.stop_run(f"sending failed: {type(exc).__name__}: {exc}")
