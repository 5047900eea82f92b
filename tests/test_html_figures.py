"""The HTML report's figures: Plausible's formulas over imported tables, worked by hand."""

from __future__ import annotations

import csv
import datetime as dt
from pathlib import Path

from importer.backfill import BackfillReport
from importer.html import backfill_page
from importer.html.backfill import cut_notices, kept_range
from importer.html.chart import Series, interval_for, roll_up
from importer.html.fmt import duration, short_number
from importer.html.imported import breakdowns, clip, daily, figures, load

HEADERS = {
    "imported_visitors": ["date", "visitors", "pageviews", "bounces", "visits", "visit_duration"],
    "imported_sources": [
        "date",
        "source",
        "referrer",
        "utm_source",
        "utm_medium",
        "utm_campaign",
        "utm_content",
        "utm_term",
        "pageviews",
        "visitors",
        "visits",
        "visit_duration",
        "bounces",
    ],
    "imported_pages": ["date", "hostname", "page", "visits", "visitors", "pageviews"],
    "imported_entry_pages": ["date", "entry_page", "visitors", "entrances", "visit_duration", "bounces", "pageviews"],
    "imported_exit_pages": ["date", "exit_page", "visitors", "visit_duration", "exits", "bounces", "pageviews"],
    "imported_custom_events": ["date", "name", "link_url", "path", "visitors", "events"],
    "imported_locations": [
        "date",
        "country",
        "region",
        "city",
        "visitors",
        "visits",
        "visit_duration",
        "bounces",
        "pageviews",
    ],
    "imported_devices": ["date", "device", "visitors", "visits", "visit_duration", "bounces", "pageviews"],
    "imported_browsers": [
        "date",
        "browser",
        "browser_version",
        "visitors",
        "visits",
        "visit_duration",
        "bounces",
        "pageviews",
    ],
    "imported_operating_systems": [
        "date",
        "operating_system",
        "operating_system_version",
        "visitors",
        "visits",
        "visit_duration",
        "bounces",
        "pageviews",
    ],
}
START, END = dt.date(2024, 5, 1), dt.date(2024, 5, 3)


def write_tables(out: Path, rows: dict[str, list[list]], start: dt.date = START, end: dt.date = END) -> dict:
    """The ten files as Plausible reads them, each with the rows given (others: header only)."""
    out.mkdir(parents=True, exist_ok=True)
    files = {}
    for table, header in HEADERS.items():
        path = out / f"{table}_{start:%Y%m%d}_{end:%Y%m%d}.csv"
        with open(path, "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle, quoting=csv.QUOTE_NONNUMERIC)
            writer.writerow(header)
            writer.writerows(rows.get(table, []))
        files[table] = str(path)
    return files


HAND = {
    # date, visitors, pageviews, bounces, visits, visit_duration
    "imported_visitors": [
        ["2024-05-01", 10, 30, 4, 12, 600],
        ["2024-05-02", 5, 9, 3, 6, 300],
        ["2024-05-03", 1, 1, 1, 1, 0],
    ],
    "imported_sources": [
        ["2024-05-01", "", "", "", "", "", "", "", 10, 4, 5, 100, 3],
        ["2024-05-01", "Google", "google.com", "", "", "spring", "", "", 20, 6, 7, 500, 1],
        ["2024-05-02", "Google", "google.com", "", "", "", "", "", 9, 5, 6, 300, 3],
    ],
    "imported_entry_pages": [["2024-05-01", "/", 8, 10, 500, 4, 25], ["2024-05-02", "/", 2, 3, 100, 0, 6]],
    "imported_devices": [
        ["2024-05-01", "Desktop", 6, 7, 0, 0, 0],
        ["2024-05-01", "Mobile", 2, 2, 0, 0, 0],
        ["2024-05-02", "", 2, 2, 0, 0, 0],
    ],
}


def test_top_figures_worked_by_hand(tmp_path):
    frames = load(write_tables(tmp_path, HAND))
    got = figures(frames["imported_visitors"])
    assert (got.visitors, got.visits, got.pageviews) == (16, 19, 40)
    assert got.views_per_visit == 2.11  # 40 / 19 = 2.105.. -> 2.11
    assert got.bounce_rate == 42  # 100 * 8 / 19 = 42.1
    assert got.average_duration == 47  # 900 / 19 = 47.4 seconds


def test_native_start_cuts_the_figures(tmp_path):
    frames = load(write_tables(tmp_path, HAND))
    kept = kept_range(START, END, dt.date(2024, 5, 2))
    assert kept == (START, dt.date(2024, 5, 2))
    got = figures(clip(frames, *kept)["imported_visitors"])
    assert (got.visitors, got.visits, got.pageviews, got.bounce_rate, got.average_duration) == (15, 18, 39, 39, 50)
    assert kept_range(START, END, dt.date(2024, 4, 30)) is None
    assert kept_range(START, END, None) == (START, END)
    assert "Plausible will import nothing" in cut_notices(START, END, dt.date(2024, 4, 30))[0]
    assert "nothing is cut" in cut_notices(START, END, dt.date(2024, 5, 4))[0]
    assert "the 1 day(s) after it in the files are dropped" in cut_notices(START, END, dt.date(2024, 5, 2))[0]
    assert cut_notices(START, END, None) == []


def test_breakdowns_worked_by_hand(tmp_path):
    lists = {b.title: b for b in breakdowns(load(write_tables(tmp_path, HAND)))}
    # Google: 11 visitors, 13 visits, 4 bounces (31 %), 800 s / 13 = 61.5 -> 62 s
    assert lists["Top sources"].rows == (("Google", (11, 31, 62)), ("Direct / None", (4, 60, 20)))
    assert lists["UTM campaigns"].rows == (("spring", (6, 14, 71)),)  # 1 / 7 bounces, 500 / 7 s
    # entry page "/": 13 entrances, 4 bounces (31 %), 600 s / 13 = 46 s
    assert lists["Entry pages"].rows == (("/", (10, 13, 31, 46)),)
    assert lists["Devices"].rows == (("Desktop", (6, 60.0)), ("(not set)", (2, 20.0)), ("Mobile", (2, 20.0)))
    assert lists["Top pages"].rows == ()


def test_daily_series_fills_missing_days(tmp_path):
    frames = load(write_tables(tmp_path, {"imported_visitors": [["2024-05-03", 2, 5, 0, 2, 10]]}))
    assert daily(frames["imported_visitors"], START, END) == [(START, 0, 0), (dt.date(2024, 5, 2), 0, 0), (END, 2, 5)]


def test_people_numbers():
    assert [short_number(n) for n in (0, 999, 1000, 1234, 9_960, 12_345, 999_999, 1_250_000, 2.5)] == [
        "0",
        "999",
        "1k",
        "1.2k",
        "10k",
        "12k",
        "1M",
        "1.2M",
        "2.50",
    ]
    assert [duration(s) for s in (0, 45, 200, 3725)] == ["0s", "45s", "3m 20s", "1h 2m"]


def test_roll_up_by_week_and_month():
    days = [dt.date(2023, 1, 1) + dt.timedelta(days=i) for i in range(365)]
    ones = Series("visitors", "Visitors", tuple(1 for _ in days))
    assert interval_for(100) == "day" and interval_for(101) == "week" and interval_for(3660) == "month"
    weeks, (summed,) = roll_up(days, [ones], "week")
    # 2023-01-01 is a Sunday: a one-day first week, then Monday-to-Sunday weeks
    assert weeks[0].start == weeks[0].end == dt.date(2023, 1, 1)
    assert weeks[1].start == dt.date(2023, 1, 2) and weeks[1].end == dt.date(2023, 1, 8)
    assert len(weeks) == 53 and summed.values[0] == 1 and summed.values[1] == 7 and sum(summed.values) == 365
    months, (by_month,) = roll_up(days, [ones], "month")
    assert len(months) == 12 and by_month.values[1] == 28


def test_every_value_is_escaped(tmp_path):
    hostile = '<script>alert(1)</script>"><img src=x onerror=alert(1)>'
    rows = {
        "imported_visitors": [["2024-05-01", 1, 1, 0, 1, 5]],
        "imported_sources": [["2024-05-01", hostile, hostile, hostile, hostile, hostile, "", "", 1, 1, 1, 5, 0]],
        "imported_pages": [["2024-05-01", "example.com", hostile, 1, 1, 1]],
    }
    report = BackfillReport(out_dir=hostile, start=START, end=END, files=write_tables(tmp_path, rows))
    report.warnings.append(hostile)
    report.read.sources.append((hostile, hostile))
    html = backfill_page(report)
    assert "<script>" not in html and "<img" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;&quot;&gt;&lt;img src=x onerror=alert(1)&gt;" in html


def test_cut_periods_say_how_many_days_they_hold():
    from importer.html.chart import Period, period_label

    assert period_label(Period(dt.date(2024, 1, 1), dt.date(2024, 1, 7)), "week") == "week 2024-01-01 .. 2024-01-07"
    assert (
        period_label(Period(dt.date(2024, 1, 1), dt.date(2024, 1, 1)), "week")
        == "week 2024-01-01 .. 2024-01-01 (1 day)"
    )
    assert period_label(Period(dt.date(2024, 2, 1), dt.date(2024, 2, 29)), "month") == "February 2024"
    assert period_label(Period(dt.date(2024, 2, 10), dt.date(2024, 2, 29)), "month") == "February 2024 (20 days of it)"


def test_a_backfill_without_events_still_gets_a_page():
    report = BackfillReport(out_dir="out")
    report.warnings.append("no events: nothing to import, no files written")
    html = backfill_page(report)
    assert "<h1>Plausible import: nothing to import</h1>" in html
    assert "no events: nothing to import, no files written" in html
