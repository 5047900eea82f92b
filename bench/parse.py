"""Parse benchmark: ``python bench/parse.py [--quick] [--keep DIR]``.

Generates seeded access logs and times dry runs (parse + the default ``web`` mapping; events
are counted, not written), each in its own process so that peak RSS is that run's alone:

* a 1,000,000-line ``combined`` log (lines/s and peak RSS), and the same traffic as 5,000,000
  lines, to show memory stays flat whatever the file size;
* the same 1M file through the command as a user runs it, ``plausible-import send FILE -d
  example.com --dry-run`` (interpreter start-up, imports and exit included);
* a high-cardinality 1,000,000-line ``combined`` log (~100,000 clients, ~19,000 user agents,
  ~200,000 targets, most with query strings, ~5,000 referrers), as a busy site writes: the readers
  and the mapping work per distinct value, so this is their harder case;
* every main format (200,000 lines each, generated from the same traffic), to show the other
  readers' speed;
* GoAccess on the same 1M-line file, when the ``goaccess`` command is installed, with the
  ratio measured in the same run (the machine is shared, so only same-run ratios mean much):
  the 1M case and GoAccess alternate ``--repeat`` times (default 3) and the fastest of each
  counts. The target ratio is on the target's own measure (parse + default mapping, dry run,
  the same timing as the lines/s figure); the ratio process to process (the ``goaccess``
  command against the ``plausible-import`` command, start-up included) and CPU-time ratios
  are printed beside it.

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

# The same browsers as the bundled sample log.
from sample_data.generate import BROWSERS

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
REFERRERS = [
    "-",
    "-",
    "-",
    "https://www.google.com/",
    "https://duckduckgo.com/",
    "https://www.example.org/links",
    "https://news.example.net/item?id=42",
    "https://www.example.com/",
]


def _pools(rng: np.random.Generator):
    ips = [f"{net}.{i}" for net in ("192.0.2", "198.51.100", "203.0.113") for i in range(1, 255)]
    ips += [f"2001:db8::{i:x}" for i in range(1, 400)]
    pages = PAGES + [f"/blog/post-{i}" for i in range(400)] + [f"/docs/page-{i}" for i in range(200)]
    queries = ["", "", "", "", "?utm_source=newsletter", "?plan=pro", "?q=plausible", "?page=2"]
    uas = (
        BROWSERS * 12
        + [
            f"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
            f"Chrome/{100 + i}.0.0.0 Safari/537.36"
            for i in range(40)
        ]
        + OTHERS * 3
    )
    return ips, pages, queries, uas


def _high_pools() -> dict:
    """Pools for a busy site's log: ~100,000 clients, ~20,000 user agents (mostly browsers with
    varied versions and devices), ~200,000 targets (most with query strings), ~5,000 referrers.
    Built from their own seed, so every part of the file draws from the same pools."""
    rng = np.random.default_rng(SEED + 7)
    n4 = 95_000
    quads = rng.integers(1, 255, size=(n4, 4))
    ips = sorted({f"{a}.{b}.{c}.{d}" for a, b, c, d in quads.tolist()})
    ips += [f"2001:db8:{a:x}::{b:x}" for a, b in rng.integers(0, 65536, size=(5_000, 2)).tolist()]
    systems = [
        "Windows NT 10.0; Win64; x64",
        "Macintosh; Intel Mac OS X 10_15_7",
        "X11; Linux x86_64",
        "X11; Ubuntu; Linux x86_64",
        "Windows NT 6.1; Win64; x64",
    ]
    phones = [
        "Pixel 8",
        "Pixel 7a",
        "SM-S911B",
        "SM-A546B",
        "moto g power (2023)",
        "Redmi Note 12",
        "CPH2451",
        "SM-G991B",
        "2201117TG",
        "V2111",
    ]
    uas: set[str] = set()
    while len(uas) < 19_000:
        kind, major, build, patch = (
            rng.integers(0, 100),
            rng.integers(90, 125),
            rng.integers(0, 6500),
            rng.integers(0, 250),
        )
        os_, phone = systems[rng.integers(0, len(systems))], phones[rng.integers(0, len(phones))]
        ios = f"{rng.integers(14, 18)}_{rng.integers(0, 7)}"
        if kind < 40:
            uas.add(
                f"Mozilla/5.0 ({os_}) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/{major}.0.{build}.{patch} "
                "Safari/537.36"
            )
        elif kind < 55:
            uas.add(
                f"Mozilla/5.0 (Linux; Android {rng.integers(9, 15)}; {phone}) AppleWebKit/537.36 (KHTML, like "
                f"Gecko) Chrome/{major}.0.{build}.{patch} Mobile Safari/537.36"
            )
        elif kind < 70:
            uas.add(
                f"Mozilla/5.0 (iPhone; CPU iPhone OS {ios} like Mac OS X) AppleWebKit/605.1.15 (KHTML, like "
                f"Gecko) Version/{ios.split('_')[0]}.{rng.integers(0, 7)} Mobile/15E{rng.integers(100, 300)} "
                "Safari/604.1"
            )
        elif kind < 82:
            uas.add(f"Mozilla/5.0 ({os_}; rv:{major}.0) Gecko/20100101 Firefox/{major}.0")
        elif kind < 90:
            uas.add(
                f"Mozilla/5.0 ({os_}) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/{major}.0.0.0 "
                f"Safari/537.36 Edg/{major}.0.{build}.{patch}"
            )
        elif kind < 94:
            uas.add(
                f"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_{rng.integers(0, 8)}) AppleWebKit/605.1.15 "
                f"(KHTML, like Gecko) Version/{rng.integers(14, 18)}.{rng.integers(0, 7)} Safari/605.1.15"
            )
        else:  # crawlers, tools and monitors, versioned
            bot = ["Googlebot", "bingbot", "AhrefsBot", "SemrushBot", "YandexBot", "DotBot"][rng.integers(0, 6)]
            tool = ["curl", "python-requests", "Go-http-client", "okhttp", "Wget"][rng.integers(0, 5)]
            uas.add(
                f"Mozilla/5.0 (compatible; {bot}/{rng.integers(1, 9)}.{rng.integers(0, 9)}; "
                f"+http://www.example.com/bot{rng.integers(0, 50)}.html)"
                if kind < 98
                else f"{tool}/{rng.integers(1, 9)}.{rng.integers(0, 40)}.{rng.integers(0, 20)}"
            )
    uas_list = sorted(uas) + OTHERS
    targets: set[str] = set()
    words = [f"w{i}" for i in range(3_000)]
    while len(targets) < 200_000:
        kind, a, b = rng.integers(0, 100), int(rng.integers(0, 40_000)), int(rng.integers(0, 3_000))
        if kind < 35:
            targets.add(f"/blog/post-{a}?utm_source=s{b % 60}&utm_medium=m{b % 7}&utm_campaign=c{b}")
        elif kind < 55:
            targets.add(f"/products/{a}?ref=r{b}&variant={b % 11}")
        elif kind < 70:
            targets.add(f"/search?q={words[b]}+{words[a % 3000]}&page={a % 9}")
        elif kind < 85:
            targets.add(f"/docs/{words[b]}/page-{a % 500}")
        else:
            targets.add(f"/static/app.{a:x}{b:x}.js" if kind < 92 else f"/img/p{a}-{b}.webp")
    refs = (
        ["-"] * 1_500
        + [f"https://www.google.{tld}/" for tld in ("com", "de", "fr", "co.uk", "es")]
        + [f"https://site{i}.example.net/{words[i % 3000]}/{i}" for i in range(4_500)]
        + [f"https://news.example.org/item?id={i}" for i in range(500)]
    )

    def shuffled(values: list[str]) -> list[str]:  # so the popular head is a random draw, not A..Z
        return [values[i] for i in rng.permutation(len(values)).tolist()]

    return {
        "ips": shuffled(ips),
        "uas": shuffled(uas_list),
        "targets": shuffled(sorted(targets)),
        "refs": shuffled(refs),
    }


_HIGH: dict | None = None


def traffic(n: int, seed: int = SEED, offset: int = 0, high: bool = False):
    """n seeded requests as column lists (one day of a busy site, spread evenly).

    ``high``: from the high-cardinality pools (:func:`_high_pools`), drawn with a heavy head
    (popular pages, regular visitors, common browsers) and a long tail."""
    global _HIGH
    rng = np.random.default_rng(seed + offset)
    if high:
        _HIGH = _HIGH or _high_pools()
        ips, uas, targets, refs = _HIGH["ips"], _HIGH["uas"], _HIGH["targets"], _HIGH["refs"]
    else:
        ips, pages, queries, uas = _pools(rng)
        targets = [p + q for p in pages for q in queries] + ASSETS * 60
        refs = REFERRERS

    def draw(size: int) -> np.ndarray:
        if not high:
            return rng.integers(0, size, n)
        # a quarter of the rows from a Zipf-like head, the rest uniform over the whole pool
        head = np.minimum(rng.zipf(1.3, n) - 1, size - 1)
        return np.where(rng.random(n) < 0.25, head, rng.integers(0, size, n))

    t0 = START.timestamp() + offset * 86400
    seconds = (t0 + np.arange(n) * (86400 * 1_000_000 // max(n, 1)) / 1_000_000).astype(np.int64)
    return {
        "ip": draw(len(ips)),
        "ips": ips,
        "target": draw(len(targets)),
        "targets": targets,
        "ua": draw(len(uas)),
        "uas": uas,
        "ref": draw(len(refs)),
        "refs": refs,
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


def combined_lines(n: int, offset: int = 0, high: bool = False) -> list[str]:
    t = traffic(n, offset=offset, high=high)
    times = _clf_times(t["seconds"])
    ips, targets, uas, refs = t["ips"], t["targets"], t["uas"], t["refs"]
    return [
        f'{ips[a]} - - [{tm}] "{m} {targets[b]} HTTP/1.1" {st} {sz} "{refs[r]}" "{uas[u]}"'
        for a, tm, m, b, st, sz, r, u in zip(
            t["ip"].tolist(),
            times,
            t["method"].tolist(),
            t["target"].tolist(),
            t["status"].tolist(),
            t["size"].tolist(),
            t["ref"].tolist(),
            t["ua"].tolist(),
            strict=False,
        )
    ]


def combined_lines_high(n: int, offset: int = 0) -> list[str]:
    return combined_lines(n, offset, high=True)


def distinct_counts(total: int, high: bool, chunk: int = 500_000) -> dict[str, int]:
    """Distinct IPs, user agents, targets and referrers in a generated combined log."""
    seen: dict[str, set] = {"ip": set(), "ua": set(), "target": set(), "ref": set()}
    for part, start in enumerate(range(0, total, chunk)):
        t = traffic(min(chunk, total - start), offset=part, high=high)
        for key, pool in (("ip", "ips"), ("ua", "uas"), ("target", "targets"), ("ref", "refs")):
            seen[key].update(t[pool][i] for i in np.unique(t[key]).tolist())
    return {key: len(values) for key, values in seen.items()}


def _rows(n: int, offset: int):
    """Seeded requests as per-row tuples, for the non-combined format generators."""
    t = traffic(n, offset=offset)
    ips, targets, uas = t["ips"], t["targets"], t["uas"]
    return [
        (ips[a], int(sec), m, targets[b], st, sz, REFERRERS[r], uas[u])
        for a, sec, m, b, st, sz, r, u in zip(
            t["ip"].tolist(),
            t["seconds"].tolist(),
            t["method"].tolist(),
            t["target"].tolist(),
            t["status"].tolist(),
            t["size"].tolist(),
            t["ref"].tolist(),
            t["ua"].tolist(),
            strict=False,
        )
    ]


def _utc(sec: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(sec, dt.UTC)


def _split(target: str) -> tuple[str, str]:
    path, _, query = target.partition("?")
    return path, query or "-"


def _gen(fmt):
    def make(n: int, part: int) -> list[str]:
        return [fmt(*row) for row in _rows(n, part)]

    return make


def _clf(sec: int) -> str:
    return dt.datetime.fromtimestamp(sec, START.tzinfo).strftime("%d/%b/%Y:%H:%M:%S %z")


def _json(obj) -> str:
    return json.dumps(obj, separators=(",", ":"))


CF_FIELDS = (
    "date time x-edge-location sc-bytes c-ip cs-method cs(Host) cs-uri-stem sc-status cs(Referer) "
    "cs(User-Agent) cs-uri-query cs(Cookie) x-edge-result-type x-edge-request-id x-host-header cs-protocol "
    "cs-bytes time-taken"
)
IIS_FIELDS = (
    "date time s-ip cs-method cs-uri-stem cs-uri-query s-port cs-username c-ip cs(User-Agent) cs(Referer) "
    "sc-status sc-substatus sc-win32-status time-taken"
)

# name -> (line generator, header written before the lines)
FORMAT_BENCH = {
    "main": (
        _gen(
            lambda ip, sec, m, tg, st, sz, ref, ua: (
                f'10.0.0.2 - - [{_clf(sec)}] "{m} {tg} HTTP/1.1" {st} {sz} "{ref}" "{ua}" "{ip}, 10.0.0.1"'
            )
        ),
        "",
    ),
    # nginx combined + $request_time $upstream_response_time: trailing fields cut before the CSV parser
    "combined-trailing": (
        _gen(
            lambda ip, sec, m, tg, st, sz, ref, ua: (
                f'{ip} - - [{_clf(sec)}] "{m} {tg} HTTP/1.1" {st} {sz} "{ref}" "{ua}" 0.0{sec % 90 + 10} 0.0{sec % 70 + 10}'
            )
        ),
        "",
    ),
    "vhost_combined": (
        _gen(
            lambda ip, sec, m, tg, st, sz, ref, ua: (
                f'www.example.com:443 {ip} - - [{_clf(sec)}] "{m} {tg} HTTP/1.1" {st} {sz} "{ref}" "{ua}"'
            )
        ),
        "",
    ),
    "traefik": (
        _gen(
            lambda ip, sec, m, tg, st, sz, ref, ua: (
                f'{ip} - - [{_clf(sec)}] "{m} {tg} HTTP/2.0" {st} {sz} '
                f'"{ref}" "{ua}" 17 "web@docker" "http://10.0.3.5:80" 3ms'
            )
        ),
        "",
    ),
    "haproxy": (
        _gen(
            lambda ip, sec, m, tg, st, sz, ref, ua: (
                f"Mar 14 09:26:53 lb1 haproxy[2211]: {ip}:51544 "
                f"[{_clf(sec)[:-6]}.512] fe_https~ be_web/web1 0/0/1/14/15 {st} {sz} - - ---- 12/12/3/1/0 0/0 "
                f'{{www.example.com|{ua}|{ref}}} "{m} {tg} HTTP/1.1"'
            )
        ),
        "",
    ),
    "alb": (
        _gen(
            lambda ip, sec, m, tg, st, sz, ref, ua: (
                f"h2 {_utc(sec):%Y-%m-%dT%H:%M:%S}.512345Z app/my-alb/0a1b "
                f"{ip}:51544 10.0.1.17:8080 0.001 0.014 0.000 {st} {st} 412 {sz} "
                f'"{m} https://www.example.com:443{tg} HTTP/2.0" "{ua}" TLS_AES_128_GCM_SHA256 TLSv1.3 '
                f'arn:aws:elasticloadbalancing:eu-central-1:111122223333:targetgroup/web/0f0e "Root=1-65f2" '
                f'"www.example.com" "-" 1 {_utc(sec):%Y-%m-%dT%H:%M:%S}.497000Z "forward" "-" "-" "10.0.1.17:8080" '
                f'"{st}" "-" "-" TID_0123'
            )
        ),
        "",
    ),
    "s3": (
        _gen(
            lambda ip, sec, m, tg, st, sz, ref, ua: (
                f"0f1e2d3c example-site-bucket [{_clf(sec)}] {ip} - 3E57427F "
                f'WEBSITE.GET.OBJECT index.html "{m} {tg} HTTP/1.1" {st} - {sz} {sz} 18 17 "{ref}" "{ua}" - '
                f"SW52ZW50 - - - example-site-bucket.s3-website.eu-central-1.amazonaws.com - - -"
            )
        ),
        "",
    ),
    "w3c": (
        _gen(
            lambda ip, sec, m, tg, st, sz, ref, ua: (
                f"{_utc(sec):%Y-%m-%d %H:%M:%S} 192.0.2.10 {m} "
                f"{_split(tg)[0]} {_split(tg)[1]} 443 - {ip} {ua.replace(' ', '+')} {ref} {st} 0 0 15"
            )
        ),
        f"#Software: Microsoft Internet Information Services 10.0\n#Version: 1.0\n#Fields: {IIS_FIELDS}\n",
    ),
    "cloudfront": (
        _gen(
            lambda ip, sec, m, tg, st, sz, ref, ua: "\t".join(
                [
                    f"{_utc(sec):%Y-%m-%d}",
                    f"{_utc(sec):%H:%M:%S}",
                    "FRA56-P1",
                    str(sz),
                    ip,
                    m,
                    "d111.cloudfront.net",
                    _split(tg)[0],
                    str(st),
                    ref,
                    ua.replace(" ", "%20"),
                    _split(tg)[1],
                    "-",
                    "Hit",
                    "ExAmPlE==",
                    "www.example.com",
                    "https",
                    "412",
                    "0.002",
                ]
            )
        ),
        f"#Version: 1.0\n#Fields: {CF_FIELDS}\n",
    ),
    "bunny": (
        _gen(
            lambda ip, sec, m, tg, st, sz, ref, ua: (
                f"HIT|{st}|{sec}512|{sz}|123456|{ip}|{ref}|https://www.example.com{tg}|DE|{ua}|0123456789abcdef|DE"
            )
        ),
        "",
    ),
    "caddy": (
        _gen(
            lambda ip, sec, m, tg, st, sz, ref, ua: _json(
                {
                    "level": "info",
                    "ts": sec + 0.524,
                    "logger": "http.log.access.log0",
                    "msg": "handled request",
                    "request": {
                        "remote_ip": ip,
                        "remote_port": "51544",
                        "proto": "HTTP/2.0",
                        "method": m,
                        "host": "www.example.com",
                        "uri": tg,
                        "headers": {"User-Agent": [ua], "Referer": [ref]},
                    },
                    "bytes_read": 0,
                    "user_id": "",
                    "duration": 0.0015,
                    "size": sz,
                    "status": st,
                    "resp_headers": {},
                }
            )
        ),
        "",
    ),
    "cloudflare": (
        _gen(
            lambda ip, sec, m, tg, st, sz, ref, ua: _json(
                {
                    "ClientIP": ip,
                    "ClientRequestHost": "www.example.com",
                    "ClientRequestMethod": m,
                    "ClientRequestURI": tg,
                    "ClientRequestReferer": "" if ref == "-" else ref,
                    "ClientRequestUserAgent": ua,
                    "EdgeResponseStatus": st,
                    "EdgeResponseBytes": sz,
                    "EdgeStartTimestamp": sec * 1_000_000_000 + 512_000_000,
                }
            )
        ),
        "",
    ),
    "traefik_json": (
        _gen(
            lambda ip, sec, m, tg, st, sz, ref, ua: _json(
                {
                    "ClientAddr": f"{ip}:51544",
                    "ClientHost": ip,
                    "DownstreamContentSize": sz,
                    "DownstreamStatus": st,
                    "RequestHost": "www.example.com",
                    "RequestMethod": m,
                    "RequestPath": tg,
                    "RequestProtocol": "HTTP/2.0",
                    "StartUTC": f"{_utc(sec):%Y-%m-%dT%H:%M:%S}.512345678Z",
                    "request_Referer": ref,
                    "request_User-Agent": ua,
                    "level": "info",
                    "msg": "",
                }
            )
        ),
        "",
    ),
    "gcp_lb": (
        _gen(
            lambda ip, sec, m, tg, st, sz, ref, ua: _json(
                {
                    "httpRequest": {
                        "requestMethod": m,
                        "requestUrl": f"https://www.example.com{tg}",
                        "status": st,
                        "responseSize": str(sz),
                        "userAgent": ua,
                        "remoteIp": ip,
                        "referer": ref,
                    },
                    "resource": {"type": "http_load_balancer"},
                    "timestamp": f"{_utc(sec):%Y-%m-%dT%H:%M:%S}.512345Z",
                    "severity": "INFO",
                }
            )
        ),
        "",
    ),
    "nginx_json": (
        _gen(
            lambda ip, sec, m, tg, st, sz, ref, ua: _json(
                {
                    "time_iso8601": _utc(sec).isoformat(),
                    "remote_addr": ip,
                    "host": "www.example.com",
                    "request_method": m,
                    "request_uri": tg,
                    "status": str(st),
                    "body_bytes_sent": str(sz),
                    "http_referer": ref,
                    "http_user_agent": ua,
                }
            )
        ),
        "",
    ),
}


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


def peak_rss_mb() -> float:
    """This process's peak RSS. /proc's VmHWM belongs to the process's own memory map; getrusage's
    ru_maxrss survives exec on Linux, so a child started by a big parent would report the parent's."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure(path: str, log_format: str | None) -> dict:
    """Run in a child process: one dry run, its wall time and this process's peak RSS."""
    import pyarrow as pa

    from importer.options import OutputOptions, ReadOptions
    from importer.pipeline import send

    pa.array([0])  # pyarrow imports pandas on its first conversion
    before = resource.getrusage(resource.RUSAGE_SELF)
    started = time.perf_counter()
    report = send(
        [path],
        domain="example.com",
        dry_run=True,
        read=ReadOptions(log_format=log_format),
        outputs=OutputOptions(events=None, rejects=None, progress=False),
    )
    seconds = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_SELF)
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    rss_mb = peak_rss_mb()
    return {
        "rows": report.rows_read,
        "invalid": report.rows_invalid,
        "events": report.events,
        "seconds": seconds,
        "cpu_s": cpu,
        "rss_mb": rss_mb,
        "format": report.sources[0][1] if report.sources else "?",
    }


def run_child(path: Path, log_format: str | None = None) -> dict:
    cmd = [sys.executable, __file__, "--measure", str(path)]
    if log_format:
        cmd += ["--format", log_format]
    started = time.perf_counter()
    out = subprocess.run(cmd, check=True, capture_output=True, text=True)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    result["process_s"] = time.perf_counter() - started  # with interpreter start and imports
    return result


def cli_command() -> list[str]:
    """The command a user runs: the installed ``plausible-import`` script of this interpreter's
    environment, else ``python -m importer`` (the same entry point)."""
    beside = Path(sys.executable).parent / "plausible-import"
    if beside.is_file():
        return [str(beside)]
    return [sys.executable, "-m", "importer"]


def byte_compile() -> str | None:
    """Make sure the package's modules are byte-compiled, as ``pip install`` leaves them. An
    editable install under PYTHONDONTWRITEBYTECODE (this machine sets it) has no bytecode, and
    every start of the command would compile ~10,000 lines of source (~60 ms). Returns a line
    to print when it compiled anything."""
    import compileall
    import importlib.util

    package = Path(importlib.util.find_spec("importer").origin).parent
    cache = package / "__pycache__"
    before = len(list(cache.glob("*.pyc"))) if cache.is_dir() else 0
    compileall.compile_dir(str(package), quiet=1)
    after = len(list(cache.glob("*.pyc"))) if cache.is_dir() else 0
    if after > before:
        return (
            f"byte-compiled {package} ({after - before} modules), as pip install leaves an installed "
            f"package (PYTHONDONTWRITEBYTECODE={os.environ.get('PYTHONDONTWRITEBYTECODE', '')!r} here)"
        )
    return None


def run_cli(path: Path, workdir: Path) -> dict:
    """``plausible-import send FILE -d example.com --dry-run`` as a user runs it: process wall
    time (interpreter start-up, imports, the run, exit) and CPU time of the process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    out = subprocess.run(
        [*cli_command(), "send", str(path), "--domain", "example.com", "--dry-run"],
        cwd=workdir,
        capture_output=True,
        text=True,
    )
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if out.returncode != 0:
        raise SystemExit(f"plausible-import failed ({out.returncode}): {out.stderr[-2000:]}")
    return {
        "wall": wall,
        "cpu_s": after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime,
        "summary": out.stderr.strip().splitlines()[:3],
    }


def run_goaccess(path: Path, workdir: Path) -> tuple[float, float] | None:
    """GoAccess parsing the same file into a JSON report: (wall seconds, CPU seconds)."""
    exe = shutil.which("goaccess")
    if not exe:
        return None
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run(
        [exe, str(path), "--log-format=COMBINED", "--no-global-config", "-o", str(workdir / "goaccess.json")],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime


def _line(label: str, result: dict) -> str:
    rate = result["rows"] / result["seconds"] if result["seconds"] else 0
    return (
        f"{label:<16} {result['rows']:>10,} lines {result['seconds']:6.2f} s {rate:>10,.0f} lines/s  "
        f"CPU {result['cpu_s']:5.2f} s  process {result['process_s']:5.2f} s  peak RSS {result['rss_mb']:4.0f} MB  "
        f"events {result['events']:,}  invalid {result['invalid']:,}  [{result['format'].split(',')[0]}]"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--measure", help=argparse.SUPPRESS)
    parser.add_argument("--format", help=argparse.SUPPRESS)
    parser.add_argument("--quick", action="store_true", help="1M combined only (no 5M, no other formats)")
    parser.add_argument("--formats-lines", type=int, default=200_000, help="lines per non-combined format")
    parser.add_argument("--keep", type=Path, help="generate files here and keep them")
    parser.add_argument("--repeat", type=int, default=3, help="runs of the 1M case and of GoAccess (fastest counts)")
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
        high = workdir / "combined-1m-high.log"
        if not high.exists():
            write_lines(high, combined_lines_high, 1_000_000)
        for label, is_high in (("standard", False), ("high-cardinality", True)):
            counts = distinct_counts(1_000_000, is_high)
            print(
                f"{label} 1M: distinct IPs {counts['ip']:,}, user agents {counts['ua']:,}, "
                f"targets {counts['target']:,}, referrers {counts['ref']:,}"
            )
        results = {}
        # The machine is shared and noisy: the 1M cases, the command as a user runs it and
        # GoAccess run alternately, --repeat times each, and the fastest run of each counts
        # (peak RSS: the highest of the runs).
        runs, high_runs, cli_runs, go_runs = [], [], [], []
        compiled = byte_compile()
        if compiled:
            print(compiled)
        for _ in range(args.repeat):
            runs.append(run_child(one))
            print(_line("combined 1M", runs[-1]), flush=True)
            cli_runs.append(run_cli(one, workdir))
            print(
                f"{'command 1M':<16} {'plausible-import send --dry-run':>33} {cli_runs[-1]['wall']:6.2f} s "
                f"(process)  CPU {cli_runs[-1]['cpu_s']:5.2f} s",
                flush=True,
            )
            high_runs.append(run_child(high))
            print(_line("high-card 1M", high_runs[-1]), flush=True)
            go_runs.append(run_goaccess(one, workdir))
        best = min(runs, key=lambda r: r["seconds"])
        results["combined 1M"] = dict(best, rss_mb=max(r["rss_mb"] for r in runs))
        best_high = min(high_runs, key=lambda r: r["seconds"])
        results["high-card 1M"] = dict(best_high, rss_mb=max(r["rss_mb"] for r in high_runs))
        cli = min(cli_runs, key=lambda r: r["wall"])
        print(f"command's summary: {' / '.join(cli['summary'][:2])}")
        go = min(go_runs) if go_runs and go_runs[0] is not None else None
        if go is not None:
            print(f"GoAccess 1M runs: {', '.join(f'{g[0]:.2f} s' for g in go_runs)}")
        if not args.quick:
            five = workdir / "combined-5m.log"
            if not five.exists():
                write_lines(five, combined_lines, 5_000_000)
            results["combined 5M"] = run_child(five)
            print(_line("combined 5M", results["combined 5M"]), flush=True)
            for name, (make, header) in FORMAT_BENCH.items():
                path = workdir / f"{name}.log"
                if not path.exists():
                    write_lines(path, make, args.formats_lines, header=header)
                results[name] = run_child(path)
                print(_line(name, results[name]), flush=True)
        base = results["combined 1M"]
        rate = base["rows"] / base["seconds"]
        print()
        print(
            f"combined 1M, fastest of {args.repeat}: {base['seconds']:.2f} s = {rate:,.0f} lines/s "
            f"(target >= 350,000): {'met' if rate >= 350_000 else 'NOT met'}"
        )
        print(
            f"the same command as a user runs it (plausible-import send FILE -d example.com --dry-run), "
            f"fastest of {args.repeat}: {cli['wall']:.2f} s = {1_000_000 / cli['wall']:,.0f} lines/s, "
            f"CPU {cli['cpu_s']:.2f} s"
        )
        hb = results["high-card 1M"]
        print(
            f"high-cardinality 1M, fastest of {args.repeat}: {hb['seconds']:.2f} s = "
            f"{hb['rows'] / hb['seconds']:,.0f} lines/s ({hb['seconds'] / base['seconds']:.2f}x the standard "
            f"case's time; no target)"
        )
        for label in ("combined 1M", "combined 5M", "high-card 1M"):
            if label in results:
                rss = results[label]["rss_mb"]
                print(f"{label} peak RSS: {rss:,.0f} MB (target <= 300 MB): {'met' if rss <= 300 else 'NOT met'}")
        if go is None:
            print("GoAccess: not installed (apt-get install goaccess), no ratio")
        else:
            go_wall, go_cpu = go
            target_ratio = go_wall / base["seconds"]
            process_ratio = go_wall / cli["wall"]
            print(
                f"GoAccess 1M (same file, same run), fastest of {args.repeat}: {go_wall:.2f} s = "
                f"{1_000_000 / go_wall:,.0f} lines/s, CPU {go_cpu:.2f} s"
            )
            print(
                f"  ratio on the target's measure (parse + default mapping, dry run: the time the lines/s "
                f"figure uses): {target_ratio:.1f}x (target >= 10x): {'met' if target_ratio >= 10 else 'NOT met'}"
            )
            print(
                f"  ratio process to process (goaccess command vs the plausible-import command, interpreter "
                f"start-up and imports included): {process_ratio:.1f}x"
                f"{'' if process_ratio >= 10 else ' (under 10x: start-up is about 0.3 s of it)'}"
            )
            print(
                f"  CPU-time ratios: process to process {go_cpu / cli['cpu_s']:.1f}x, in-process "
                f"{go_cpu / base['cpu_s']:.1f}x (we use both cores, GoAccess one)"
            )
        load = os.getloadavg()
        print(
            f"load average during the run: {load[0]:.1f} {load[1]:.1f} {load[2]:.1f} (2 CPUs; others' jobs "
            "slow both tools, us more since we use both cores)"
        )
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
