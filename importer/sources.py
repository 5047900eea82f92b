"""Where rows come from: paths, directories, globs, stdin and remote URLs, decompressed by content.

A :class:`Source` is one input (a file or stdin). :func:`expand` turns what a user typed into
an ordered list of sources: rotated sets oldest first, so that events leave in the order they
happened. :func:`line_blocks` reads a source as blocks of whole lines with their line numbers,
so memory stays bounded whatever the file size. Remote inputs (``s3://``, ``gs://``, ``az://``,
``https://``) are listed and opened by :mod:`importer.remote`.
"""

from __future__ import annotations

import bz2
import codecs
import glob
import gzip
import io
import lzma
import os
import re
import sys
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePath, PurePosixPath
from typing import Any, BinaryIO

import numpy as np
import pyarrow as pa

from .remote import RemoteError, RemoteObject, date_in, list_objects, scheme_of

STDIN = "-"
PARTIAL_LINE_S = 10.0  # a plain file changed this recently may have a line being written at its end
BLOCK_BYTES = 4 << 20  # bench/parse.py: 4 MiB keeps peak memory well under 300 MB at full speed
MAX_LINE_BYTES = 64 << 10

_MAGIC = (
    (b"\x1f\x8b", "gzip"),
    (b"BZh", "bz2"),
    (b"\xfd7zXZ\x00", "xz"),
    (b"\x28\xb5\x2f\xfd", "zstd"),
)


class SourceError(Exception):
    """An input that cannot be opened at all (missing file, unreadable directory, a bucket that
    cannot be listed)."""


@dataclass(frozen=True)
class Source:
    """One input: a file path, a remote object, or stdin when it has neither. ``limit``: read
    only this many bytes of the file (see :meth:`complete_lines`); ``held_back``: how many bytes
    that leaves."""

    name: str
    path: Path | None = None
    limit: int | None = None
    held_back: int = 0
    remote: RemoteObject | None = None

    @property
    def stdin(self) -> bool:
        return self.path is None and self.remote is None

    @property
    def size(self) -> int | None:
        """Size on disk (compressed), for progress; None for stdin."""
        if self.remote is not None:
            return self.remote.size
        if self.path is None:
            return None
        try:
            size = self.path.stat().st_size
        except OSError:
            return None
        return size if self.limit is None else min(size, self.limit)

    def open_raw(self) -> BinaryIO:
        if self.remote is not None:
            return self.remote.open()  # RemoteError when it cannot be opened or read
        if self.path is None:
            return sys.stdin.buffer
        raw = open(self.path, "rb")
        return raw if self.limit is None else _Limited(raw, self.limit)  # type: ignore[return-value]

    def complete_lines(self, now: float | None = None) -> Source:
        """This source, without its last line if that line looks half written: a plain file
        changed in the last :data:`PARTIAL_LINE_S` seconds whose last byte is not a newline
        (a server writing it right now). A run that keeps state leaves that line to the next run
        instead of rejecting a fragment and recording the line as done."""
        if self.path is None or self.limit is not None:
            return self
        try:
            with open(self.path, "rb") as f:
                st = os.fstat(f.fileno())
                if st.st_size == 0 or (now if now is not None else time.time()) - st.st_mtime > PARTIAL_LINE_S:
                    return self
                if detect_compression(f.read(8)):
                    return self
                start = max(0, st.st_size - MAX_LINE_BYTES)
                f.seek(start)
                tail = f.read(st.st_size - start)
        except OSError:
            return self
        if tail.endswith(b"\n"):
            return self
        cut = tail.rfind(b"\n") + 1
        if cut == 0 and start > 0:
            return self  # a last line longer than any line may be: read it (and reject it) as usual
        end = start + cut
        return Source(self.name, self.path, limit=end, held_back=st.st_size - end)


class _Limited:
    """A file read up to a given byte offset only."""

    def __init__(self, raw: BinaryIO, limit: int):
        self._raw = raw
        self._left = limit

    def read(self, n: int = -1) -> bytes:
        if n is None or n < 0 or n > self._left:
            n = self._left
        data = self._raw.read(n)
        self._left -= len(data)
        return data

    def readinto(self, b: Any) -> int:
        view = memoryview(b)[: self._left]
        n = self._raw.readinto(view) or 0  # type: ignore[attr-defined]  # a file opened "rb" has readinto
        self._left -= n
        return n

    def readable(self) -> bool:
        return True

    def close(self) -> None:
        self._raw.close()

    @property
    def closed(self) -> bool:
        return self._raw.closed


def _rotation_key(path: PurePath) -> tuple[str, int, str]:
    """Sort key that puts a rotated set oldest first.

    ``access.log.3.gz`` < ``access.log.2.gz`` < ``access.log.1`` < ``access.log``; dateext
    names (``access.log-20240314.gz``) sort by date before the live file.
    """
    name = path.name
    stem = re.sub(r"\.(gz|bz2|xz|zst)$", "", name)
    m = re.match(r"^(.*?)\.(\d+)$", stem)
    if m:
        return (str(path.parent / m.group(1)), -int(m.group(2)), "")
    m = re.match(r"^(.*?)-(\d{8,10})$", stem)
    if m:
        return (str(path.parent / m.group(1)), -(10**12), m.group(2))
    return (str(path.parent / stem), 0, "")


def expand(specs: list[str]) -> list[Source]:
    """Turn command-line inputs into an ordered list of sources.

    ``-`` is stdin; a directory means the regular files in it; a pattern with ``*``, ``?`` or
    ``[`` is a glob. Within what one spec names, rotated sets come oldest first.
    """
    sources: list[Source] = []
    seen: set[Path] = set()
    seen_urls: set[str] = set()
    for spec in specs:
        if spec == STDIN:
            sources.append(Source(name="<stdin>"))
            continue
        if scheme_of(spec) is not None:
            for source in expand_remote(spec):
                if source.name not in seen_urls:
                    seen_urls.add(source.name)
                    sources.append(source)
            continue
        if any(ch in spec for ch in "*?["):
            paths = [Path(p) for p in glob.glob(spec, recursive=True)]
            paths = [p for p in paths if p.is_file()]
            if not paths:
                raise SourceError(f"{spec}: no file matches this pattern")
        else:
            path = Path(spec)
            if path.is_dir():
                paths = [p for p in path.iterdir() if p.is_file() and not p.name.startswith(".")]
                if not paths:
                    raise SourceError(f"{spec}: directory holds no files")
            elif path.is_file():
                paths = [path]
            elif path.exists():
                raise SourceError(f"{spec}: not a regular file")
            else:
                raise SourceError(f"{spec}: no such file")
        for p in sorted(paths, key=_rotation_key):
            resolved = p.resolve()
            if resolved in seen:
                continue
            seen.add(resolved)
            sources.append(Source(name=str(p), path=p))
    return sources


def expand_remote(spec: str) -> list[Source]:
    """The objects a remote URL names, oldest first: by the date in their keys (how cloud
    services name their log files), then as a rotated set, as local files are."""
    try:
        objects = list_objects(spec)
    except RemoteError as exc:
        raise SourceError(str(exc)) from None
    objects.sort(key=_age_key)
    return [Source(name=o.url, remote=o) for o in objects]


def _age_key(remote: RemoteObject) -> tuple[tuple[int, ...], tuple[str, int, str]]:
    date = date_in(remote.url)  # the key's own order breaks ties between equal dates
    return (date, ("", 0, remote.url)) if date else (date, _rotation_key(PurePosixPath(remote.url)))


class _Position:
    """Tracks how many raw (compressed) bytes have been read, for progress bars."""

    def __init__(self, raw: BinaryIO):
        self._raw = raw
        self.consumed = 0

    def read(self, n: int = -1) -> bytes:
        data = self._raw.read(n)
        self.consumed += len(data)
        return data

    def readinto(self, b) -> int:
        readinto = getattr(self._raw, "readinto", None)
        if readinto is not None:  # straight into the caller's buffer: no extra copy
            n = readinto(b) or 0
            self.consumed += n
            return n
        data = self.read(len(b))
        b[: len(data)] = data
        return len(data)

    def readable(self) -> bool:
        return True

    @property
    def closed(self) -> bool:
        return False


def detect_compression(head: bytes) -> str | None:
    for magic, name in _MAGIC:
        if head.startswith(magic):
            return name
    return None


# What a decompressor raises at damaged input (OSError covers gzip's BadGzipFile and Arrow's zstd).
DAMAGE_ERRORS = (EOFError, OSError, zlib.error, lzma.LZMAError, pa.ArrowException)
_ZSTD_STEP = 8 << 10  # what a damaged stream loses at most; smaller steps cost more calls


class _ZstdReader(io.RawIOBase):
    """zstd frames decoded a small step at a time: at damage (a cut, flipped bits, trailing junk)
    only the step being decoded is lost, not everything one large read would have returned."""

    def __init__(self, raw):
        self._stream = pa.CompressedInputStream(pa.PythonFile(raw, mode="r"), "zstd")

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:
        data = self._stream.read(min(len(b), _ZSTD_STEP))
        b[: len(data)] = data
        return len(data)


class SalvagedText(io.RawIOBase):
    """A decompressed stream as a parser may take it whole: invalid UTF-8 replaced by U+FFFD,
    and a damaged compressed stream ended where the damage starts, its reason appended to
    ``damage`` (the bytes before it are kept)."""

    def __init__(self, stream: BinaryIO, damage: list[str]):
        self._read = getattr(stream, "read1", stream.read)
        self._decoder = codecs.getincrementaldecoder("utf-8")("replace")
        self._pending = b""
        self._damage = damage

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:
        while not self._pending:
            try:
                chunk = self._read(len(b))
            except DAMAGE_ERRORS as exc:
                self._damage.append(damage_reason(exc))
                self._read = lambda size: b""  # the stream ends at its damage
                chunk = b""
            if chunk.isascii() and not self._decoder.getstate()[0]:
                self._pending = chunk  # the usual case: nothing to repair, no copy
            else:
                self._pending = self._decoder.decode(chunk, final=not chunk).encode("utf-8")
            if not chunk:
                break
        n = min(len(b), len(self._pending))
        b[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        return n


def damage_reason(exc: BaseException) -> str:
    """Why a compressed stream stopped early, in words."""
    if isinstance(exc, EOFError) or "runcated" in str(exc):
        return f"compressed stream ends early ({exc})"
    return f"corrupt compressed data ({exc})"


@dataclass
class OpenSource:
    """A source opened for reading: decompressed bytes plus raw-position tracking."""

    stream: BinaryIO
    position: _Position
    compression: str | None
    raw: BinaryIO


def open_source(source: Source) -> OpenSource:
    raw = source.open_raw()
    position = _Position(raw)
    if getattr(source, "live", False):
        # A followed live log (importer.follow): plain text, read as it grows; each read
        # returns what is there, so lines go out as soon as they are written.
        return OpenSource(stream=position, position=position, compression=None, raw=raw)  # type: ignore[arg-type]
    buffered = io.BufferedReader(position, buffer_size=1 << 20)  # type: ignore[type-var]  # _Position reads like a raw file
    compression = detect_compression(buffered.peek(8)[:8])
    stream: BinaryIO
    if compression == "gzip":
        stream = gzip.GzipFile(fileobj=buffered, mode="rb")  # type: ignore[assignment]
    elif compression == "bz2":
        stream = bz2.BZ2File(buffered)  # type: ignore[assignment]
    elif compression == "xz":
        stream = lzma.LZMAFile(buffered)  # type: ignore[assignment]
    elif compression == "zstd":
        stream = io.BufferedReader(_ZstdReader(buffered))
    else:
        stream = buffered
    return OpenSource(stream=stream, position=position, compression=compression, raw=raw)


@dataclass
class LineBlock:
    """Whole lines from a source.

    ``data`` holds complete lines (the last may lack its newline only at end of input);
    ``first_line`` is the 1-based number of its first line; ``line_count`` how many lines it
    holds. ``too_long`` lists lines dropped for exceeding :data:`MAX_LINE_BYTES`, as
    ``(line number, first bytes)``, and ``truncated`` says why the input ended early, if it did.
    """

    data: bytes
    first_line: int
    line_count: int
    too_long: list[tuple[int, bytes]] = field(default_factory=list)
    truncated: str | None = None


def _count_lines(data: bytes) -> int:
    n = int(np.count_nonzero(np.frombuffer(data, dtype=np.uint8) == 10))  # bytes.count is slower
    if data and not data.endswith(b"\n"):
        n += 1
    return n


def _long_lines(data: bytes, limit: int) -> np.ndarray:
    """0-based indexes, within ``data``, of lines longer than ``limit`` bytes."""
    buf = np.frombuffer(data, dtype=np.uint8)
    ends = np.flatnonzero(buf == 10)
    if len(ends) == 0 or ends[-1] != len(buf) - 1:
        ends = np.append(ends, len(buf))
    starts = np.concatenate(([0], ends[:-1] + 1))
    return np.flatnonzero((ends - starts) > limit)


def _drop_lines(data: bytes, indexes: np.ndarray, first_line: int, keep_numbering: bool = True):
    """Blank out the given lines (kept as empty lines so numbering stays right)."""
    lines = data.split(b"\n")
    dropped = []
    for i in indexes.tolist():
        dropped.append((first_line + i, lines[i][:200]))
        lines[i] = b""
    return b"\n".join(lines), dropped


def _read_block(stream: BinaryIO, size: int) -> tuple[bytes, str | None]:
    """Read up to ``size`` bytes; on a damaged compressed stream keep what came before it.

    Decompressors raise at the point of damage and a plain ``read(size)`` would lose what it
    had decoded in that call, so the block is filled with ``read1`` steps instead.
    """
    read1 = getattr(stream, "read1", None)
    if read1 is None or (type(stream) is io.BufferedReader and not isinstance(stream.raw, _ZstdReader)):
        return stream.read(size), None  # plain input: one read, no joins
    parts: list[bytes] = []
    got = 0
    while got < size:
        try:
            part = read1(min(size - got, 1 << 20))
        except DAMAGE_ERRORS as exc:
            return b"".join(parts), damage_reason(exc)
        if not part:
            break
        parts.append(part)
        got += len(part)
    return b"".join(parts), None


def line_blocks(
    opened: OpenSource, block_bytes: int = BLOCK_BYTES, max_line_bytes: int = MAX_LINE_BYTES
) -> Iterator[LineBlock]:
    """Read decompressed input as blocks of whole lines.

    A line longer than ``max_line_bytes`` is blanked (its number is kept, reported in
    ``too_long``) so one pathological line neither exhausts memory nor shifts numbering. A
    truncated or corrupt compressed stream ends the input; what was read before is kept and
    the last block carries the reason.
    """
    next_line = 1
    carry = b""
    skipping_long: tuple[int, bytes] | None = None
    truncated: str | None = None
    while True:
        try:
            chunk = b""
            if truncated is None:
                chunk, truncated = _read_block(opened.stream, block_bytes)
        except DAMAGE_ERRORS as exc:
            chunk, truncated = b"", damage_reason(exc)
        if skipping_long is not None:
            nl = chunk.find(b"\n")
            if nl < 0 and chunk:
                continue
            too_long = [skipping_long]
            skipping_long = None
            chunk = chunk[nl + 1 :] if nl >= 0 else b""
            # The long line itself is represented by an empty line to keep numbering.
            yield LineBlock(data=b"\n", first_line=next_line, line_count=1, too_long=too_long)
            next_line += 1
        if not chunk:
            if carry:
                data = carry
                carry = b""
                yield _finish_block(data, next_line, max_line_bytes, truncated)
            elif truncated:
                yield LineBlock(data=b"", first_line=next_line, line_count=0, truncated=truncated)
            return
        cut = chunk.rfind(b"\n")
        if cut < 0:
            data = carry + chunk
            if len(data) > max_line_bytes:
                skipping_long = (next_line, data[:200])
                carry = b""
            else:
                carry = data
            continue
        data = b"".join((carry, memoryview(chunk)[: cut + 1]))  # one copy of the block
        carry = chunk[cut + 1 :]
        block = _finish_block(data, next_line, max_line_bytes, None)
        next_line += block.line_count
        yield block
        if len(carry) > max_line_bytes:
            skipping_long = (next_line, carry[:200])
            carry = b""


def _may_have_long_lines(data: bytes, limit: int) -> bool:
    """False when no line can be longer than ``limit``: every aligned window of ``limit // 2``
    bytes holds a line end (a longer line would cover one such window whole). A few hundred
    short ``find`` calls instead of a scan of the whole block."""
    window = max(limit // 2, 1)
    return any(data.find(b"\n", start, start + window) < 0 for start in range(0, len(data) - window + 1, window))


def _finish_block(data: bytes, first_line: int, max_line_bytes: int, truncated: str | None) -> LineBlock:
    too_long: list[tuple[int, bytes]] = []
    long_idx = _long_lines(data, max_line_bytes) if _may_have_long_lines(data, max_line_bytes) else None
    if long_idx is not None and len(long_idx):
        data, too_long = _drop_lines(data, long_idx, first_line)
    return LineBlock(
        data=data,
        first_line=first_line,
        line_count=_count_lines(data),
        too_long=too_long,
        truncated=truncated,
    )
