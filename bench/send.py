"""Sender benchmark: throughput against a fast local sink, beside wrk; token-bucket accuracy.

Needs nginx and wrk (or ab) on PATH (Debian: ``apt-get install -y nginx-light wrk``). Starts its
own nginx on a loopback port answering ``202 ok`` on ``/api/event`` and stops it at the end.

    python bench/send.py                   # throughput + rate accuracy at 50/s and 1,000/s over 30 s
    python bench/send.py --seconds 5       # shorter rate runs
    python bench/send.py --skip-rate       # throughput only

Prints, in the same run:

* wrk's requests/s on the same sink (the machine's ceiling);
* the sender's events/s, unlimited (``--rate 0``), fed pre-built events (the sender alone) and
  end to end from a generated access log (read + map + send);
* for each target rate, the rate nginx saw (from its access log's arrival times) and the error.
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pyarrow as pa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from importer import DeliveryOptions, OutputOptions, send
from importer.events import EVENT_SCHEMA
from importer.report import RejectsFile, Report
from importer.sinks.http import HttpSender, SendOptions

NGINX_CONF = """
worker_processes 1;
daemon on;
pid {root}/nginx.pid;
error_log {root}/error.log;
events {{ worker_connections 4096; }}
http {{
    client_body_temp_path {root}/body;
    proxy_temp_path {root}/proxy;
    fastcgi_temp_path {root}/fastcgi;
    uwsgi_temp_path {root}/uwsgi;
    scgi_temp_path {root}/scgi;
    keepalive_requests 10000000;
    log_format arrival '$msec';
    server {{
        listen 127.0.0.1:{fast};
        access_log off;
        location /api/event {{ return 202 ok; }}
    }}
    server {{
        listen 127.0.0.1:{logged};
        access_log {root}/arrivals.log arrival buffer=64k flush=1s;
        location /api/event {{ return 202 ok; }}
    }}
}}
"""

BROWSERS = [
    "Mozilla/5.0 (X11; Linux x86_64; rv:123.0) Gecko/20100101 Firefox/123.0",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/122.0 Safari/537.36",
    (
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_3 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
        "Version/17.3 Mobile/15E148 Safari/604.1"
    ),
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Nginx:
    def __init__(self, root: Path):
        self.root = root
        self.fast = free_port()
        self.logged = free_port()
        (root / "nginx.conf").write_text(NGINX_CONF.format(root=root, fast=self.fast, logged=self.logged))

    def __enter__(self) -> Nginx:
        nginx = shutil.which("nginx") or "/usr/sbin/nginx"
        subprocess.run([nginx, "-p", str(self.root), "-c", str(self.root / "nginx.conf")], check=True)
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", self.fast), timeout=0.1).close()
                break
            except OSError:
                time.sleep(0.05)
        return self

    def __exit__(self, *exc) -> None:
        pid_file = self.root / "nginx.pid"
        if pid_file.exists():
            os.kill(int(pid_file.read_text().strip()), signal.SIGQUIT)
            time.sleep(0.3)

    def url(self, logged: bool = False) -> str:
        return f"http://127.0.0.1:{self.logged if logged else self.fast}/api/event"


def wrk(url: str, seconds: int, root: Path) -> float | None:
    body = '{"name":"pageview","url":"https://example.com/","domain":"example.com"}'
    if shutil.which("wrk"):
        script = root / "post.lua"
        script.write_text(
            f"wrk.method = 'POST'\nwrk.body = '{body}'\nwrk.headers['Content-Type'] = 'application/json'\n"
        )
        out = subprocess.run(
            ["wrk", "-t1", "-c16", f"-d{seconds}s", "-s", str(script), url], capture_output=True, text=True
        ).stdout
        for line in out.splitlines():
            if line.startswith("Requests/sec:"):
                return float(line.split()[1])
    if shutil.which("ab"):
        data = root / "body.json"
        data.write_text(body)
        out = subprocess.run(
            [
                "ab",
                "-q",
                "-k",
                "-c16",
                "-t",
                str(seconds),
                "-n",
                "10000000",
                "-p",
                str(data),
                "-T",
                "application/json",
                url,
            ],
            capture_output=True,
            text=True,
        ).stdout
        for line in out.splitlines():
            if line.startswith("Requests per second:"):
                return float(line.split()[3])
    return None


def events_table(n: int) -> pa.Table:
    start = dt.datetime(2024, 3, 14, tzinfo=dt.UTC)
    rows = [
        {
            "name": "pageview",
            "url": f"https://example.com/page/{i % 5000}",
            "domain": "example.com",
            "referrer": None if i % 4 else "https://www.example.org/",
            "props": None,
            "user_agent": BROWSERS[i % 3],
            "ip": f"10.{i % 7}.{(i // 7) % 250}.{i % 200}",
            "timestamp": start + dt.timedelta(milliseconds=i),
            "source_file": "bench.log",
            "source_line": i + 1,
        }
        for i in range(n)
    ]
    return pa.Table.from_pylist(rows, schema=EVENT_SCHEMA)


def run_sender(url: str, table: pa.Table, rate: float, concurrency: int) -> tuple[Report, float]:
    report = Report(events=table.num_rows)
    options = SendOptions(endpoint=url, rate=rate, concurrency=concurrency)
    started = time.perf_counter()
    batches = iter([table.slice(i, 10_000) for i in range(0, table.num_rows, 10_000)])
    HttpSender(options, report, RejectsFile(None), handle_signals=False).run(batches)
    return report, time.perf_counter() - started


def write_log(path: Path, n: int) -> None:
    when = dt.datetime(2024, 3, 14, 9, 0, tzinfo=dt.UTC)
    with open(path, "w") as out:
        for i in range(n):
            stamp = (when + dt.timedelta(seconds=i // 50)).strftime("%d/%b/%Y:%H:%M:%S +0000")
            out.write(
                f'10.{i % 7}.{(i // 7) % 250}.{i % 200} - - [{stamp}] "GET /page/{i % 5000} HTTP/1.1" 200 512 '
                f'"-" "{BROWSERS[i % 3]}"\n'
            )


def arrivals(path: Path, offset: int) -> list[float]:
    with open(path, "rb") as f:
        f.seek(offset)
        return sorted(float(line) for line in f.read().split())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=100_000, help="events for the throughput runs")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=30.0, help="length of each rate-accuracy run")
    parser.add_argument("--rates", default="50,1000")
    parser.add_argument("--skip-rate", action="store_true")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="bench-send-"))
    print(f"machine: {os.cpu_count()} CPUs, Python {sys.version.split()[0]}")
    with Nginx(root) as sink:
        ceiling = wrk(sink.url(), 5, root)
        print(
            f"wrk -t1 -c16, same sink          {ceiling:>10,.0f} requests/s"
            if ceiling
            else "wrk/ab not found: no ceiling measured"
        )

        table = events_table(args.events)
        run_sender(sink.url(), table.slice(0, 2000), 0, args.concurrency)  # warm up
        report, seconds = run_sender(sink.url(), table, 0, args.concurrency)
        assert report.accepted == table.num_rows, report
        sender_rate = table.num_rows / seconds
        line = f"sender alone, --rate 0, c={args.concurrency}   {sender_rate:>10,.0f} events/s"
        if ceiling:
            line += f"  ({sender_rate / ceiling:.1%} of wrk)"
        print(line + f"  target >= 4,000: {'PASS' if sender_rate >= 4000 else 'FAIL'}")

        log = root / "access.log"
        write_log(log, args.events)
        started = time.perf_counter()
        result = send(
            [log],
            domain="example.com",
            stderr=io.StringIO(),
            delivery=DeliveryOptions(endpoint=sink.url(), rate=0, concurrency=args.concurrency, replay_history=True),
            outputs=OutputOptions(rejects=None, failed=None),
        )
        seconds = time.perf_counter() - started
        assert result.accepted == result.events == args.events, result.as_dict()
        print(f"end to end (read+map+send) c={args.concurrency} {args.events / seconds:>10,.0f} events/s")

        if not args.skip_rate:
            for rate in [float(r) for r in args.rates.split(",")]:
                n = int(rate * args.seconds) + 1
                arrival_log = root / "arrivals.log"
                offset = arrival_log.stat().st_size if arrival_log.exists() else 0
                report, seconds = run_sender(sink.url(logged=True), events_table(n), rate, 8)
                time.sleep(1.5)  # nginx flushes its log buffer every second
                times = arrivals(arrival_log, offset)
                assert len(times) == n == report.accepted, (len(times), n, report.accepted)
                seen = (n - 1) / (times[-1] - times[0])
                error = seen / rate - 1
                print(
                    f"--rate {rate:,.0f} over {args.seconds:.0f} s            {seen:>10,.2f} events/s at the sink"
                    f"  error {error:+.2%}  target within 2%: {'PASS' if abs(error) <= 0.02 else 'FAIL'}"
                )
    shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
