"""Backfill benchmark against GoAccess: ``python bench/backfill.py [--lines N] [--agents N] [--keep DIR]``.

Generates a seeded ``combined`` access log (default 1,000,000 lines over 14 days: visitors
browsing in sessions with assets, referrers and campaigns, plus bots, HTTP clients and
monitors). Browser user agents have a real long tail: ``--agents`` distinct ones (default
8,000) drawn from device-detector's own fixture agents, each visitor keeping its own, their
popularity Zipf-distributed so that a few hundred cover most lines.

On the same file, in the same run, it measures (wall seconds and peak RSS of each child):
``backfill`` with an empty user-agent cache (a first run), ``backfill`` again with the cache
the first run left (a warm run), and GoAccess (``goaccess LOG --log-format=COMBINED
--no-progress -o report.csv``: its CSV output, the cheapest of its outputs, with every panel),
then prints the ratios against the targets: first run <= 2x GoAccess, warm run <= 0.5x,
peak RSS <= 400 MB. ``--geo`` adds the country lookup's peak RSS over two counts of distinct
IP addresses, with the bounded cache and with a cache of every address.
"""

from __future__ import annotations

import argparse
import datetime as dt
import glob
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
SEED = 20240314
START = dt.datetime(2024, 3, 1, 0, 0, 0, tzinfo=dt.timezone(dt.timedelta(hours=1)))
DAYS = 14

PAGES = (
    [
        "/",
        "/pricing",
        "/features",
        "/about",
        "/contact",
        "/blog/",
        "/docs/",
        "/docs/install",
        "/docs/configuration",
        "/docs/api",
        "/blog/launch-week",
        "/blog/caf%C3%A9-culture",
        "/signup",
        "/changelog",
        "/careers",
        "/privacy",
    ]
    + [f"/blog/post-{i}" for i in range(60)]
    + [f"/docs/guide/{i}" for i in range(40)]
)
ASSETS = [
    "/assets/app.css",
    "/assets/app.js",
    "/assets/logo.svg",
    "/img/hero.webp",
    "/fonts/inter.woff2",
    "/favicon.ico",
]
REFERRERS = [
    "-",
    "-",
    "-",
    "https://www.google.com/",
    "https://www.google.de/",
    "https://www.bing.com/",
    "https://duckduckgo.com/",
    "https://news.ycombinator.com/item?id=39000000",
    "https://www.reddit.com/r/selfhosted/",
    "https://t.co/abc",
    "https://www.example.org/links",
    "https://l.facebook.com/",
]
CAMPAIGNS = [
    "",
    "",
    "",
    "",
    "",
    "",
    "?utm_source=newsletter&utm_medium=email&utm_campaign=march",
    "?ref=producthunt",
    "?utm_source=mastodon",
]
NON_HUMAN = [
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
    "Mozilla/5.0 (compatible; AhrefsBot/7.0; +http://ahrefs.com/robot/)",
    "curl/8.5.0",
    "python-requests/2.31.0",
    "Go-http-client/1.1",
    "Mozilla/5.0+(compatible; UptimeRobot/2.0; http://www.uptimerobot.com/)",
]


def fixture_agents(n: int, rng: np.random.Generator) -> list[str]:
    """``n`` distinct user agents from device-detector's fixtures (browsers, apps, devices of
    every kind; not its bot fixtures), in a seeded random order: the order is their popularity."""
    import device_detector
    import yaml_rs

    folder = Path(device_detector.__file__).parent / "tests" / "fixtures" / "upstream"
    agents: set[str] = set()
    for name in sorted(glob.glob(str(folder / "*.yml"))):
        if Path(name).name == "bots.yml":
            continue
        for entry in yaml_rs.loads(Path(name).read_text(encoding="utf-8")) or []:
            ua = entry.get("user_agent") if isinstance(entry, dict) else None
            fits_a_log_line = isinstance(ua, str) and ua.isprintable() and '"' not in ua and "\\" not in ua
            if fits_a_log_line and not entry.get("headers"):
                agents.add(ua)
    pool = sorted(agents)
    return [pool[i] for i in rng.permutation(len(pool))[:n]]


def visitor_agents(n_visitors: int, n_agents: int, rng: np.random.Generator) -> np.ndarray:
    """Per visitor, the rank of its user agent: every rank used at least once (the long tail),
    the other visitors drawn with Zipf weights (s = 1.1) so that the head covers most lines."""
    weights = 1.0 / np.arange(1, n_agents + 1) ** 1.1
    drawn = rng.choice(n_agents, size=max(n_visitors - n_agents, 0), p=weights / weights.sum())
    ranks = np.concatenate([np.arange(min(n_agents, n_visitors)), drawn])
    return rng.permutation(ranks)


def generate(path: Path, lines: int, agents: int) -> None:
    rng = np.random.default_rng(SEED)
    uas = fixture_agents(agents, rng)
    n_visitors = max(lines // 25, 10)
    v_ip = [f"{a}.{b}.{c}.{d}" for a, b, c, d in rng.integers(1, 223, size=(n_visitors, 4))]
    v_ua = visitor_agents(n_visitors, len(uas), rng)
    # Sessions: a visitor, a start, 1..12 pageviews each followed by 0..3 assets, gaps up to ~10 min.
    per_session = 8  # average lines per session
    n_sessions = lines // per_session + 1
    rows_ts, rows_vis, rows_path, rows_ref, rows_status, rows_kind = [], [], [], [], [], []
    visitor = rng.integers(0, n_visitors, n_sessions)
    start = rng.uniform(0, DAYS * 86400, n_sessions)
    pages = rng.integers(1, 12, n_sessions)
    total = 0
    for s in range(n_sessions):
        t = start[s]
        ref = REFERRERS[int(rng.integers(0, len(REFERRERS)))]
        for p in range(int(pages[s])):
            rows_ts.append(t)
            rows_vis.append(visitor[s])
            rows_kind.append(0)
            page = PAGES[int(rng.integers(0, len(PAGES)))]
            if p == 0:
                page += CAMPAIGNS[int(rng.integers(0, len(CAMPAIGNS)))]
            rows_path.append(page)
            rows_ref.append(ref if p == 0 else "https://example.com/")
            rows_status.append(200 if rng.random() > 0.03 else 404)
            for _ in range(int(rng.integers(0, 2))):
                rows_ts.append(t + 0.2)
                rows_vis.append(visitor[s])
                rows_kind.append(0)
                rows_path.append(ASSETS[int(rng.integers(0, len(ASSETS)))])
                rows_ref.append("https://example.com/")
                rows_status.append(200)
            t += float(rng.exponential(120))
        total = len(rows_ts)
        if total >= lines * 0.85:
            break
    # Non-human traffic fills the rest.
    rest = lines - len(rows_ts)
    bot_ts = rng.uniform(0, DAYS * 86400, rest)
    order = np.argsort(np.concatenate([np.asarray(rows_ts), bot_ts]), kind="stable")
    n_human = len(rows_ts)
    with open(path, "w", encoding="utf-8") as out:
        for i in order:
            if i < n_human:
                v = int(rows_vis[i])
                ip, ua = v_ip[v], uas[int(v_ua[v])]
                when = START + dt.timedelta(seconds=float(rows_ts[i]))
                target, ref, status = rows_path[i], rows_ref[i], rows_status[i]
            else:
                j = i - n_human
                ip = f"198.51.100.{j % 250 + 1}"
                ua = NON_HUMAN[j % len(NON_HUMAN)]
                when = START + dt.timedelta(seconds=float(bot_ts[j]))
                target, ref, status = PAGES[j % len(PAGES)], "-", 200
            out.write(f'{ip} - - [{when:%d/%b/%Y:%H:%M:%S %z}] "GET {target} HTTP/1.1" {status} 5120 "{ref}" "{ua}"\n')


CHILD = """
import json, sys, time
sys.path.insert(0, {root!r})
t0 = time.monotonic()
from importer import BackfillOptions, OutputOptions
from importer.backfill import backfill
r = backfill([{log!r}], "example.com", BackfillOptions(site_timezone="Europe/Berlin", out_dir={out!r}),
             outputs=OutputOptions(rejects=None, failed=None), ua_cache={cache!r})
d = r.as_dict()
d["wall_s"] = time.monotonic() - t0
d["spills"] = r.spills
d["ua_from_cache"] = r.user_agents_from_cache
d["ip_seconds"] = r.ip_seconds
print(json.dumps(d))
"""


GEO_CHILD = """
import sys, time
sys.path.insert(0, {root!r})
import numpy as np
from importer.backfill.geo import GeoLookup
geo = GeoLookup(cache_limit={limit})
rng = np.random.default_rng(1)
for start in range(0, {count}, 10_000):  # addresses made in chunks: only the cache may grow
    for a, b, c, d in rng.integers(1, 223, size=(min(10_000, {count} - start), 4)).tolist():
        geo.country(f"{{a}}.{{b}}.{{c}}.{{d}}")
print(geo.cached)
"""


def measured(command: list[str]) -> tuple[str, float, float]:
    """(stdout, wall seconds, peak RSS in MB) of a child process (with the processes it forked)."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        started = time.monotonic()
        proc = subprocess.Popen(command, stdout=out, stderr=err, text=True)
        _, status, usage = os.wait4(proc.pid, 0)  # the child's own rusage, not the bench's total
        wall = time.monotonic() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        if proc.returncode:
            raise SystemExit(f"{command[0]} failed ({proc.returncode}): {err.read()[-2000:]}")
        return out.read(), wall, usage.ru_maxrss / 1024


def run(log: Path, out: Path, cache: Path) -> tuple[dict, float, float]:
    code = CHILD.format(root=str(ROOT), log=str(log), out=str(out), cache=str(cache))
    stdout, wall, rss_mb = measured([sys.executable, "-c", code])
    return json.loads(stdout.strip().splitlines()[-1]), wall, rss_mb


def goaccess(log: Path, base: Path) -> tuple[float, float]:
    _, wall, rss_mb = measured(
        ["goaccess", str(log), "--log-format=COMBINED", "--no-progress", "-o", str(base / "goaccess.csv")]
    )
    return wall, rss_mb


def geo_memory(counts: list[int]) -> None:
    print("\ncountry lookups over distinct IP addresses (peak RSS of the process)")
    for limit, label in ((None, "bounded cache"), (10**9, "cache of every address")):
        figures = []
        for count in counts:
            code = GEO_CHILD.format(root=str(ROOT), limit=limit or "GeoLookup.__init__.__defaults__[0]", count=count)
            stdout, wall, rss = measured([sys.executable, "-c", code])
            figures.append(f"{count:,} IPs {rss:.0f} MB ({wall:.1f} s, {int(stdout):,} cached)")
        print(f"  {label}: " + "; ".join(figures))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--agents", type=int, default=8_000, help="distinct browser user agents")
    parser.add_argument("--keep", type=Path, help="keep the generated log and output here")
    parser.add_argument("--geo", type=int, nargs=2, metavar="N", help="also: country lookups over N distinct IPs")
    args = parser.parse_args()
    base = args.keep or Path(tempfile.mkdtemp(prefix="bench-backfill-"))
    base.mkdir(parents=True, exist_ok=True)
    log = base / f"access-{args.lines}-{args.agents}.log"
    if not log.exists():
        t = time.monotonic()
        generate(log, args.lines, args.agents)
        print(f"generated {log} ({log.stat().st_size / 1e6:.0f} MB) in {time.monotonic() - t:.1f} s")
    cache = base / "ua-cache.json"
    cache.unlink(missing_ok=True)
    walls, peaks = [], []
    for label in ("first run (empty user-agent cache)", "warm run (user-agent cache filled)"):
        data, wall, rss = run(log, base / "out", cache)
        walls.append(wall)
        peaks.append(rss)
        print(f"\n{label}")
        print(
            f"  lines {data['rows_read']:,}  events {data['events']:,}  days {data['date_range']['days']}  "
            f"sessions {data['sessions']:,}"
        )
        print(
            f"  wall {wall:.1f} s (process), {data['wall_s']:.1f} s in backfill  ->  "
            f"{data['rows_read'] / wall:,.0f} lines/s;  peak RSS {rss:.0f} MB"
        )
        print(
            f"  user agents parsed {data['user_agents_parsed']:,} in {data['user_agent_seconds']:.1f} s"
            f" (+{data['ua_from_cache']:,} from cache); IP lookups {data['ip_lookups']:,} in "
            f"{data['ip_seconds']:.2f} s; spills {data['spills']}"
        )
        print(
            "  files: "
            + ", ".join(f"{name.split('_2')[0].replace('imported_', '')} {n:,}" for name, n in data["files"].items())
        )
        if data["problems"]:
            print("  PROBLEMS: " + "; ".join(data["problems"]))
    ga_wall, ga_rss = goaccess(log, base)
    print(f"\nGoAccess: wall {ga_wall:.1f} s;  peak RSS {ga_rss:.0f} MB")
    first, warm = walls[0] / ga_wall, walls[1] / ga_wall
    print(
        f"\nfirst run {first:.2f}x GoAccess (target <= 2x: {'met' if first <= 2 else 'NOT met'}); "
        f"warm run {warm:.2f}x (target <= 0.5x: {'met' if warm <= 0.5 else 'NOT met'}); "
        f"peak RSS {max(peaks):.0f} MB (target <= 400 MB: {'met' if max(peaks) <= 400 else 'NOT met'})"
    )
    if args.geo:
        geo_memory(args.geo)
    if not args.keep:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
