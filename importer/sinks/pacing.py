"""Pacing and retry timing for the sender: a token bucket, backoff with jitter, ``Retry-After``,
and the proxy the environment sets."""

from __future__ import annotations

import asyncio
import email.utils
import random
import time
import urllib.parse
import urllib.request
from collections.abc import Callable


class TokenBucket:
    """Paces requests to ``rate`` per second on average, with bursts of at most ``burst``.

    Each caller reserves the next free slot on a shared timeline and sleeps until it, so the
    long-run rate is exact regardless of how many workers share the bucket; the small burst
    lets a late wake-up catch up instead of losing its slot.
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
        self._next = max(self._next, earliest)
        slot = self._next
        self._next += self.interval
        if slot > now:
            await asyncio.sleep(slot - now)


def backoff_delay(attempt: int, base: float, cap: float, rng: random.Random) -> float:
    """Exponential backoff with full jitter: uniform in [0, min(cap, base * 2**attempt)]."""
    return rng.uniform(0.0, min(cap, base * (2**attempt)))


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


def proxy_for(endpoint: str) -> str | None:
    """The proxy the environment (``https_proxy``, ``http_proxy``, ``no_proxy``) sets for ``endpoint``."""
    parts = urllib.parse.urlsplit(endpoint)
    proxy = urllib.request.getproxies().get(parts.scheme)
    if not proxy or urllib.request.proxy_bypass(parts.hostname or ""):
        return None
    return proxy
