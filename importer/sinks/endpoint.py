"""Is the endpoint usable at all? The URL's shape, one connection before the first event, and the
run of tries that got no answer, so that a dead endpoint stops a run in seconds with one line
that says why instead of retrying every event for minutes."""

from __future__ import annotations

import asyncio
import errno
import socket
import ssl
import urllib.parse


def host_of(url: str) -> str:
    """``host:port`` of a URL, the port made explicit, for messages."""
    parts = urllib.parse.urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    host = parts.hostname or ""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def describe_error(exc: BaseException, host: str) -> str:
    """A transport error in words: ``connection refused by 127.0.0.1:1``."""
    cause = getattr(exc, "os_error", None) or exc.__cause__ or exc
    code = getattr(cause, "errno", None)
    if code == errno.ECONNREFUSED or isinstance(cause, ConnectionRefusedError):
        return f"connection refused by {host}"
    if code in (errno.EHOSTUNREACH, errno.ENETUNREACH):
        return f"no route to {host}"
    if isinstance(exc, asyncio.TimeoutError) or isinstance(cause, (asyncio.TimeoutError, TimeoutError)):
        return f"no answer from {host} in time"
    if isinstance(cause, OSError) and cause.strerror:
        return f"{cause.strerror.lower()} ({host})"
    text = str(cause) or type(cause).__name__
    return f"{type(exc).__name__}: {text} ({host})"


async def probe(url: str, proxy: str | None, tls: ssl.SSLContext | bool, timeout_s: float) -> str | None:
    """Open (and close) one TCP connection, with TLS for https, to the endpoint or its proxy.

    Returns a one-line error when the host cannot be reached for sure (refused, unknown name, no
    route); None when it can, or when the answer is only slow (the run's own limits judge that)
    or the certificate is not trusted (the first request stops the run with the full advice).
    """
    target = proxy or url
    parts = urllib.parse.urlsplit(target)
    host = host_of(target)
    use_tls = parts.scheme == "https" and proxy is None
    context: ssl.SSLContext | None = None
    if use_tls:
        context = tls if isinstance(tls, ssl.SSLContext) else ssl.create_default_context()
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        _, writer = await asyncio.wait_for(
            asyncio.open_connection(
                parts.hostname, port, ssl=context, server_hostname=parts.hostname if use_tls else None
            ),
            timeout=timeout_s,
        )
    except (TimeoutError, ssl.SSLCertVerificationError):
        return None
    except OSError as exc:
        what = "the proxy" if proxy else "the endpoint"
        if isinstance(exc, socket.gaierror):
            return f"cannot connect to {what} {host}: the host name is unknown ({exc.strerror}); {ADVICE}"
        return f"cannot connect to {what} {host}: {describe_error(exc, host)}; {ADVICE}"
    writer.close()
    try:
        await writer.wait_closed()
    except OSError:
        pass
    return None


ADVICE = "check --endpoint, that Plausible is running there, and any firewall or proxy in between; nothing was sent"


class Streak:
    """Tries in a row that got no usable answer (no connection, no answer in time, a 5xx).

    Any 202 ends the streak. A streak of transport errors stops the run whatever came before;
    a streak of 5xx answers stops it only while nothing has been accepted (a busy Plausible
    that answers 503 now and then mid-run is retried as usual). ``limit`` 0: never stop.
    """

    def __init__(self, limit: int):
        self.limit = limit
        self.count = 0
        self.last = ""

    def answered(self) -> None:
        self.count = 0

    def failed(self, error: str, server_error: bool, anything_accepted: bool) -> bool:
        """Count a try that failed; True when the run must stop."""
        if server_error and anything_accepted:
            self.count = 0
            return False
        self.count += 1
        self.last = error
        return bool(self.limit) and self.count >= self.limit
