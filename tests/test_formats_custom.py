"""--log-format: nginx log_format and Apache LogFormat strings compiled into parsers."""

from __future__ import annotations

import datetime as dt

import pytest

from importer.readers import FormatError
from importer.readers.custom import compile_format
from importer.readers.detect import LogReader
from importer.sources import Source

UTC = dt.UTC


def parse(fmt: str, *lines: str, tmp_path, timezone: str = "UTC"):
    path = tmp_path / "custom.log"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    reader = LogReader(compile_format(fmt), timezone)
    batches = list(reader.read(Source(str(path), path)))
    return [r for b in batches for r in b.table.to_pylist()], [r for b in batches for r in b.rejected]


def test_nginx_log_format_directive_with_trailing_timings(tmp_path):
    fmt = """log_format timed '$remote_addr - $remote_user [$time_local] "$request" '
                       '$status $body_bytes_sent "$http_referer" '
                       '"$http_user_agent" $request_time $upstream_response_time';"""
    rows, rejected = parse(
        fmt,
        '203.0.113.5 - - [14/Mar/2024:09:26:53 +0100] "GET /a?b=1 HTTP/1.1" 200 512 "-" "Agent \\"q\\" \\xC3\\xA9" 0.004 0.003',
        '203.0.113.6 - - [14/Mar/2024:09:26:54 +0100] "GET /b HTTP/1.1" 200 512 "-" "Agent"',  # timings missing
        tmp_path=tmp_path,
    )
    assert len(rows) == 1
    row = rows[0]
    assert row["timestamp"] == dt.datetime(2024, 3, 14, 8, 26, 53, tzinfo=UTC)
    assert (row["ip"], row["path"], row["query"], row["status"], row["bytes"]) == ("203.0.113.5", "/a", "b=1", 200, 512)
    assert row["user_agent"] == 'Agent "q" é'
    assert row["referrer"] is None
    assert [(r.line, r.reason) for r in rejected] == [(2, "does not match the custom format")]


def test_nginx_variables_for_iso_time_forwarded_for_host_and_split_request(tmp_path):
    rows, _ = parse(
        '$time_iso8601 $http_x_forwarded_for $host "$request_method $request_uri" $status',
        '2024-03-14T09:26:53+01:00 203.0.113.9,10.0.0.1 WWW.example.com "GET /x?y=2" 200',
        tmp_path=tmp_path,
    )
    assert rows[0]["ip"] == "203.0.113.9"
    assert (rows[0]["host"], rows[0]["method"], rows[0]["path"], rows[0]["query"]) == (
        "www.example.com",
        "GET",
        "/x",
        "y=2",
    )
    assert rows[0]["timestamp"] == dt.datetime(2024, 3, 14, 8, 26, 53, tzinfo=UTC)


def test_apache_logformat_line_as_pasted_from_the_config(tmp_path):
    fmt = 'LogFormat "%v:%p %h %l %u %t \\"%r\\" %>s %O \\"%{Referer}i\\" \\"%{User-Agent}i\\"" vhost_combined'
    rows, rejected = parse(
        fmt,
        'www.example.com:443 198.51.100.23 - - [14/Mar/2024:09:27:02 -0400] "GET /docs/install HTTP/1.1" 200 9021 '
        '"https://www.example.com/docs/" "Mozilla/5.0 (compatible; Bot/1.0)"',
        tmp_path=tmp_path,
    )
    assert not rejected
    assert rows[0]["host"] == "www.example.com" and rows[0]["ip"] == "198.51.100.23"
    assert rows[0]["timestamp"] == dt.datetime(2024, 3, 14, 13, 27, 2, tzinfo=UTC)
    assert rows[0]["referrer"] == "https://www.example.com/docs/"


def test_apache_epoch_time_and_dash_bytes(tmp_path):
    rows, _ = parse(
        '%{msec}t %a "%r" %>s %b %D', '1710404813512 192.0.2.1 "GET / HTTP/1.1" 200 - 1234', tmp_path=tmp_path
    )
    assert rows[0]["timestamp"] == dt.datetime(2024, 3, 14, 8, 26, 53, 512000, tzinfo=UTC)
    assert rows[0]["bytes"] is None


def test_nginx_json_log_format_becomes_a_key_map(tmp_path):
    fmt = """log_format j escape=json '{"t":"$time_iso8601","addr":"$remote_addr","req":"$request","st":$status}';"""
    rows, rejected = parse(
        fmt,
        '{"t":"2024-03-14T09:26:53+01:00","addr":"203.0.113.1","req":"GET /j HTTP/1.1","st":200}',
        '{"t":"2024-03-14T09:26:54+01:00","addr":"203.0.113.2","req":"GET /k HTTP/1.1","st":}',
        tmp_path=tmp_path,
    )
    assert [(r["ip"], r["path"], r["status"]) for r in rows] == [("203.0.113.1", "/j", 200)]
    assert rejected[0].line == 2  # an unquoted empty $status makes invalid JSON


@pytest.mark.parametrize(
    ("fmt", "message"),
    [
        ("", "empty"),
        ("just words", "nginx log_format"),
        ('$remote_addr "$request" $status', "no time field"),
        ("%h %t %>s", "no request"),
        ('%{%d/%b/%Y %Q}t "%r"', "%Q is not supported"),
    ],
)
def test_unusable_formats_are_clear_errors(fmt, message):
    with pytest.raises(FormatError, match=message):
        compile_format(fmt)
