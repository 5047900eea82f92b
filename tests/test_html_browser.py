"""The HTML reports opened in a real headless browser (Debian's Chromium driven by Playwright).

Each test checks that nothing runs, nothing is fetched and nothing complains, and that what
the page shows equals what the ten files (or the run) say. Screenshots are written under the
test's tmp dir and, when PLAUSIBLE_IMPORT_ARTEFACTS=DIR is set, into DIR.
"""

from __future__ import annotations

import csv
import datetime as dt
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from conftest import IPHONE, combined_line, write_log
from test_html_figures import write_tables

from importer.backfill import BackfillReport
from importer.html import backfill_page, run_page, write_page
from importer.html.fmt import short_number
from importer.report import Report

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
REPO = Path(__file__).resolve().parents[1]
PWNED = "window.__pwned=1"
HOSTILE = [
    f"<script>{PWNED}</script>",
    f'"><img src=x onerror="{PWNED}">',
    f"javascript:{PWNED}",
    f"'><svg onload={PWNED}>",
    f"</title></style><script>{PWNED}</script>",
]


@pytest.fixture(scope="module")
def browser() -> Iterator:
    if not CHROMIUM.exists():
        pytest.skip("Debian's Chromium is not installed (apt-get install -y chromium)")
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="Playwright for Python is not installed (pip install playwright)"
    )
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield launched
        launched.close()


@dataclass
class Opened:
    page: object
    problems: list[str] = field(default_factory=list)  # console errors, page errors, dialogs
    requests: list[str] = field(default_factory=list)  # anything fetched besides the file itself
    stopped_by_csp: list[str] = field(default_factory=list)  # requests the page's CSP refused to make


def open_report(browser, path: Path, width: int = 1280, dark: bool = False) -> Opened:
    context = browser.new_context(viewport={"width": width, "height": 900}, color_scheme="dark" if dark else "light")
    page = context.new_page()
    url = path.resolve().as_uri()
    opened = Opened(page)
    page.on(
        "console",
        lambda m: opened.problems.append(f"console {m.type}: {m.text}") if m.type in ("error", "warning") else None,
    )
    page.on("pageerror", lambda exc: opened.problems.append(f"page error: {exc}"))
    page.on("dialog", lambda d: (opened.problems.append(f"dialog: {d.message}"), d.dismiss()))
    page.on("request", lambda r: opened.requests.append(r.url) if r.url != url else None)
    page.on("requestfailed", lambda r: opened.stopped_by_csp.append(r.url) if r.failure == "csp" else None)
    context.route("**/*", lambda route: route.continue_() if route.request.url == url else route.abort())
    page.goto(url)
    page.wait_for_load_state("load")
    page.wait_for_timeout(200)  # let a delayed handler (onerror of a broken image) fire, if any
    return opened


def assert_clean(opened: Opened) -> None:
    assert opened.problems == []
    assert opened.requests == []
    assert opened.page.evaluate("window.__pwned") is None
    assert opened.page.locator("script, img, iframe, object, embed, a[href]").count() == 0


def screenshots(browser, path: Path, name: str, tmp_path: Path) -> list[Path]:
    """Desktop and phone screenshots, kept as test artefacts."""
    shots = []
    for width, label in ((1280, "desktop"), (390, "phone")):
        opened = open_report(browser, path, width)
        assert_clean(opened)
        shot = tmp_path / f"{name}-{label}.png"
        opened.page.screenshot(path=str(shot), full_page=True)
        opened.page.context.close()
        shots.append(shot)
        artefacts = os.environ.get("PLAUSIBLE_IMPORT_ARTEFACTS")
        if artefacts:
            Path(artefacts).mkdir(parents=True, exist_ok=True)
            shutil.copy(shot, Path(artefacts) / shot.name)
    return shots


def run_cli(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run(
        [sys.executable, "-m", "importer", *args], capture_output=True, text=True, env=env, check=False, timeout=240
    )


def hostile_log(path: Path, days: int, start: dt.date = dt.date(2024, 5, 1)) -> Path:
    """A few visits a day; paths, referrers and UTM values carry markup and script URLs."""
    lines = []
    for day in range(days):
        when = dt.datetime.combine(start + dt.timedelta(days=day), dt.time(10), dt.UTC)
        lines.append(
            combined_line(
                ip=f"81.2.69.{day % 200 + 1}",
                when=when,
                target=f"/<script>{PWNED}</script>"
                "?utm_campaign=%3Cscript%3Ewindow.__pwned%3D1%3C%2Fscript%3E"
                "&utm_source=%22%3E%3Cimg%20src%3Dx%20onerror%3Dwindow.__pwned%3D1%3E",
                referrer=f"javascript:{PWNED}",
            )
        )
        lines.append(
            combined_line(
                ip=f"81.2.70.{day % 200 + 1}",
                when=when + dt.timedelta(minutes=3),
                target=f"/a'><svg/onload={PWNED}>",
                user_agent=IPHONE,
                referrer=f"https://evil.example/<script>{PWNED}</script>",
            )
        )
        lines.append(
            combined_line(
                ip=f"81.2.70.{day % 200 + 1}", when=when + dt.timedelta(minutes=5), target="/pricing", user_agent=IPHONE
            )
        )
    lines.append(f'"><img src=x onerror={PWNED}> not a log line <script>{PWNED}</script>')
    return write_log(path, lines)


def sums_from_files(out: Path, last: dt.date) -> dict[str, int]:
    """The imported_visitors totals up to ``last``, read straight from the CSV file."""
    (path,) = out.glob("imported_visitors_*.csv")
    totals = dict.fromkeys(("visitors", "pageviews", "bounces", "visits", "visit_duration"), 0)
    with open(path, newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            if dt.date.fromisoformat(row["date"]) <= last:
                for key in totals:
                    totals[key] += int(row[key])
    return totals


def figure(opened: Opened, title: str) -> tuple[str, str]:
    """(exact value, value shown) of a top figure."""
    cell = opened.page.locator(f'dd[data-figure="{title}"]')
    return cell.get_attribute("data-exact"), cell.inner_text()


def test_backfill_report_in_the_browser(browser, tmp_path):
    log = hostile_log(tmp_path / "access.log", days=10)
    out = tmp_path / "import"
    native_start = dt.date(2024, 5, 8)
    done = run_cli(
        "backfill",
        str(log),
        "-d",
        "example.com",
        "--site-timezone",
        "UTC",
        "-o",
        str(out),
        "--no-progress",
        "--rejects",
        str(tmp_path / "rejects.jsonl"),
        "--native-start",
        str(native_start),
    )
    assert done.returncode in (0, 1), done.stderr
    report = out / "report.html"
    assert f"report: {report}" in done.stderr
    opened = open_report(browser, report)
    assert_clean(opened)
    page = opened.page
    starts = [page.locator("g.pt").nth(i).get_attribute("data-start") for i in range(page.locator("g.pt").count())]
    assert starts == [str(dt.date(2024, 5, 1) + dt.timedelta(days=i)) for i in range(10)]
    assert page.locator("line.cut").count() == 1
    assert page.locator("table.daily tbody tr").count() == 10
    totals = sums_from_files(out, native_start)
    visits = totals["visits"]
    expected = {
        "Unique visitors": totals["visitors"],
        "Total visits": visits,
        "Total pageviews": totals["pageviews"],
        "Views per visit": round(totals["pageviews"] / visits, 2),
        "Bounce rate": round(100 * totals["bounces"] / visits),
        "Visit duration": round(totals["visit_duration"] / visits),
    }
    assert visits == 16  # 2 visits a day, 8 days kept of 10
    for title, value in expected.items():
        assert figure(opened, title)[0] == str(value), title
    assert figure(opened, "Total pageviews")[1] == short_number(expected["Total pageviews"])
    text = page.inner_text("body")
    for value in (
        f"/<script>{PWNED}</script>",
        f"/a'><svg/onload={PWNED}>",
        f"<script>{PWNED}</script>",
        f'"><img src=x onerror={PWNED}> not a log line',
    ):
        assert value in text  # shown as text, not run
    screenshots(browser, report, "backfill-10-days", tmp_path)


def test_hostile_values_in_every_field(browser, tmp_path):
    """Fields the logs cannot reach directly (countries, devices, event names...) written into the files."""
    rows: dict[str, list[list]] = {"imported_visitors": [["2024-05-01", 3, 3, 0, 3, 30]]}
    for i, bad in enumerate(HOSTILE):
        day = "2024-05-0" + str(i % 3 + 1)
        rows.setdefault("imported_sources", []).append([day, bad, bad, bad, bad, bad, bad, bad, 1, 1, 1, 10, 0])
        rows.setdefault("imported_pages", []).append([day, bad, bad, 1, 1, 1])
        rows.setdefault("imported_entry_pages", []).append([day, bad, 1, 1, 10, 0, 1])
        rows.setdefault("imported_exit_pages", []).append([day, bad, 1, 10, 1, 0, 1])
        rows.setdefault("imported_custom_events", []).append([day, bad, bad, bad, 1, 1])
        for table in ("imported_locations", "imported_devices", "imported_browsers", "imported_operating_systems"):
            extra = [bad, 0] if table == "imported_locations" else [bad] if table != "imported_devices" else []
            rows.setdefault(table, []).append([day, bad, *extra, 1, 1, 10, 0, 1])
    files = write_tables(tmp_path / "import", rows)
    report = BackfillReport(out_dir=HOSTILE[0], start=dt.date(2024, 5, 1), end=dt.date(2024, 5, 3), files=files)
    report.read.sources.append((HOSTILE[1], HOSTILE[2]))
    report.read.rows_filtered[HOSTILE[3]] = 1
    report.read.events_by_name[HOSTILE[4]] = 1
    report.warnings.extend(HOSTILE)
    report.problems.append(HOSTILE[0])
    path = write_page(tmp_path / "report.html", backfill_page(report))
    opened = open_report(browser, path)
    assert_clean(opened)
    text = opened.page.inner_text("body")
    for bad in HOSTILE:
        assert bad in text
    for title in (
        "Top sources",
        "UTM campaigns",
        "Top pages",
        "Entry pages",
        "Exit pages",
        "Countries",
        "Devices",
        "Browsers",
        "Operating systems",
        "Goals (custom events)",
    ):
        assert opened.page.locator(f'table[data-breakdown="{title}"] tbody tr').count() == len(HOSTILE), title


def test_send_reports_dry_and_real(browser, tmp_path, receiver):
    log = hostile_log(tmp_path / "access.log", days=4, start=dt.date(2023, 1, 1))
    dry = run_cli(
        "send",
        str(log),
        "-d",
        "example.com",
        "--dry-run",
        "--no-progress",
        "--html",
        str(tmp_path / "dry.html"),
        "--rejects",
        str(tmp_path / "r1.jsonl"),
    )
    assert dry.returncode == 0, dry.stderr
    opened = open_report(browser, tmp_path / "dry.html")
    assert_clean(opened)
    page = opened.page
    assert figure(opened, "Events")[0] == "12" and figure(opened, "Sent")[0] == "0"
    points = page.locator("g.pt")
    assert points.count() == 4
    assert [points.nth(i).get_attribute("data-events") for i in range(4)] == ["3", "3", "3", "3"]
    assert "Plausible will date every event at the moment it arrives" in page.inner_text("body")
    real = run_cli(
        "send",
        str(log),
        "-d",
        "example.com",
        "--endpoint",
        receiver.endpoint,
        "--replay-history",
        "--no-progress",
        "--no-state",
        "--rate",
        "0",
        "--html",
        str(tmp_path / "sent.html"),
        "--rejects",
        str(tmp_path / "r2.jsonl"),
        "--failed",
        str(tmp_path / "f.jsonl"),
    )
    assert real.returncode == 0, real.stderr
    opened = open_report(browser, tmp_path / "sent.html")
    assert_clean(opened)
    assert figure(opened, "Accepted")[0] == str(receiver.stats.accepted) == "12"
    assert figure(opened, "Failed")[0] == "0"
    screenshots(browser, tmp_path / "sent.html", "send", tmp_path)


def test_preview_report(browser, tmp_path):
    log = hostile_log(tmp_path / "access.log", days=3)
    done = run_cli("preview", str(log), "--html", str(tmp_path / "preview.html"))
    assert done.returncode == 0, done.stderr
    opened = open_report(browser, tmp_path / "preview.html")
    assert_clean(opened)
    assert figure(opened, "Events")[0] == "9"
    assert opened.page.locator("g.pt").count() == 3
    assert "rows invalid" in opened.page.inner_text("body")


def test_run_report_hostile_names(browser, tmp_path):
    report = Report(dry_run=False, accepted=2, rejected=1)
    for i, bad in enumerate(HOSTILE):
        report.events_by_name[bad] += 1
        report.events_by_day[(dt.date(2024, 1, 1 + i), bad)] += 1
        report.sources.append((bad, bad))
        report.notices.append(bad)
    path = write_page(tmp_path / "run.html", run_page(report, HOSTILE[0], HOSTILE[1]))
    opened = open_report(browser, path, dark=True)
    assert_clean(opened)
    assert opened.page.title() == HOSTILE[0]
    assert opened.page.locator("g.pt").count() == len(HOSTILE)


def long_range_files(out: Path, start: dt.date, days: int) -> BackfillReport:
    """Ten files over ``days`` days (written directly: a backfill of years of logs takes minutes)."""
    end = start + dt.timedelta(days=days - 1)
    rows: dict[str, list[list]] = {}
    for i in range(days):
        day = str(start + dt.timedelta(days=i))
        rows.setdefault("imported_visitors", []).append([day, 2, 3, 1, 2, 60])
        for page in ("/", f"/blog/post-{i % 40}"):
            rows.setdefault("imported_pages", []).append([day, "example.com", page, 1, 1, 1])
        rows.setdefault("imported_sources", []).append(
            [day, "Google", "google.com", "", "", "", "", "", 3, 2, 2, 60, 1]
        )
    files = write_tables(out, rows, start, end)
    return BackfillReport(out_dir=str(out), start=start, end=end, files=files)


def test_a_year_rolls_up_by_week_and_stays_small(browser, tmp_path):
    report = long_range_files(tmp_path / "import", dt.date(2023, 1, 2), 365)  # a Monday
    path = write_page(tmp_path / "year.html", backfill_page(report, native_start=dt.date(2023, 10, 1)))
    assert path.stat().st_size < 1_000_000
    opened = open_report(browser, path)
    assert_clean(opened)
    points = opened.page.locator("g.pt")
    assert points.count() == 53  # 52 whole weeks and the last day, 2024-01-01
    assert points.nth(1).get_attribute("data-start") == "2023-01-09"
    assert points.nth(1).get_attribute("data-pageviews") == "21"  # 3 a day
    assert opened.page.locator("table.daily tbody tr").count() == 365
    kept_days = (dt.date(2023, 10, 1) - dt.date(2023, 1, 2)).days + 1
    assert figure(opened, "Unique visitors")[0] == str(2 * kept_days)
    assert figure(opened, "Bounce rate")[0] == "50"
    assert figure(opened, "Visit duration")[0] == "30"
    screenshots(browser, path, "backfill-year", tmp_path)


def test_ten_years_roll_up_by_month(browser, tmp_path):
    report = long_range_files(tmp_path / "import", dt.date(2015, 1, 1), 3653)
    path = write_page(tmp_path / "ten-years.html", backfill_page(report))
    opened = open_report(browser, path)
    assert_clean(opened)
    points = opened.page.locator("g.pt")
    assert points.count() == 120
    assert points.nth(1).get_attribute("data-start") == "2015-02-01"
    assert points.nth(1).get_attribute("data-visitors") == "56"  # 2 a day in February 2015
    assert figure(opened, "Total pageviews")[0] == str(3 * 3653)


def test_the_content_security_policy_stops_markup_that_escaping_missed(browser, tmp_path):
    """The second line: raw markup put into the page on purpose still neither runs nor loads."""
    from importer.html.page import page

    raw = (
        f'<script>{PWNED}</script><img src=x onerror="{PWNED}"><svg onload="{PWNED}"></svg>'
        '<img src="https://example.com/beacon.png"><p style="display:none">styled</p>'
    )
    path = write_page(tmp_path / "raw.html", page("raw", [raw]))
    opened = open_report(browser, path)
    assert opened.page.evaluate("window.__pwned") is None
    assert (
        sorted(opened.requests)
        == sorted(opened.stopped_by_csp)
        == sorted(["https://example.com/beacon.png", (tmp_path / "x").as_uri()])
    )  # refused by the CSP: nothing left
    assert any("Content Security Policy" in problem for problem in opened.problems)
    assert opened.page.locator("p").first.is_visible()  # the inline style attribute was refused too
    assert opened.page.locator("h1, .figure").count() == 0 and opened.page.locator("footer").is_visible()
