"""Backfill building blocks: source names, user agents, custom events and interactivity, the day spill."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pyarrow as pa
import pytest
from conftest import combined_line, write_log

from importer import BackfillOptions, OutputOptions, ReadOptions
from importer import events as ev
from importer.backfill import backfill, write_files
from importer.backfill.aggregate import parse_url
from importer.backfill.devices import DeviceParser
from importer.backfill.writer import read_table
from importer.plausible import browser_from_client, major_minor

UTC = dt.UTC


def test_page_url_parts():
    assert parse_url("https://www.example.com/caf%C3%A9/?utm_source=x") == ("example.com", "/café/", "utm_source=x")
    assert parse_url("https://example.com") == ("example.com", "/", "")


# -- user agents -------------------------------------------------------------------------


def test_user_agents_as_plausible_stores_them(tmp_path):
    parser = DeviceParser(tmp_path / "ua.json")
    pixel = (
        "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/122.0.0.0 Mobile Safari/537.36"
    )
    mac = (
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
        "Version/17.3 Safari/605.1.15"
    )
    info = parser.parse(pixel)
    # Chrome Mobile is stored as Chrome; versions are major.minor.
    assert (info.device, info.browser, info.browser_version, info.os, info.os_version) == (
        "Mobile",
        "Chrome",
        "122.0",
        "Android",
        "14",
    )
    info = parser.parse(mac)
    assert (info.device, info.browser, info.browser_version, info.os, info.os_version) == (
        "Desktop",
        "Safari",
        "17.3",
        "Mac",
        "10.15",
    )
    assert parser.parse("Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)").bot
    assert parser.parse(None).browser == ""
    assert parser.parsed == 3
    parser.save()
    # The next run answers from the cache file without parsing.
    again = DeviceParser(tmp_path / "ua.json")
    assert again.parse(pixel).browser == "Chrome" and again.parsed == 0 and again.from_cache == 1


def test_major_minor():
    assert major_minor("122.0.6261.94") == "122.0"
    assert major_minor("10") == "10"
    assert major_minor("") == ""


# -- custom events and interactivity (event frames built by hand) -------------------------

UA = "Mozilla/5.0 (X11; Linux x86_64; rv:123.0) Gecko/20100101 Firefox/123.0"


def frame(rows: list[dict]) -> pa.Table:
    full = [
        {
            "name": "pageview",
            "domain": "example.com",
            "referrer": None,
            "props": None,
            "user_agent": UA,
            "ip": "203.0.113.1",
            "source_file": "t",
            "source_line": 1,
            "revenue_amount": None,
            "revenue_currency": None,
            "interactive": None,
            **row,
        }
        for row in rows
    ]
    names = [f.name for f in ev.EVENT_SCHEMA]
    return pa.Table.from_pylist([{k: r.get(k) for k in names} for r in full], schema=ev.EVENT_SCHEMA)


def t(hh, mm, ss=0):
    return dt.datetime(2024, 5, 1, hh, mm, ss, tzinfo=UTC)


def test_custom_events_link_url_and_path_and_bounces(tmp_path):
    events = frame(
        [
            # Session 1 (ip .1): a pageview then an interactive File Download: not a bounce.
            dict(url="https://example.com/docs", timestamp=t(10, 0)),
            dict(
                name="File Download",
                url="https://example.com/docs",
                timestamp=t(10, 1),
                props=json.dumps({"url": "https://example.com/a.pdf"}),
            ),
            # Session 2 (ip .2): a pageview and a non-interactive custom event: still a bounce.
            dict(ip="203.0.113.2", url="https://example.com/", timestamp=t(11, 0)),
            dict(
                ip="203.0.113.2",
                name="Signup",
                url="https://example.com/",
                timestamp=t(11, 2),
                props=json.dumps({"url": "https://ignored.example/", "plan": "pro"}),
                interactive=False,
            ),
            # Session 3 (ip .3): a 404 with its path, a second 404, an outbound click.
            dict(
                ip="203.0.113.3",
                name="404",
                url="https://example.com/gone",
                timestamp=t(12, 0),
                props=json.dumps({"path": "/gone"}),
            ),
            dict(
                ip="203.0.113.3",
                name="404",
                url="https://example.com/gone",
                timestamp=t(12, 5),
                props=json.dumps({"path": "/gone"}),
            ),
            dict(
                ip="203.0.113.3",
                name="Outbound Link: Click",
                url="https://example.com/",
                timestamp=t(12, 6),
                props=json.dumps({"url": "https://github.com/"}),
            ),
        ]
    )
    report = write_files([events], timezone="UTC", out_dir=tmp_path, ua_cache=None, today=dt.date(2026, 1, 1))
    assert report.ok, report.problems
    custom = read_table(Path(report.files["imported_custom_events"]), "imported_custom_events")
    got = sorted(custom.drop(columns="date").to_dict("records"), key=lambda r: r["name"])
    assert got == [
        dict(name="404", link_url="", path="/gone", visitors=1, events=2),
        dict(name="File Download", link_url="https://example.com/a.pdf", path="", visitors=1, events=1),
        dict(name="Outbound Link: Click", link_url="https://github.com/", path="", visitors=1, events=1),
        dict(name="Signup", link_url="", path="", visitors=1, events=1),  # other names: both empty
    ]
    visitors = read_table(Path(report.files["imported_visitors"]), "imported_visitors").iloc[0]
    # Three sessions; bounces: session 2 (one pageview, only a non-interactive event) and
    # session 3 (no pageview at all, its first event is not a "later" interaction, then two more
    # interactive events -> not a bounce). So one bounce.
    assert (visitors.visits, visitors.pageviews, visitors.bounces) == (3, 2, 1)
    assert visitors.visit_duration == 60 + 120 + 360
    entry = read_table(Path(report.files["imported_entry_pages"]), "imported_entry_pages")
    # session 3 had no pageview: the exporter groups it under the entry page "" (item 9)
    assert sorted(zip(entry["entry_page"], entry["entrances"], strict=True)) == [("", 1), ("/", 1), ("/docs", 1)]
    exit_ = read_table(Path(report.files["imported_exit_pages"]), "imported_exit_pages")
    assert sorted(zip(exit_["exit_page"], exit_["exits"], strict=True)) == [("", 1), ("/", 1), ("/docs", 1)]
    assert report.custom_events == 5


@pytest.mark.parametrize(
    ("session", "bounce"),
    [
        # Plausible's Session.CacheStore: a session starts as a bounce; a second
        # pageview, or an interactive event that is not a pageview, after its start ends that.
        ([("Signup", True)], 1),  # one interactive custom event, alone
        ([("Signup", True), ("pageview", True)], 1),  # then one pageview: still one pageview
        ([("Signup", True), ("pageview", True), ("pageview", True)], 0),
        ([("Signup", False), ("Play", True)], 0),  # a later interactive event
        ([("pageview", True), ("Play", False)], 1),  # a later non-interactive one does not count
        ([("pageview", True), ("Play", True)], 0),
    ],
)
def test_bounces_of_sessions_that_start_with_a_custom_event(tmp_path, session, bounce):
    events = frame(
        [
            dict(name=name, url="https://example.com/x", timestamp=t(10, i), interactive=None if interactive else False)
            for i, (name, interactive) in enumerate(session)
        ]
    )
    report = write_files([events], timezone="UTC", out_dir=tmp_path, ua_cache=None, today=dt.date(2026, 1, 1))
    visitors = read_table(Path(report.files["imported_visitors"]), "imported_visitors").iloc[0]
    assert (visitors.visits, visitors.bounces) == (1, bounce)


def test_visitor_is_ip_and_user_agent(tmp_path):
    events = frame(
        [
            dict(url="https://example.com/", timestamp=t(9, 0)),
            dict(url="https://example.com/", timestamp=t(9, 1), user_agent=UA + " extra"),  # another visitor
            dict(url="https://example.com/", timestamp=t(9, 2), ip="203.0.113.9"),  # another visitor
            dict(url="https://example.com/b", timestamp=t(9, 3)),  # first visitor again
        ]
    )
    report = write_files([events], timezone="UTC", out_dir=tmp_path, ua_cache=None, today=dt.date(2026, 1, 1))
    visitors = read_table(Path(report.files["imported_visitors"]), "imported_visitors").iloc[0]
    assert (visitors.visitors, visitors.visits, visitors.pageviews, visitors.bounces) == (3, 3, 4, 2)


def test_web_goals_mapping_end_to_end(tmp_path):
    when = dt.datetime(2024, 3, 14, 9, 0, tzinfo=UTC)
    log = write_log(
        tmp_path / "a.log",
        [
            combined_line(when=when, target="/"),
            combined_line(when=when + dt.timedelta(minutes=1), target="/missing", status=404),
            combined_line(when=when + dt.timedelta(minutes=2), target="/files/report.pdf"),
        ],
    )
    report = backfill(
        [log],
        domain="example.com",
        target=BackfillOptions(site_timezone="UTC", out_dir=tmp_path / "out"),
        ua_cache=None,
        read=ReadOptions(mapping="web-goals"),
        outputs=OutputOptions(rejects=None, failed=None),
    )
    custom = read_table(Path(report.files["imported_custom_events"]), "imported_custom_events")
    got = sorted(custom.drop(columns="date").to_dict("records"), key=lambda r: r["name"])
    assert got == [
        dict(name="404", link_url="", path="/missing", visitors=1, events=1),
        dict(name="File Download", link_url="https://example.com/files/report.pdf", path="", visitors=1, events=1),
    ]
    visitors = read_table(Path(report.files["imported_visitors"]), "imported_visitors").iloc[0]
    # the 404 page's pageview comes with its 404 event (web-goals' also_pageview)
    assert (visitors.visits, visitors.pageviews, visitors.bounces, visitors.visit_duration) == (1, 2, 0, 120)


def test_no_events_writes_nothing(tmp_path):
    log = write_log(
        tmp_path / "bots.log",
        [combined_line(user_agent="Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)")],
    )
    report = backfill(
        [log],
        domain="example.com",
        target=BackfillOptions(site_timezone="UTC", out_dir=tmp_path / "out"),
        ua_cache=None,
        outputs=OutputOptions(rejects=None, failed=None),
    )
    assert not report.ok and report.files == {}
    assert any("no events" in w for w in report.warnings)
    assert not list((tmp_path / "out").glob("*.csv")) if (tmp_path / "out").exists() else True


def test_dst_day_and_midnight_in_the_site_zone(tmp_path):
    # Europe/Berlin switches to summer time on 2024-03-31: that day has 23 hours.
    # 2024-03-31 21:50 UTC is 23:50 local; 22:10 UTC is 00:10 local on 04-01.
    events = frame(
        [
            dict(url="https://example.com/a", timestamp=dt.datetime(2024, 3, 30, 23, 30, tzinfo=UTC)),  # 03-31 00:30
            dict(url="https://example.com/b", timestamp=dt.datetime(2024, 3, 31, 21, 50, tzinfo=UTC), ip="203.0.113.5"),
            dict(url="https://example.com/c", timestamp=dt.datetime(2024, 3, 31, 22, 10, tzinfo=UTC), ip="203.0.113.5"),
            dict(url="https://example.com/d", timestamp=dt.datetime(2024, 4, 2, 8, 0, tzinfo=UTC)),
        ]
    )
    report = write_files([events], timezone="Europe/Berlin", out_dir=tmp_path, ua_cache=None, today=dt.date(2026, 1, 1))
    assert {d.isoformat(): n for d, n in report.pageviews_by_day.items()} == {
        "2024-03-31": 2,
        "2024-04-01": 1,
        "2024-04-02": 1,
    }
    v = read_table(Path(report.files["imported_visitors"]), "imported_visitors")
    by_day = {r["date"]: (r["visits"], r["pageviews"], r["visit_duration"]) for r in v.to_dict("records")}
    # The 23:50 -> 00:10 session belongs to 04-01, its last event's day, with its 20 minutes;
    # pageviews stay on each view's day. 03-31 has 23 hours: its midnight is 22:00 UTC.
    assert by_day == {"2024-03-31": (1, 2, 0), "2024-04-01": (1, 1, 1200), "2024-04-02": (1, 1, 0)}
    assert report.sessions_past_midnight == 1


def test_read_back_catches_a_broken_file(tmp_path):
    from importer.backfill.writer import validate

    events = frame(
        [dict(url="https://example.com/", timestamp=t(9, 0)), dict(url="https://example.com/x", timestamp=t(9, 5))]
    )
    report = write_files([events], timezone="UTC", out_dir=tmp_path, ua_cache=None, today=dt.date(2026, 1, 1))
    assert report.ok and report.problems == []
    paths = {table: Path(p) for table, p in report.files.items()}
    rows = dict.fromkeys(paths, 1)
    rows["imported_pages"], rows["imported_custom_events"], rows["imported_locations"] = 2, 0, 0
    assert validate(paths, report.start, report.end, rows) == []
    # A date outside the range in the name, and visits that no longer add up.
    devices = paths["imported_devices"]
    devices.write_text(devices.read_text().replace('"2024-05-01"', '"2024-06-01"').replace(",1,300,", ",2,300,"))
    problems = validate(paths, report.start, report.end, rows)
    assert any("dates outside" in p for p in problems)
    assert any("total visits 2 != 1" in p for p in problems)


def test_engagement_events_are_not_goals(tmp_path):
    events = frame(
        [
            dict(url="https://example.com/", timestamp=t(9, 0)),
            dict(name="engagement", url="https://example.com/", timestamp=t(9, 1), interactive=False),
        ]
    )
    report = write_files([events], timezone="UTC", out_dir=tmp_path, ua_cache=None, today=dt.date(2026, 1, 1))
    assert read_table(Path(report.files["imported_custom_events"]), "imported_custom_events").empty
    visitors = read_table(Path(report.files["imported_visitors"]), "imported_visitors").iloc[0]
    assert (visitors.visits, visitors.pageviews, visitors.bounces) == (1, 1, 1)


def test_read_back_checks_visitors_pageviews_against_pages(tmp_path):
    from importer.backfill.writer import validate

    # A session from 23:50 to 00:10: its pageviews split 1 + 1 over two days in imported_visitors
    # (each view's day) while the session tables hold both on the second day; all is well.
    events = frame(
        [
            dict(url="https://example.com/", timestamp=dt.datetime(2024, 5, 1, 23, 50, tzinfo=UTC)),
            dict(url="https://example.com/x", timestamp=dt.datetime(2024, 5, 2, 0, 10, tzinfo=UTC)),
        ]
    )
    report = write_files([events], timezone="UTC", out_dir=tmp_path, ua_cache=None, today=dt.date(2026, 1, 1))
    assert report.ok and report.problems == []
    paths = {table: Path(p) for table, p in report.files.items()}
    visitors = paths["imported_visitors"]
    assert visitors.read_text().splitlines()[1:] == ['"2024-05-01",0,1,0,0,0', '"2024-05-02",1,1,0,1,1200']
    visitors.write_text(visitors.read_text().replace('"2024-05-01",0,1,', '"2024-05-01",0,2,'))
    rows = {table: len(read_table(path, table)) for table, path in paths.items()}
    problems = validate(paths, report.start, report.end, rows)
    assert problems == [f"{visitors.name}: total pageviews 3 != 2 in imported_pages"]


def test_browsers_as_plausible_stores_them():
    # a webview keeps its major.minor version; any mobile app has none; Opera Mini folds into Opera
    assert browser_from_client("Chrome Webview", "browser", "120.0.6099.230") == ("Mobile App", "120.0")
    assert browser_from_client("Facebook", "mobile app", "442.0.0.34") == ("Mobile App", "")
    assert browser_from_client("Opera Mini iOS", "browser", "16.0.14") == ("Opera", "16.0")
    assert browser_from_client("Firefox iOS", "browser", "121.1") == ("Firefox", "121.1")
    assert browser_from_client("", "", None) == ("", "")
