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

The transport is aiohttp: on this project's 2-core machine it carries ~4,000-10,000 requests/s
to a local nginx where httpx's AsyncClient manages ~400 (see the README's design notes).
"""

from __future__ import annotations

import asyncio
import json
import random
import signal
import ssl
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from ..events import request_body
from ..ledger import Entry, Ledger
from ..report import RejectsFile, Report, redact_url
from ..state import StateError
from .answers import (
    ANSWER_LIMIT,
    Answer,
    certificate_message,
    plausible_errors,
    read_at_most,
)
from .endpoint import Streak, describe_error, host_of, probe
from .pacing import TokenBucket, backoff_delay, proxy_for, retry_after_seconds

DEFAULT_ENDPOINT = "https://plausible.io/api/event"
SEND_COLUMNS = ("name", "url", "domain", "referrer", "props", "user_agent", "ip", "source_file", "source_line")
# After this many events in a row answered with a status no retry can fix, and none accepted,
# the endpoint is taken to be wrong and the run stops instead of failing every event.
CONFIG_ERROR_LIMIT = 10
# Statuses that say the event itself can never be taken: failed, and not sent again later.
# Any other status no retry fixes (404, 405, 401...) points at the endpoint or the account,
# so a later run sends those events again.
FINAL_STATUSES = frozenset({413})
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


def parse_pace(value: str | float | None) -> float:
    """``asap`` -> 0, ``realtime`` -> 1, a number -> that speed-up factor (> 0)."""
    if value is None:
        return 0.0
    if isinstance(value, (int, float)):
        factor = float(value)
    else:
        text = value.strip().lower()
        if text in ("", "asap"):
            return 0.0
        if text == "realtime":
            return 1.0
        try:
            factor = float(text.rstrip("x"))
        except ValueError:
            raise ValueError(f"--pace {value!r}: use asap, realtime or a speed-up factor such as 10") from None
    if factor < 0 or factor != factor:
        raise ValueError(f"--pace {value!r}: the factor must be positive")
    return factor


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
        self.rejects = rejects
        self.failed_file = failed if failed is not None else rejects
        self.on_settled = on_settled or (lambda n: None)
        self.on_first_batch = on_first_batch
        self.ledger = ledger if ledger is not None else Ledger()
        self.stop_reading = stop_reading or (lambda: None)
        self.handle_signals = handle_signals
        self.tls = tls
        self.on_retry = on_retry or (lambda message: None)
        self._rng = random.Random(seed)
        self._config_errors = 0
        self._host = host_of(options.endpoint)
        self._streak = Streak(options.max_unanswered)
        self.fatal: str | None = None
        self.interrupted: int | None = None  # the signal that stopped the run
        self.state_error: str | None = None  # the state file failed: sending stopped
        # Everything interrupt() and the lanes share exists before run(), so that a signal at
        # any moment finds it (asyncio's primitives bind to the loop on first use).
        connections = max(1, options.concurrency)
        self._slots = asyncio.Semaphore(connections)
        self._bucket = TokenBucket(options.rate, burst=1.0 + options.rate * 0.02)
        self._stop = asyncio.Event()
        self._deadline: float | None = None
        self._room = asyncio.Event()
        self._queues: list[asyncio.Queue[tuple[dict[str, Any], Entry] | None]] = [
            asyncio.Queue(maxsize=options.queue_per_worker) for _ in range(connections * LANES_PER_CONNECTION)
        ]
        self._workers: list[asyncio.Task[None]] = []
        self._settled_at_interrupt = 0

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
            self.interrupted = signum
            self._settled_at_interrupt = self.report.settled
            self._stop.set()
            self.stop_reading()
            self._deadline = time.monotonic() + self.options.drain_s
        else:
            self._hard_stop()

    async def _run(self, batches: Iterator[pa.Table]) -> None:
        o = self.options
        connections = max(1, o.concurrency)
        loop = asyncio.get_running_loop()
        installed = self._install_signals(loop) if self.handle_signals else []
        import aiohttp  # only when sending: its import costs ~0.1 s, which a dry run need not pay

        self._transport_errors = (aiohttp.ClientError, asyncio.TimeoutError, OSError)
        self._certificate_errors = (aiohttp.ClientConnectorCertificateError, ssl.SSLCertVerificationError)
        self._connect_timeout = aiohttp.ConnectionTimeoutError  # the request never left: not a possible copy
        connector = aiohttp.TCPConnector(limit=connections, limit_per_host=connections, ttl_dns_cache=300, ssl=self.tls)
        # Connecting and waiting for the answer each get timeout_s, so that a connection that
        # could not be made (the request never left: ConnectionTimeoutError) is told apart from
        # an answer that did not come (the server may have recorded the event). The total only
        # stops a server that trickles its answer.
        timeout = aiohttp.ClientTimeout(total=3 * o.timeout_s, connect=o.timeout_s, sock_read=o.timeout_s)
        try:
            # Proxies from the environment are looked up once here: aiohttp's trust_env does it
            # per request through a thread, which costs half the throughput.
            self._proxy = proxy_for(o.endpoint)
            if o.check_connection and not self._stop.is_set():
                unreachable = await probe(o.endpoint, self._proxy, self.tls, o.timeout_s)
                if unreachable:
                    self._stop_run(unreachable)
            async with aiohttp.ClientSession(connector=connector, timeout=timeout, trust_env=False) as session:
                self._session = session
                self._workers = [asyncio.create_task(self._worker(q)) for q in self._queues]
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
            if self._deadline is not None:
                budget = max(0.0, self._deadline - time.monotonic())
            done, _ = await asyncio.wait({closing}, timeout=budget if budget is not None else 0.25)
            if not done and self._deadline is not None and time.monotonic() >= self._deadline:
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
                    self._not_sent(*item)

    def _hard_stop(self) -> None:
        """Stop now: cancel the lanes (their in-flight events fail) and empty their queues."""
        self._stop.set()
        for task in self._workers:
            task.cancel()
        for q in self._queues:
            while not q.empty():
                item = q.get_nowait()
                if item is not None:
                    self._not_sent(*item)

    async def _keep_checkpoints(self) -> None:
        while True:
            await asyncio.sleep(self.options.checkpoint_s)
            self._checkpoint()

    def _checkpoint(self) -> None:
        try:
            saved = self.ledger.flush()
        except StateError as exc:
            self._stop_for_state(exc)
            saved = 1
        if saved:
            self._room.set()

    def _stop_for_state(self, exc: StateError) -> None:
        """Progress can no longer be saved: every event sent from now on would be sent again by
        the next run, so stop at once and let only what is in flight finish."""
        self.state_error = f"{exc}; stopped sending"
        self.fatal = self.state_error
        self._stop.set()
        self.stop_reading()
        self._deadline = time.monotonic() + self.options.drain_s

    # -- producing -----------------------------------------------------------------------

    async def _produce(self, batches: Iterator[pa.Table]) -> None:
        first = True
        lanes = len(self._queues)
        queues = self._queues
        ledger = self.ledger
        window = self.options.window
        pace = self.options.pace
        pace_origin: tuple[float, float] | None = None
        while not self._stop.is_set():
            try:
                table = await asyncio.to_thread(next, batches, None)
            except StateError as exc:  # the reader could not record what it wrote to the rejects file
                self._stop_for_state(exc)
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
                    if self._stop.is_set():
                        self._not_sent(event, ledger.add(event["source_file"], event["source_line"]))
                        continue
                    if pace and event.get("timestamp") is not None:
                        stamp = event["timestamp"].timestamp()
                        if pace_origin is None:
                            pace_origin = (time.monotonic(), stamp)
                        due = pace_origin[0] + (stamp - pace_origin[1]) / pace
                        wait = due - time.monotonic()
                        if wait > 0.001:
                            await self._sleep_unless_stopped(wait)
                            if self._stop.is_set():
                                self._not_sent(event, ledger.add(event["source_file"], event["source_line"]))
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

    async def _sleep_unless_stopped(self, seconds: float) -> None:
        try:
            await asyncio.wait_for(self._stop.wait(), timeout=seconds)
        except TimeoutError:
            pass

    # -- delivering ----------------------------------------------------------------------

    async def _worker(self, queue: asyncio.Queue[tuple[dict[str, Any], Entry] | None]) -> None:
        while True:
            item = await queue.get()
            if item is None:
                return
            event, entry = item
            if self._stop.is_set():
                self._not_sent(event, entry)
                continue
            try:
                await self._deliver(event, entry)
            except asyncio.CancelledError:
                if not entry.done:
                    self._fail(event, entry, "interrupted while sending", resend=True)
                raise
            except Exception as exc:
                if not entry.done:
                    self._fail(event, entry, f"could not be sent: {type(exc).__name__}: {exc}", resend=True)
                self._stop_run(f"sending failed: {type(exc).__name__}: {exc}")

    def _settle(self, entry: Entry, resend: bool = False) -> None:
        self.ledger.decide(entry, resend)
        self.on_settled(1)

    def _not_sent(self, event: dict[str, Any], entry: Entry) -> None:
        reason = self.fatal or "the run was interrupted"
        self._fail(event, entry, f"not sent: {reason}", resend=True)

    def _count(self, event: dict[str, Any], outcome: str) -> None:
        """One more event with this outcome (accepted, dropped, rejected, failed), in all and on the
        event's own day (UTC), for the run's HTML report."""
        setattr(self.report, outcome, getattr(self.report, outcome) + 1)
        when = event.get("timestamp")
        if when is not None:
            self.report.outcomes_by_day[(when.date(), outcome)] += 1

    def _fail(self, event: dict[str, Any], entry: Entry, reason: str, resend: bool, **extra: Any) -> None:
        self._count(event, "failed")
        self.report.resend += resend
        self.report.cut_off += self.interrupted is not None
        if entry.state is not None:  # which state entry: a later run that settles it removes this record
            extra["file_id"] = entry.state.file_id
        self.failed_file.write(self._record(event, **extra, reason=reason, sent_again_by_next_run=resend))
        self._settle(entry, resend=resend)

    @staticmethod
    def _body(event: dict[str, Any]) -> bytes:
        return json.dumps(request_body(event), ensure_ascii=False, separators=(",", ":")).encode("utf-8")

    def _headers(self, event: dict[str, Any]) -> dict[str, str]:
        headers = dict(self.options.headers)
        headers.update({"Content-Type": "application/json", "User-Agent": event["user_agent"] or ""})
        if event["ip"]:
            headers["X-Forwarded-For"] = event["ip"]
        return headers

    def _record(self, event: dict[str, Any], **extra: Any) -> dict[str, Any]:
        # No IP address here: these files are for people to read.
        return {
            "stage": "send",
            "file": event["source_file"],
            "line": event["source_line"],
            **extra,
            "event": json.loads(self._body(event)),
            "user_agent": event["user_agent"],
        }

    async def _deliver(self, event: dict[str, Any], entry: Entry) -> None:
        o = self.options
        body = self._body(event)
        headers = self._headers(event)
        tries = _Tries(started=time.monotonic(), errors_left=o.max_attempts, drops_left=o.retry_dropped)
        while True:
            delay: float | None = None
            try:
                answer = await self._post(body, headers, tries)
                if answer is None:  # the run stopped while this event waited for a connection
                    if tries.count:
                        self._fail(
                            event,
                            entry,
                            f"{self._stopped()} during retries: {tries.last_error}",
                            resend=True,
                            **self._tried(tries),
                        )
                    else:
                        self._not_sent(event, entry)
                    return
                tries.count += 1
            except self._transport_errors as exc:
                tries.count += 1
                if not self._note_transport_error(exc, tries):
                    self._fail(event, entry, f"not sent: {self.fatal}", resend=True)
                    return
            else:
                if answer.status == 202:
                    if await self._settle_202(event, answer, tries):
                        self._settle(entry)
                        return
                    continue
                if answer.status != 429 and answer.status < 500:
                    self._settle_refusal(event, entry, answer, tries)
                    return
                tries.errors_left -= 1
                tries.last_error = f"HTTP {answer.status}: {answer.text[:300]}"
                delay = retry_after_seconds(answer.retry_after)
                tries.shown = f"HTTP {answer.status} from {self._host}"
                if answer.status >= 500:
                    self._note_unanswered(tries.shown, server_error=True)
            if not await self._wait_to_retry(event, entry, tries, delay):
                return

    async def _post(self, body: bytes, headers: dict[str, str], tries: _Tries) -> Answer | None:
        """One try: the answer's status, headers and at most ANSWER_LIMIT bytes of its body.

        None, sending nothing, when the run stopped while waiting for a connection."""
        report = self.report
        async with self._slots:
            await self._bucket.acquire()
            if self._stop.is_set():
                return None
            if not tries.count:
                report.sent += 1
            else:
                report.retries += 1
                if tries.timed_out and not tries.counted_duplicate:
                    tries.counted_duplicate = True  # an earlier copy may have arrived: this one may be a second
                    report.maybe_duplicated += 1
            # Never follow a redirect: it would carry the visitor's IP and user agent (and, for
            # 307/308, the event) to another host, maybe in clear text, and aiohttp turns a POST
            # into a bodyless GET on 301/302 whose 200 looks like success.
            async with self._session.post(
                self.options.endpoint, data=body, headers=headers, proxy=self._proxy, allow_redirects=False
            ) as response:
                raw = await read_at_most(response.content, ANSWER_LIMIT)
                # Leaving the block with the body unread closes the connection instead of draining it.
                dropped = (response.headers.get("x-plausible-dropped") or "").strip()
                return Answer(
                    status=response.status,
                    text=raw.decode("utf-8", "replace"),
                    dropped=dropped not in ("", "0"),
                    retry_after=response.headers.get("retry-after"),
                    location=response.headers.get("location"),
                )

    def _note_transport_error(self, exc: BaseException, tries: _Tries) -> bool:
        """Account a try that got no answer; False when the run must stop (an untrusted certificate)."""
        if isinstance(exc, self._certificate_errors):
            self._stop_run(certificate_message(redact_url(self.options.endpoint), exc))
            return False
        tries.errors_left -= 1
        if isinstance(exc, asyncio.TimeoutError) and not isinstance(exc, self._connect_timeout):
            # The request went out and no answer came in time: the server may have recorded it.
            self.report.timeouts += 1
            tries.timed_out = True
            tries.last_error = (
                f"no answer within {self.options.timeout_s:g} s (--timeout); the server may have recorded it"
            )
        else:
            tries.last_error = f"{type(exc).__name__}: {exc}".rstrip(": ")
        tries.shown = describe_error(exc, self._host)
        self._note_unanswered(tries.shown, server_error=False)
        return True

    def _note_unanswered(self, error: str, server_error: bool) -> None:
        """A try without a usable answer: stop the run after too many in a row (see :class:`Streak`)."""
        report = self.report
        if self._streak.failed(error, server_error, anything_accepted=bool(report.accepted + report.dropped)):
            what = "answers with a server error" if server_error else "tries without an answer"
            self._stop_run(
                f"{self._streak.count} {what} in a row from {self._host}, the last: {error}; "
                "check --endpoint, that Plausible is running and reachable there (firewall, proxy), "
                "and its logs"
            )

    async def _settle_202(self, event: dict[str, Any], answer: Answer, tries: _Tries) -> bool:
        """Count Plausible's 202 as accepted or dropped; False when a drop is to be tried again."""
        o = self.options
        self._config_errors = 0
        self._streak.answered()
        if not answer.dropped:
            self._count(event, "accepted")
            return True
        if tries.drops_left > 0 and not self._stop.is_set():
            tries.drops_left -= 1
            tries.last_error = "dropped"
            await self._sleep_unless_stopped(
                backoff_delay(o.retry_dropped - tries.drops_left, o.backoff_base_s, o.backoff_cap_s, self._rng)
            )
            if not self._stop.is_set():
                return False
        self._count(event, "dropped")
        return True

    def _settle_refusal(self, event: dict[str, Any], entry: Entry, answer: Answer, tries: _Tries) -> None:
        """An answer that no retry changes: another 2xx, a 3xx, a 400 or another 4xx."""
        status, endpoint = answer.status, redact_url(self.options.endpoint)
        error = f"HTTP {status}: {answer.text[:300]}"
        if status < 400:  # Plausible answers 202 or an error: this is something else
            where = f" (a redirect to {answer.location}; redirects are not followed)" if answer.location else ""
            self._stop_run(
                f"the endpoint {endpoint} answered HTTP {status}{where}, not Plausible's 202: nothing "
                "was delivered; check --endpoint (Plausible's is https://HOST/api/event) and any proxy "
                "or login page in front of it"
            )
            self._fail(event, entry, error, resend=True, status=status, **self._tried(tries))
            return
        errors = plausible_errors(answer.text) if status == 400 else None
        if errors is not None:
            self._count(event, "rejected")
            self.rejects.write(self._record(event, status=status, error=errors, **self._tried(tries)))
            self._settle(entry)
            hint = (
                f"the endpoint {endpoint} rejected the first {self._config_errors + 1} events (HTTP 400) and "
                "accepted none: check --domain and the mapping; the reasons are in the rejects file"
            )
        else:
            self._fail(event, entry, error, resend=status not in FINAL_STATUSES, status=status, **self._tried(tries))
            hint = f"the endpoint {endpoint} answered HTTP {status} to the first {self._config_errors + 1} events" + (
                f' with a body that is not Plausible\'s {{"errors": ...}} ({answer.text[:80]!r}): '
                "something in front of Plausible (a proxy, a firewall) refuses them; check it and --endpoint"
                if status == 400
                else "; is --endpoint right?"
            )
        self._note_config_error(hint)

    async def _wait_to_retry(self, event: dict[str, Any], entry: Entry, tries: _Tries, delay: float | None) -> bool:
        """Back off before the next try; False (and the event failed) when the limits say stop."""
        o = self.options
        extra = self._tried(tries)
        if self._stop.is_set():
            self._fail(event, entry, f"{self._stopped()} during retries: {tries.last_error}", resend=True, **extra)
            return False
        if tries.errors_left <= 0:
            self._fail(
                event, entry, f"failed after {o.max_attempts} attempts: {tries.last_error}", resend=True, **extra
            )
            return False
        wait = backoff_delay(tries.count - 1, o.backoff_base_s, o.backoff_cap_s, self._rng)
        if delay is not None:
            wait = max(wait, delay)
        elapsed = time.monotonic() - tries.started
        if elapsed + wait > o.max_retry_s:
            self._fail(
                event,
                entry,
                f"gave up after {tries.count} attempts in {elapsed:.1f} s (--max-retry-time): {tries.last_error}",
                resend=True,
                **extra,
            )
            return False
        self.on_retry(f"retrying: {tries.shown or tries.last_error}, attempt {tries.count + 1}/{o.max_attempts}")
        await self._sleep_unless_stopped(wait)
        if self._stop.is_set():
            self._fail(event, entry, f"{self._stopped()} during retries: {tries.last_error}", resend=True, **extra)
            return False
        return True

    def _stopped(self) -> str:
        return "stopped early" if self.fatal else "interrupted"

    @staticmethod
    def _tried(tries: _Tries) -> dict[str, Any]:
        """For the failed and rejects files: whether an earlier try may have arrived after all."""
        return {"may_have_arrived": True} if tries.timed_out else {}

    def _note_config_error(self, message: str) -> None:
        self._config_errors += 1
        if self._config_errors >= CONFIG_ERROR_LIMIT and self.report.accepted + self.report.dropped == 0:
            self._stop_run(message)

    def _stop_run(self, message: str) -> None:
        """Stop sending: the endpoint is wrong. Events not sent yet fail, to be sent by the next run."""
        if self.fatal is None:
            self.fatal = f"stopped early: {message}"
            self.report.endpoint_error = message
        self._stop.set()
        self.stop_reading()


@dataclass
class _Tries:
    """One event's tries so far (local to :meth:`HttpSender._deliver` and the helpers it calls)."""

    started: float
    errors_left: int
    drops_left: int
    count: int = 0
    timed_out: bool = False  # a try got no answer in time: the server may have recorded it
    counted_duplicate: bool = False
    last_error: str = ""
    shown: str = ""  # the last error in a few words, for the progress line
