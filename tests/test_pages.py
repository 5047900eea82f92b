"""`web` counts what Plausible's script would count; `web-goals` adds one File Download per
download and a 404 with its pageview. Exact events, from a real log through the real CLI."""

from __future__ import annotations

import datetime as dt
import json
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from conftest import BROWSER, IPHONE, combined_line, write_log

from importer import send
from importer.options import DeliveryOptions, ReadOptions

UTC = dt.UTC
T = dt.datetime(2024, 3, 14, 10, 0, tzinfo=UTC)
PDF = "/files/report.pdf"


def at(minutes: float) -> dt.datetime:
    return T + dt.timedelta(minutes=minutes)


def line(minute: float, target: str, status: int = 200, agent: str = BROWSER, ip: str = "203.0.113.10") -> str:
    return combined_line(ip=ip, when=at(minute), target=target, status=status, user_agent=agent)


PAGES = [
    line(0, "/"),
    line(0.1, "/docs/guide.html"),
    line(0.2, "/users/jane.doe"),  # an unknown extension: a page
    line(0.3, "/v1.2-release"),
    line(0.4, "/index.php?p=2"),
]
# One reader of one PDF: the first request, range requests within 30 minutes of the one before
# (the last 29 minutes after its predecessor, 39 after the first), then one after a 41-minute gap.
PDF_READS = [line(1, PDF), line(1.05, PDF, 206), line(10, PDF, 206), line(39, PDF, 206), line(80, PDF, 206)]
OTHERS = [
    line(1.5, PDF, 206, agent=IPHONE),  # another visitor (same IP, another agent): their own download
    line(2, "/video.mp4", 206, ip="198.51.100.7"),
    line(3, "/app.js"),
    line(3.1, "/matomo.php?idsite=1&rec=1"),
    line(3.2, "/g/collect?v=2"),
    line(3.3, "/wp-admin/admin-ajax.php"),
    line(3.4, "/blog/feed/"),
    line(3.5, "/feed"),
    line(3.6, "/.well-known/security.txt"),
    line(3.7, "/robots.txt"),
    line(3.8, "/sitemap.xml"),
    line(3.9, "/healthz"),
    line(4, "/data/export.json"),
    line(4.1, "/debug.log"),
    line(5, "/missing-page", 404),
    line(6, "/pricing", 206),  # a range request of a page: not a page load
]
LOG = PAGES + PDF_READS + OTHERS


def url(path: str) -> str:
    return "https://example.com" + path


PAGEVIEWS = [
    ("pageview", url(p), None) for p in ("/", "/docs/guide.html", "/users/jane.doe", "/v1.2-release", "/index.php?p=2")
]
# robots and sitemap files stay static_asset, as before (static_files); the other endpoints: endpoint
WEB_FILTERED = {"partial_content": 7, "not_a_page": 3, "static_asset": 3, "endpoint": 7, "status": 1}
DOWNLOADS = [
    ("File Download", url(PDF), {"url": url(PDF)}),  # minute 1
    ("File Download", url(PDF), {"url": url(PDF)}),  # minute 1.5, the other agent
    ("File Download", url("/video.mp4"), {"url": url("/video.mp4")}),
    ("File Download", url(PDF), {"url": url(PDF)}),  # minute 80, after the gap
]
NOT_FOUND = [("pageview", url("/missing-page"), None), ("404", url("/missing-page"), {"path": "/missing-page"})]


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "importer", *args], capture_output=True, text=True, timeout=120, check=False
    )


def dry_run(tmp_path: Path, mapping: str, *logs: Path) -> tuple[list[tuple], dict]:
    out, report = tmp_path / f"{mapping}.jsonl", tmp_path / f"{mapping}.json"
    done = run_cli(
        "send",
        *map(str, logs),
        "-d",
        "example.com",
        "--dry-run",
        "--mapping",
        mapping,
        "-o",
        str(out),
        "--report",
        str(report),
    )
    assert done.returncode == 0, done.stderr
    events = [json.loads(text) for text in out.read_text().splitlines()]
    return [(e["name"], e["url"], e["props"]) for e in events], json.loads(report.read_text())


def balanced(report: dict) -> bool:
    """The accounting invariant: every row is invalid, filtered or an event; extra events on top."""
    return report["rows_read"] == (
        report["rows_invalid"] + sum(report["rows_filtered"].values()) + report["events"] - report["extra_events"]
    )


def test_web_counts_pages_only_each_reason_counted(tmp_path):
    events, report = dry_run(tmp_path, "web", write_log(tmp_path / "access.log", LOG))
    assert events == PAGEVIEWS
    assert report["rows_filtered"] == WEB_FILTERED
    assert (report["events"], report["extra_events"]) == (5, 0)
    assert balanced(report)


def test_web_goals_one_download_per_download_and_a_404_with_its_pageview(tmp_path):
    events, report = dry_run(tmp_path, "web-goals", write_log(tmp_path / "access.log", LOG))
    assert events == PAGEVIEWS + DOWNLOADS[:1] + DOWNLOADS[3:] + DOWNLOADS[1:3] + NOT_FOUND
    # the PDF's 3 range requests within the gap; 206 of a page, not_a_page of files no download
    assert report["rows_filtered"] == {
        "same_download": 3,
        "partial_content": 1,
        "not_a_page": 2,
        "static_asset": 3,
        "endpoint": 7,
    }
    assert report["events_by_name"] == {"pageview": 6, "File Download": 4, "404": 1}
    assert (report["events"], report["extra_events"]) == (11, 1)
    assert balanced(report)


def test_a_download_split_across_inputs_stays_one(tmp_path):
    first = write_log(tmp_path / "a.log", PDF_READS[:3])
    second = write_log(tmp_path / "b.log", PDF_READS[3:])
    events, report = dry_run(tmp_path, "web-goals", first, second)
    assert events == [DOWNLOADS[0], DOWNLOADS[3]]
    assert report["rows_filtered"] == {"same_download": 3}
    assert balanced(report)


def test_send_delivers_the_404_pageview_first_and_counts_both(tmp_path, receiver):
    log = write_log(tmp_path / "access.log", [line(0, "/"), line(5, "/missing-page", 404), line(6, PDF)])
    report = send(
        [log],
        "example.com",
        read=ReadOptions(mapping="web-goals"),
        delivery=DeliveryOptions(endpoint=receiver.endpoint, rate=0, replay_history=True),
    )
    received = [(e["name"], e["url"]) for e in receiver.events]
    assert received == [
        ("pageview", url("/")),
        ("pageview", url("/missing-page")),
        ("404", url("/missing-page")),
        ("File Download", url(PDF)),
    ]
    assert report.events == report.accepted == 4
    assert report.extra_events == 1
    assert report.rows_read == report.rows_invalid + sum(report.rows_filtered.values()) + report.events - 1
    assert re.search(r"^extra events \(second event of a row\) +1$", report.summary(), re.MULTILINE)


def test_mappings_web_shows_the_lists(tmp_path):
    shown = run_cli("mappings", "web")
    assert shown.returncode == 0, shown.stderr
    lines = dict(text.split(": ", 1) for text in shown.stdout.splitlines() if ": " in text)
    assert lines["drop 206 Partial Content"] == "yes"
    assert {"pdf", "zip", "mp4", "json", "txt", "xml"} <= set(
        lines["files that are not pages (not_page_extensions)"].split(", ")
    )
    endpoints = lines["endpoints that are not pages (endpoints, globs)"].split(", ")
    assert {"/matomo.php", "/g/collect", "**/wp-admin/admin-ajax.php", "/.well-known/**", "/robots.txt"} <= set(
        endpoints
    )
    goals = run_cli("mappings", "web-goals").stdout
    assert "downloads: 'File Download' for 7z, apk," in goals and "(requests at most 30 minutes apart)" in goals
    assert '  1. file download: the [downloads] table -> \'File Download\'; props {"url": "{url}"}' in goals
    assert (
        '  2. 404 page: when method ["GET"], status ["404"] -> \'404\'; props {"path": "{path}"}; '
        "also the pageview, first"
    ) in goals


@pytest.mark.parametrize("key", ["endpoints_add", "not_page_extensions_add"])
def test_an_extending_file_adds_to_the_lists(tmp_path, key):
    value = '"/api/**"' if key == "endpoints_add" else '"php"'
    custom = tmp_path / "mine.toml"
    custom.write_text(f'extends = "web"\n[filters]\n{key} = [{value}]\n', encoding="utf-8")
    log = write_log(
        tmp_path / "access.log",
        [line(0, "/"), line(1, "/api/users"), line(2, "/index.php"), line(3, "/feed"), line(4, "/a.pdf")],
    )
    events, report = dry_run(tmp_path, str(custom), log)
    added = "endpoint" if key == "endpoints_add" else "not_a_page"
    assert Counter(report["rows_filtered"]) == Counter({"endpoint": 1, "not_a_page": 1}) + Counter({added: 1})
    assert len(events) == 2


def test_additions_add_up_along_the_extends_chain(tmp_path):
    from importer.mapping import load

    (tmp_path / "middle.toml").write_text(
        'extends = "web-goals"\n[filters]\nendpoints_add = ["/a"]\n[downloads]\nextensions_add = ["ipynb"]\n',
        encoding="utf-8",
    )
    (tmp_path / "top.toml").write_text('extends = "middle.toml"\n[filters]\nendpoints_add = ["/b"]\n', encoding="utf-8")
    top, web = load(str(tmp_path / "top.toml")), load("web")
    assert set(top.endpoints) - set(web.endpoints) == {"^/a$", "^/b$"}
    assert top.downloads is not None and "ipynb" in top.downloads.extensions and "pdf" in top.downloads.extensions


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ("[downloads]\nextensions = []", "'downloads.extensions' must list at least one file extension"),
        ("[downloads]\nextensions = ['p.df']", "'downloads.extensions' 'p.df' is not a file extension"),
        (
            "[downloads]\nextensions = ['pdf']\nsession_gap_minutes = -1",
            "'downloads.session_gap_minutes' must be 0 or more",
        ),
        ("[downloads]\nextensions = ['pdf']\nname = ' '", "'downloads.name' must be 1 to 120 characters"),
        ("[[rules]]\ndrop = true\nalso_pageview = true", "'rules[0]' drops rows, so it may not also set"),
        ("[filters]\nendpoints = '/x'", "'filters.endpoints' must be a list of a string"),
    ],
)
def test_bad_downloads_and_lists_name_the_file_and_key(tmp_path, table, message):
    path = tmp_path / "bad.toml"
    path.write_text(table + "\n", encoding="utf-8")
    done = run_cli(
        "send",
        str(write_log(tmp_path / "a.log", [line(0, "/")])),
        "-d",
        "example.com",
        "--dry-run",
        "--mapping",
        str(path),
    )
    assert done.returncode == 2
    assert f"{path}: {message}" in done.stderr
