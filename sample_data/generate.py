"""Regenerate the bundled sample data: ``python sample_data/generate.py``.

Writes, from a fixed seed, so the files are identical on every run:

* ``access.log``: nginx ``combined`` log of one day of a small site, a few thousand lines:
  visitors browsing in sessions (with search, social and campaign referrers), crawlers, HTTP
  clients and uptime monitors, static assets, 404s, redirects, form POSTs, HEAD requests, and
  a handful of the odd lines real servers write (a TLS handshake on the plain port, a request
  line of ``-``, escaped quotes and UTF-8 bytes in user agents and paths, IPv6 clients).
* ``export.csv`` and ``export.parquet``: the same traffic as an analytics-style export with
  its own column names (read with ``--mapping sample-export``).

All addresses are from documentation ranges, all hosts are example.com.
"""

from __future__ import annotations

import csv
import datetime as dt
import random
from pathlib import Path

HERE = Path(__file__).resolve().parent
SEED = 20240314
DAY = dt.datetime(2024, 3, 14, tzinfo=dt.timezone(dt.timedelta(hours=1)))

BROWSERS = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/122.0.0.0 Safari/537.36",
    (
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
        "Version/17.3 Safari/605.1.15"
    ),
    "Mozilla/5.0 (X11; Linux x86_64; rv:123.0) Gecko/20100101 Firefox/123.0",
    (
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_3 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
        "Version/17.3 Mobile/15E148 Safari/604.1"
    ),
    (
        "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/122.0.0.0 Mobile Safari/537.36"
    ),
    (
        "Mozilla/5.0 (iPad; CPU OS 17_3 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
        "Version/17.3 Mobile/15E148 Safari/604.1"
    ),
    (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/122.0.0.0 Safari/537.36 Edg/122.0.2365.80"
    ),
    (
        "Mozilla/5.0 (Linux; Android 13; SM-S911B) AppleWebKit/537.36 (KHTML, like Gecko) "
        "SamsungBrowser/23.0 Chrome/115.0.0.0 Mobile Safari/537.36"
    ),
]
ROBOTS = [
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
    "Mozilla/5.0 (compatible; AhrefsBot/7.0; +http://ahrefs.com/robot/)",
    "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; GPTBot/1.1; +https://openai.com/gptbot)",
    "curl/8.5.0",
    "python-requests/2.31.0",
    "Go-http-client/1.1",
    "Mozilla/5.0+(compatible; UptimeRobot/2.0; http://www.uptimerobot.com/)",
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/122.0.0.0 Safari/537.36",
]
PAGES = [
    "/",
    "/pricing",
    "/features",
    "/about",
    "/contact",
    "/blog/",
    "/docs/",
    "/docs/install",
    "/docs/configuration",
    "/blog/launch-week",
    "/blog/caf\\xC3\\xA9-culture",
    "/signup",
    "/login",
]
ASSETS = [
    "/assets/app.css",
    "/assets/app.js",
    "/assets/logo.svg",
    "/img/hero.webp",
    "/fonts/inter.woff2",
    "/favicon.ico",
    "/assets/app.js.map",
    "/img/team.jpg",
]
REFERRERS = [
    "https://www.google.com/",
    "https://www.bing.com/",
    "https://duckduckgo.com/",
    "https://news.ycombinator.com/item?id=39000000",
    "https://www.reddit.com/r/selfhosted/",
    "https://twitter.com/",
    "https://www.example.org/links",
]
CAMPAIGNS = ["utm_source=newsletter&utm_medium=email&utm_campaign=march", "ref=producthunt", "utm_source=mastodon"]


def _ip(rng: random.Random) -> str:
    if rng.random() < 0.1:
        return f"2001:db8:{rng.randrange(1, 0xFFFF):x}::{rng.randrange(1, 0xFFFF):x}"
    net = rng.choice(["192.0.2", "198.51.100", "203.0.113"])
    return f"{net}.{rng.randrange(1, 255)}"


def _line(ip, when, request, status, size, referrer, ua) -> str:
    stamp = when.strftime("%d/%b/%Y:%H:%M:%S %z")
    return f'{ip} - - [{stamp}] "{request}" {status} {size} "{referrer or "-"}" "{ua or "-"}"'


def generate_rows(rng: random.Random) -> list[dict]:
    rows = []
    for _ in range(420):  # visits by people
        ip, ua = _ip(rng), rng.choice(BROWSERS)
        when = DAY + dt.timedelta(seconds=rng.randrange(0, 86000))
        referrer = rng.choice([None, None, *REFERRERS])
        first = rng.choice(PAGES)
        query = rng.choice(CAMPAIGNS) if rng.random() < 0.15 else None
        for i in range(rng.choice([1, 1, 2, 3, 4, 6])):
            path = first if i == 0 else rng.choice(PAGES)
            status = 200 if rng.random() > 0.05 else 304
            if rng.random() < 0.03:
                path, status = "/old-page-" + str(rng.randrange(100)), 404
            rows.append(
                dict(
                    ip=ip,
                    when=when,
                    method="GET",
                    path=path,
                    query=query if i == 0 else None,
                    status=status,
                    size=rng.randrange(2000, 40000),
                    referrer=referrer if i == 0 else f"https://example.com{first}",
                    ua=ua,
                )
            )
            rows.extend(
                dict(
                    ip=ip,
                    when=when + dt.timedelta(seconds=1),
                    method="GET",
                    path=asset,
                    query=None,
                    status=200,
                    size=rng.randrange(500, 90000),
                    referrer=f"https://example.com{path}",
                    ua=ua,
                )
                for asset in rng.sample(ASSETS, rng.randrange(0, 4))
            )
            if path == "/signup" and rng.random() < 0.5:
                rows.append(
                    dict(
                        ip=ip,
                        when=when + dt.timedelta(seconds=40),
                        method="POST",
                        path="/signup",
                        query=None,
                        status=302,
                        size=0,
                        referrer="https://example.com/signup",
                        ua=ua,
                    )
                )
            when += dt.timedelta(seconds=rng.randrange(5, 400))
    for _ in range(600):  # robots, HTTP clients, monitors, headless browsers
        ua = rng.choice(ROBOTS)
        path = rng.choice([*PAGES, "/robots.txt", "/sitemap.xml", "/wp-login.php", "/.env"])
        status = 404 if path in ("/wp-login.php", "/.env") else 200
        method = "HEAD" if "UptimeRobot" in ua else "GET"
        rows.append(
            dict(
                ip=_ip(rng),
                when=DAY + dt.timedelta(seconds=rng.randrange(0, 86000)),
                method=method,
                path=path,
                query=None,
                status=status,
                size=rng.randrange(0, 9000),
                referrer=None,
                ua=ua,
            )
        )
    rows.extend(  # old links and redirects from people
        dict(
            ip=_ip(rng),
            when=DAY + dt.timedelta(seconds=rng.randrange(0, 86000)),
            method="GET",
            path="/blog",
            query=None,
            status=301,
            size=162,
            referrer=None,
            ua=rng.choice(BROWSERS),
        )
        for _ in range(40)
    )
    rows.sort(key=lambda r: r["when"])
    return rows


def odd_lines(rng: random.Random) -> list[tuple[int, str]]:
    """Lines real servers write that a parser must survive, with where to put them."""
    when = DAY + dt.timedelta(hours=9)
    stamp = when.strftime("%d/%b/%Y:%H:%M:%S %z")
    return [
        (100, f'203.0.113.9 - - [{stamp}] "\\x16\\x03\\x01\\x02\\x00\\x01\\x00\\x01\\xFC\\x03\\x03" 400 157 "-" "-"'),
        (200, f'198.51.100.77 - - [{stamp}] "-" 400 0 "-" "-"'),
        (
            300,
            (
                f'192.0.2.50 - - [{stamp}] "GET /pricing HTTP/1.1" 200 5120 "-" '
                '"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) '
                'Chrome/122.0.0.0 Safari/537.36 \\"quoted\\" build"'
            ),
        ),
        (400, "this line is not an access log line at all"),
    ]


def main() -> None:
    rng = random.Random(SEED)
    rows = generate_rows(rng)
    lines = []
    for row in rows:
        target = row["path"] + (f"?{row['query']}" if row["query"] else "")
        lines.append(
            _line(
                row["ip"],
                row["when"],
                f"{row['method']} {target} HTTP/1.1",
                row["status"],
                row["size"],
                row["referrer"],
                row["ua"],
            )
        )
    for position, line in odd_lines(rng):
        lines.insert(position, line)
    (HERE / "access.log").write_text("\n".join(lines) + "\n", encoding="utf-8")

    export_rows = []
    for row in rows:
        path = row["path"].replace("\\xC3\\xA9", "%C3%A9")
        url = "https://example.com" + path + (f"?{row['query']}" if row["query"] else "")
        export_rows.append(
            {
                "event_time": row["when"].astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                "client_ip": row["ip"],
                "browser_user_agent": row["ua"],
                "http_method": row["method"],
                "page_url": url,
                "status_code": row["status"],
                "response_bytes": row["size"],
                "referrer_url": row["referrer"] or "",
            }
        )
    with open(HERE / "export.csv", "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(export_rows[0]))
        writer.writeheader()
        writer.writerows(export_rows)
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pylist(export_rows)
    table = table.set_column(0, "event_time", table.column("event_time").cast(pa.timestamp("s", tz="UTC")))
    pq.write_table(table, HERE / "export.parquet")
    print(f"wrote {len(lines)} log lines and {len(export_rows)} export rows to {HERE}")


if __name__ == "__main__":
    main()
