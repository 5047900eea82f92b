"""Parse benchmark: ``python bench/parse.py [--quick] [--keep DIR]``.

Generates seeded access logs and times dry runs (parse + the default ``web`` mapping; events
are counted, not written), each in its own process so that peak RSS is that run's alone:

* a 1,000,000-line ``combined`` log (lines/s and peak RSS), and the same traffic as 5,000,000
  lines, to show memory stays flat whatever the file size;
* every main format (200,000 lines each), to show the other readers' speed;
* GoAccess on the same 1M-line file, when the ``goaccess`` command is installed, with the
  ratio measured in the same run (the machine is shared, so only same-run ratios mean much).

Targets for combined logs on a 2-core machine: >= 350,000 lines/s, >= 10x GoAccess, peak RSS
<= 300 MB at both sizes.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SEED = 20240314
START = dt.datetime(2024, 3, 14, 0, 0, 0, tzinfo=dt.timezone(dt.timedelta(hours=1)))

BROWSERS = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/122.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.3 Safari/605.1.15",
    "Mozilla/5.0 (X11; Linux x86_64; rv:123.0) Gecko/20100101 Firefox/123.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_3 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.3 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/122.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (iPad; CPU OS 17_3 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.3 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/122.0.0.0 Safari/537.36 Edg/122.0.2365.80",
    "Mozilla/5.0 (Linux; Android 13; SM-S911B) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/23.0 Chrome/115.0.0.0 Mobile Safari/537.36",
]
OTHERS = [
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
    "Mozilla/5.0 (compatible; AhrefsBot/7.0; +http://ahrefs.com/robot/)",
    "curl/8.5.0",
    "python-requests/2.31.0",
    "Mozilla/5.0+(compatible; UptimeRobot/2.0; http://www.uptimerobot.com/)",
    "-",
]
PAGES = ["/", "/pricing", "/docs/", "/blog/", "/about", "/contact", "/signup", "/login"]
ASSETS = ["/static/app.css", "/static/app.js", "/img/logo.svg", "/favicon.ico", "/robots.txt"]
REFERRERS = ["-", "-", "-", "https://www.google.com/", "https://duckduckgo.com/", "https://www.example.org/links",
             "https://news.example.net/item?id=42", "https://www.example.com/"]


def _pools(rng: np.random.Generator):
    ips = [f"{net}.{i}" for net in ("192.0.2", "198.51.100", "203.0.113") for i in range(1, 255)]
    ips += [f"2001:db8::{i:x}" for i in range(1, 400)]
    pages = PAGES + [f"/blog/post-{i}" for i in range(400)] + [f"/docs/page-{i}" for i in range(200)]
    queries = ["", "", "", "", "?utm_source=newsletter", "?plan=pro", "?q=plausible", "?page=2"]
    uas = BROWSERS * 12 + [f"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
                           f"Chrome/{100 + i}.0.0.0 Safari/537.36" for i in range(40)] + OTHERS * 3
    return ips, pages, queries, uas


def traffic(n: int, seed: int = SEED, offset: int = 0):
    """n seeded requests as column lists (one day of a busy site, spread evenly)."""
    rng = np.random.default_rng(seed + offset)
    ips, pages, queries, uas = _pools(rng)
    targets = [p + q for p in pages for q in queries] + ASSETS * 60
    t0 = START.timestamp() + offset * 86400
    seconds = (t0 + np.arange(n) * (86400 * 1_000_000 // max(n, 1)) / 1_000_000).astype(np.int64)
    return {
        "ip": rng.integers(0, len(ips), n), "ips": ips,
        "target": rng.integers(0, len(targets), n), "targets": targets,
        "ua": rng.integers(0, len(uas), n), "uas": uas,
        "ref": rng.integers(0, len(REFERRERS), n),
        "status": rng.choice([200, 200, 200, 200, 304, 301, 404, 500], n),
        "size": rng.integers(0, 60000, n),
        "method": rng.choice(["GET"] * 18 + ["POST", "HEAD"], n),
        "seconds": seconds,
    }


def _clf_times(seconds: np.ndarray) -> list[str]:
    tz = START.tzinfo
    cache: dict[int, str] = {}
    out = []
    for s in seconds.tolist():
        text = cache.get(s)
        if text is None:
            text = dt.datetime.fromtimestamp(s, tz).strftime("%d/%b/%Y:%H:%M:%S %z")
            cache[s] = text
        out.append(text)
    return out


def combined_lines(n: int, offset: int = 0) -> list[str]:
    t = traffic(n, offset=offset)
    times = _clf_times(t["seconds"])
    ips, targets, uas = t["ips"], t["targets"], t["uas"]
    return [
        f'{ips[a]} - - [{tm}] "{m} {targets[b]} HTTP/1.1" {st} {sz} "{REFERRERS[r]}" "{uas[u]}"'
        for a, tm, m, b, st, sz, r, u in zip(t["ip"].tolist(), times, t["method"].tolist(), t["target"].tolist(),
                                            t["status"].tolist(), t["size"].tolist(), t["ref"].tolist(),
                                            t["ua"].tolist())
    ]


def write_lines(path: Path, make, total: int, chunk: int = 500_000, header: str = "") -> Path:
    with open(path, "w", encoding="utf-8") as out:
        if header:
            out.write(header)
        done = 0
        part = 0
        while done < total:
            n = min(chunk, total - done)
            out.write("\n".join(make(n, part)) + "\n")
            done += n
            part += 1
    return path


def measure(path: str, log_format: str | None) -> dict:
    """Run in a child process: one dry run, its wall time and this process's peak RSS."""
    from importer.pipeline import send

    started = time.perf_counter()
    report = send([path], domain="example.com", dry_run=True, output=None, rejects_path=None,
                  progress=False, log_format=log_format)
    seconds = time.perf_counter() - started
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"rows": report.rows_read, "invalid": report.rows_invalid, "events": report.events,
            "seconds": seconds, "rss_mb": rss_mb, "format": report.sources[0][1] if report.sources else "?"}


def run_child(path: Path, log_format: str | None = None) -> dict:
    cmd = [sys.executable, __file__, "--measure", str(path)]
    if log_format:
        cmd += ["--format", log_format]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def run_goaccess(path: Path, workdir: Path) -> float | None:
    exe = shutil.which("goaccess")
    if not exe:
        return None
    started = time.perf_counter()
    subprocess.run([exe, str(path), "--log-format=COMBINED", "--no-global-config", "-o", str(workdir / "goaccess.json")],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - started


def _line(label: str, result: dict) -> str:
    rate = result["rows"] / result["seconds"] if result["seconds"] else 0
    return (f"{label:<28} {result['rows']:>10,} lines {result['seconds']:7.2f} s {rate:>11,.0f} lines/s "
            f"peak RSS {result['rss_mb']:6.0f} MB  events {result['events']:,}  invalid {result['invalid']:,}"
            f"  [{result['format']}]")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--measure", help=argparse.SUPPRESS)
    parser.add_argument("--format", help=argparse.SUPPRESS)
    parser.add_argument("--quick", action="store_true", help="1M combined only (no 5M, no other formats)")
    parser.add_argument("--formats-lines", type=int, default=200_000, help="lines per non-combined format")
    parser.add_argument("--keep", type=Path, help="generate files here and keep them")
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(args.measure, args.format)))
        return 0

    workdir = args.keep or Path(tempfile.mkdtemp(prefix="plausible-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        print(f"machine: {os.cpu_count()} CPUs; files in {workdir}")
        one = workdir / "combined-1m.log"
        if not one.exists():
            write_lines(one, combined_lines, 1_000_000)
        results = {}
        results["combined 1M"] = run_child(one)
        print(_line("combined 1M", results["combined 1M"]), flush=True)
        go = run_goaccess(one, workdir)
        if not args.quick:
            five = workdir / "combined-5m.log"
            if not five.exists():
                write_lines(five, combined_lines, 5_000_000)
            results["combined 5M"] = run_child(five)
            print(_line("combined 5M", results["combined 5M"]), flush=True)
            try:
                from bench_formats import FORMAT_BENCH  # type: ignore
            except ImportError:
                FORMAT_BENCH = {}
            for name, (make, header) in FORMAT_BENCH.items():
                path = workdir / f"{name}.log"
                if not path.exists():
                    write_lines(path, make, args.formats_lines, header=header)
                results[name] = run_child(path)
                print(_line(name, results[name]), flush=True)
        base = results["combined 1M"]
        rate = base["rows"] / base["seconds"]
        print()
        print(f"combined 1M: {rate:,.0f} lines/s (target >= 350,000): {'met' if rate >= 350_000 else 'NOT met'}")
        for label in ("combined 1M", "combined 5M"):
            if label in results:
                rss = results[label]["rss_mb"]
                print(f"{label} peak RSS: {rss:,.0f} MB (target <= 300 MB): {'met' if rss <= 300 else 'NOT met'}")
        if go is None:
            print("GoAccess: not installed (apt-get install goaccess), no ratio")
        else:
            ratio = go / base["seconds"]
            print(f"GoAccess 1M (same file, same run): {go:.2f} s = {1_000_000 / go:,.0f} lines/s; "
                  f"ratio {ratio:.1f}x (target >= 10x): {'met' if ratio >= 10 else 'NOT met'}")
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
