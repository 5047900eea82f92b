"""What every reader returns, and small helpers readers share."""

from __future__ import annotations

import codecs
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Protocol

import pyarrow as pa

from .. import schema
from ..sources import MAX_LINE_BYTES, LineBlock, Source


@dataclass(frozen=True)
class Rejected:
    """An input line (or row) that could not be used, and why."""

    file: str
    line: int | None
    reason: str
    text: str

    def as_record(self) -> dict[str, object]:
        return {"stage": "read", "file": self.file, "line": self.line, "reason": self.reason, "text": self.text}


@dataclass
class Batch:
    """One step of a reader's output.

    ``table`` is canonical (see :mod:`importer.schema`). ``rows_read`` counts the rows this
    batch consumed, valid or not (header, comment and empty lines are not rows).
    ``rejected`` are the invalid rows among them. ``notices`` are problems that are not rows
    (a truncated compressed stream). ``damaged``: the input is damaged here (a compressed
    stream cut or corrupt, a Parquet row group unreadable) and what follows it was lost; a
    notice says what. ``position`` is the number of raw input bytes consumed so far, for progress.
    ``skipped`` counts the lines that hold no row (blank lines, comments, W3C directives).
    """

    table: pa.Table
    rows_read: int
    rejected: list[Rejected] = field(default_factory=list)
    notices: list[Rejected] = field(default_factory=list)
    position: int = 0
    damaged: bool = False
    skipped: int = 0


def too_long_rejects(block: LineBlock, source_name: str, limit: int = MAX_LINE_BYTES) -> list[Rejected]:
    """The lines :func:`importer.sources.line_blocks` blanked for being over the length limit."""
    return [
        Rejected(source_name, number, f"line longer than {limit} bytes", text.decode("utf-8", "replace"))
        for number, text in block.too_long
    ]


def too_long_only(block: LineBlock, source_name: str) -> Batch:
    """The batch of a block that holds no parseable line: only its over-long ones."""
    return Batch(
        table=schema.empty_frame(), rows_read=len(block.too_long), rejected=too_long_rejects(block, source_name)
    )


class Reader(Protocol):
    """Reads one source into canonical batches."""

    name: str

    def read(self, source: Source) -> Iterator[Batch]: ...


class FormatError(Exception):
    """A source whose format cannot be recognised or does not match the one requested."""


def valid_utf8(data: bytes) -> bytes:
    """``data`` with invalid UTF-8 replaced by U+FFFD (the same object when it was valid)."""
    if data.isascii():  # several times cheaper than a decode, and logs are mostly ASCII
        return data
    try:
        data.decode("utf-8")
        return data
    except UnicodeDecodeError:
        return data.decode("utf-8", "replace").encode("utf-8")


def check_encoding(name: str) -> str:
    """A text encoding that keeps ASCII and line ends as they are (Latin-1, Windows-1252, Big5,
    Shift-JIS...), by its canonical name; FormatError for others (UTF-16 would need the
    lines cut differently)."""
    try:
        canonical = codecs.lookup(name).name
    except LookupError:
        raise FormatError(f"unknown encoding {name!r}; give a name such as latin-1, cp1252 or big5") from None
    if "a \n".encode(canonical, "replace") != b"a \n":
        raise FormatError(f"encoding {name!r} does not write line ends as single bytes; convert the file to UTF-8")
    return canonical


def transcoded(block: LineBlock, encoding: str) -> LineBlock:
    """A block of text in ``encoding`` as UTF-8 (what the parsers read); bytes that are invalid
    in ``encoding`` become U+FFFD, never an error. Line ends and numbers stay."""
    if encoding == "utf-8" or block.data.isascii():
        return block
    return replace(block, data=block.data.decode(encoding, "replace").encode("utf-8"))
