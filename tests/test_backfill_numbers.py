"""Backfill figures worked out by hand from Plausible's rules: the UTC salt, the 30-minute
session TTL, bots, browser names, a proxy's forwarded address, --since/--until and the
geography of exports."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import BROWSER, combined_line, write_log
from test_backfill import TZ, handmade_lines
from test_backfill_units import frame

from importer.backfill import backfill, write_files
from importer.backfill.locations import city_id, country_code, region_code
from importer.backfill.writer import read_table
from importer.cli import app
from importer.options import BackfillOptions, OutputOptions, ReadOptions

UTC = dt.UTC
HEADLESS = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/120.0.0.0 Safari/537.36"
)
OPERA_MINI = (
    "Opera/9.80 (J2ME/MIDP; Opera Mini/9.80 (S60; SymbOS; Opera Mobi/23.348; U; en) Presto/2.5.25 Version/10.54"
)
REPO = Path(__file__).resolve().parent.parent
SAMPLES = REPO / "sample_data"


def table_rows(report, table: str) -> list[dict]:
    """The file's rows, ordered by date and then as written."""
    frame_ = read_table(Path(report.files[table]), table)
    return sorted(frame_.to_dict("records"), key=lambda r: r["date"])


def one_person_across_utc_midnight() -> list[dict]:
    # 2024-05-01 in New York is UTC-4: 19:50 and 20:10 there are 23:50 UTC and 00:10 UTC on 05-02.
    return [
        dict(url="https://example.com/", timestamp=dt.datetime(2024, 5, 1, 14, 0, tzinfo=UTC)),
        dict(url="https://example.com/", timestamp=dt.datetime(2024, 5, 1, 23, 50, tzinfo=UTC)),
        dict(url="https://example.com/", timestamp=dt.datetime(2024, 5, 2, 0, 10, tzinfo=UTC)),
    ]


def test_the_utc_salt_makes_two_visitors_of_one_person_on_a_new_york_day(tmp_path):
    report = write_files(
        [frame(one_person_across_utc_midnight())],
        timezone="America/New_York",
        out_dir=tmp_path,
        ua_cache=None,
        today=dt.date(2026, 1, 1),
    )
    # Sessions: S1 = 10:00 (bounce), S2 = 19:50..20:10 (1,200 s), both on 05-01 New York. S1's
    # user_id has the salt of 05-01 UTC, S2's that of its last event, 05-02 UTC: two visitors.
    assert table_rows(report, "imported_visitors") == [
        dict(date="2024-05-01", visitors=2, pageviews=3, bounces=1, visits=2, visit_duration=1200)
    ]
    # The page: three views in two sessions by two user_ids (14:00 and 23:50 UTC share one).
    assert table_rows(report, "imported_pages") == [
        dict(date="2024-05-01", hostname="example.com", page="/", visits=2, visitors=2, pageviews=3)
    ]


def test_the_same_person_on_a_utc_site_is_one_visitor_a_day(tmp_path):
    report = write_files(
        [frame(one_person_across_utc_midnight())],
        timezone="UTC",
        out_dir=tmp_path,
        ua_cache=None,
        today=dt.date(2026, 1, 1),
    )
    # S2 goes on across midnight (Plausible also looks under the previous salt) and ends on 05-02.
    assert table_rows(report, "imported_visitors") == [
        dict(date="2024-05-01", visitors=1, pageviews=2, bounces=1, visits=1, visit_duration=0),
        dict(date="2024-05-02", visitors=1, pageviews=1, bounces=0, visits=1, visit_duration=1200),
    ]
    assert table_rows(report, "imported_pages") == [
        dict(date="2024-05-01", hostname="example.com", page="/", visits=2, visitors=1, pageviews=2),
        dict(date="2024-05-02", hostname="example.com", page="/", visits=1, visitors=1, pageviews=1),
    ]
    assert report.sessions_past_midnight == 1


@pytest.mark.parametrize(
    ("gap_s", "visits", "duration", "bounces"), [(1800, 1, 1800, 0), (1801, 2, 0, 2), (1830, 2, 0, 2)]
)
def test_a_gap_of_more_than_30_minutes_starts_a_new_session(tmp_path, gap_s, visits, duration, bounces):
    start = dt.datetime(2024, 5, 1, 9, 0, tzinfo=UTC)
    events = frame(
        [
            dict(url="https://example.com/a", timestamp=start),
            dict(url="https://example.com/b", timestamp=start + dt.timedelta(seconds=gap_s, microseconds=900)),
        ]
    )
    report = write_files([events], timezone="UTC", out_dir=tmp_path, ua_cache=None, today=dt.date(2026, 1, 1))
    (row,) = table_rows(report, "imported_visitors")
    # timestamps are cut to whole seconds: 1800.9 s is 1800 s
    assert (row["visits"], row["visit_duration"], row["bounces"]) == (visits, duration, bounces)


def test_bots_are_dropped_before_sessions_and_counted(tmp_path):
    events = frame(
        [
            dict(url="https://example.com/", timestamp=dt.datetime(2024, 5, 1, 9, 0, tzinfo=UTC)),
            dict(url="https://example.com/", timestamp=dt.datetime(2024, 5, 1, 9, 1, tzinfo=UTC), user_agent=HEADLESS),
            dict(
                url="https://example.com/x",
                timestamp=dt.datetime(2024, 5, 1, 9, 2, tzinfo=UTC),
                user_agent="generic crawler",
            ),
            # the bot's view between two of the person's does not join them: same IP, other agent
            dict(url="https://example.com/y", timestamp=dt.datetime(2024, 5, 1, 9, 3, tzinfo=UTC)),
        ]
    )
    report = write_files([events], timezone="UTC", out_dir=tmp_path, ua_cache=None, today=dt.date(2026, 1, 1))
    assert report.bot_events == 2 and report.as_dict()["bot_events_dropped"] == 2
    assert "bot events dropped" in report.summary()
    assert table_rows(report, "imported_visitors") == [
        dict(date="2024-05-01", visitors=1, pageviews=2, bounces=0, visits=1, visit_duration=180)
    ]
    assert [r["page"] for r in table_rows(report, "imported_pages")] == ["/", "/y"]
    assert [r["browser"] for r in table_rows(report, "imported_browsers")] == ["Firefox"]


def test_opera_mini_is_stored_as_opera(tmp_path):
    events = frame(
        [dict(url="https://example.com/", timestamp=dt.datetime(2024, 5, 1, 9, 0, tzinfo=UTC), user_agent=OPERA_MINI)]
    )
    report = write_files([events], timezone="UTC", out_dir=tmp_path, ua_cache=None, today=dt.date(2026, 1, 1))
    assert [(r["browser"], r["browser_version"]) for r in table_rows(report, "imported_browsers")] == [
        ("Opera", "9.80")
    ]


def test_clients_behind_a_proxy_are_told_apart_by_the_forwarded_address(tmp_path):
    # nginx "main": the first X-Forwarded-For address is the client, as Plausible takes it.
    when = "[01/May/2024:09:00:00 +0000]"
    lines = [
        f'10.0.0.1 - - {when} "GET / HTTP/1.1" 200 512 "-" "{BROWSER}" "{client}, 10.0.0.1"'
        for client in ("8.8.8.8", "203.0.113.50")
    ]
    log = write_log(tmp_path / "proxy.log", lines)
    report = backfill(
        [log],
        "example.com",
        BackfillOptions(site_timezone="UTC", out_dir=tmp_path / "out"),
        ua_cache=None,
        outputs=OutputOptions(rejects=None, failed=None),
    )
    assert table_rows(report, "imported_visitors") == [
        dict(date="2024-05-01", visitors=2, pageviews=2, bounces=2, visits=2, visit_duration=0)
    ]
    # 8.8.8.8 is in the US; 203.0.113.50 (a documentation address) has no country: left out.
    assert table_rows(report, "imported_locations") == [
        dict(
            date="2024-05-01",
            country="US",
            region="",
            city=0,
            visitors=1,
            visits=1,
            visit_duration=0,
            bounces=1,
            pageviews=1,
        )
    ]


def test_since_and_until_take_dates_in_the_site_zone(tmp_path):
    log = write_log(tmp_path / "access.log", handmade_lines())
    report = backfill(
        [log],
        "example.com",
        BackfillOptions(site_timezone=TZ, out_dir=tmp_path / "out"),
        read=ReadOptions(since="2024-03-15", until="2024-03-15"),
        ua_cache=None,
        outputs=OutputOptions(rejects=None, failed=None),
    )
    # Only 03-15 in Berlin: C's 00:10 view (C's 23:50 view is left out, so a bounce) and D's two.
    assert table_rows(report, "imported_visitors") == [
        dict(date="2024-03-15", visitors=2, pageviews=3, bounces=1, visits=2, visit_duration=300)
    ]
    assert report.read.rows_filtered["date_window"] == 12  # every line of 03-14 and 03-16 but the broken one


def test_cli_since_until(tmp_path):
    from typer.testing import CliRunner

    log = write_log(tmp_path / "access.log", handmade_lines())
    out = tmp_path / "out"
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
            "--no-progress",
            "--rejects",
            str(tmp_path / "r.jsonl"),
            "--since",
            "2024-03-16T00:00:00+01:00",
            "--until",
            "2024-03-17",
        ],
    )
    assert result.exit_code == 0, result.output
    (visitors,) = out.glob("imported_visitors_20240316_20240316.csv")
    assert visitors.read_text().splitlines()[1] == '"2024-03-16",1,1,1,1,0'
    bad = CliRunner().invoke(
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
            "--since",
            "2024-03-17",
            "--until",
            "2024-03-16",
        ],
    )
    assert bad.exit_code == 2 and "--since must be before --until" in bad.output


def test_country_region_and_city_values_of_exports():
    assert [country_code(v) for v in ("DE", "de", "Germany", "United States", "Russia", "(not set)", "Atlantis")] == [
        "DE",
        "DE",
        "DE",
        "US",
        "RU",
        "",
        "",
    ]
    assert [region_code("DE", v) for v in ("DE-BY", "Bayern", "FR-PAC", "Bavaria", "")] == [
        "DE-BY",
        "DE-BY",
        "",
        "",
        "",
    ]
    assert (city_id("2867714"), city_id("Munich"), city_id("")) == (2867714, 0, 0)


@pytest.mark.parametrize(("mapping", "sample"), [("umami", "umami-events.csv"), ("ga4-bigquery", "ga4-events.jsonl")])
def test_exports_keep_their_countries(tmp_path, mapping, sample):
    report = backfill(
        [SAMPLES / sample],
        "example.com",
        BackfillOptions(site_timezone="UTC", out_dir=tmp_path / "out"),
        read=ReadOptions(mapping=mapping),
        ua_cache=None,
        outputs=OutputOptions(rejects=None, failed=None),
    )
    assert report.ok, report.problems
    locations = table_rows(report, "imported_locations")
    # Every visitor in both samples is in Germany ("DE" in Umami, "Germany" in GA4): all sessions.
    assert {r["country"] for r in locations} == {"DE"}
    assert sum(r["visits"] for r in locations) == report.sessions > 0


def test_a_day_of_bots_only_gets_no_row_of_its_own(tmp_path):
    # A session open at midnight is carried into 05-02, whose only event is a bot's: 05-02 has no
    # event Plausible would keep and no session ends on it, so the exporter writes no row for it.
    events = frame(
        [
            dict(url="https://example.com/", timestamp=dt.datetime(2024, 5, 1, 23, 50, tzinfo=UTC)),
            dict(url="https://example.com/", timestamp=dt.datetime(2024, 5, 2, 9, 0, tzinfo=UTC), user_agent=HEADLESS),
            dict(url="https://example.com/", timestamp=dt.datetime(2024, 5, 3, 9, 0, tzinfo=UTC)),
        ]
    )
    report = write_files([events], timezone="UTC", out_dir=tmp_path, ua_cache=None, today=dt.date(2026, 1, 1))
    assert [r["date"] for r in table_rows(report, "imported_visitors")] == ["2024-05-01", "2024-05-03"]
    assert report.bot_events == 1 and report.ok


def test_a_mapping_location_must_name_a_column(tmp_path):
    from importer import mapping

    good = tmp_path / "good.toml"
    good.write_text(
        'extends = "umami"\nname = "umami-geo"\n[input.extra]\nregion = "subdivision1"\n[visitor]\nregion = "region"\n',
        encoding="utf-8",
    )
    assert mapping.load(str(good)).visitor["region"] == "region"
    bad = tmp_path / "bad.toml"
    bad.write_text('extends = "umami"\nname = "umami-bad"\n[visitor]\ncity = "nowhere"\n', encoding="utf-8")
    with pytest.raises(mapping.MappingError, match=r"visitor\.city"):
        mapping.load(str(bad))


def test_a_404_with_its_pageview_is_an_extra_event_and_the_rows_add_up(tmp_path):
    """web-goals makes a 404 line two events (its pageview and the 404 goal): the JSON report,
    the printed summary and report.html count the second one in extra_events, so that
    rows_read = rows_invalid + sum(rows_filtered) + events - extra_events, as for send."""
    day = dt.datetime(2024, 3, 14, 10, 0, tzinfo=UTC)
    visitor = dict(ip="8.8.8.8", user_agent=BROWSER)
    lines = [
        combined_line(**visitor, when=day, target="/"),
        combined_line(**visitor, when=day + dt.timedelta(minutes=1), target="/missing-page", status=404),
        combined_line(**visitor, when=day + dt.timedelta(minutes=2), target="/app.js"),  # static asset
        "not a log line",
        combined_line(ip="8.8.4.4", user_agent=HEADLESS, when=day, target="/"),  # an event; backfill drops it
        combined_line(**visitor, when=day + dt.timedelta(days=2), target="/pricing"),
    ]
    log = write_log(tmp_path / "access.log", lines)
    mapping = tmp_path / "all-agents.toml"  # web-goals keeping non-human rows: the bot is an event
    mapping.write_text('name = "all-agents"\nextends = "web-goals"\n[filters]\nnon_human = false\n', encoding="utf-8")
    out, report_path = tmp_path / "out", tmp_path / "report.json"
    env = {**os.environ, "PYTHONPATH": str(REPO), "PLAUSIBLE_IMPORT_UA_CACHE": ""}
    args = ["backfill", str(log), "-d", "example.com", "--site-timezone", "UTC", "-o", str(out), "-m", str(mapping)]
    args += ["--no-progress", "--report", str(report_path), "--rejects", str(tmp_path / "rejects.jsonl")]
    done = subprocess.run(
        [sys.executable, "-m", "importer", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=240,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(report_path.read_text(encoding="utf-8"))
    assert (report["rows_read"], report["rows_invalid"], report["rows_filtered"]) == (6, 1, {"static_asset": 1})
    assert report["events_by_name"] == {"pageview": 4, "404": 1}
    assert (report["events"], report["extra_events"], report["bot_events_dropped"]) == (5, 1, 1)
    assert report["rows_read"] == (
        report["rows_invalid"] + sum(report["rows_filtered"].values()) + report["events"] - report["extra_events"]
    )
    # both events of the 404 line are in the files: its pageview in pages, its goal in custom events
    assert (report["pageviews"], report["custom_events"]) == (3, 1)
    assert report["events"] == report["pageviews"] + report["custom_events"] + report["bot_events_dropped"]
    assert re.search(r"^\s*extra events \(second event of a row\)\s+1\s*$", done.stderr, re.MULTILINE), done.stderr
    page = (out / "report.html").read_text(encoding="utf-8")
    row = '<td class="value">extra events (second event of a row)</td><td class="num"><span title="1">1</span></td>'
    assert row in page
