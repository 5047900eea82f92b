"""Line formats described by one RE2 pattern with named groups, parsed a block at a time.

A block of lines becomes one Arrow string array (built on the block's own bytes, no copy per
line); ``pyarrow.compute.extract_regex`` splits every line into named fields in C++; and
:func:`importer.readers.normalise.to_canonical` converts the fields. No Python runs per line.

Group names are field names of :mod:`importer.readers.normalise`; groups named ``x_...`` are
matched but not used.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..sources import LineBlock
from .base import Batch, Rejected, too_long_only, too_long_rejects, valid_utf8
from .fields import TextStyle
from .normalise import to_canonical


def block_lines(data: bytes) -> tuple[pa.Array, np.ndarray]:
    """A block's lines (line ends removed) as a string array, and their 0-based indexes."""
    data = valid_utf8(data)
    buf = np.frombuffer(data, dtype=np.uint8)
    newlines = np.flatnonzero(buf == 10)
    ends = newlines + 1
    if len(buf) and (len(newlines) == 0 or newlines[-1] != len(buf) - 1):
        ends = np.append(ends, len(buf))
    offsets = np.concatenate(([0], ends)).astype(np.int32)
    n = len(offsets) - 1
    raw = pa.Array.from_buffers(pa.string(), n, [None, pa.py_buffer(offsets), pa.py_buffer(data)])
    lines = pc.utf8_rtrim(raw, characters="\r\n")
    return lines, np.arange(n, dtype=np.int64)


def fields_of(parts: pa.StructArray) -> dict[str, pa.Array]:
    names = [parts.type.field(i).name for i in range(parts.type.num_fields)]
    return {name: pc.struct_field(parts, name) for name in names if not name.startswith("x_")}


def finish(
    block: LineBlock,
    source_name: str,
    lines: pa.Array,
    indexes: np.ndarray,
    fields: dict[str, pa.Array],
    matched: pa.Array | None,
    *,
    style: TextStyle,
    timezone: str,
    local_time: bool = False,
    format_name: str = "",
    rejected: list[Rejected] | None = None,
    time_format: str | None = None,
) -> tuple[Batch, bool]:
    """Convert a block's fields and build its batch; returns (batch, zone assumed)."""
    rejected = list(rejected or []) + too_long_rejects(block, source_name)
    converted = to_canonical(
        fields,
        len(lines),
        source_name,
        indexes + block.first_line,
        style=style,
        timezone=timezone,
        local_time=local_time,
        matched=matched,
        format_name=format_name,
        time_format=time_format,
    )
    for i, reason in converted.invalid:
        rejected.append(Rejected(source_name, int(indexes[i]) + block.first_line, reason, lines[i].as_py() or ""))
    rejected.sort(key=lambda r: r.line or 0)
    batch = Batch(table=converted.table, rows_read=converted.table.num_rows + len(rejected), rejected=rejected)
    return batch, converted.zone_assumed


@dataclass
class Sample:
    """The first non-empty lines of a file, for detection; ``rows`` are those that are not comments."""

    lines: list[str]
    end: int = 0  # how many lines of the input the sample covers (up to its last line, empty ones included)

    @property
    def rows(self) -> list[str]:
        return [ln for ln in self.lines if not ln.startswith("#")]


@dataclass(frozen=True)
class LineFormat:
    """A format that one regular expression describes (per line)."""

    name: str
    description: str
    example: str
    pattern: str
    style: TextStyle = TextStyle()
    family: str = "access log"
    zone_less: bool = False  # times carry no zone: --timezone applies
    post: Callable[[dict[str, pa.Array]], dict[str, pa.Array]] | None = field(default=None, compare=False)
    # A cheaper capture pattern for the usual lines (no quote or separator inside a field);
    # lines it misses but ``pattern`` accepts are captured with ``pattern``.
    fast_pattern: str | None = None
    time_format: str | None = None  # strftime, of a ``time_strftime`` field

    def score(self, sample: Sample) -> float:
        rows = sample.rows
        if not rows:
            return 0.0
        hits = pc.sum(pc.match_substring_regex(pa.array(rows, pa.string()), self.pattern)).as_py() or 0
        return hits / len(rows)

    def parser(self, timezone: str) -> RegexParser:
        return RegexParser(self, timezone)


class RegexParser:
    def __init__(self, fmt: LineFormat, timezone: str):
        self.fmt = fmt
        self.timezone = timezone
        self.zone_assumed = False
        self._extraction = extraction_pattern(fmt)

    def parse(self, block: LineBlock, source_name: str) -> Batch:
        if not block.data:
            return too_long_only(block, source_name)
        lines, indexes = block_lines(block.data)
        # blank lines and comments ("#" lines, as in ELB dumps) hold no row: the reader counts them as skipped
        keep = pc.and_(pc.greater(pc.binary_length(lines), 0), pc.invert(pc.starts_with(lines, "#")))
        if not pc.all(keep).as_py():
            indexes = indexes[keep.to_numpy(zero_copy_only=False)]
            lines = lines.filter(keep)
        original = lines
        if self.fmt.style.backslash and b"\\" in block.data:
            # as for CLF: escaped quotes and backslashes become \xHH (undone with the other
            # escapes), so quoted fields hold no quote and the simpler extraction pattern applies
            lines = pc.replace_substring(pc.replace_substring(lines, "\\\\", "\\x5C"), '\\"', "\\x22")
        matched = pc.match_substring_regex(lines, self.fmt.pattern)  # full check, fast (no captures)
        parts = pc.extract_regex(lines, self._extraction)
        fields = fields_of(parts)
        if self._extraction != self.fmt.pattern:
            missed = pc.and_(pc.is_null(parts), matched)
            if pc.any(missed).as_py():
                slow = fields_of(pc.extract_regex(lines.filter(missed), self.fmt.pattern))
                fields = {k: pc.replace_with_mask(v, missed, slow[k]) for k, v in fields.items()}
        if self.fmt.post is not None:
            fields = self.fmt.post(fields)
        batch, assumed = finish(
            block,
            source_name,
            original,
            indexes,
            fields,
            matched,
            style=self.fmt.style,
            timezone=self.timezone,
            format_name=self.fmt.name,
            time_format=self.fmt.time_format,
        )
        self.zone_assumed = self.zone_assumed or assumed
        return batch


def extraction_pattern(fmt: LineFormat) -> str:
    """The pattern that captures the fields, for lines the full pattern has accepted.

    Capture groups make RE2 much slower than a plain match, so the extraction pattern is
    trimmed: quoted fields without escape alternatives (quotes inside were rewritten), and no
    trailing "anything else" part (AWS keeps appending fields at the end).
    """
    if fmt.fast_pattern is not None:
        return fmt.fast_pattern
    pattern = fmt.pattern
    if fmt.style.backslash:
        pattern = pattern.replace(QUOTED, '[^"]*')
    if pattern.endswith("(?: .*)?$"):
        pattern = pattern[: -len("(?: .*)?$")]
    return pattern


# Building blocks for patterns.
QUOTED = r'(?:[^"\\]|\\.)*'  # inside double quotes, backslash escapes allowed
SYSLOG = r"(?:[A-Z][a-z]{2} [ \d]\d \d{2}:\d{2}:\d{2} \S+ [^:\s]+: )?"
