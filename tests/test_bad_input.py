"""Bad input never stops or shrinks a run: one regression test per failure found by fuzzing."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import BROWSER, combined_line

from importer import send
from importer.options import OutputOptions, ReadOptions

SWALLOWER = '5.6.7.8 - a"b [10/Mar/2024:00:00:01 +0100] "GET /b HTTP/1.1" 200 1 "-" "Mozilla/5.0" "c'


def rejects_of(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()] if path.exists() else []


def assert_accounting(report) -> None:
    assert report.rows_read == report.rows_invalid + sum(report.rows_filtered.values()) + report.events


def run_cli(tmp_path: Path, *inputs: Path, extra: tuple[str, ...] = ()) -> tuple[int, dict, list[dict]]:
    """The real command line in a subprocess; returns (exit code, JSON report, rejects)."""
    report, rejects = tmp_path / "report.json", tmp_path / "rejects.jsonl"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "importer",
            "send",
            *map(str, inputs),
            "-d",
            "example.com",
            "--dry-run",
            "--output",
            str(tmp_path / "events.jsonl"),
            "--report",
            str(report),
            "--rejects",
            str(rejects),
            *extra,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode in (0, 1), proc.stderr
    return proc.returncode, json.loads(report.read_text()), rejects_of(rejects)


def test_a_quote_opening_at_line_end_does_not_swallow_the_next_line(tmp_path):
    log = tmp_path / "crash.log"
    log.write_text("\n".join([combined_line(target="/a"), SWALLOWER, combined_line(target="/c")]) + "\n")
    _, report, rejects = run_cli(tmp_path, log)
    assert (report["rows_read"], report["rows_invalid"], report["events"]) == (3, 1, 2)
    assert [(r["line"], r["reason"]) for r in rejects] == [(2, "unbalanced quotes (a truncated line?)")]
    urls = [json.loads(line)["url"] for line in (tmp_path / "events.jsonl").read_text().splitlines()]
    assert [u.rsplit("/", 1)[1] for u in urls] == ["a", "c"]


def test_swallowing_lines_in_a_big_log_keep_every_good_line(tmp_path):
    lines = [combined_line(target=f"/p{i}", user_agent=BROWSER) for i in range(5000)]
    for i in range(7, 5000, 997):
        lines[i] = SWALLOWER
    log = tmp_path / "big.log"
    log.write_text("\n".join(lines) + "\n")
    report = send(
        [log],
        "example.com",
        dry_run=True,
        outputs=OutputOptions(events=tmp_path / "e.jsonl", rejects=tmp_path / "r.jsonl"),
    )
    bad = {r["line"] for r in rejects_of(tmp_path / "r.jsonl")}
    assert bad == {i + 1 for i in range(7, 5000, 997)}
    assert report.events == 5000 - len(bad)
    assert_accounting(report)


TABULAR_MAPPING = """
name = "bad-input"
[input]
timestamp_format = "iso"
[input.columns]
timestamp = "time"
url = "url"
ip = "ip"
user_agent = "ua"
"""


def tabular_rows(n: int) -> list[dict]:
    return [
        {
            "time": f"2024-03-14T10:{i // 60 % 60:02d}:{i % 60:02d}Z",
            "url": f"https://example.com/p{i}",
            "ip": "203.0.113.7",
            "ua": BROWSER,
        }
        for i in range(n)
    ]


def csv_bytes(rows: list[dict]) -> bytes:
    return ("time,url,ip,ua\n" + "".join(f'{r["time"]},{r["url"]},{r["ip"]},"{r["ua"]}"\n' for r in rows)).encode()


def mapping_file(tmp_path: Path) -> Path:
    path = tmp_path / "m.toml"
    path.write_text(TABULAR_MAPPING)
    return path


def test_an_invalid_byte_in_a_csv_is_replaced_and_every_row_is_read(tmp_path):
    data = csv_bytes(tabular_rows(3000))
    (tmp_path / "bad.csv").write_bytes(data.replace(b"/p100,", b"/p100\xff,"))
    code, report, rejects = run_cli(tmp_path, tmp_path / "bad.csv", extra=("-m", str(mapping_file(tmp_path))))
    assert (code, report["rows_read"], report["events"], rejects) == (0, 3000, 3000, [])
    urls = [json.loads(line)["url"] for line in (tmp_path / "events.jsonl").read_text().splitlines()]
    assert "https://example.com/p100\ufffd" in urls


def test_invalid_bytes_in_ndjson_keys_and_values_are_replaced_not_fatal(tmp_path):
    lines = [json.dumps(r).encode() for r in tabular_rows(50)]
    lines[4] = lines[4].replace(b"/p4", b"/p4\xff")
    lines[7] = lines[7].replace(b'"time"', b'"ti\xfeme"')
    (tmp_path / "bad.ndjson").write_bytes(b"\n".join(lines) + b"\n")
    _, report, rejects = run_cli(tmp_path, tmp_path / "bad.ndjson", extra=("-m", str(mapping_file(tmp_path))))
    assert (report["rows_read"], report["rows_invalid"], report["events"]) == (50, 1, 49)
    assert [r["line"] for r in rejects] == [8]
    urls = [json.loads(line)["url"] for line in (tmp_path / "events.jsonl").read_text().splitlines()]
    assert "https://example.com/p4\ufffd" in urls


def write_parquet(path: Path, rows: list[dict], url_bytes: bool = False) -> bytes:
    import pyarrow as pa
    import pyarrow.parquet as pq

    columns = {k: [r[k] for r in rows] for k in rows[0]}
    table = pa.table(columns)
    if url_bytes:
        urls = [u.encode() + (b"\xff" if i == 3 else b"") for i, u in enumerate(columns["url"])]
        table = table.set_column(1, "url", pa.array(urls, pa.binary()))
    pq.write_table(table, path, row_group_size=500)
    return path.read_bytes()


def test_broken_parquet_files_are_skipped_and_the_run_goes_on(tmp_path):
    good = write_parquet(tmp_path / "good.parquet", tabular_rows(3000))
    (tmp_path / "a-empty.parquet").write_bytes(b"")
    (tmp_path / "b-cut.parquet").write_bytes(good[: len(good) // 2])
    code, report, rejects = run_cli(
        tmp_path,
        tmp_path / "a-empty.parquet",
        tmp_path / "b-cut.parquet",
        tmp_path / "good.parquet",
        extra=("-m", str(mapping_file(tmp_path))),
    )
    assert (code, report["rows_read"], report["events"]) == (1, 3000, 3000)
    assert [r["file"].rsplit("/", 1)[1] for r in rejects] == ["a-empty.parquet", "b-cut.parquet"]
    assert all("not readable as Parquet" in r["reason"] for r in rejects)


def test_a_corrupt_parquet_row_group_loses_its_rows_only(tmp_path):
    good = write_parquet(tmp_path / "x.parquet", tabular_rows(3000))
    middle = len(good) // 3
    (tmp_path / "x.parquet").write_bytes(good[:middle] + bytes(200) + good[middle + 200 :])
    code, report, rejects = run_cli(tmp_path, tmp_path / "x.parquet", extra=("-m", str(mapping_file(tmp_path))))
    assert code == 1 and report["inputs_damaged"] == 1
    assert report["events"] == report["rows_read"] == 2500  # one row group of 500 lost, the five others read
    assert len(rejects) == 1 and "row group" in rejects[0]["reason"] and "not readable" in rejects[0]["reason"]


def test_a_parquet_bytes_column_with_invalid_utf8_is_read(tmp_path):
    write_parquet(tmp_path / "b.parquet", tabular_rows(20), url_bytes=True)
    code, report, rejects = run_cli(tmp_path, tmp_path / "b.parquet", extra=("-m", str(mapping_file(tmp_path))))
    assert (code, report["events"], rejects) == (0, 20, [])


def test_a_file_that_cannot_be_opened_is_skipped_and_the_next_is_read(tmp_path):
    from importer.mapping import Mapper, load
    from importer.pipeline import read_events
    from importer.report import RejectsFile, Report
    from importer.sources import Source

    log = tmp_path / "ok.log"
    log.write_text(combined_line() + "\n")
    gone = Source("gone.log", tmp_path / "gone.log")  # named, then rotated away before it was read
    unreadable = Source("dir.log", tmp_path)  # opening it raises IsADirectoryError, as PermissionError would
    report, rejects = Report(), RejectsFile(tmp_path / "r.jsonl")
    list(
        read_events(
            [gone, unreadable, Source("ok.log", log)],
            Mapper(load("web"), "example.com"),
            report,
            rejects,
            read=ReadOptions(),
        )
    )
    rejects.close()
    assert report.events == 1
    assert [s.split(":")[0] for s in report.skipped_sources] == ["gone.log", "dir.log"]
    assert [r["file"] for r in rejects_of(tmp_path / "r.jsonl")] == ["gone.log", "dir.log"]


def compressors():
    import bz2
    import gzip
    import lzma

    import pyarrow as pa

    return {
        "gz": gzip.compress,
        "bz2": bz2.compress,
        "xz": lzma.compress,
        "zst": lambda d: pa.Codec("zstd").compress(d, asbytes=True),
    }


def log_bytes(n: int) -> bytes:
    return ("\n".join(combined_line(target=f"/p{i}") for i in range(n)) + "\n").encode()


@pytest.mark.parametrize("ext", ["gz", "bz2", "xz", "zst"])
def test_a_cut_compressed_log_reads_its_prefix_counts_the_damage_and_exits_1(tmp_path, ext):
    blob = compressors()[ext](log_bytes(20000))
    (tmp_path / f"cut.log.{ext}").write_bytes(blob[: len(blob) // 2])
    code, report, rejects = run_cli(tmp_path, tmp_path / f"cut.log.{ext}")
    assert code == 1 and report["inputs_damaged"] == 1
    assert 0 < report["events"] < 20000  # the readable first part came out
    assert report["rows_read"] == report["rows_invalid"] + sum(report["rows_filtered"].values()) + report["events"]
    assert any("compress" in r["reason"] for r in rejects)


def test_zstd_with_trailing_junk_reads_every_row_before_the_junk(tmp_path):
    blob = compressors()["zst"](log_bytes(2000))
    (tmp_path / "junk.log.zst").write_bytes(blob + b"this is not zstd\n" * 10)
    code, report, _ = run_cli(tmp_path, tmp_path / "junk.log.zst")
    assert code == 1 and report["inputs_damaged"] == 1
    assert report["events"] >= 1900  # all but the last few kilobytes before the junk


def test_a_clean_compressed_log_is_not_damaged(tmp_path):
    (tmp_path / "ok.log.zst").write_bytes(compressors()["zst"](log_bytes(100)))
    code, report, rejects = run_cli(tmp_path, tmp_path / "ok.log.zst")
    assert (code, report["inputs_damaged"], report["events"], rejects) == (0, 0, 100, [])


def test_rows_after_a_malformed_csv_row_keep_their_own_line_numbers(tmp_path):
    from importer.mapping import load
    from importer.readers.csv import CsvReader
    from importer.sources import Source

    good = f'2024-03-14T10:00:00Z,https://example.com/p,203.0.113.7,"{BROWSER}"'
    path = tmp_path / "x.csv"
    path.write_text("time,url,ip,ua\n" + "\n".join([good, good + ",extra", good, "x", good]) + "\n")
    batches = list(CsvReader(load(str(mapping_file(tmp_path))).column_map).read(Source(path.name, path)))
    assert [n for b in batches for n in b.table.column("source_line").to_pylist()] == [2, 4, 6]
    assert [r.line for b in batches for r in b.rejected] == [3, 5]


@pytest.mark.parametrize("ext", ["gz", "zst"])
def test_a_cut_compressed_csv_reads_its_prefix_and_says_so(tmp_path, ext):
    blob = compressors()[ext](csv_bytes(tabular_rows(20000)))
    (tmp_path / f"cut.csv.{ext}").write_bytes(blob[: len(blob) // 2])
    code, report, rejects = run_cli(tmp_path, tmp_path / f"cut.csv.{ext}", extra=("-m", str(mapping_file(tmp_path))))
    assert code == 1 and report["inputs_damaged"] == 1
    assert 0 < report["events"] < 20000
    assert any("compress" in r["reason"] for r in rejects)


def test_a_request_with_a_backslash_before_the_protocol_does_not_abort_the_run(tmp_path):
    log = tmp_path / "k.log"
    log.write_text(
        '198.51.100.7 - - [14/Mar/2024:09:26:54 +0100] "GET /pricing \\HTTP/1.1" 200 8312 "-" "'
        + BROWSER
        + '" "203.0.113.99, 198.51.100.7"\n'
    )
    report = send(
        [log],
        "example.com",
        dry_run=True,
        read=ReadOptions(log_format="main"),
        outputs=OutputOptions(events=tmp_path / "e.jsonl", rejects=tmp_path / "r.jsonl"),
    )
    assert_accounting(report)
