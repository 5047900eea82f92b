"""Every log format: detected from its fixture, parsed into the canonical frame, hazards handled.

The fixtures in tests/fixtures/formats/ were written for this project from the formats'
documentation (invented values, documentation address ranges, example.com hosts). Expected
values below are read off the fixture lines by hand: e.g. ``09:26:53 +0100`` is 08:26:53 UTC.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from importer import schema
from importer.readers import FormatError, reader_for
from importer.readers.detect import FORMATS, FORMATS_BY_NAME, detect, sample_of
from importer.sources import Source

FIXTURES = Path(__file__).parent / "fixtures" / "formats"
UTC = dt.UTC
FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:123.0) Gecko/20100101 Firefox/123.0"
CHROME_WIN = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/122.0.0.0 Safari/537.36"
)


def read(name: str, **kwargs):
    path = FIXTURES / name
    source = Source(str(path), path)
    reader = reader_for(source, **kwargs)
    batches = list(reader.read(source))
    rows = [r for b in batches for r in b.table.to_pylist()]
    for b in batches:
        schema.validate(b.table)
    rejected = [r for b in batches for r in b.rejected]
    notices = [n for b in batches for n in b.notices]
    rows_read = sum(b.rows_read for b in batches)
    return reader, rows, rejected, notices, rows_read


def at(*args) -> dt.datetime:
    return dt.datetime(*args, tzinfo=UTC)


# fixture -> (format, rows parsed, lines rejected, {row index: expected subset of the row})
CASES = {
    "combined.log": (
        "combined",
        5,
        1,
        {
            0: dict(
                timestamp=at(2024, 3, 14, 8, 26, 53),
                ip="203.0.113.42",
                method="GET",
                path="/blog/café",
                query="utm_source=newsletter",
                status=200,
                bytes=5123,
                referrer="https://www.example.org/links",
                user_agent=FIREFOX,
                host=None,
                source_line=1,
            ),
            1: dict(ip="2001:db8::7", status=304, bytes=None, referrer=None, source_line=2),
            2: dict(user_agent='Mozilla/5.0 (compatible; "Quoted" Browser/1.0)', source_line=3),
            3: dict(path=None, method=None, status=400, source_line=5),  # TLS bytes on a plain port
        },
    ),
    "combined-crlf.log": (
        "combined",
        2,
        0,
        {
            0: dict(path="/pricing", user_agent=FIREFOX, source_line=1),
            1: dict(ip="203.0.113.43", source_line=2),
        },
    ),
    "common.log": (
        "common",
        3,
        0,
        {
            0: dict(timestamp=at(2024, 3, 14, 13, 26, 53), ip="198.51.100.23", user_agent=None, referrer=None),
            1: dict(method="HEAD", bytes=None),
            2: dict(ip="2001:db8::5", path="/", query="q=1"),
        },
    ),
    "vhost_combined.log": (
        "vhost_combined",
        2,
        0,
        {
            0: dict(host="www.example.com", ip="198.51.100.23", timestamp=at(2024, 3, 14, 13, 27, 2)),
            1: dict(host="shop.example.com", ip="2001:db8::7"),
        },
    ),
    "vhost_common.log": (
        "vhost_common",
        2,
        0,
        {
            1: dict(host="www.example.com", status=404, bytes=None),
        },
    ),
    "main.log": (
        "main",
        3,
        0,
        {
            0: dict(ip="203.0.113.99"),  # first of the X-Forwarded-For list, not the proxy 10.0.0.5
            1: dict(ip="198.51.100.8"),  # XFF "-": the peer address stays
            2: dict(ip="2001:db8::9"),  # a bracketed IPv6 with port in XFF
        },
    ),
    "traefik.log": (
        "traefik",
        3,
        0,
        {
            0: dict(timestamp=at(2024, 3, 14, 8, 26, 53), path="/pricing", query="plan=pro", user_agent=FIREFOX),
            1: dict(user_agent='Odd "quoted" agent/1.0'),
            2: dict(user_agent=None, referrer=None, status=404),
        },
    ),
    "haproxy.log": (
        "haproxy",
        4,
        0,
        {
            0: dict(
                timestamp=at(2024, 3, 14, 9, 26, 53, 512000),
                ip="203.0.113.42",
                host="www.example.com",
                user_agent=FIREFOX,
                referrer="https://www.example.org/",
                path="/pricing",
                query="plan=pro",
            ),
            1: dict(user_agent=None, host=None, status=301),  # no header captures
            2: dict(ip="2001:db8::3", user_agent='Agent "with quote"/1.0', query="q=café"),  # #HH escapes
            3: dict(path=None, status=400),  # <BADREQ>
        },
    ),
    "alb.log": (
        "alb",
        3,
        0,
        {
            0: dict(
                timestamp=at(2024, 3, 14, 8, 26, 53, 512345),
                ip="203.0.113.42",
                host="www.example.com",
                path="/pricing",
                query="plan=pro",
                status=200,
                bytes=8631,
                referrer=None,
            ),
            1: dict(ip="2001:db8::42", path="/docs/"),  # IPv6 client:port without brackets; extra trailing field
            2: dict(path=None, method=None, user_agent=None),  # "- - - " request of a non-HTTP listener
        },
    ),
    "elb.log": (
        "elb",
        2,
        0,
        {
            0: dict(timestamp=at(2024, 3, 14, 8, 26, 53, 945958), host="www.example.com", path="/"),
            1: dict(host="www.example.com", path="/docs/", query="a=1", user_agent="curl/8.5.0"),
        },
    ),
    "s3.log": (
        "s3",
        2,
        0,
        {
            0: dict(timestamp=at(2024, 3, 14, 8, 26, 53), path="/pricing/", bytes=8312, host=None),
            1: dict(method="PUT", bytes=None),
        },
    ),
    "iis.log": (
        "w3c",
        3,
        1,
        {
            0: dict(
                timestamp=at(2024, 3, 14, 8, 26, 53),
                ip="203.0.113.42",
                path="/pricing",
                query="plan=pro",
                user_agent=CHROME_WIN,
                referrer="https://www.example.org/",
                source_line=5,
            ),
            1: dict(path="/favicon.ico", query=None, status=404, source_line=6),
            2: dict(host="www.example.com", ip="2001:db8::20", bytes=5120, source_line=11),  # after the new #Fields
        },
    ),
    "cloudfront.log": (
        "cloudfront",
        3,
        0,
        {
            0: dict(host="www.example.com", user_agent=FIREFOX, path="/pricing", query="plan=pro", source_line=3),
            1: dict(user_agent=FIREFOX, ip="203.0.113.77"),  # double percent-encoding; x-forwarded-for
            2: dict(status=None, user_agent=None),  # status 000
        },
    ),
    "bunny.log": (
        "bunny",
        2,
        0,
        {
            0: dict(
                timestamp=at(2024, 3, 14, 8, 26, 53, 512000),
                host="www.example.com",
                path="/pricing",
                query="plan=pro",
                method="GET",
                referrer="https://www.example.org/",
            ),
            1: dict(ip="2001:db8::8", status=404, referrer=None),
        },
    ),
    "caddy.log": (
        "caddy",
        2,
        0,
        {
            0: dict(ip="203.0.113.42", host="www.example.com", user_agent=FIREFOX, path="/pricing", status=200),
            1: dict(ip="2001:db8::11", timestamp=at(2024, 3, 14, 8, 26, 54), source_line=3),  # compose prefix
        },
    ),
    "traefik.json": (
        "traefik_json",
        2,
        0,
        {
            0: dict(timestamp=at(2024, 3, 14, 8, 26, 53, 512345), user_agent=FIREFOX, path="/pricing"),
            1: dict(ip="2001:db8::12", user_agent=None, status=404),
        },
    ),
    "gcp_lb.json": (
        "gcp_lb",
        2,
        0,
        {
            0: dict(host="www.example.com", path="/pricing", query="plan=pro", bytes=8631, ip="203.0.113.42"),
            1: dict(host="www.example.com", path="/docs/", bytes=None, status=304),
        },
    ),
    "cloudflare.json": (
        "cloudflare",
        3,
        0,
        {
            0: dict(timestamp=at(2024, 3, 14, 8, 26, 53, 512000), path="/pricing", bytes=8931),
            1: dict(timestamp=at(2024, 3, 14, 8, 26, 54), user_agent=None, referrer=None),  # RFC 3339, "" = missing
            2: dict(timestamp=at(2024, 3, 14, 8, 26, 55)),  # Unix seconds
        },
    ),
    "nginx.json": (
        "nginx_json",
        4,
        1,
        {
            0: dict(
                ip="203.0.113.42",
                timestamp=at(2024, 3, 14, 8, 26, 53),
                path="/pricing",
                query="plan=pro",
                status=200,
                bytes=8312,
            ),
            1: dict(referrer=None, ip="198.51.100.30"),
            2: dict(path="/caf\ufffd"),  # a raw non-UTF-8 byte, decoded with replacement
            3: dict(user_agent='Agent "q"/1.0'),  # pre-escape=json \x22 escapes
        },
    ),
}


def test_every_format_has_a_fixture_case():
    covered = {fmt for fmt, *_ in CASES.values()}
    assert covered == set(FORMATS_BY_NAME)


@pytest.mark.parametrize("fixture", sorted(CASES))
def test_fixture_is_detected_and_parsed(fixture):
    fmt, n_rows, n_rejected, expected = CASES[fixture]
    reader, rows, rejected, _, rows_read = read(fixture)
    assert reader.detection.format.name == fmt
    assert reader.detection.share >= 0.5
    assert reader.name.startswith(f"{fmt}, detected, ")
    assert len(rows) == n_rows, rows
    assert len(rejected) == n_rejected, rejected
    assert rows_read == n_rows + n_rejected
    for index, subset in expected.items():
        got = {k: rows[index][k] for k in subset}
        assert got == subset, f"row {index}"
    for row in rows:
        for column in ("ip", "user_agent", "referrer", "host", "path", "query", "method"):
            assert row[column] not in ("-", ""), (column, row)


@pytest.mark.parametrize("fmt", FORMATS, ids=lambda f: f.name)
def test_example_line_of_every_format_is_detected(fmt):
    detection = detect(sample_of(fmt.example.encode()))
    assert detection.format.name == fmt.name
    assert detection.share == 1.0


def test_forced_format_skips_detection_and_rejects_other_lines():
    _, rows, rejected, _, _ = read("combined.log", log_format="common")
    assert rows == []
    assert {r.reason for r in rejected} >= {"expected 8 fields for common, found 10"}


def test_header_lines_are_not_rows_and_a_changed_header_is_followed():
    _, _rows, rejected, _, rows_read = read("iis.log")
    # 12 lines: 8 directives, 4 data rows (one of them cut short)
    assert rows_read == 4
    assert rejected[0].line == 12 and "does not match" in rejected[0].reason


def test_truncated_last_line_is_rejected_with_its_number():
    _, rows, rejected, _, _ = read("combined.log")
    assert [(r.line, r.reason) for r in rejected] == [(7, "unbalanced quotes (a truncated line?)")]
    assert [r["source_line"] for r in rows] == [1, 2, 3, 5, 6]


def test_zone_less_times_take_the_given_timezone_and_say_so():
    reader, rows, *_ = read("haproxy.log", timezone="Europe/Berlin")
    # 09:26:53.512 in Berlin (UTC+1 in March before the switch) is 08:26:53.512 UTC
    assert rows[0]["timestamp"] == at(2024, 3, 14, 8, 26, 53, 512000)
    assert "times without zone read as Europe/Berlin" in reader.name
    reader, *_ = read("combined.log", timezone="Europe/Berlin")
    assert "without zone" not in reader.name  # CLF carries its own offset


def test_caddy_runtime_lines_are_skipped_not_counted():
    _, _rows, rejected, notices, rows_read = read("caddy.log")
    assert rows_read == 2 and not rejected
    assert "1 non-request lines" in notices[0].reason


def test_unknown_format_error_names_two_closest_and_a_failing_line(tmp_path):
    path = tmp_path / "odd.log"
    path.write_text("this is not a log line\nneither is this one\n" + FORMATS_BY_NAME["common"].example + "\n")
    source = Source(str(path), path)
    with pytest.raises(FormatError) as info:
        list(reader_for(source).read(source))
    message = str(info.value)
    assert "closest are common (33% of lines)" in message
    assert message.count("% of lines") == 2
    assert "'this is not a log line'" in message


def test_unknown_format_name_and_bad_timezone_are_errors():
    path = FIXTURES / "common.log"
    with pytest.raises(FormatError, match="unknown log format 'apache2'"):
        reader_for(Source(str(path), path), log_format="apache2")
    with pytest.raises(FormatError, match="unknown time zone"):
        reader_for(Source(str(path), path), timezone="Mars/Olympus")


def test_aliases_name_formats():
    path = FIXTURES / "iis.log"
    reader, rows, *_ = read("iis.log", log_format="iis")
    assert len(rows) == 3 and reader.detection is None and path.exists()


def test_a_w3c_file_with_only_its_header_so_far_has_no_rows_and_no_error(tmp_path):
    header = (FIXTURES / "iis.log").read_text().splitlines()[:4]
    path = tmp_path / "u_ex240314.log"
    path.write_text("\r\n".join(header) + "\r\n")
    source = Source(str(path), path)
    reader = reader_for(source)
    batches = list(reader.read(source))
    assert sum(b.rows_read for b in batches) == 0
    assert reader.detection.format.name == "w3c"
