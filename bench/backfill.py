"""Backfill benchmark: ``python bench/backfill.py [--lines N] [--agents N] [--keep DIR]``.

Generates a seeded ``combined`` access log (default 1,000,000 lines over 14 days: visitors
browsing in sessions with assets, referrers and campaigns, plus bots, HTTP clients and
monitors; ``--agents`` distinct browser user agents) and runs ``backfill`` on it in a child
process, twice: with an empty user-agent cache (a first run) and with the cache the first
run left (a later run). Prints wall seconds, lines/s, peak RSS of the child, the rows of each
file and where the time went. Target: <= 20 s for 1M lines on this 2-core machine.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import resource
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

PAGES = ["/", "/pricing", "/features", "/about", "/contact", "/blog/", "/docs/", "/docs/install",
         "/docs/configuration", "/docs/api", "/blog/launch-week", "/blog/caf%C3%A9-culture", "/signup",
         "/changelog", "/careers", "/privacy"] + [f"/blog/post-{i}" for i in range(60)] + \
        [f"/docs/guide/{i}" for i in range(40)]
ASSETS = ["/assets/app.css", "/assets/app.js", "/assets/logo.svg", "/img/hero.webp", "/fonts/inter.woff2",
          "/favicon.ico"]
REFERRERS = ["-", "-", "-", "https://www.google.com/", "https://www.google.de/", "https://www.bing.com/",
             "https://duckduckgo.com/", "https://news.ycombinator.com/item?id=39000000",
             "https://www.reddit.com/r/selfhosted/", "https://t.co/abc", "https://www.example.org/links",
             "https://l.facebook.com/"]
CAMPAIGNS = ["", "", "", "", "", "", "?utm_source=newsletter&utm_medium=email&utm_campaign=march",
             "?ref=producthunt", "?utm_source=mastodon"]
NON_HUMAN = [
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
    "Mozilla/5.0 (compatible; AhrefsBot/7.0; +http://ahrefs.com/robot/)",
    "curl/8.5.0", "python-requests/2.31.0", "Go-http-client/1.1",
    "Mozilla/5.0+(compatible; UptimeRobot/2.0; http://www.uptimerobot.com/)",
]


def browser_agents(n: int, rng: np.random.Generator) -> list[str]:
    """``n`` distinct, realistic browser user agents (versions and devices vary)."""
    out: list[str] = []
    seen = set()
    models = ["SM-S911B", "SM-A546B", "Pixel 8", "Pixel 7a", "M2101K6G", "CPH2451", "SM-X710", "moto g(60)"]
    while len(out) < n:
        kind = int(rng.integers(0, 7))
        v = int(rng.integers(96, 125))
        if kind == 0:
            ua = f"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/{v}.0.0.0 Safari/537.36"
        elif kind == 1:
            ua = (f"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
                  f"Version/{v % 4 + 15}.{v % 6} Safari/605.1.15")
        elif kind == 2:
            ua = f"Mozilla/5.0 (X11; Linux x86_64; rv:{v}.0) Gecko/20100101 Firefox/{v}.0"
        elif kind == 3:
            ua = (f"Mozilla/5.0 (iPhone; CPU iPhone OS {v % 4 + 15}_{v % 7} like Mac OS X) AppleWebKit/605.1.15 "
                  f"(KHTML, like Gecko) Version/{v % 4 + 15}.{v % 7} Mobile/15E148 Safari/604.1")
        elif kind == 4:
            ua = (f"Mozilla/5.0 (Linux; Android {v % 5 + 10}; {models[v % len(models)]}) AppleWebKit/537.36 "
                  f"(KHTML, like Gecko) Chrome/{v}.0.0.0 Mobile Safari/537.36")
        elif kind == 5:
            ua = (f"Mozilla/5.0 (iPad; CPU OS {v % 4 + 15}_{v % 5} like Mac OS X) AppleWebKit/605.1.15 "
                  f"(KHTML, like Gecko) Version/{v % 4 + 15}.{v % 5} Mobile/15E148 Safari/604.1")
        else:
            ua = (f"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
                  f"Chrome/{v}.0.0.0 Safari/537.36 Edg/{v}.0.{int(rng.integers(1000, 3000))}.{int(rng.integers(10, 99))}")
        if ua not in seen:
            seen.add(ua)
            out.append(ua)
    return out


def generate(path: Path, lines: int, agents: int) -> None:
    rng = np.random.default_rng(SEED)
    uas = browser_agents(agents, rng)
    n_visitors = max(lines // 25, 10)
    v_ip = [f"{a}.{b}.{c}.{d}" for a, b, c, d in rng.integers(1, 223, size=(n_visitors, 4))]
    v_ua = rng.integers(0, len(uas), n_visitors)
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
            rows_ts.append(t); rows_vis.append(visitor[s]); rows_kind.append(0)
            page = PAGES[int(rng.integers(0, len(PAGES)))]
            if p == 0:
                page += CAMPAIGNS[int(rng.integers(0, len(CAMPAIGNS)))]
            rows_path.append(page); rows_ref.append(ref if p == 0 else "https://example.com/")
            rows_status.append(200 if rng.random() > 0.03 else 404)
            for _ in range(int(rng.integers(0, 2))):
                rows_ts.append(t + 0.2); rows_vis.append(visitor[s]); rows_kind.append(0)
                rows_path.append(ASSETS[int(rng.integers(0, len(ASSETS)))]); rows_ref.append("https://example.com/")
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
            out.write(f'{ip} - - [{when:%d/%b/%Y:%H:%M:%S %z}] "GET {target} HTTP/1.1" {status} 5120 '
                      f'"{ref}" "{ua}"\n')


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


def run(log: Path, out: Path, cache: Path) -> tuple[dict, float]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    started = time.monotonic()
    proc = subprocess.run([sys.executable, "-c", CHILD.format(root=str(ROOT), log=str(log), out=str(out),
                                                              cache=str(cache))],
                          capture_output=True, text=True, check=True)
    wall = time.monotonic() - started
    rss_mb = max(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, before) / 1024
    return json.loads(proc.stdout.strip().splitlines()[-1]), wall, rss_mb


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--agents", type=int, default=300, help="distinct browser user agents")
    parser.add_argument("--keep", type=Path, help="keep the generated log and output here")
    args = parser.parse_args()
    base = args.keep or Path(tempfile.mkdtemp(prefix="bench-backfill-"))
    base.mkdir(parents=True, exist_ok=True)
    log = base / f"access-{args.lines}.log"
    if not log.exists():
        t = time.monotonic()
        generate(log, args.lines, args.agents)
        print(f"generated {log} ({log.stat().st_size / 1e6:.0f} MB) in {time.monotonic() - t:.1f} s")
    cache = base / "ua-cache.json"
    cache.unlink(missing_ok=True)
    walls = []
    for label in ("first run (empty user-agent cache)", "later run (user-agent cache warm)"):
        data, wall, rss = run(log, base / "out", cache)
        walls.append(wall)
        print(f"\n{label}")
        print(f"  lines {data['rows_read']:,}  events {data['events']:,}  days {data['date_range']['days']}  "
              f"sessions {data['sessions']:,}")
        print(f"  wall {wall:.1f} s (process), {data['wall_s']:.1f} s in backfill  ->  "
              f"{data['rows_read'] / wall:,.0f} lines/s;  peak RSS {rss:.0f} MB")
        print(f"  user agents parsed {data['user_agents_parsed']:,} in {data['user_agent_seconds']:.1f} s"
              f" (+{data['ua_from_cache']:,} from cache); IP lookups {data['ip_lookups']:,} in "
              f"{data['ip_seconds']:.2f} s; spills {data['spills']}")
        print("  files: " + ", ".join(f"{name.split('_2')[0].replace('imported_', '')} {n:,}"
                                      for name, n in data["files"].items()))
        if data["problems"]:
            print("  PROBLEMS: " + "; ".join(data["problems"]))
    if not args.keep:
        shutil.rmtree(base, ignore_errors=True)
    verdict = ", ".join(f"{w:.1f} s {'met' if w <= 20 else 'NOT met'}" for w in walls)
    print(f"\ntarget: <= 20 s for 1,000,000 lines: first run {verdict.replace(', ', ', later run ', 1)}")


if __name__ == "__main__":
    main()
