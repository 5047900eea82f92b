"""Combined/common log parsing: fields, escapes, odd lines, exact line numbers."""

from __future__ import annotations

import datetime as dt
import gzip
from pathlib import Path

import pyarrow as pa
import pytest
from conftest import BROWSER, combined_line, write_log

from importer import schema
from importer.readers import FormatError, reader_for
from importer.sources import Source, line_blocks, open_source

UTC = dt.UTC


def read_all(path: Path, **kwargs):
    source = Source(name=str(path), path=path)
    reader = reader_for(source, **kwargs)
    batches = list(reader.read(source))
    tables = [b.table for b in batches if b.table.num_rows]
    table = pa.concat_tables(tables) if tables else schema.empty_frame()
    rejected = [r for b in batches for r in b.rejected]
    notices = [n for b in batches for n in b.notices]
    rows_read = sum(b.rows_read for b in batches)
    return reader, table, rejected, notices, rows_read


def format_name(reader) -> str:
    return reader.detection.format.name if reader.detection else reader.name


def test_combined_fields_are_canonical(tmp_path):
    when = dt.datetime(2024, 3, 14, 9, 26, 53, tzinfo=dt.timezone(dt.timedelta(hours=1)))
    path = write_log(
        tmp_path / "access.log",
        [
            combined_line(
                ip="203.0.113.42",
                when=when,
                target="/blog/post?utm_source=newsletter&x=1",
                status=200,
                size=5123,
                referrer="https://www.example.org/links",
            ),
            combined_line(ip="2001:db8::7", when=when, target="/docs/", status=304, size="-", referrer="-"),
        ],
    )
    reader, table, rejected, _, rows_read = read_all(path)
    schema.validate(table)
    assert format_name(reader) == "combined"
    assert rows_read == 2 and not rejected
    first, second = table.to_pylist()
    assert first["timestamp"] == dt.datetime(2024, 3, 14, 8, 26, 53, tzinfo=UTC)
    assert first["ip"] == "203.0.113.42"
    assert first["method"] == "GET"
    assert first["path"] == "/blog/post"
    assert first["query"] == "utm_source=newsletter&x=1"
    assert first["status"] == 200 and first["bytes"] == 5123
    assert first["referrer"] == "https://www.example.org/links"
    assert first["user_agent"] == BROWSER
    assert first["host"] is None
    assert (first["source_file"], first["source_line"]) == (str(path), 1)
    # IPv6 client, "-" size and "-" referrer become null, never "-".
    assert second["ip"] == "2001:db8::7"
    assert second["bytes"] is None and second["referrer"] is None and second["query"] is None
    assert second["source_line"] == 2


def test_escapes_apache_quotes_and_nginx_hex(tmp_path):
    path = write_log(
        tmp_path / "access.log",
        [
            # Apache escapes a quote inside a field as \" ...
            combined_line(user_agent='Mozilla/5.0 (X11) \\"quoted\\" build'),
            # ... nginx as \x22, and writes every byte >= 0x80 as \xHH.
            combined_line(target="/blog/caf\\xC3\\xA9", user_agent="Mozilla/5.0 \\x22q\\x22 caf\\xC3\\xA9"),
            # A literal backslash is written doubled.
            combined_line(user_agent="Mozilla/5.0 back\\\\slash"),
        ],
    )
    _, table, rejected, _, _ = read_all(path)
    assert not rejected
    uas = table.column("user_agent").to_pylist()
    assert uas == ['Mozilla/5.0 (X11) "quoted" build', 'Mozilla/5.0 "q" café', "Mozilla/5.0 back\\slash"]
    assert table.column("path").to_pylist()[1] == "/blog/café"


def test_odd_lines_are_rejected_with_reasons_and_neighbours_survive(tmp_path):
    long_target = "/" + "a" * (70 << 10)
    raw_lines = [
        combined_line(target="/one").encode(),
        b"this is not a log line",
        combined_line(target="/three").encode(),
        # unterminated quote: a truncated line must not swallow the next one
        b'203.0.113.5 - - [14/Mar/2024:09:26:53 +0100] "GET /four HTTP/1.1" 200 5 "-" "Mozilla/5.0 (trunc',
        combined_line(target="/five").encode(),
        combined_line(target=long_target).encode(),  # over the 64 KiB line limit
        combined_line(target="/seven").encode(),
        b"\x00\xff\xfe\x16\x03\x01 binary junk \x80\x81",
        combined_line(target="/nine", user_agent="Mozilla/5.0 \xe9t\xe9").encode("latin-1"),  # not UTF-8
        b"",  # empty lines are not rows
        combined_line(target="/eleven").encode(),
    ]
    path = tmp_path / "access.log"
    path.write_bytes(b"\n".join(raw_lines) + b"\n")
    _, table, rejected, _, rows_read = read_all(path)
    kept = dict(zip(table.column("path").to_pylist(), table.column("source_line").to_pylist(), strict=False))
    assert kept == {"/one": 1, "/three": 3, "/five": 5, "/seven": 7, "/nine": 9, "/eleven": 11}
    bad = {r.line: r.reason for r in rejected}
    assert set(bad) == {2, 4, 6, 8}
    assert "quote" in bad[4]
    assert "longer than" in bad[6]
    assert all(r.file == str(path) for r in rejected)
    assert rows_read == 10  # 11 lines, one of them empty
    # Invalid UTF-8 is decoded with replacement, never fatal.
    nine = table.filter(pa.compute.equal(table.column("path"), "/nine")).column("user_agent")[0].as_py()
    assert nine.startswith("Mozilla/5.0 ") and "\ufffd" in nine


def test_request_line_dash_and_tls_junk_parse_as_rows_without_a_path(tmp_path):
    path = write_log(
        tmp_path / "access.log",
        [
            '198.51.100.77 - - [14/Mar/2024:09:00:00 +0100] "-" 400 0 "-" "-"',
            '203.0.113.9 - - [14/Mar/2024:09:00:00 +0100] "\\x16\\x03\\x01\\x02\\x00\\x01" 400 157 "-" "-"',
        ],
    )
    _, table, rejected, _, _ = read_all(path)
    assert not rejected
    assert table.column("path").to_pylist() == [None, None]
    assert table.column("method").to_pylist() == [None, None]
    assert table.column("status").to_pylist() == [400, 400]
    assert table.column("user_agent").to_pylist() == [None, None]


@pytest.mark.parametrize(
    ("lines", "expected"),
    [
        (['198.51.100.23 - alice [14/Mar/2024:09:26:53 -0400] "GET /docs/ HTTP/1.1" 200 7734'], "common"),
        ([combined_line(vhost="www.example.com:443")], "vhost_combined"),
        (
            ['www.example.com 198.51.100.23 - - [14/Mar/2024:09:26:53 -0400] "GET /docs/ HTTP/1.1" 200 7734'],
            "vhost_common",
        ),
        ([combined_line()], "combined"),
    ],
)
def test_layout_is_detected(tmp_path, lines, expected):
    path = write_log(tmp_path / "access.log", lines * 3)
    reader, table, rejected, _, _ = read_all(path)
    assert format_name(reader) == expected
    assert table.num_rows == 3 and not rejected


def test_vhost_host_is_lowercased_without_port_and_common_has_no_agent(tmp_path):
    path = write_log(tmp_path / "v.log", [combined_line(vhost="WWW.Example.COM:443", target="/a")])
    _, table, _, _, _ = read_all(path)
    assert table.column("host").to_pylist() == ["www.example.com"]
    path = write_log(
        tmp_path / "c.log", ['198.51.100.23 - alice [14/Mar/2024:09:26:53 -0400] "GET /docs/ HTTP/1.1" 200 -']
    )
    _, table, _, _, _ = read_all(path)
    row = table.to_pylist()[0]
    assert row["user_agent"] is None and row["referrer"] is None and row["bytes"] is None
    assert row["timestamp"] == dt.datetime(2024, 3, 14, 13, 26, 53, tzinfo=UTC)


def test_crlf_gzip_and_a_truncated_gzip_member(tmp_path):
    lines = [combined_line(target=f"/p{i}") for i in range(200)]
    path = write_log(tmp_path / "access.log.gz", lines, compress=True, newline="\r\n")
    _, table, rejected, notices, _ = read_all(path)
    assert table.num_rows == 200 and not rejected and not notices
    assert table.column("user_agent").to_pylist()[0] == BROWSER  # no stray \r
    # Cut the compressed file short: what decompressed before the cut is kept, and said.
    whole = gzip.compress(("\n".join(lines) + "\n").encode())
    cut = tmp_path / "cut.log.gz"
    cut.write_bytes(whole[: len(whole) // 2])
    _, table, rejected, notices, _ = read_all(cut)
    assert 0 < table.num_rows < 200
    assert table.column("source_line").to_pylist() == list(range(1, table.num_rows + 1))
    assert notices and "ends early" in notices[0].reason


def test_line_numbers_across_block_boundaries(tmp_path):
    lines = [combined_line(target=f"/p{i}") for i in range(3000)]
    path = write_log(tmp_path / "access.log", lines)
    opened = open_source(Source(name=str(path), path=path))
    blocks = list(line_blocks(opened, block_bytes=4096))
    assert len(blocks) > 10
    assert blocks[0].first_line == 1
    for before, after in zip(blocks, blocks[1:], strict=False):
        assert after.first_line == before.first_line + before.line_count
    assert sum(b.line_count for b in blocks) == 3000


def test_unrecognisable_file_is_a_format_error_naming_the_closest_formats(tmp_path):
    path = write_log(tmp_path / "notes.txt", ["hello world", "nothing here looks like a log"] * 5)
    with pytest.raises(FormatError) as err:
        read_all(path)
    message = str(err.value)
    assert "closest are combined" in message and "hello world" in message
