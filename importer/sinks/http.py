"""Replays events to Plausible's ``POST /api/event``: paced, concurrent, retrying, exact.

Every event ends in exactly one of four outcomes, counted in the report:

* **accepted**: 202 without ``x-plausible-dropped``;
* **dropped**: 202 with ``x-plausible-dropped`` (Plausible took it for a bot, throttled it,
  or does not know the site); not retried, since a retry of a real drop changes nothing;
* **rejected**: 400, the payload is invalid; never retried, written to the rejects file with
  the server's error body;
* **failed**: retries exhausted (connection errors, timeouts, 429 and 5xx are retried with
  exponential backoff, full jitter and ``Retry-After``), or a status that no retry can fix
  (404, 405, 413...); written to the rejects file with the last error.

Events of one visitor (same IP and user agent) always go through the same worker, so they
leave in their original order, which matters because Plausible builds sessions from arrival
order.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import random
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import httpx
import pyarrow as pa

from ..report import RejectsFile, Report

DEFAULT_ENDPOINT = "https://plausible.io/api/event"
SEND_COLUMNS = ("name", "url", "domain", "referrer", "props", "user_agent", "ip", "source_file", "source_line")
# After this many events in a row answered with a status no retry can fix, and none accepted,
# the endpoint is taken to be wrong and the run stops instead of failing every event.
CONFIG_ERROR_LIMIT = 10


@dataclass(frozen=True)
class SendOptions:
    endpoint: str = DEFAULT_ENDPOINT
    rate: float = 50.0  # events per second; 0 = unlimited
    concurrency: int = 8
    timeout_s: float = 10.0
    max_attempts: int = 5
    backoff_base_s: float = 0.5
    backoff_cap_s: float = 30.0
    queue_per_worker: int = 64


class TokenBucket:
    """Paces requests to ``rate`` per second on average, with bursts of at most ``burst``.

    Each caller reserves the next free slot on a shared timeline and sleeps until it, so the
    long-run rate is exact regardless of how many workers share the bucket.
    """

    def __init__(self, rate: float, burst: float = 1.0, clock: Callable[[], float] = time.monotonic):
        self.interval = 1.0 / rate if rate > 0 else 0.0
        self.burst = max(1.0, burst)
        self._clock = clock
        self._next = clock()

    async def acquire(self) -> None:
        if not self.interval:
            return
        now = self._clock()
        earliest = now - (self.burst - 1.0) * self.interval
        if self._next < earliest:
            self._next = earliest
        slot = self._next
        self._next += self.interval
        if slot > now:
            await asyncio.sleep(slot - now)


def backoff_delay(attempt: int, base: float, cap: float, rng: random.Random) -> float:
    """Exponential backoff with full jitter: uniform in [0, min(cap, base * 2**attempt)]."""
    return rng.uniform(0.0, min(cap, base * (2 ** attempt)))


def retry_after_seconds(value: str | None) -> float | None:
    """``Retry-After`` as seconds: either a number or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


class _Stop(Exception):
    pass


class HttpSender:
    """Consumes event batches and delivers them; updates the report as events settle."""

    def __init__(
        self,
        options: SendOptions,
        report: Report,
        rejects: RejectsFile,
        on_settled: Callable[[int], None] | None = None,
        on_first_batch: Callable[[pa.Table], None] | None = None,
        seed: int | None = None,
    ):
        self.options = options
        self.report = report
        self.rejects = rejects
        self.on_settled = on_settled or (lambda n: None)
        self.on_first_batch = on_first_batch
        self._rng = random.Random(seed)
        self._config_errors = 0
        self.fatal: str | None = None

    def run(self, batches: Iterator[pa.Table]) -> None:
        asyncio.run(self._run(batches))

    async def _run(self, batches: Iterator[pa.Table]) -> None:
        o = self.options
        workers = max(1, o.concurrency)
        self._bucket = TokenBucket(o.rate)
        self._stop = asyncio.Event()
        queues: list[asyncio.Queue] = [asyncio.Queue(maxsize=o.queue_per_worker) for _ in range(workers)]
        limits = httpx.Limits(max_connections=workers, max_keepalive_connections=workers)
        timeout = httpx.Timeout(o.timeout_s)
        async with httpx.AsyncClient(limits=limits, timeout=timeout, http2=False) as client:
            self._client = client
            tasks = [asyncio.create_task(self._worker(q)) for q in queues]
            try:
                await self._produce(batches, queues)
            finally:
                for q in queues:
                    await q.put(None)
                await asyncio.gather(*tasks)

    async def _produce(self, batches: Iterator[pa.Table], queues: list[asyncio.Queue]) -> None:
        first = True
        lanes = len(queues)
        while not self._stop.is_set():
            table = await asyncio.to_thread(next, batches, None)
            if table is None:
                return
            if table.num_rows == 0:
                continue
            if first and self.on_first_batch is not None:
                self.on_first_batch(table)
            first = False
            for record_batch in table.select(list(SEND_COLUMNS)).to_batches(max_chunksize=2048):
                for event in record_batch.to_pylist():
                    if self._stop.is_set():
                        self._fail_unsent(event)
                        continue
                    key = f"{event['ip']}\x00{event['user_agent']}".encode("utf-8", "surrogatepass")
                    await queues[zlib.crc32(key) % lanes].put(event)

    async def _worker(self, queue: asyncio.Queue) -> None:
        while True:
            event = await queue.get()
            if event is None:
                return
            if self._stop.is_set():
                self._fail_unsent(event)
                continue
            await self._deliver(event)
            self.on_settled(1)

    def _fail_unsent(self, event: dict) -> None:
        self.report.failed += 1
        self.rejects.write(self._record(event, reason=f"not sent: {self.fatal}"))
        self.on_settled(1)

    @staticmethod
    def _body(event: dict) -> bytes:
        body = {"name": event["name"], "url": event["url"], "domain": event["domain"]}
        if event["referrer"]:
            body["referrer"] = event["referrer"]
        if event["props"]:
            body["props"] = json.loads(event["props"])
        return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")

    @staticmethod
    def _headers(event: dict) -> dict[str, str]:
        headers = {"Content-Type": "application/json", "User-Agent": event["user_agent"] or ""}
        if event["ip"]:
            headers["X-Forwarded-For"] = event["ip"]
        return headers

    def _record(self, event: dict, **extra) -> dict:
        return {
            "stage": "send",
            "file": event["source_file"],
            "line": event["source_line"],
            **extra,
            "event": json.loads(self._body(event)),
            "user_agent": event["user_agent"],
        }

    async def _deliver(self, event: dict) -> None:
        o = self.options
        body = self._body(event)
        headers = self._headers(event)
        last_error = ""
        for attempt in range(o.max_attempts):
            if attempt:
                self.report.retries += 1
            await self._bucket.acquire()
            if attempt == 0:
                self.report.sent += 1
            delay: float | None = None
            try:
                response = await self._client.post(o.endpoint, content=body, headers=headers)
            except (httpx.TransportError, httpx.TimeoutException) as exc:
                last_error = f"{type(exc).__name__}: {exc}".rstrip(": ")
            else:
                status = response.status_code
                if 200 <= status < 300:
                    self._config_errors = 0
                    dropped = response.headers.get("x-plausible-dropped")
                    if dropped and dropped.strip() not in ("", "0"):
                        self.report.dropped += 1
                    else:
                        self.report.accepted += 1
                    return
                text = response.text[:2000]
                if status == 400:
                    self.report.rejected += 1
                    self.rejects.write(self._record(event, status=status, error=_json_or_text(text)))
                    return
                last_error = f"HTTP {status}: {text[:300]}"
                if status != 429 and status < 500:
                    self.report.failed += 1
                    self.rejects.write(self._record(event, status=status, reason=last_error))
                    self._note_config_error(status)
                    return
                delay = retry_after_seconds(response.headers.get("retry-after"))
            if attempt + 1 < o.max_attempts:
                wait = backoff_delay(attempt, o.backoff_base_s, o.backoff_cap_s, self._rng)
                if delay is not None:
                    wait = max(wait, min(delay, o.backoff_cap_s * 4))
                await asyncio.sleep(wait)
        self.report.failed += 1
        self.rejects.write(self._record(event, reason=f"failed after {o.max_attempts} attempts: {last_error}"))

    def _note_config_error(self, status: int) -> None:
        self._config_errors += 1
        if self._config_errors >= CONFIG_ERROR_LIMIT and self.report.accepted + self.report.dropped == 0:
            self.fatal = (
                f"the endpoint {self.options.endpoint} answered HTTP {status} to the first "
                f"{self._config_errors} events; is --endpoint right?"
            )
            self._stop.set()


def _json_or_text(text: str):
    try:
        return json.loads(text)
    except ValueError:
        return text
