"""Inputs: compression by content, rotated sets oldest first, directories, globs, stdin, damage."""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import sys

import pyarrow as pa
import pytest
from conftest import combined_line

from importer.readers import reader_for
from importer.sources import Source, SourceError, expand


def rows_of(source: Source):
    reader = reader_for(source)
    batches = list(reader.read(source))
    return (
        [r for b in batches for r in b.table.to_pylist()],
        [r for b in batches for r in b.rejected],
        [n for b in batches for n in b.notices],
    )


def _lines(n: int, start: int = 0) -> bytes:
    return (
        "\n".join(combined_line(ip=f"192.0.2.{i % 250 + 1}", target=f"/p{i}") for i in range(start, start + n)) + "\n"
    ).encode()


def _zstd(data: bytes) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.CompressedOutputStream(sink, "zstd") as out:
        out.write(data)
    return sink.getvalue().to_pybytes()


@pytest.mark.parametrize(
    ("name", "compress"),
    [
        ("a.log.gz", gzip.compress),
        ("a.log.bz2", bz2.compress),
        ("a.log.xz", lzma.compress),
        ("a.log.zst", _zstd),
        ("no-extension", gzip.compress),  # recognised by content, not by name
    ],
)
def test_compressed_inputs(tmp_path, name, compress):
    path = tmp_path / name
    path.write_bytes(compress(_lines(50)))
    rows, rejected, notices = rows_of(Source(str(path), path))
    assert [r["path"] for r in rows] == [f"/p{i}" for i in range(50)]
    assert not rejected and not notices


def test_truncated_gzip_keeps_what_was_read_and_says_so(tmp_path):
    data = gzip.compress(_lines(2000))
    path = tmp_path / "cut.log.gz"
    path.write_bytes(data[: len(data) // 2])
    rows, rejected, notices = rows_of(Source(str(path), path))
    assert 0 < len(rows) < 2000
    assert [r["source_line"] for r in rows] == list(range(1, len(rows) + 1))
    # the cut may fall inside a line: that partial line is rejected, never half-parsed silently
    assert len(rejected) <= 1
    assert len(notices) == 1 and "ends early" in notices[0].reason


def test_rotated_set_is_read_oldest_first(tmp_path):
    for name in ("access.log", "access.log.1", "access.log.2.gz", "access.log.10.gz"):
        (tmp_path / name).write_bytes(b"")
    names = [s.path.name for s in expand([str(tmp_path)])]
    assert names == ["access.log.10.gz", "access.log.2.gz", "access.log.1", "access.log"]
    assert [s.path.name for s in expand([str(tmp_path / "access.log*")])] == names


def test_missing_inputs_are_errors(tmp_path):
    with pytest.raises(SourceError, match="no such file"):
        expand([str(tmp_path / "nope.log")])
    with pytest.raises(SourceError, match="no file matches"):
        expand([str(tmp_path / "*.nope")])


def test_stdin(monkeypatch):
    fake = io.TextIOWrapper(io.BytesIO(_lines(3)))
    monkeypatch.setattr(sys, "stdin", fake)
    [source] = expand(["-"])
    rows, _, _ = rows_of(source)
    assert [r["source_file"] for r in rows] == ["<stdin>"] * 3


def test_invalid_utf8_is_replaced_not_fatal(tmp_path):
    path = tmp_path / "latin1.log"
    line = combined_line(target="/caf\udce9").encode("utf-8", "surrogateescape")
    path.write_bytes(line + b"\n" + _lines(1))
    rows, rejected, _ = rows_of(Source(str(path), path))
    assert rows[0]["path"] == "/caf\ufffd" and len(rows) == 2 and not rejected


def test_blocks_keep_exact_line_numbers_across_block_boundaries(tmp_path, monkeypatch):
    import importer.sources as sources

    monkeypatch.setattr(sources, "BLOCK_BYTES", 4096)
    path = tmp_path / "many.log"
    data = _lines(300).split(b"\n")
    data[150] = b"broken line"
    path.write_bytes(b"\n".join(data))
    source = Source(str(path), path)
    reader = reader_for(source)
    batches = list(reader.read(source))
    rows = [r for b in batches for r in b.table.to_pylist()]
    assert len(batches) > 1  # the file really was read in several blocks
    lines = [r["source_line"] for r in rows]
    assert lines == [i for i in range(1, 301) if i != 151]
    assert [r.line for b in batches for r in b.rejected] == [151]
