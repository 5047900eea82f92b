"""The log layouts people actually run (issue 15): each fixture in tests/fixtures/formats/layouts/
goes through a dry run, and the events must be exactly those of its ``.expected.jsonl`` file.

The fixtures were written for this project (documentation addresses, example hosts); each
expected file was checked line by line against its fixture: e.g. ``09:26:53 +0100`` is
``08:26:53Z``, ``1710404813512`` ms is ``2024-03-14T08:26:53.512Z``, and a time written
without a zone is read in the run's ``timezone``.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from importer.options import OutputOptions, ReadOptions
from importer.pipeline import ConfigError, send
from importer.readers import reader_for
from importer.sources import Source

LAYOUTS = Path(__file__).parent / "fixtures" / "formats" / "layouts"

APACHE_STRFTIME = '%h %l %u [%{%Y-%m-%d %H:%M:%S %z}t] "%r" %>s %b "%{Referer}i" "%{User-Agent}i"'

# fixture -> (send() options, format line of the summary, lines skipped, rows read, rows invalid)
CASES = {
    "nginx-request-time.log": ({}, "combined with 2 trailing fields, detected, 100% of sample", 0, 3, 0),
    "apache-duration.log": ({}, "combined with 1 trailing field, detected, 100% of sample", 0, 2, 0),
    # lines with and without trailing fields; the one whose status is "abc" is rejected
    "vhost-trailing.log": ({}, "vhost_combined with 2 trailing fields, detected, 50% of sample", 0, 4, 1),
    "apache-strftime.log": ({"custom_format": APACHE_STRFTIME}, "custom", 0, 2, 0),
    "apache-msec.log": ({"custom_format": '%{msec}t %a "%r" %>s "%{User-Agent}i"'}, "custom", 0, 2, 0),
    "nginx-iso-msec.log": (
        {"custom_format": '$time_iso8601 $msec $remote_addr "$request" $status "$http_user_agent"'},
        "custom",
        0,
        2,
        0,
    ),
    "nginx-own-time.log": (
        {
            "custom_format": '$time_dotted $remote_addr "$request" $status "$http_user_agent"',
            "time_format": "%d.%m.%Y %H:%M:%S",
            "timezone": "Europe/Berlin",
        },
        "custom, times without zone read as Europe/Berlin",
        0,
        2,
        0,
    ),
    "comments.log": ({}, "combined, detected, 100% of sample", 4, 2, 0),
    "iis-rotated": ({}, "w3c, detected, 100% of sample", 6, 3, 0),
    "cdn-uri-no-slash.log": ({}, "w3c, detected, 100% of sample", 2, 2, 0),
    "nginx-json-no-method.json": ({}, "nginx_json, detected, 100% of sample", 0, 2, 0),
    "cp1252.log": ({"encoding": "cp1252"}, "combined, detected, 100% of sample", 0, 2, 0),
    "only-line-rejected.log": ({}, "combined, detected, 0% of sample", 0, 1, 1),
}


def dry_run(tmp_path: Path, name: str, **options):
    out = tmp_path / "events.jsonl"
    if "timezone" in options:
        options["log_timezone"] = options.pop("timezone")
    report = send(
        [LAYOUTS / name],
        "example.com",
        dry_run=True,
        read=ReadOptions(**options),
        outputs=OutputOptions(events=out, rejects=tmp_path / "rejects.jsonl", progress=False),
    )
    events = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    return report, events


def expected_events(name: str) -> list[dict]:
    path = LAYOUTS / f"{name.rsplit('.', 1)[0] if '.' in name else name}.expected.jsonl"
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


@pytest.mark.parametrize("name", sorted(CASES))
def test_layout_gives_exactly_the_expected_events(tmp_path, name):
    options, format_line, skipped, rows_read, invalid = CASES[name]
    report, events = dry_run(tmp_path, name, **options)
    assert events == expected_events(name)
    assert [fmt for _, fmt in report.sources] == [format_line + (f", {invalid} bad line" if invalid else "")] * len(
        report.sources
    )
    assert (report.lines_skipped, report.rows_read, report.rows_invalid) == (skipped, rows_read, invalid)
    assert report.as_dict()["lines_skipped"] == skipped


# fixture -> (--format, rows read, [(line, reason) of each rejected line])
NAMED = {
    "nginx-request-time.log": ("combined", 3, []),  # every line cut, then the CSV fast path
    "apache-duration.log": ("combined", 2, []),
    # one line that does not fit sends its block down the exact path, with the cut lines
    "vhost-trailing.log": ("vhost_combined", 4, [(3, "expected 11 fields for vhost_combined, found 12")]),
}


@pytest.mark.parametrize("name", sorted(NAMED))
def test_a_named_format_reads_trailing_fields_as_detection_does(tmp_path, name):
    fmt, rows_read, rejected = NAMED[name]
    report, events = dry_run(tmp_path, name, log_format=fmt)
    assert events == expected_events(name)
    assert report.sources == [(str(LAYOUTS / name), fmt + (f", {len(rejected)} bad line" if rejected else ""))]
    assert (report.rows_read, report.rows_invalid) == (rows_read, len(rejected))
    written = tmp_path / "rejects.jsonl"  # (only a run with rejects writes the file)
    rejects = [json.loads(line) for line in written.read_text().splitlines()] if written.exists() else []
    assert [(r["file"], r["line"], r["reason"]) for r in rejects] == [
        (str(LAYOUTS / name), n, why) for n, why in rejected
    ]


def test_a_trailing_field_cut_off_inside_its_quote_is_damage_not_a_field(tmp_path):
    """In a log with trailing fields (the block is cut before the CSV parser), a line whose last
    field opens a quote that never closes is rejected and does not swallow the next line."""
    good = (LAYOUTS / "nginx-request-time.log").read_text().splitlines()
    damaged = good[0].rsplit(" ", 2)[0] + ' "edge-7'
    log = tmp_path / "access.log"
    log.write_text("\n".join([good[0], damaged, good[1], good[2]]) + "\n")
    report = send(
        [log],
        "example.com",
        dry_run=True,
        read=ReadOptions(log_format="combined"),
        outputs=OutputOptions(events=tmp_path / "e.jsonl", rejects=tmp_path / "r.jsonl", progress=False),
    )
    rejects = [json.loads(line) for line in (tmp_path / "r.jsonl").read_text().splitlines()]
    assert [(r["line"], r["reason"]) for r in rejects] == [(2, "unbalanced quotes (a truncated line?)")]
    events = [json.loads(line) for line in (tmp_path / "e.jsonl").read_text().splitlines()]
    assert events == expected_events("nginx-request-time.log")
    assert (report.rows_read, report.rows_invalid) == (4, 1)


def test_named_common_ignores_unquoted_trailing_fields_but_not_a_combined_lines_referrer():
    """``common`` plus ``%D`` or two timings reads; a combined line (a quoted field after the
    size) is not taken for common with trailing fields, its referrer and user agent lost."""
    path = LAYOUTS / "common-trailing.log"
    source = Source(str(path), path)
    batches = list(reader_for(source, log_format="common").read(source))
    rows = [
        {k: r[k] for k in ("source_line", "timestamp", "ip", "path", "query", "status", "bytes", "user_agent")}
        for b in batches
        for r in b.table.to_pylist()
    ]
    utc = dt.UTC
    assert rows == [
        dict(
            source_line=1,
            timestamp=dt.datetime(2024, 3, 14, 13, 26, 53, tzinfo=utc),
            ip="198.51.100.23",
            path="/docs/",
            query=None,
            status=200,
            bytes=7734,
            user_agent=None,
        ),
        dict(
            source_line=2,
            timestamp=dt.datetime(2024, 3, 14, 13, 27, 1, tzinfo=utc),
            ip="198.51.100.23",
            path="/about",
            query=None,
            status=200,
            bytes=None,
            user_agent=None,
        ),
        dict(
            source_line=3,
            timestamp=dt.datetime(2024, 3, 14, 13, 27, 2, tzinfo=utc),
            ip="198.51.100.24",
            path="/",
            query="q=1",
            status=200,
            bytes=120,
            user_agent=None,
        ),
    ]
    assert [(r.file, r.line, r.reason) for b in batches for r in b.rejected] == [
        (str(path), 4, "expected 8 fields for common, found 10")
    ]


def test_the_rotated_w3c_file_alone_has_no_columns_and_its_rows_are_not_guessed(tmp_path):
    report, events = dry_run(tmp_path, "iis-rotated/u_ex24031409.log")
    assert events == [] and report.rows_read == 0
    assert report.skipped_sources and "cannot recognise the log format" in report.skipped_sources[0]


def test_without_the_encoding_latin_bytes_are_replaced_not_fatal(tmp_path):
    report, events = dry_run(tmp_path, "cp1252.log")
    assert report.rows_invalid == 0 and len(events) == 2
    assert events[0]["url"] == "https://example.com/caf\ufffd?q=cr\ufffdme"


def test_bad_encoding_and_time_format_options_are_configuration_errors(tmp_path):
    with pytest.raises(ConfigError, match="line ends"):
        dry_run(tmp_path, "cp1252.log", encoding="utf-16")
    with pytest.raises(ConfigError, match="unknown encoding"):
        dry_run(tmp_path, "cp1252.log", encoding="klingon")
    with pytest.raises(ConfigError, match="%Q is not supported"):
        dry_run(tmp_path, "nginx-own-time.log", custom_format='$time_x $remote_addr "$request"', time_format="%Q")
    with pytest.raises(ConfigError, match="--time-format reads the time of a --log-format"):
        dry_run(tmp_path, "nginx-own-time.log", time_format="%d.%m.%Y")


def test_detection_failure_suggests_the_servers_own_format_line(tmp_path):
    path = tmp_path / "odd.log"
    path.write_text("hello world\nfoo bar\n")
    report = send(
        [path], "example.com", dry_run=True, outputs=OutputOptions(rejects=tmp_path / "r.jsonl", progress=False)
    )
    (message,) = report.skipped_sources
    assert "--log-format '$remote_addr - $remote_user [$time_local]" in message
    assert "%{User-Agent}i\" %D' (Apache's LogFormat)" in message
