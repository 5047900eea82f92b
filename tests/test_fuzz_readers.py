"""Fuzzing every reader with damaged input: reading never raises, the good lines among bad ones
all come out as rows with their right line numbers, and the run's accounting holds.

Seeded (``derandomize``) and small by default, so that CI stays fast; set
``PLAUSIBLE_IMPORT_FUZZ=long`` for a run with many more examples.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import BROWSER
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from importer.mapping import Mapper, load
from importer.options import ReadOptions
from importer.pipeline import read_events
from importer.readers.csv import CsvReader
from importer.readers.detect import FORMATS, LogReader
from importer.readers.ndjson import NdjsonReader
from importer.report import RejectsFile, Report
from importer.sources import Source

LONG = os.environ.get("PLAUSIBLE_IMPORT_FUZZ") == "long"


def fuzz_settings(examples: int):
    return settings(
        max_examples=examples * 40 if LONG else examples,
        derandomize=True,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture],
    )


# Bytes that upset parsers: quotes, escapes, separators, invalid UTF-8, NUL, CR (never a line end,
# which would shift the numbering the properties check).
NASTY = [
    b'"',
    b"\\",
    b'\\"',
    b"'",
    b" ",
    b"\t",
    b",",
    b"[",
    b"]",
    b"{",
    b"}",
    b":",
    b"\xff",
    b"\xc3",
    b"\xe2\x82",
    b"\x00",
    b"\r",
    b"-",
    b"%",
    b"\xef\xbb\xbf",
]
PIECE = st.one_of(
    st.sampled_from(NASTY), st.binary(min_size=1, max_size=8), st.integers(1, 3000).map(lambda n: b"a" * n)
)


@st.composite
def mutated(draw, line: bytes) -> bytes:
    """``line`` with a few insertions, deletions, replacements, or cut short."""
    out = bytearray(line)
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(out)))
        kind = draw(st.sampled_from(["insert", "delete", "replace", "truncate"]))
        if kind == "insert":
            out[at:at] = draw(PIECE)
        elif kind == "delete":
            del out[at : at + draw(st.integers(1, 20))]
        elif kind == "replace":
            out[at : at + 1] = draw(PIECE)
        else:
            del out[at:]
    return bytes(out).replace(b"\n", b" ")


@st.composite
def mixed_lines(draw, line: bytes) -> tuple[list[bytes], list[int]]:
    """Good copies of ``line`` among mutated ones: (lines, 0-based indexes of the good ones)."""
    kinds = draw(st.lists(st.booleans(), min_size=1, max_size=12))
    lines = [line if good else draw(mutated(line)) for good in kinds]
    return lines, [i for i, good in enumerate(kinds) if good]


def read_rows(reader, path: Path) -> tuple[list[int], list[int], int]:
    """The reader's output: line numbers of its rows, of its rejected lines, and rows read."""
    rows: list[int] = []
    rejected: list[int] = []
    read = 0
    for batch in reader.read(Source(path.name, path)):
        rows += batch.table.column("source_line").to_pylist()
        rejected += [r.line for r in batch.rejected]
        read += batch.rows_read
    return rows, rejected, read


def run(paths: list[Path], mapping="web") -> Report:
    """The reading half of a run over ``paths``; checks the accounting invariant."""
    report = Report()
    rejects = RejectsFile(paths[0].parent / "rejects.jsonl")
    mapper = Mapper(load(mapping) if isinstance(mapping, str) else mapping, "example.com")
    for _ in read_events([Source(p.name, p) for p in paths], mapper, report, rejects, read=ReadOptions()):
        pass
    rejects.close()
    assert report.rows_read == report.rows_invalid + sum(report.rows_filtered.values()) + report.events
    return report


@pytest.mark.parametrize("fmt", FORMATS, ids=lambda f: f.name)
@fuzz_settings(8)
@given(data=st.data())
def test_log_formats_keep_every_good_line_among_damaged_ones(tmp_path, fmt, data):
    example = fmt.example.encode()
    headers = [ln for ln in example.split(b"\n") if ln.startswith(b"#")]
    line = next(ln for ln in example.split(b"\n") if not ln.startswith(b"#"))
    lines, good = data.draw(mixed_lines(line))
    path = tmp_path / "fuzz.log"
    path.write_bytes(b"\n".join(headers + lines) + b"\n")
    rows, rejected, read = read_rows(LogReader(fmt), path)
    first = len(headers) + 1
    assert {first + i for i in good} <= set(rows)
    assert len(rows) == len(set(rows)) and not set(rows) & set(rejected)
    assert read == len(rows) + len(rejected)
    run([path])


TABULAR = """
name = "fuzz"
[input]
timestamp_format = "iso"
[input.columns]
timestamp = "time"
url = "url"
ip = "ip"
user_agent = "ua"
"""


@pytest.fixture(scope="module")
def tabular_mapping(tmp_path_factory):
    path = tmp_path_factory.mktemp("mapping") / "m.toml"
    path.write_text(TABULAR)
    return load(str(path))


@pytest.fixture(scope="module")
def ndjson_mapping(tmp_path_factory):
    path = tmp_path_factory.mktemp("mapping") / "m.toml"
    path.write_text(TABULAR.replace("[input]\n", '[input]\nformat = "ndjson"\n'))
    return load(str(path))


def record(i: int) -> dict:
    return {
        "time": f"2024-03-14T10:00:{i % 60:02d}Z",
        "url": f"https://example.com/p{i}",
        "ip": "203.0.113.7",
        "ua": BROWSER,
    }


@fuzz_settings(40)
@given(data=st.data())
def test_csv_keeps_every_good_row_among_damaged_ones(tmp_path, tabular_mapping, data):
    good_line = b'2024-03-14T10:00:00Z,https://example.com/p,203.0.113.7,"' + BROWSER.encode() + b'"'
    lines, good = data.draw(mixed_lines(good_line))
    path = tmp_path / "fuzz.csv"
    path.write_bytes(b"time,url,ip,ua\n" + b"\n".join(lines) + b"\n")
    report = run([path], tabular_mapping)
    if not any(b'"' in ln for ln in lines if ln != good_line):  # a stray quote may rightly span lines
        rows, rejected, read = read_rows(CsvReader(tabular_mapping.column_map), path)
        assert {2 + i for i in good} <= set(rows)
        assert len(rows) == len(set(rows)) and not set(rows) & set(rejected)
        assert read == len(rows) + len(rejected) == report.rows_read


@fuzz_settings(40)
@given(data=st.data())
def test_ndjson_keeps_every_good_row_among_damaged_ones(tmp_path, ndjson_mapping, data):
    good_line = json.dumps(record(1)).encode()
    lines, good = data.draw(mixed_lines(good_line))
    path = tmp_path / "fuzz.ndjson"
    path.write_bytes(b"\n".join(lines) + b"\n")
    report = run([path], ndjson_mapping)
    if good:  # (with none, the columns the mapping names are nowhere: the file is skipped, and says so)
        rows, rejected, read = read_rows(NdjsonReader(ndjson_mapping.column_map), path)
        assert {1 + i for i in good} <= set(rows)
        assert read == len(rows) + len(rejected) == report.rows_read
    else:
        # (a blank line holds no row)
        assert report.skipped_sources or report.rows_read == len([line for line in lines if line.strip()])


def parquet_file(path: Path, n: int) -> bytes:
    rows = [record(i) for i in range(n)]
    pq.write_table(pa.table({k: [r[k] for r in rows] for k in rows[0]}), path, row_group_size=400)
    return path.read_bytes()


@fuzz_settings(40)
@given(data=st.data())
def test_damaged_parquet_never_stops_a_run(tmp_path, tabular_mapping, data):
    blob = bytearray(parquet_file(tmp_path / "fuzz.parquet", 2000))
    for _ in range(data.draw(st.integers(1, 3))):
        at = data.draw(st.integers(0, len(blob) - 1))
        kind = data.draw(st.sampled_from(["truncate", "flip", "zero"]))
        if kind == "truncate":
            del blob[at:]
            if not blob:
                break
        elif kind == "flip":
            blob[at] ^= 1 << data.draw(st.integers(0, 7))
        else:
            blob[at : at + 64] = bytes(len(blob[at : at + 64]))
    (tmp_path / "fuzz.parquet").write_bytes(bytes(blob))
    parquet_file(tmp_path / "z-after.parquet", 1)
    report = run([tmp_path / "fuzz.parquet", tmp_path / "z-after.parquet"], tabular_mapping)
    assert report.sources[-1][0] == "z-after.parquet" and report.events >= 1  # the run went on to the next input
    if report.rows_read < 2000 + 1:
        assert report.skipped_sources or report.inputs_damaged or report.rows_invalid


LOG = b"".join(FORMATS[0].example.replace("/pricing", f"/p{i}").encode() + b"\n" for i in range(3000))


def _compressors():
    import bz2
    import gzip
    import lzma

    return {
        "gz": gzip.compress,
        "bz2": bz2.compress,
        "xz": lzma.compress,
        "zst": lambda d: pa.Codec("zstd").compress(d, asbytes=True),
    }


COMPRESSED = {ext: compress(LOG) for ext, compress in _compressors().items()}


@pytest.mark.parametrize("ext", sorted(COMPRESSED))
@fuzz_settings(15)
@given(data=st.data())
def test_damaged_compressed_logs_read_what_can_be_read_and_say_so(tmp_path, ext, data):
    blob = bytearray(COMPRESSED[ext])
    kind = data.draw(st.sampled_from(["truncate", "flip", "junk"]))
    if kind == "truncate":
        del blob[data.draw(st.integers(6, len(blob) - 1)) :]  # (shorter, the format's magic number is gone too)
    elif kind == "flip":
        blob[data.draw(st.integers(0, len(blob) - 1))] ^= 1 << data.draw(st.integers(0, 7))
    else:
        blob += data.draw(st.binary(min_size=1, max_size=64))
    path = tmp_path / f"fuzz.log.{ext}"
    path.write_bytes(bytes(blob))
    report = run([path])
    if report.rows_read < 3000 or report.events < 3000:
        assert report.inputs_damaged or report.skipped_sources or report.rows_invalid
    if kind == "truncate" and report.events:  # what came out is the file's beginning, in order
        rows, _, _ = read_rows(LogReader(FORMATS[0]), path)
        assert rows == list(range(1, len(rows) + 1))
