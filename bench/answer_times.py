"""Answer times of the loopback receiver under load: what ``--timeout`` must leave room for.

Starts ``plausible-import receiver`` in its own process (so the client's event loop does not
slow the server's) and sends real events to it with aiohttp, as the sender does (one session,
``concurrency`` connections, every request waiting for its answer), timing each request from
send to the last byte of the answer. Prints, per concurrency level, the percentiles and the
slowest answer.

    python bench/answer_times.py                       # 4,000 requests at 8, 32, 128 and 512 in flight
    python bench/answer_times.py --requests 20000 --concurrency 8 64
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BROWSER = "Mozilla/5.0 (X11; Linux x86_64; rv:123.0) Gecko/20100101 Firefox/123.0"


def start_receiver() -> tuple[subprocess.Popen, str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "importer", "receiver", "--port", "0"],
        cwd=ROOT,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert process.stderr is not None
    line = process.stderr.readline()  # "receiving on http://127.0.0.1:PORT/api/event"
    return process, line.split("receiving on ", 1)[1].split(",")[0].strip()


async def timed_requests(endpoint: str, requests: int, concurrency: int) -> list[float]:
    import aiohttp

    times: list[float] = []
    next_index = iter(range(requests))
    connector = aiohttp.TCPConnector(limit=concurrency, limit_per_host=concurrency)

    async def worker(session: aiohttp.ClientSession) -> None:
        for i in next_index:
            body = json.dumps({"name": "pageview", "url": f"https://example.com/p{i}", "domain": "example.com"})
            headers = {
                "Content-Type": "application/json",
                "User-Agent": BROWSER,
                "X-Forwarded-For": f"198.51.100.{i % 250}",
            }
            started = time.perf_counter()
            async with session.post(endpoint, data=body, headers=headers, allow_redirects=False) as response:
                await response.read()
                assert response.status == 202, response.status
            times.append(time.perf_counter() - started)

    async with aiohttp.ClientSession(connector=connector) as session:
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))
    return times


def percentile(values: list[float], share: float) -> float:
    return values[min(len(values) - 1, int(share * len(values)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=4000)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[8, 32, 128, 512])
    args = parser.parse_args()
    process, endpoint = start_receiver()
    try:
        print(f"receiver {endpoint}, {args.requests:,} requests per level; answer times in ms")
        print(f"{'in flight':>9} {'req/s':>7} {'p50':>7} {'p90':>7} {'p99':>7} {'p99.9':>7} {'max':>7}")
        for concurrency in args.concurrency:
            started = time.perf_counter()
            times = sorted(asyncio.run(timed_requests(endpoint, args.requests, concurrency)))
            rate = len(times) / (time.perf_counter() - started)
            ms = [1000 * percentile(times, q) for q in (0.5, 0.9, 0.99, 0.999)] + [1000 * times[-1]]
            print(
                f"{concurrency:>9} {rate:>7.0f} "
                + " ".join(f"{v:>7.1f}" for v in ms)
                + f"   (mean {1000 * statistics.fmean(times):.1f})"
            )
    finally:
        process.terminate()
        process.wait(10)


if __name__ == "__main__":
    main()
