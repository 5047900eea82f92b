"""NDJSON exports are read a block of lines at a time: bounded memory, fields that appear late,
bad lines rejected one by one with their line numbers, the good rows around them kept."""

from __future__ import annotations

import io
import json
import sys
import textwrap

import pytest

from importer import mapping, resources
from importer.options import OutputOptions, ReadOptions
from importer.pipeline import send
from importer.readers import ndjson
from importer.readers.ndjson import NdjsonReader
from importer.sources import Source

MAPPING = """
    name = "ndjson-test"
    [input]
    format = "ndjson"
    timestamp_format = "iso"
    [input.columns]
    timestamp = "time"
    url = "page.url"
    ip = "ip"
    user_agent = "ua"
    [input.extra]
    plan = "plan"
    [[rules]]
    name = "Signup"
    when.columns.plan = { present = true }
    props = { plan = "{plan}" }
"""


def record(i: int, **extra) -> str:
    row = {
        "time": f"2024-03-14T10:{i // 60 % 60:02d}:{i % 60:02d}Z",
        "page": {"url": f"https://example.com/p{i}"},
        "ip": "203.0.113.7",
        "ua": "Mozilla/5.0 (X11; Linux x86_64; rv:123.0) Gecko/20100101 Firefox/123.0",
    }
    row.update(extra)
    return json.dumps(row)


@pytest.fixture
def small_blocks(monkeypatch):
    """Blocks of a few lines and batches of a few rows, so a small file spans many of them."""
    monkeypatch.setattr(ndjson, "NDJSON_BLOCK_BYTES", 1000)
    monkeypatch.setattr(ndjson, "ROWS_PER_BATCH", 5)


def load(tmp_path, text=MAPPING) -> mapping.Mapping:
    path = tmp_path / "m.toml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return mapping.load(str(path))


def read_all(m: mapping.Mapping, path):
    batches = list(NdjsonReader(m.column_map).read(Source(path.name, path)))
    rows = [row for b in batches for row in b.table.to_pylist()]
    rejected = [r for b in batches for r in b.rejected]
    return batches, rows, rejected


def test_a_file_is_read_block_by_block_and_a_late_field_is_found(tmp_path, small_blocks):
    lines = [record(i) for i in range(60)]
    lines[47] = record(47, plan="pro")  # the only row with "plan", far past the first block
    lines.insert(10, "")  # blank lines hold no row, but count as lines
    lines.insert(30, "   ")
    path = tmp_path / "export.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    m = load(tmp_path)
    batches, rows, rejected = read_all(m, path)
    assert len(batches) > 10 and max(b.table.num_rows for b in batches) <= 5  # streamed
    assert rejected == []
    assert len(rows) == 60
    # Line numbers are the file's own: rows after the blank lines 11 and 31 move down.
    by_path = {r["path"]: r["source_line"] for r in rows}
    assert by_path["/p0"] == 1 and by_path["/p9"] == 10 and by_path["/p10"] == 12
    assert by_path["/p28"] == 30 and by_path["/p29"] == 32 and by_path["/p59"] == 62
    assert [r["plan"] for r in rows if r["plan"] is not None] == ["pro"]
    out = tmp_path / "events.jsonl"
    report = send(
        [path],
        domain="example.com",
        dry_run=True,
        read=ReadOptions(mapping=m),
        outputs=OutputOptions(events=out, rejects=None),
    )
    events = [json.loads(line) for line in out.read_text().splitlines()]
    assert report.events == 60 and report.events_by_name == {"Signup": 1, "pageview": 59}
    assert [e["props"] for e in events if e["name"] == "Signup"] == [{"plan": "pro"}]


def test_bad_lines_are_rejected_one_by_one_and_the_rows_around_them_kept(tmp_path, small_blocks):
    lines = [record(i) for i in range(40)]
    lines[5] = '{"time": "2024-03-14T10:00:05Z", "page": {"url": "https://example.com/p5"'  # cut short
    lines[17] = record(17).replace('"ip": "203.0.113.7"', '"ip": {"v4": "203.0.113.7"}')  # an object, not text
    lines[23] = "[1, 2, 3]"  # not an object
    lines[31] = record(31).replace("2024-03-14T10:00:31Z", "yesterday")  # a time that is not one
    lines[36] = record(36, plan="team")
    path = tmp_path / "export.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    m = load(tmp_path)
    rejects = tmp_path / "rejects.jsonl"
    report = send(
        [path], domain="example.com", dry_run=True, read=ReadOptions(mapping=m), outputs=OutputOptions(rejects=rejects)
    )
    assert report.rows_read == 40 and report.rows_invalid == 4 and report.events == 36
    written = [json.loads(line) for line in rejects.read_text().splitlines()]
    assert [(r["file"], r["line"]) for r in written] == [(str(path), n) for n in (6, 18, 24, 32)]
    reasons = [r["reason"] for r in written]
    assert reasons[0].startswith("not valid JSON") and "'ip'" in reasons[1], reasons
    assert reasons[2] == "not a JSON object (a list)" and "yesterday" in reasons[3], reasons


def test_a_column_the_file_never_has_is_one_clear_error_before_any_row(tmp_path, small_blocks):
    path = tmp_path / "export.jsonl"
    path.write_text("\n".join(record(i) for i in range(30)) + "\n", encoding="utf-8")
    m = load(tmp_path, MAPPING.replace('plan = "plan"\n    [[rules]]', 'plan = "plan_typo"\n    [[rules]]'))
    report = send(
        [path], domain="example.com", dry_run=True, read=ReadOptions(mapping=m), outputs=OutputOptions(rejects=None)
    )
    assert report.events == 0 and report.rows_read == 0
    assert len(report.skipped_sources) == 1 and "plan_typo" in report.skipped_sources[0]


@pytest.mark.parametrize("late", [True, False])
def test_stdin_cannot_be_searched_ahead_so_a_column_that_never_came_is_a_notice(
    tmp_path, small_blocks, monkeypatch, late
):
    """On stdin a column the first rows lack is trusted to come later (the stream cannot be
    read twice): when it does, its values count; when it never does, the rows still go out
    and the report says which column never appeared."""
    lines = [record(i) for i in range(40)]
    if late:
        lines[33] = record(33, plan="pro")
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(("\n".join(lines) + "\n").encode())))
    out = tmp_path / "events.jsonl"
    rejects = tmp_path / "rejects.jsonl"
    report = send(
        ["-"],
        domain="example.com",
        dry_run=True,
        read=ReadOptions(mapping=load(tmp_path)),
        outputs=OutputOptions(events=out, rejects=rejects),
    )
    assert report.rows_read == 40 and report.events == 40 and report.rows_invalid == 0
    never = [n for n in report.notices if "never appeared" in n]
    if late:
        assert report.events_by_name == {"Signup": 1, "pageview": 39} and never == []
    else:
        assert report.events_by_name == {"pageview": 40}
        assert never == [
            (
                "<stdin>: column(s) plan named in the mapping's [input] table never appeared: "
                "no row had a value for them (after line 40)"
            )
        ]
        assert "never appeared" in rejects.read_text()


def test_the_ga4_sample_read_in_blocks_gives_the_same_events_as_whole(tmp_path, small_blocks):
    sample = resources.sample_data_dir() / "ga4-events.jsonl"
    out = tmp_path / "blocks.jsonl"
    send(
        [sample],
        domain="example.com",
        dry_run=True,
        read=ReadOptions(mapping="ga4-bigquery"),
        outputs=OutputOptions(events=out, rejects=None),
    )
    whole = tmp_path / "whole.jsonl"
    ndjson.NDJSON_BLOCK_BYTES, ndjson.ROWS_PER_BATCH = 32 << 20, 65_536  # (monkeypatch restores them)
    send(
        [sample],
        domain="example.com",
        dry_run=True,
        read=ReadOptions(mapping="ga4-bigquery"),
        outputs=OutputOptions(events=whole, rejects=None),
    )
    assert out.read_text() == whole.read_text() and out.read_text().count("\n") == 9


def test_a_truncated_compressed_export_keeps_what_came_before_and_says_so(tmp_path, small_blocks):
    import gzip

    data = gzip.compress(("\n".join(record(i, plan="pro" if i == 3 else None) for i in range(400)) + "\n").encode())
    path = tmp_path / "export.jsonl.gz"
    path.write_bytes(data[: len(data) * 2 // 3])  # the copy stopped two thirds of the way
    report = send(
        [path],
        domain="example.com",
        dry_run=True,
        read=ReadOptions(mapping=load(tmp_path)),
        outputs=OutputOptions(rejects=None),
    )
    assert 0 < report.events < 400 and report.rows_invalid <= 1  # the last line may be cut short
    assert any("compressed" in notice for notice in report.notices), report.notices
