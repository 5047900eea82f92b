"""A local, Plausible-compatible ``POST /api/event`` for trying mappings and for tests.

It answers the way Plausible's ingestion does (``external_controller.ex`` and
``ingestion/request.ex`` in Plausible's source): ``202 ok`` for an accepted event; ``202``
with ``x-plausible-dropped: 1`` for a bot user agent; ``400 {"errors": {...}}`` for a missing
name, url or domain and for Plausible's length limits. Accepted events are recorded as JSON
lines with the headers that matter (``User-Agent``, ``X-Forwarded-For``).

Faults can be injected, deterministically with a seed: a share of 503s with ``Retry-After``,
the first N requests failing, bursts of 503s (of every N requests, the first M), connections
dropped without an answer, slow answers, and a share of 202s flagged dropped; :meth:`Receiver.hold`
keeps every answer after the Nth accepted event waiting until :meth:`Receiver.release`, so that a
test acts on a run that is certainly still sending, however slow the machine. It can also play
what stands in front of a misconfigured endpoint: one fixed answer for every event (a login
redirect, a proxy's 400, a 200 HTML page), and very large answer bodies. With ``tls`` it
serves https.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import random
import ssl
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlsplit

from .plausible import (
    MAX_NAME_CHARS,
    MAX_PROP_KEY_BYTES,
    MAX_PROP_VALUE_BYTES,
    MAX_PROPS,
    MAX_REFERRER_CHARS,
    MAX_URL_BYTES,
    PROPS_TOO_LONG,
)
from .report import open_private
from .useragents import classify

PLAUSIBLE_DROPS = ("bot", "headless_browser", "monitoring")


@dataclass
class Faults:
    """What the receiver does wrong, on purpose. Shares are probabilities per request."""

    fail_share: float = 0.0  # answer 503 with Retry-After
    fail_first: int = 0  # the first N requests get 503
    burst_every: int = 0  # with burst_length: of every N requests, the first burst_length get 503
    burst_length: int = 0
    fail_status: int = 503  # the status of injected failures (429 for a proxy's rate limit)
    retry_after: str | None = "0"  # the Retry-After header sent with 503s (None: no header)
    reset_share: float = 0.0  # close the connection without answering
    delay_s: float = 0.0  # wait this long before answering (after recording, as a slow server would)
    slow_first: int = 0  # with delay_s: only the first N requests are slow (0: all)
    drop_share: float = 0.0  # 202 with x-plausible-dropped although the event is fine
    answer_status: int = 0  # answer every event with this status and answer_body, recording nothing
    answer_body: bytes = b""
    location: str | None = None  # the Location header sent with answer_status
    body_bytes: int = 0  # pad every answer's body to this many bytes, streamed in chunks
    seed: int | None = None


@dataclass
class ReceiverStats:
    requests: int = 0
    accepted: int = 0
    dropped: int = 0
    rejected: int = 0
    failed: int = 0  # injected 503s
    resets: int = 0
    body_bytes_sent: int = 0  # bytes of answer bodies written (padding included)
    other_requests: int = 0  # requests to another path or with another method (a followed redirect)
    open_connections: int = 0  # client connections not closed yet
    held: int = 0  # answers waiting for Receiver.release

    def as_dict(self) -> dict:
        return dict(self.__dict__)


def validate_event(body: Any) -> tuple[dict | None, dict]:
    """Plausible's request validation: (normalised event, errors). Errors map field -> messages."""
    errors: dict[str, list[str]] = {}
    if not isinstance(body, dict):
        return None, {"request": ["Unable to parse request body as json"]}

    def first(*keys: str) -> Any:
        for key in keys:
            if key in body:
                return body[key]
        return None

    name = first("n", "name")
    if name is None or (isinstance(name, str) and not name.strip()):
        errors.setdefault("event_name", []).append("can't be blank")
    elif isinstance(name, bool) or not isinstance(name, (str, int)):
        errors.setdefault("event_name", []).append("is invalid")
    else:
        name = str(name)
        if len(name) > MAX_NAME_CHARS:
            errors.setdefault("event_name", []).append(f"should be at most {MAX_NAME_CHARS} character(s)")

    url = first("u", "url")
    host = None
    if url is None:
        errors.setdefault("url", []).append("is required")
    elif not isinstance(url, str) or len(url.encode("utf-8")) > MAX_URL_BYTES:
        errors.setdefault("url", []).append("must be a valid url")
    elif url.lower().startswith("data:"):
        errors.setdefault("url", []).append("scheme is not allowed")
    else:
        try:
            host = urlsplit(url).hostname
        except ValueError:
            errors.setdefault("url", []).append("must be a valid url")

    domain = first("d", "domain")
    if not isinstance(domain, str):
        domain = host
    if domain is None or not str(domain).strip():
        errors.setdefault("domain", []).append("can't be blank")

    props = first("m", "meta", "p", "props")
    if isinstance(props, str):
        try:
            props = json.loads(props)
        except ValueError:
            props = None
    clean_props: dict[str, str] = {}
    if isinstance(props, dict):
        for key, value in props.items():
            if isinstance(value, (list, dict)) or value is None:
                continue
            text = ("true" if value else "false") if isinstance(value, bool) else str(value)
            if not str(key).lstrip() or not text.lstrip():
                continue
            if len(str(key).encode()) > MAX_PROP_KEY_BYTES or len(text.encode()) > MAX_PROP_VALUE_BYTES:
                errors.setdefault("props", []).append(PROPS_TOO_LONG)
                break
            if len(clean_props) < MAX_PROPS:
                clean_props[str(key)] = text

    if errors:
        return None, errors
    referrer = first("r", "referrer")
    event = {
        "name": name,
        "url": url,
        "domain": ",".join(d.strip().removeprefix("www.") for d in str(domain).split(",")),
        "referrer": referrer[:MAX_REFERRER_CHARS] if isinstance(referrer, str) else None,
        "props": clean_props or None,
    }
    revenue = first("revenue", "$")
    if isinstance(revenue, dict):
        event["revenue"] = revenue
    if first("i", "interactive") is False:
        event["interactive"] = False
    return event, {}


class Receiver:
    """The server. Use :meth:`running` in tests: ``with Receiver().running() as r: r.endpoint``."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        record: Path | None = None,
        faults: Faults | None = None,
        keep_events: bool = True,
        tls: ssl.SSLContext | None = None,
    ):
        self.host = host
        self.port = port
        self.record_path = record
        self.faults = faults or Faults()
        self.stats = ReceiverStats()
        self.keep_events = keep_events
        self.tls = tls
        self._events: list[dict] = []
        self._lock = threading.Lock()
        self._rng = random.Random(self.faults.seed)
        self._record_file: IO[str] | None = None
        self._server: asyncio.AbstractServer | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._hold_after: int | None = None  # accepted events answered before answers wait
        self._released = asyncio.Event()

    @property
    def endpoint(self) -> str:
        scheme = "https" if self.tls is not None else "http"
        return f"{scheme}://{self.host}:{self.port}/api/event"

    @property
    def events(self) -> list[dict]:
        with self._lock:
            return list(self._events)

    async def start(self) -> None:
        if self.record_path is not None:
            self._record_file = open_private(self.record_path)  # events with their X-Forwarded-For
        self._loop = asyncio.get_running_loop()
        self._server = await asyncio.start_server(self._handle, self.host, self.port, backlog=1024, ssl=self.tls)
        self.port = self._server.sockets[0].getsockname()[1]

    async def serve_forever(self) -> None:
        await self.start()
        assert self._server is not None
        async with self._server:
            await self._server.serve_forever()

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        if self._record_file is not None:
            self._record_file.close()
            self._record_file = None

    def running(self) -> _Running:
        return _Running(self)

    def start_in_thread(self) -> None:
        ready = threading.Event()
        failure: list[BaseException] = []

        def main() -> None:
            loop = asyncio.new_event_loop()
            try:
                loop.run_until_complete(self.start())
            except BaseException as exc:
                failure.append(exc)
                ready.set()
                return
            ready.set()
            loop.run_forever()
            loop.run_until_complete(self.stop())
            # Connections still open (keep-alive clients) have handler tasks waiting for a next
            # request: end them, so the loop closes without "Task was destroyed" warnings.
            loop.run_until_complete(_cancel_other_tasks())
            loop.close()

        self._thread = threading.Thread(target=main, name="receiver", daemon=True)
        self._thread.start()
        ready.wait(10)
        if failure:
            raise failure[0]

    def stop_thread(self) -> None:
        if self._loop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)

    def hold(self, after: int) -> None:
        """Answer until ``after`` events are accepted in all, then keep every later answer
        waiting (its event recorded already, like :attr:`Faults.delay_s`) until :meth:`release`."""
        with self._lock:
            self._hold_after = after
            self._released = asyncio.Event()

    def release(self) -> None:
        """Send the answers :meth:`hold` kept waiting, and answer at once from now on."""
        with self._lock:
            released, self._hold_after = self._released, None
        if self._loop is not None:
            self._loop.call_soon_threadsafe(released.set)

    async def _wait_while_held(self) -> None:
        with self._lock:
            if self._hold_after is None or self.stats.accepted <= self._hold_after:
                return
            released = self._released
            self.stats.held += 1
        try:
            await released.wait()
        finally:
            with self._lock:
                self.stats.held -= 1

    def _count(self) -> int:
        with self._lock:
            self.stats.requests += 1
            return self.stats.requests

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with self._lock:
            self.stats.open_connections += 1
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
                    return
                request_line, _, header_block = head.decode("latin-1").partition("\r\n")
                parts = request_line.split(" ")
                if len(parts) != 3:
                    await self._respond(writer, 400, b"bad request line", close=True)
                    return
                method, target, version = parts
                headers: dict[str, str] = {}
                for line in header_block.split("\r\n"):
                    if ":" in line:
                        key, _, value = line.partition(":")
                        headers.setdefault(key.strip().lower(), value.strip())
                length = int(headers.get("content-length", "0") or 0)
                body = await reader.readexactly(length) if length else b""
                close = headers.get("connection", "").lower() == "close" or version == "HTTP/1.0"
                keep = await self._dispatch(writer, method, target.split("?")[0], headers, body, close)
                if not keep:
                    return
        except (ConnectionError, asyncio.IncompleteReadError):
            return
        finally:
            with contextlib.suppress(Exception):
                writer.close()
            with self._lock:
                self.stats.open_connections -= 1

    async def _dispatch(self, writer, method: str, path: str, headers: dict, body: bytes, close: bool) -> bool:
        if path == "/api/health" and method == "GET":
            return await self._respond(writer, 200, b'{"status":"ok"}', close, content_type="application/json")
        if path != "/api/event" or method != "POST":
            with self._lock:
                self.stats.other_requests += 1
            if path != "/api/event":
                return await self._respond(writer, 404, b"not found", close)
            return await self._respond(writer, 405, b"method not allowed", close)
        number = self._count()
        faults = self.faults
        with self._lock:
            roll_reset = self._rng.random()
            roll_fail = self._rng.random()
            roll_drop = self._rng.random()
        if roll_reset < faults.reset_share:
            with self._lock:
                self.stats.resets += 1
            writer.transport.abort()
            return False
        in_burst = faults.burst_every > 0 and (number - 1) % faults.burst_every < faults.burst_length
        if faults.answer_status:
            extra = {"location": faults.location} if faults.location else {}
            status, answer, content_type = faults.answer_status, faults.answer_body, "text/html"
        elif number <= faults.fail_first or in_burst or roll_fail < faults.fail_share:
            with self._lock:
                self.stats.failed += 1
            extra = {"retry-after": faults.retry_after} if faults.retry_after is not None else {}
            status, answer, content_type = faults.fail_status, b"service unavailable", "text/plain"
        else:
            status, answer, content_type, extra = self._take_event(headers, body, roll_drop < faults.drop_share)
        if faults.delay_s and (not faults.slow_first or number <= faults.slow_first):
            await asyncio.sleep(faults.delay_s)  # the event is recorded already: a slow answer, not a slow server
        await self._wait_while_held()
        return await self._respond(writer, status, answer, close, content_type=content_type, extra=extra)

    def _take_event(self, headers: dict, body: bytes, drop: bool) -> tuple[int, bytes, str, dict[str, str]]:
        """Validate and record one event the way Plausible does: (status, body, content type, headers)."""
        content_type = headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type in ("application/json", "text/plain"):
            try:
                payload = json.loads(body.decode("utf-8")) if body else None
            except (ValueError, UnicodeDecodeError):
                if content_type == "application/json":
                    return 400, b'{"status":400,"message":"Bad Request"}', "application/json", {}
                payload = None
        else:
            payload = {}
        event, errors = validate_event(payload)
        if errors or event is None:
            with self._lock:
                self.stats.rejected += 1
            return 400, json.dumps({"errors": errors}).encode(), "application/json", {}
        user_agent = headers.get("user-agent", "")
        if drop or classify(user_agent) in PLAUSIBLE_DROPS:
            with self._lock:
                self.stats.dropped += 1
            return 202, b"ok", "text/plain", {"x-plausible-dropped": "1"}
        record = {
            "received_at": dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds"),
            **event,
            "user_agent": user_agent,
            "x_forwarded_for": headers.get("x-forwarded-for"),
        }
        with self._lock:
            self.stats.accepted += 1
            if self.keep_events:
                self._events.append(record)
            if self._record_file is not None:
                self._record_file.write(json.dumps(record, ensure_ascii=False) + "\n")
                self._record_file.flush()
        return 202, b"ok", "text/plain", {}

    async def _respond(
        self,
        writer,
        status: int,
        body: bytes,
        close: bool,
        content_type: str = "text/plain",
        extra: dict[str, str] | None = None,
    ) -> bool:
        reason = {
            200: "OK",
            202: "Accepted",
            400: "Bad Request",
            404: "Not Found",
            405: "Method Not Allowed",
            429: "Too Many Requests",
            503: "Service Unavailable",
        }.get(status, "Status")
        padding = max(0, self.faults.body_bytes - len(body))
        lines = [
            f"HTTP/1.1 {status} {reason}",
            f"content-type: {content_type}",
            f"content-length: {len(body) + padding}",
        ]
        for key, value in (extra or {}).items():
            lines.append(f"{key}: {value}")
        if close:
            lines.append("connection: close")
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)
        await writer.drain()
        self._note_body_bytes(len(body))
        chunk = b" " * 65536
        while padding > 0:  # a huge answer, streamed: stops when the client hangs up
            piece = chunk[:padding]
            writer.write(piece)
            await writer.drain()
            padding -= len(piece)
            self._note_body_bytes(len(piece))
        return not close

    def _note_body_bytes(self, count: int) -> None:
        with self._lock:
            self.stats.body_bytes_sent += count


async def _cancel_other_tasks() -> None:
    pending = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)


class _Running:
    def __init__(self, receiver: Receiver):
        self.receiver = receiver

    def __enter__(self) -> Receiver:
        self.receiver.start_in_thread()
        return self.receiver

    def __exit__(self, *exc_info) -> None:
        self.receiver.stop_thread()
