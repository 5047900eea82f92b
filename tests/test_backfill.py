"""Backfill: the ten CSV import files from a small handmade log, every figure worked out by hand.

The site's time zone is Europe/Berlin (UTC+1 in March 2024); log times are written with
+0100, so the times below are site-local.

Traffic (kept rows only; a bot, a static asset, a POST, a 404 and a broken line are dropped):

  visitor A = 8.8.8.8 + Firefox/Linux (Desktop; country US)
    03-14 10:00:00  /?utm_source=newsletter&utm_medium=email&utm_campaign=spring
    03-14 10:10:00  /pricing        (ref: own site, ignored)
    03-14 10:40:00  /docs/          gap exactly 30 min: same session            -> A1: 3 pv, 2400 s
    03-14 11:10:30  /pricing        gap 30 min 30 s: a new session              -> A2: 1 pv, bounce
    03-16 12:00:00  /%C3%A9t%C3%A9  (ref t.co/abc)                              -> A3: 1 pv, bounce
  visitor B = 203.0.113.7 + iPhone Safari (Mobile)
    03-14 09:00:00  /blog/post-1    (ref www.google.com)
    03-14 09:00:30  /blog/post-2    (ref own site)                              -> B1: 2 pv, 30 s
  visitor C = 203.0.113.8 + iPad Safari (Tablet)
    03-14 23:50:00  /               (ref news.ycombinator.com/item?id=1)
    03-15 00:10:00  /about          20 min later, past midnight: same session   -> C1: 2 pv, 1200 s
  visitor D = 203.0.113.9 + Chrome/Windows (Desktop)
    03-15 08:00:00  /docs/          (ref duckduckgo.com)
    03-15 08:05:00  /docs/install                                               -> D1: 2 pv, 300 s

Session-level tables date a session by its last event (C1 belongs to 03-15), pages by each
view. Berlin's 23:50 and 00:10 are 22:50 and 23:10 UTC: one salt day, so C is one user_id.
Countries: 8.8.8.8 is US; 203.0.113.0/24 is a documentation range (unknown, not in locations).
"""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from pathlib import Path
from zoneinfo import ZoneInfo

import pandas as pd
import pytest
from conftest import BROWSER, IPHONE, combined_line, write_log

from importer import BackfillOptions, OutputOptions, send
from importer.backfill import TABLES, backfill
from importer.backfill.writer import columns, read_table
from importer.cli import app

IPAD = (
    "Mozilla/5.0 (iPad; CPU OS 17_3 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.3 Mobile/15E148 Safari/604.1"
)
WINDOWS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/122.0.0.0 Safari/537.36"
)
GOOGLEBOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
PLUS1 = dt.timezone(dt.timedelta(hours=1))
TZ = "Europe/Berlin"


def at(day: int, hh: int, mm: int, ss: int = 0) -> dt.datetime:
    return dt.datetime(2024, 3, day, hh, mm, ss, tzinfo=PLUS1)


def handmade_lines() -> list[str]:
    A = dict(ip="8.8.8.8", user_agent=BROWSER)
    B = dict(ip="203.0.113.7", user_agent=IPHONE)
    C = dict(ip="203.0.113.8", user_agent=IPAD)
    D = dict(ip="203.0.113.9", user_agent=WINDOWS)
    return [
        combined_line(**B, when=at(14, 9, 0), target="/blog/post-1", referrer="https://www.google.com/"),
        combined_line(**B, when=at(14, 9, 0, 1), target="/assets/app.css"),  # static asset
        combined_line(**B, when=at(14, 9, 0, 30), target="/blog/post-2", referrer="https://example.com/blog/post-1"),
        combined_line(ip="66.249.66.1", user_agent=GOOGLEBOT, when=at(14, 9, 30), target="/"),  # bot
        combined_line(**A, when=at(14, 10, 0), target="/?utm_source=newsletter&utm_medium=email&utm_campaign=spring"),
        combined_line(**A, when=at(14, 10, 10), target="/pricing", referrer="https://www.example.com/"),
        combined_line(**A, when=at(14, 10, 20), target="/login", method="POST"),  # method
        combined_line(**A, when=at(14, 10, 40, 0), target="/docs/"),
        combined_line(**A, when=at(14, 10, 41), target="/nope", status=404),  # status
        combined_line(**A, when=at(14, 11, 10, 30), target="/pricing"),
        "this is not a log line",  # invalid
        combined_line(**C, when=at(14, 23, 50), target="/", referrer="https://news.ycombinator.com/item?id=1"),
        combined_line(**C, when=at(15, 0, 10), target="/about"),
        combined_line(**D, when=at(15, 8, 0), target="/docs/", referrer="https://duckduckgo.com/"),
        combined_line(**D, when=at(15, 8, 5), target="/docs/install"),
        combined_line(**A, when=at(16, 12, 0), target="/%C3%A9t%C3%A9", referrer="https://t.co/abc"),
    ]


@pytest.fixture(scope="module")
def handmade(tmp_path_factory):
    base = tmp_path_factory.mktemp("backfill")
    log = write_log(base / "access.log", handmade_lines())
    out = base / "out"
    report = backfill(
        [log],
        domain="example.com",
        target=BackfillOptions(site_timezone=TZ, out_dir=out),
        ua_cache=None,
        today=dt.date(2026, 11, 30),
        outputs=OutputOptions(rejects=base / "rejects.jsonl", failed=None),
    )
    frames = {table: read_table(Path(path), table) for table, path in report.files.items()}
    return report, frames, log, base


def rows(frame: pd.DataFrame, date: str) -> list[dict]:
    """The day's rows as dicts without the date, in a stable order."""
    part = frame[frame["date"] == date].drop(columns="date")
    return sorted(part.to_dict("records"), key=lambda r: json.dumps(r, sort_keys=True, default=str))


def same(frame: pd.DataFrame, date: str, expected: list[dict]) -> None:
    def key(r):
        return json.dumps(r, sort_keys=True, default=str)

    assert rows(frame, date) == sorted(expected, key=key)


def test_ten_files_named_for_the_range_with_exact_headers(handmade):
    report, frames, _, _ = handmade
    assert report.ok, report.problems
    names = sorted(Path(p).name for p in report.files.values())
    assert names == sorted(f"{t}_20240314_20240316.csv" for t in TABLES)
    assert len(names) == 10
    for table, frame in frames.items():
        assert list(frame.columns) == columns(table)
    # The header is exactly Plausible's column names, quoted CSV.
    first = Path(report.files["imported_visitors"]).read_text().splitlines()[0]
    assert first == '"date","visitors","pageviews","bounces","visits","visit_duration"'
    assert (report.start, report.end, report.days) == (dt.date(2024, 3, 14), dt.date(2024, 3, 16), 3)


def test_row_accounting_like_send(handmade):
    report, _, _, base = handmade
    r = report.read
    assert r.rows_read == 16
    assert r.rows_invalid == 1
    assert dict(r.rows_filtered) == {"bot": 1, "static_asset": 1, "method": 1, "status": 1}
    assert r.events == 11
    assert r.extra_events == 0  # the web mapping makes one event per row
    assert r.rows_read == r.rows_invalid + sum(r.rows_filtered.values()) + r.events - r.extra_events
    assert (base / "rejects.jsonl").read_text().count("\n") == 1


def test_visitors_sessions_bounces_durations(handmade):
    _, frames, _, _ = handmade
    v = frames["imported_visitors"]
    # 03-14: sessions A1, A2, B1 (visitors A, B; bounce A2; duration 2400 + 0 + 30); pageviews are
    # the day's pageview events: A 4, B 2, C's first 1.
    same(v, "2024-03-14", [dict(visitors=2, pageviews=7, bounces=1, visits=3, visit_duration=2430)])
    # 03-15: C1 (ends here) and D1; pageviews C 1, D 2.
    same(v, "2024-03-15", [dict(visitors=2, pageviews=3, bounces=0, visits=2, visit_duration=1500)])
    same(v, "2024-03-16", [dict(visitors=1, pageviews=1, bounces=1, visits=1, visit_duration=0)])


def test_pages_by_the_day_of_each_view(handmade):
    _, frames, _, _ = handmade
    p = frames["imported_pages"]
    host = "example.com"
    same(
        p,
        "2024-03-14",
        [
            dict(hostname=host, page="/", visits=2, visitors=2, pageviews=2),  # A1, C1
            dict(hostname=host, page="/pricing", visits=2, visitors=1, pageviews=2),  # A1, A2
            dict(hostname=host, page="/docs/", visits=1, visitors=1, pageviews=1),
            dict(hostname=host, page="/blog/post-1", visits=1, visitors=1, pageviews=1),
            dict(hostname=host, page="/blog/post-2", visits=1, visitors=1, pageviews=1),
        ],
    )
    same(
        p,
        "2024-03-15",
        [
            dict(hostname=host, page="/about", visits=1, visitors=1, pageviews=1),  # C1 after midnight
            dict(hostname=host, page="/docs/", visits=1, visitors=1, pageviews=1),
            dict(hostname=host, page="/docs/install", visits=1, visitors=1, pageviews=1),
        ],
    )
    # The pathname is percent-decoded; the query never is part of it.
    same(p, "2024-03-16", [dict(hostname=host, page="/été", visits=1, visitors=1, pageviews=1)])


def test_entry_and_exit_pages(handmade):
    _, frames, _, _ = handmade
    same(
        frames["imported_entry_pages"],
        "2024-03-14",
        [
            dict(entry_page="/", visitors=1, entrances=1, visit_duration=2400, bounces=0, pageviews=3),  # A1
            dict(entry_page="/pricing", visitors=1, entrances=1, visit_duration=0, bounces=1, pageviews=1),  # A2
            dict(entry_page="/blog/post-1", visitors=1, entrances=1, visit_duration=30, bounces=0, pageviews=2),
        ],
    )
    same(
        frames["imported_exit_pages"],
        "2024-03-14",
        [
            dict(exit_page="/docs/", visitors=1, visit_duration=2400, exits=1, bounces=0, pageviews=3),
            dict(exit_page="/pricing", visitors=1, visit_duration=0, exits=1, bounces=1, pageviews=1),
            dict(exit_page="/blog/post-2", visitors=1, visit_duration=30, exits=1, bounces=0, pageviews=2),
        ],
    )
    same(
        frames["imported_entry_pages"],
        "2024-03-15",
        [
            dict(entry_page="/", visitors=1, entrances=1, visit_duration=1200, bounces=0, pageviews=2),  # C1
            dict(entry_page="/docs/", visitors=1, entrances=1, visit_duration=300, bounces=0, pageviews=2),
        ],
    )
    same(
        frames["imported_exit_pages"],
        "2024-03-15",
        [
            dict(exit_page="/about", visitors=1, visit_duration=1200, exits=1, bounces=0, pageviews=2),  # C1
            dict(exit_page="/docs/install", visitors=1, visit_duration=300, exits=1, bounces=0, pageviews=2),
        ],
    )


def test_sources_with_utm_and_referrers(handmade):
    _, frames, _, _ = handmade
    s = frames["imported_sources"]
    blank = dict(utm_source="", utm_medium="", utm_campaign="", utm_content="", utm_term="")
    same(
        s,
        "2024-03-14",
        [
            dict(
                source="newsletter",
                referrer="",
                utm_source="newsletter",
                utm_medium="email",
                utm_campaign="spring",
                utm_content="",
                utm_term="",
                pageviews=3,
                visitors=1,
                visits=1,
                visit_duration=2400,
                bounces=0,
            ),
            dict(source="", referrer="", **blank, pageviews=1, visitors=1, visits=1, visit_duration=0, bounces=1),
            dict(
                source="Google",
                referrer="google.com",
                **blank,
                pageviews=2,
                visitors=1,
                visits=1,
                visit_duration=30,
                bounces=0,
            ),
        ],
    )
    same(
        s,
        "2024-03-15",
        [
            dict(
                source="Hacker News",
                referrer="news.ycombinator.com/item",
                **blank,
                pageviews=2,
                visitors=1,
                visits=1,
                visit_duration=1200,
                bounces=0,
            ),
            dict(
                source="DuckDuckGo",
                referrer="duckduckgo.com",
                **blank,
                pageviews=2,
                visitors=1,
                visits=1,
                visit_duration=300,
                bounces=0,
            ),
        ],
    )
    same(
        s,
        "2024-03-16",
        [
            dict(
                source="Twitter",
                referrer="t.co/abc",
                **blank,
                pageviews=1,
                visitors=1,
                visits=1,
                visit_duration=0,
                bounces=1,
            )
        ],
    )


def test_devices_browsers_operating_systems(handmade):
    _, frames, _, _ = handmade
    same(
        frames["imported_devices"],
        "2024-03-14",
        [
            dict(device="Desktop", visitors=1, visits=2, visit_duration=2400, bounces=1, pageviews=4),  # A1, A2
            dict(device="Mobile", visitors=1, visits=1, visit_duration=30, bounces=0, pageviews=2),  # B1
        ],
    )
    same(
        frames["imported_devices"],
        "2024-03-15",
        [
            dict(device="Tablet", visitors=1, visits=1, visit_duration=1200, bounces=0, pageviews=2),  # C1
            dict(device="Desktop", visitors=1, visits=1, visit_duration=300, bounces=0, pageviews=2),  # D1
        ],
    )
    # Mobile Safari on iPhone and iPad is stored as Safari; versions are major.minor.
    same(
        frames["imported_browsers"],
        "2024-03-14",
        [
            dict(
                browser="Firefox",
                browser_version="123.0",
                visitors=1,
                visits=2,
                visit_duration=2400,
                bounces=1,
                pageviews=4,
            ),
            dict(
                browser="Safari",
                browser_version="17.3",
                visitors=1,
                visits=1,
                visit_duration=30,
                bounces=0,
                pageviews=2,
            ),
        ],
    )
    same(
        frames["imported_operating_systems"],
        "2024-03-14",
        [
            dict(
                operating_system="GNU/Linux",
                operating_system_version="",
                visitors=1,
                visits=2,
                visit_duration=2400,
                bounces=1,
                pageviews=4,
            ),
            dict(
                operating_system="iOS",
                operating_system_version="17.3",
                visitors=1,
                visits=1,
                visit_duration=30,
                bounces=0,
                pageviews=2,
            ),
        ],
    )
    same(
        frames["imported_browsers"],
        "2024-03-15",
        [
            dict(
                browser="Safari",
                browser_version="17.3",
                visitors=1,
                visits=1,
                visit_duration=1200,
                bounces=0,
                pageviews=2,
            ),
            dict(
                browser="Chrome",
                browser_version="122.0",
                visitors=1,
                visits=1,
                visit_duration=300,
                bounces=0,
                pageviews=2,
            ),
        ],
    )
    same(
        frames["imported_operating_systems"],
        "2024-03-15",
        [
            dict(
                operating_system="iPadOS",
                operating_system_version="17.3",
                visitors=1,
                visits=1,
                visit_duration=1200,
                bounces=0,
                pageviews=2,
            ),
            dict(
                operating_system="Windows",
                operating_system_version="10",
                visitors=1,
                visits=1,
                visit_duration=300,
                bounces=0,
                pageviews=2,
            ),
        ],
    )


def test_locations_leave_out_unknown_countries(handmade):
    _, frames, _, _ = handmade
    # 8.8.8.8 is in the US; 203.0.113.0/24 is a documentation range: unknown, so not written.
    same(
        frames["imported_locations"],
        "2024-03-14",
        [
            dict(country="US", region="", city=0, visitors=1, visits=2, visit_duration=2400, bounces=1, pageviews=4),
        ],
    )
    same(frames["imported_locations"], "2024-03-15", [])
    same(
        frames["imported_locations"],
        "2024-03-16",
        [
            dict(country="US", region="", city=0, visitors=1, visits=1, visit_duration=0, bounces=1, pageviews=1),
        ],
    )


def test_no_custom_events_from_the_web_mapping(handmade):
    _, frames, _, _ = handmade
    assert frames["imported_custom_events"].empty


def test_report_guard_rails(handmade):
    report, _, _, _ = handmade
    text = report.summary()
    assert "2024-03-14 .. 2024-03-16 (3 days)" in text
    assert "refuses an import shorter" not in text  # three days is enough
    assert "first day of the site's own (native) data" in text
    assert "Imports & Exports" in text
    data = report.as_dict()
    assert data["date_range"] == {"start": "2024-03-14", "end": "2024-03-16", "days": 3}
    assert data["files"]["imported_pages_20240314_20240316.csv"] == 9
    assert data["sessions"] == 6 and data["pageviews"] == 11 and data["sessions_past_midnight"] == 1


def dry_run_pageviews_by_day(log: Path, tmp_path: Path, tz: str) -> Counter:
    out = tmp_path / "events.jsonl"
    send([log], domain="example.com", dry_run=True, outputs=OutputOptions(events=out, rejects=None))
    zone = ZoneInfo(tz)
    counts: Counter = Counter()
    for line in out.read_text(encoding="utf-8").splitlines():
        event = json.loads(line)
        if event["name"] == "pageview":
            when = dt.datetime.fromisoformat(event["timestamp"].replace("Z", "+00:00"))
            counts[when.astimezone(zone).date().isoformat()] += 1
    return counts


def pages_by_day(report) -> Counter:
    pages = read_table(Path(report.files["imported_pages"]), "imported_pages")
    return Counter({d: int(n) for d, n in pages.groupby("date")["pageviews"].sum().items()})


def test_pageviews_per_day_equal_send_dry_run(handmade, tmp_path):
    report, _, log, _ = handmade
    expected = dry_run_pageviews_by_day(log, tmp_path, TZ)
    assert expected == Counter({"2024-03-14": 7, "2024-03-15": 3, "2024-03-16": 1})
    assert pages_by_day(report) == expected
    visitors = read_table(Path(report.files["imported_visitors"]), "imported_visitors")
    assert int(visitors["pageviews"].sum()) == sum(expected.values())


@pytest.mark.parametrize("tz", ["UTC", "America/New_York"])
def test_sample_data_matches_send_dry_run(tmp_path, tz):
    sample = Path(__file__).resolve().parent.parent / "sample_data" / "access.log"
    report = backfill(
        [sample],
        domain="example.com",
        target=BackfillOptions(site_timezone=tz, out_dir=tmp_path / "out"),
        ua_cache=None,
        outputs=OutputOptions(rejects=None, failed=None),
    )
    assert report.ok, report.problems
    assert len(report.files) == 10
    expected = dry_run_pageviews_by_day(sample, tmp_path, tz)
    assert pages_by_day(report) == expected
    assert report.pageviews == report.read.events_by_name["pageview"] == sum(expected.values())
    # Read back: the session tables agree with each other.
    counts = {"imported_entry_pages": "entrances", "imported_exit_pages": "exits"}
    visits = {
        t: int(read_table(Path(report.files[t]), t)[counts.get(t, "visits")].sum())
        for t in (
            "imported_visitors",
            "imported_sources",
            "imported_devices",
            "imported_browsers",
            "imported_operating_systems",
            "imported_entry_pages",
            "imported_exit_pages",
        )
    }
    assert len(set(visits.values())) == 1 and report.sessions == visits["imported_visitors"]
    if tz == "America/New_York":  # 2024-03-14 +0100 is 03-13 19:00 .. 03-14 18:59 in New York
        assert (report.start, report.end) == (dt.date(2024, 3, 13), dt.date(2024, 3, 14))


def test_spilling_to_disk_and_unordered_inputs_give_the_same_files(tmp_path, handmade):
    _, frames, _, _ = handmade
    lines = handmade_lines()
    # Newest lines first in one file, the rest in another: days are complete only at the end.
    first = write_log(tmp_path / "b.log", list(reversed(lines[10:])))
    second = write_log(tmp_path / "a.log", lines[:10])
    again = backfill(
        [first, second],
        domain="example.com",
        target=BackfillOptions(site_timezone=TZ, out_dir=tmp_path / "out"),
        ua_cache=None,
        memory_limit=1,
        outputs=OutputOptions(rejects=None, failed=None),
    )
    assert again.spills >= 2
    for table in TABLES:
        other = read_table(Path(again.files[table]), table)
        for date in ("2024-03-14", "2024-03-15", "2024-03-16"):
            assert rows(other, date) == rows(frames[table], date), table


def test_short_range_warns(tmp_path):
    log = write_log(tmp_path / "one.log", [combined_line(when=at(14, 12, 0))])
    report = backfill(
        [log],
        domain="example.com",
        target=BackfillOptions(site_timezone=TZ, out_dir=tmp_path / "out"),
        ua_cache=None,
        outputs=OutputOptions(rejects=None, failed=None),
    )
    assert report.ok and report.days == 1
    assert any("shorter than 3 days" in w for w in report.warnings)
    # A second run into the same directory over other dates: the old files are pointed out.
    log2 = write_log(tmp_path / "two.log", [combined_line(when=at(20, 12, 0))])
    again = backfill(
        [log2],
        domain="example.com",
        target=BackfillOptions(site_timezone=TZ, out_dir=tmp_path / "out"),
        ua_cache=None,
        outputs=OutputOptions(rejects=None, failed=None),
    )
    assert any("10 other imported_*.csv" in w and "_20240320_20240320.csv" in w for w in again.warnings)


def test_cli_backfill(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    monkeypatch.setenv("PLAUSIBLE_IMPORT_UA_CACHE", str(tmp_path / "ua.json"))

    log = write_log(tmp_path / "access.log", handmade_lines())
    out = tmp_path / "csv"
    result = CliRunner().invoke(
        app,
        [
            "backfill",
            str(log),
            "--domain",
            "example.com",
            "--site-timezone",
            TZ,
            "--out",
            str(out),
            "--report",
            str(tmp_path / "r.json"),
            "--no-progress",
            "--rejects",
            str(tmp_path / "rej.jsonl"),
        ],
    )
    assert result.exit_code == 0, result.output
    assert len(list(out.glob("imported_*_20240314_20240316.csv"))) == 10
    data = json.loads((tmp_path / "r.json").read_text())
    assert data["events"] == 11 and data["rows_invalid"] == 1
    assert len(json.loads((tmp_path / "ua.json").read_text())["agents"]) == 4  # the four browsers
    bad = CliRunner().invoke(
        app, ["backfill", str(log), "--domain", "example.com", "--site-timezone", "Nowhere/Land", "--out", str(out)]
    )
    assert bad.exit_code == 2


def naive_sessions(events_jsonl: Path, tz: str) -> dict:
    """An independent, loop-by-loop reading of the rules, to check the vectorised code with."""
    from urllib.parse import unquote, urlsplit

    zone = ZoneInfo(tz)
    by_visitor: dict = {}
    for line in events_jsonl.read_text(encoding="utf-8").splitlines():
        e = json.loads(line)
        when = dt.datetime.fromisoformat(e["timestamp"].replace("Z", "+00:00"))
        by_visitor.setdefault((e["ip"] or "", e["user_agent"] or ""), []).append((when, e))
    visitors: dict = {}
    entry: Counter = Counter()
    exit_: Counter = Counter()
    empty = {"visitors": set(), "visits": 0, "pageviews": 0, "bounces": 0, "visit_duration": 0}
    for key, items in by_visitor.items():
        items.sort(key=lambda item: item[0])
        sessions, current, last = [], [], None
        for when, e in items:
            seconds = int(when.timestamp())
            if last is not None and seconds - last > 1800:  # the session cache's 30-minute TTL
                sessions.append(current)
                current = []
            current.append((seconds, when, e))
            last = seconds
            if e["name"] == "pageview":  # pageviews: by each event's own day
                visitors.setdefault(when.astimezone(zone).date().isoformat(), dict(empty, visitors=set()))
                visitors[when.astimezone(zone).date().isoformat()]["pageviews"] += 1
        sessions.append(current)
        for s in sessions:
            day = s[-1][1].astimezone(zone).date().isoformat()  # sessions: by their last event's day
            pages = [unquote(urlsplit(e["url"]).path) or "/" for _, _, e in s if e["name"] == "pageview"]
            row = visitors.setdefault(day, dict(empty, visitors=set()))
            row["visitors"].add((key, s[-1][1].astimezone(dt.UTC).date()))  # the salt of that UTC day
            row["visits"] += 1
            row["bounces"] += len(pages) <= 1
            row["visit_duration"] += s[-1][0] - s[0][0]
            entry[(day, pages[0] if pages else "")] += 1
            exit_[(day, pages[-1] if pages else "")] += 1
    for row in visitors.values():
        row["visitors"] = len(row["visitors"])
    return {"visitors": visitors, "entry": entry, "exit": exit_}


@pytest.mark.parametrize("tz", ["Europe/Berlin", "Asia/Kolkata"])
def test_sample_data_agrees_with_a_naive_reading_of_the_rules(tmp_path, tz):
    sample = Path(__file__).resolve().parent.parent / "sample_data" / "access.log"
    events = tmp_path / "events.jsonl"
    send([sample], domain="example.com", dry_run=True, outputs=OutputOptions(events=events, rejects=None))
    expected = naive_sessions(events, tz)
    report = backfill(
        [sample],
        domain="example.com",
        target=BackfillOptions(site_timezone=tz, out_dir=tmp_path / "out"),
        ua_cache=None,
        outputs=OutputOptions(rejects=None, failed=None),
    )
    assert report.ok, report.problems
    v = read_table(Path(report.files["imported_visitors"]), "imported_visitors")
    got = {r.pop("date"): r for r in v.to_dict("records")}
    assert got == expected["visitors"]
    entry = read_table(Path(report.files["imported_entry_pages"]), "imported_entry_pages")
    assert (
        Counter({(r["date"], r["entry_page"]): r["entrances"] for r in entry.to_dict("records")}) == expected["entry"]
    )
    exit_ = read_table(Path(report.files["imported_exit_pages"]), "imported_exit_pages")
    assert Counter({(r["date"], r["exit_page"]): r["exits"] for r in exit_.to_dict("records")}) == expected["exit"]
