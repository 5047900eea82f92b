"""nginx / Apache access logs in the Common Log Format family, parsed at columnar speed.

A combined line is almost a space-delimited CSV row with double quotes:

    203.0.113.42 - - [14/Mar/2024:09:26:53 +0100] "GET /p?q=1 HTTP/1.1" 200 5123 "ref" "UA"

so whole blocks of lines go through pyarrow's multi-threaded CSV parser (the bracketed time
splits into two columns), and every field is then converted with Arrow compute kernels, most
of them on the distinct values only (times, requests and user agents repeat heavily).

Exact line numbers are kept for every row. The fast path assumes every non-empty line parses;
when the parser reports a malformed line, that block alone is re-parsed on a slower exact path
that also catches what the fast parser can get wrong (an unterminated quote swallowing the next
line).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from .. import schema
from ..arrowutil import repeat_string
from ..sources import LineBlock
from . import trailing
from .base import Batch, Rejected, too_long_rejects
from .fields import (
    first_forwarded,
    normalise_hosts,
    offset_seconds,
    split_requests,
    strip_port,
    unescape_column,
)

_QS = r'"(?:[^"\\]|\\.)*"'
_TIME = r"\[[^\]]+\]"
_CLF_TAIL = rf"\S+ \S+ {_TIME} {_QS} \d{{3}} (?:\d+|-)"


@dataclass(frozen=True)
class ClfLayout:
    """One member of the family: which space-separated column holds which field."""

    name: str
    description: str
    columns: int
    fields: dict[str, int]
    pattern: re.Pattern[str]
    example: str

    @property
    def trailing_pattern(self) -> str:
        """This layout's fields (group 1), then more fields (:func:`importer.readers.trailing.pattern`)."""
        return trailing.pattern(self.pattern.pattern, quoted_first="user_agent" in self.fields)


def _fields(prefix: int, with_ref_ua: bool) -> dict[str, int]:
    f = {
        "ip": prefix,
        "time": prefix + 3,
        "tz": prefix + 4,
        "request": prefix + 5,
        "status": prefix + 6,
        "bytes": prefix + 7,
    }
    if prefix:
        f["host"] = 0
    if with_ref_ua:
        f["referrer"] = prefix + 8
        f["user_agent"] = prefix + 9
    return f


LAYOUTS: tuple[ClfLayout, ...] = (
    ClfLayout(
        name="combined",
        description="nginx default / Apache combined: CLF plus referrer and user agent",
        columns=10,
        fields=_fields(0, True),
        pattern=re.compile(rf"^\S+ {_CLF_TAIL} {_QS} {_QS}$"),
        example='203.0.113.42 - - [14/Mar/2024:09:26:53 +0100] "GET /pricing?plan=pro HTTP/1.1" 200 5123 '
        '"https://www.example.org/" "Mozilla/5.0 (X11; Linux x86_64; rv:123.0) Gecko/20100101 Firefox/123.0"',
    ),
    ClfLayout(
        name="common",
        description="Common Log Format (Apache common): no referrer, no user agent",
        columns=8,
        fields=_fields(0, False),
        pattern=re.compile(rf"^\S+ {_CLF_TAIL}$"),
        example='198.51.100.23 - alice [14/Mar/2024:09:26:53 -0400] "GET /docs/ HTTP/1.1" 200 7734',
    ),
    ClfLayout(
        name="vhost_combined",
        description="combined with a leading virtual host (host or host:port), e.g. Apache vhost_combined",
        columns=11,
        fields=_fields(1, True),
        pattern=re.compile(rf"^\S+ \S+ {_CLF_TAIL} {_QS} {_QS}$"),
        example='www.example.com:443 198.51.100.23 - - [14/Mar/2024:09:27:02 -0400] "GET /docs/install HTTP/1.1" 200 '
        '9021 "https://www.example.com/docs/" "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/122.0.0.0 Safari/537.36"',
    ),
    ClfLayout(
        name="main",
        description='nginx "main": combined plus a trailing "$http_x_forwarded_for" (its first address is the client)',
        columns=11,
        fields={**_fields(0, True), "xff": 10},
        pattern=re.compile(rf"^\S+ {_CLF_TAIL} {_QS} {_QS} {_QS}$"),
        example='198.51.100.7 - - [14/Mar/2024:09:26:54 +0100] "GET /pricing HTTP/1.1" 200 8312 "-" '
        '"Mozilla/5.0 (iPhone; CPU iPhone OS 17_3 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) '
        'Version/17.3 Mobile/15E148 Safari/604.1" "203.0.113.99, 198.51.100.7"',
    ),
    ClfLayout(
        name="vhost_common",
        description="Common Log Format with a leading virtual host",
        columns=9,
        fields=_fields(1, False),
        pattern=re.compile(rf"^\S+ \S+ {_CLF_TAIL}$"),
        example='www.example.com 198.51.100.23 - - [14/Mar/2024:09:26:53 -0400] "GET /docs/ HTTP/1.1" 200 7734',
    ),
)

LAYOUTS_BY_NAME = {layout.name: layout for layout in LAYOUTS}


def _strptime_clf(values: pa.Array) -> pa.Array:
    return pc.strptime(values, format="[%d/%b/%Y:%H:%M:%S", unit="s", error_is_null=True)


def _clf_offset(tz: str | None) -> int | None:
    """The zone column as the CSV parser splits it (``+0100]``) -> seconds east of UTC."""
    if tz is None or len(tz) < 2 or not tz.endswith("]"):
        return None
    return offset_seconds(tz[:-1])


_MONTH_KEYS = np.array(
    sorted(
        (m[0] << 16) | (m[1] << 8) | m[2]
        for m in (
            s.encode() for s in ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
        )
    ),
    dtype=np.int64,
)
_MONTH_OF_KEY = {
    (m[0] << 16) | (m[1] << 8) | m[2]: i + 1
    for i, m in enumerate(
        s.encode() for s in ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
    )
}
_MONTH_NUMBERS = np.array([_MONTH_OF_KEY[k] for k in _MONTH_KEYS.tolist()], dtype=np.int64)


def _fast_clf_seconds(values: pa.Array) -> np.ndarray | None:
    """``[dd/Mon/yyyy:HH:MM:SS`` strings, all 21 bytes wide -> local Unix seconds, with numpy only.

    Returns None when any value is irregular (the caller then uses ``strptime``); this covers
    what nginx and Apache write, where every time has exactly this shape.
    """
    n = len(values)
    if n == 0 or values.null_count or values.offset:
        return None
    offsets = np.frombuffer(values.buffers()[1], dtype=np.int32, count=n + 1)
    if not (np.diff(offsets) == 21).all():
        return None
    raw = np.frombuffer(values.buffers()[2], dtype=np.uint8, count=21 * n, offset=int(offsets[0])).reshape(n, 21)
    if not (
        (raw[:, 0] == 91)
        & (raw[:, 3] == 47)
        & (raw[:, 7] == 47)
        & (raw[:, 12] == 58)
        & (raw[:, 15] == 58)
        & (raw[:, 18] == 58)
    ).all():
        return None
    d = raw[:, [1, 2, 8, 9, 10, 11, 13, 14, 16, 17, 19, 20]].astype(np.int64) - 48
    if ((d < 0) | (d > 9)).any():
        return None
    day = d[:, 0] * 10 + d[:, 1]
    year = d[:, 2] * 1000 + d[:, 3] * 100 + d[:, 4] * 10 + d[:, 5]
    hh, mm, ss = d[:, 6] * 10 + d[:, 7], d[:, 8] * 10 + d[:, 9], d[:, 10] * 10 + d[:, 11]
    key = (raw[:, 4].astype(np.int64) << 16) | (raw[:, 5].astype(np.int64) << 8) | raw[:, 6]
    pos = np.searchsorted(_MONTH_KEYS, key).clip(0, 11)
    if (
        (_MONTH_KEYS[pos] != key).any()
        or (day < 1).any()
        or (day > 31).any()
        or (hh > 23).any()
        or (mm > 59).any()
        or (ss > 60).any()
    ):
        return None
    month = _MONTH_NUMBERS[pos]
    # days since 1970-01-01 of a proleptic Gregorian date (civil-from-days, inverted)
    y = year - (month <= 2)
    era = np.floor_divide(y, 400)
    yoe = y - era * 400
    mp = (month + 9) % 12
    doy = (153 * mp + 2) // 5 + day - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    days = era * 146097 + doe - 719468
    seconds: np.ndarray = days * 86400 + hh * 3600 + mm * 60 + ss
    return seconds


def clf_timestamps(time_col: pa.Array, tz_col: pa.Array) -> pa.Array:
    """``[14/Mar/2024:09:26:53`` + ``+0100]`` -> timestamp[us, UTC]; null when unparseable.

    Log lines come in time order, so runs of equal times are common: each run is parsed once
    (run-end encoding is cheaper than hashing), with numpy for the usual fixed-width shape.
    """
    runs = pc.run_end_encode(time_col)
    values = runs.values
    lengths = np.diff(runs.run_ends.to_numpy(zero_copy_only=False), prepend=0)
    seconds = _fast_clf_seconds(values)
    if seconds is not None:
        local = pa.array(np.repeat(seconds, lengths), type=pa.int64())
    else:
        parsed = _strptime_clf(values).cast(pa.int64())
        local = pc.take(parsed, pa.array(np.repeat(np.arange(len(values)), lengths)))
    first = tz_col[0].as_py() if len(tz_col) else None
    if first is not None and pc.all(pc.equal(tz_col, first)).as_py():
        offset = _clf_offset(first)
        if offset is None:
            return pa.nulls(len(time_col), schema.TIMESTAMP_TYPE)
        utc_seconds = pc.subtract(local, offset)
    else:
        tz_encoded = pc.dictionary_encode(tz_col)
        offsets = pa.array([_clf_offset(v) for v in tz_encoded.dictionary.to_pylist()], type=pa.int64())
        utc_seconds = pc.subtract(local, pc.take(offsets, tz_encoded.indices))
    return pc.multiply(utc_seconds, 1_000_000).cast(schema.TIMESTAMP_TYPE)


def null_missing_in_place(values: pa.Array) -> pa.Array:
    """``-`` and empty strings -> null without copying the strings (only a new validity bitmap)."""
    keep = pc.fill_null(pc.and_(pc.not_equal(values, "-"), pc.not_equal(values, "")), False)
    if pc.all(keep).as_py():
        return values
    if values.offset or keep.offset:
        return pc.if_else(keep, values, pa.scalar(None, pa.string()))
    return pa.Array.from_buffers(pa.string(), len(values), [keep.buffers()[1], *values.buffers()[1:]])


def _text_column(values: pa.Array, escapes: bool = True) -> pa.Array:
    if not escapes:
        return null_missing_in_place(values)
    encoded = pc.dictionary_encode(values)
    dictionary = schema.null_if_missing(unescape_column(encoded.dictionary))
    return pc.take(dictionary, encoded.indices)


class _Lines:
    """Line geometry of a block: start and end offsets of each line, which are empty."""

    def __init__(self, data: bytes):
        buf = np.frombuffer(data, dtype=np.uint8)
        ends = np.flatnonzero(buf == 10)
        if len(buf) and (len(ends) == 0 or ends[-1] != len(buf) - 1):
            ends = np.append(ends, len(buf))
        self.starts = np.concatenate(([0], ends[:-1] + 1)) if len(ends) else np.zeros(0, dtype=np.int64)
        self.ends = ends
        lengths = self.ends - self.starts
        cr_only = np.zeros(len(lengths), dtype=bool)
        one = np.flatnonzero(lengths == 1)
        if len(one):
            cr_only[one] = buf[self.starts[one]] == 13
        self.empty = (lengths == 0) | cr_only
        self.data = data

    def text(self, index: int) -> str:
        raw = self.data[self.starts[index] : self.ends[index]].rstrip(b"\r")
        return raw.decode("utf-8", "replace")


_DICTIONARY = pa.dictionary(pa.int32(), pa.string())


def _csv_parse(
    data: bytes,
    columns: int,
    threads: bool,
    on_invalid: Callable[[pacsv.InvalidRow], str],
    used: list[int] | None = None,
    dictionary: tuple[int, ...] = (),
) -> pa.Table:
    """Columns ``c0``...; only the ``used`` ones are converted (the ident and user fields are not).

    The ``dictionary`` columns come out dictionary-encoded: the parser's threads encode them as
    they convert, cheaper than copying the strings and hashing them again afterwards."""
    names = [f"c{i}" for i in range(columns)]
    types = {n: pa.string() for n in names}
    for i in dictionary:
        types[f"c{i}"] = _DICTIONARY
    return pacsv.read_csv(
        pa.py_buffer(data),
        # 1 MiB parser blocks: the parser works on several of them at once (one big block is one thread)
        read_options=pacsv.ReadOptions(column_names=names, use_threads=threads, block_size=1 << 20),
        parse_options=pacsv.ParseOptions(
            delimiter=" ",
            quote_char='"',
            escape_char=False,
            double_quote=False,
            ignore_empty_lines=True,
            invalid_row_handler=on_invalid,
        ),
        convert_options=pacsv.ConvertOptions(
            column_types=types,
            include_columns=[f"c{i}" for i in sorted(used)] if used is not None else None,
            strings_can_be_null=False,
            quoted_strings_can_be_null=False,
        ),
    )


def _prepare(data: bytes) -> bytes:
    """Make a block safe for the CSV parser: valid UTF-8, and no backslash-escaped quotes.

    Apache writes ``\\"`` inside quoted fields; rewriting escapes as ``\\xHH`` (nginx's own
    style) lets the parser see only structural quotes, and the unescape step undoes both.
    """
    if not data.isascii():  # (isascii is several times cheaper than a decode; logs are mostly ASCII)
        try:
            data.decode("utf-8")
        except UnicodeDecodeError:
            data = data.decode("utf-8", "replace").encode("utf-8")
    if b"\\" in data:
        data = data.replace(b"\\\\", b"\\x5C").replace(b'\\"', b"\\x22")
    return data


_COMMENT = re.compile(rb"^#[^\n]*", re.MULTILINE)
_TRAILING = {layout.name: re.compile(layout.trailing_pattern.encode()) for layout in LAYOUTS}


def parse_block(block: LineBlock, layout: ClfLayout, source_name: str) -> Callable[[], Batch]:
    """Parse one block of lines into a canonical batch, with exact line numbers.

    Only the lines are split into fields here; the returned function converts them (it may run
    on another thread).
    """
    rejected = too_long_rejects(block, source_name)
    data = _prepare(block.data)
    if data.startswith(b"#") or b"\n#" in data:
        data = _COMMENT.sub(b"", data)  # emptied, not removed: line numbers stay; the reader counts them skipped
    if data and not data.endswith(b"\n"):
        # The input's last line has no line end; with an open quote it was cut off mid-write,
        # and the CSV parser would accept it as if the quote closed at the end.
        cut = data.rfind(b"\n") + 1
        if data[cut:].count(b'"') % 2:
            number = block.first_line + data.count(b"\n")
            rejected.append(
                Rejected(
                    source_name, number, "unbalanced quotes (a truncated line?)", data[cut:].decode("utf-8", "replace")
                )
            )
            data = data[:cut]
    if not data:
        empty = Batch(table=schema.empty_frame(), rows_read=len(rejected), rejected=rejected)
        return lambda: empty
    table, parsed = _fast_parse(data, layout)
    line_count = block.line_count - (1 if block.data and not block.data.endswith(b"\n") and data.endswith(b"\n") else 0)
    lines: _Lines | None = None
    if table is not None and table.num_rows == line_count:
        # One row per line: no empty lines and nothing the parser merged, so the line
        # geometry is not needed (the common case; it costs a scan of the block).
        row_lines = np.arange(line_count, dtype=np.int64)
    else:
        lines = _Lines(parsed)
        row_lines = np.flatnonzero(~lines.empty)
        if table is None or table.num_rows != len(row_lines):
            table, row_lines, bad = _exact_parse(parsed, lines, layout)
            rejected.extend(Rejected(source_name, block.first_line + i, reason, lines.text(i)) for i, reason in bad)
    escapes = b"\\" in parsed
    early = _early_columns(table, layout)

    def convert() -> Batch:
        canonical, invalid = _to_canonical(
            table, layout, source_name, row_lines + block.first_line, escapes=escapes, early=early
        )
        if invalid:
            # the line as written, trailing fields included
            geometry = lines if lines is not None and parsed is data else _Lines(data)
            for i, reason in invalid:
                line_index = int(row_lines[i])
                rejected.append(Rejected(source_name, block.first_line + line_index, reason, geometry.text(line_index)))
        rejected.sort(key=lambda r: r.line or 0)
        return Batch(table=canonical, rows_read=canonical.num_rows + len(rejected), rejected=rejected)

    return convert


def _fast_parse(data: bytes, layout: ClfLayout) -> tuple[pa.Table | None, bytes]:
    """The block split by the CSV parser: (table, the bytes it split), table None when some line
    does not have the layout's number of fields even after trailing fields were cut off.

    Lines with trailing fields are cut (a regex pass over every line) in a block whose first
    line has some, before the parser (a log's lines are alike, and each line the parser finds
    malformed costs a Python call), or after the parser found malformed lines."""
    malformed: list[pacsv.InvalidRow] = []

    def on_invalid(row: pacsv.InvalidRow) -> str:
        malformed.append(row)
        return "skip"

    def split(text: bytes) -> pa.Table:
        return _csv_parse(
            text,
            layout.columns,
            True,
            on_invalid,
            used=list(layout.fields.values()),
            dictionary=(layout.fields["ip"], layout.fields["request"]),
        )

    end = data.find(b"\n")
    first_line = data[: end if end >= 0 else len(data)].rstrip(b"\r")
    cut = trailing.cut(data, layout.trailing_pattern) if _TRAILING[layout.name].match(first_line) else None
    text = data if cut is None else cut
    table = split(text)
    if not malformed:
        return table, text
    if cut is None:
        cut = trailing.cut(data, layout.trailing_pattern)
        if cut is not None:
            malformed.clear()
            text, table = cut, split(cut)
    return (None if malformed else table), text


# A line as the CSV parser splits it: a quote opens a field only at its start and the next quote
# closes it (later quotes in that field are plain text). A line this does not match leaves a field
# open at its end, and the parser would carry on into the next line.
_FIELD = rb'(?:"[^"\n]*"[^ \n]*|[^ "\n][^ \n]*)?'
_CLOSES_QUOTES = re.compile(rb"%s(?: %s)*\Z" % (_FIELD, _FIELD))


def _exact_parse(data: bytes, lines: _Lines, layout: ClfLayout) -> tuple[pa.Table, np.ndarray, list[tuple[int, str]]]:
    """Slow, exact path for a block with malformed lines: find each bad line and say why.

    Each line is checked on its own first, so that none can run on into the next."""
    bad: list[tuple[int, str]] = []
    kept_index: list[int] = []
    kept: list[bytes] = []
    for i in np.flatnonzero(~lines.empty).tolist():
        raw = data[lines.starts[i] : lines.ends[i]].rstrip(b"\r").replace(b"\r", b" ")
        if raw.count(b'"') % 2 or not _CLOSES_QUOTES.match(raw):
            bad.append((i, "unbalanced quotes (a truncated line?)"))
            continue
        kept_index.append(i)
        kept.append(raw)
    malformed: dict[int, int] = {}

    def on_invalid(row: pacsv.InvalidRow) -> str:
        malformed[row.number] = row.actual_columns
        return "skip"

    table = _csv_parse(b"\n".join(kept) + b"\n", layout.columns, False, on_invalid) if kept else None
    good = []
    for k, i in enumerate(kept_index, start=1):
        if k in malformed:
            bad.append((i, f"expected {layout.columns} fields for {layout.name}, found {malformed[k]}"))
        else:
            good.append(i)
    if table is None:
        table = pa.table({f"c{i}": pa.array([], pa.string()) for i in range(layout.columns)})
    return table, np.array(good, dtype=np.int64), bad


def _fast_ints(
    text: pa.Array, type_: pa.DataType, low: int, high: int | None, allow_dash: bool
) -> tuple[pa.Array, pa.Array] | tuple[None, None]:
    """Whole column cast in one go when every value is a plain number (or ``-``, when allowed).

    Returns (values, all-true mask), or (None, None) when some value is not, for the caller's
    exact per-value check.
    """
    source = null_missing_in_place(text) if allow_dash else text
    if not allow_dash and source.null_count:
        return None, None
    if allow_dash and pc.any(pc.fill_null(pc.equal(text, ""), False)).as_py():
        return None, None
    try:
        values = source.cast(type_)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None, None
    bounds = pc.min_max(values)
    lo, hi = bounds["min"].as_py(), bounds["max"].as_py()
    if lo is not None and (lo < low or (high is not None and hi > high)):
        return None, None
    return values, pa.array(np.ones(len(text), dtype=bool))


def _early_columns(table: pa.Table, layout: ClfLayout) -> dict[str, Any] | None:
    """The first half of the conversion (times, status, size, client); see ``_to_canonical``."""
    table = table.combine_chunks()
    if table.num_rows == 0:
        return None
    col = {
        name: table.column(f"c{index}").chunk(0) if table.column(f"c{index}").num_chunks else pa.array([], pa.string())
        for name, index in layout.fields.items()
    }
    early = {"col": col, "timestamp": clf_timestamps(col["time"], col["tz"])}
    status_text = col["status"]
    status, status_ok = _fast_ints(status_text, pa.int16(), 100, 999, allow_dash=False)
    if status is None:
        status_ok = pc.match_substring_regex(status_text, r"^\d{3}$")
        status = pc.if_else(status_ok, status_text, pa.scalar(None, pa.string())).cast(pa.int16())
    size_text = col["bytes"]
    size, size_ok = _fast_ints(size_text, pa.int64(), 0, None, allow_dash=True)
    if size is None:
        size_digits = pc.match_substring_regex(size_text, r"^\d{1,18}$")
        size_ok = pc.or_(size_digits, pc.equal(size_text, "-"))
        size = pc.if_else(size_digits, size_text, pa.scalar(None, pa.string())).cast(pa.int64())
    ip_encoded = col["ip"] if pa.types.is_dictionary(col["ip"].type) else pc.dictionary_encode(col["ip"])
    ip = pc.take(strip_port(schema.null_if_missing(ip_encoded.dictionary)), ip_encoded.indices)
    if "xff" in col:
        ip = pc.coalesce(first_forwarded(col["xff"]), ip)
    early.update(status=status, status_ok=status_ok, size=size, size_ok=size_ok, ip=ip)
    return early


def _to_canonical(
    table: pa.Table,
    layout: ClfLayout,
    source_name: str,
    line_numbers: np.ndarray,
    escapes: bool = True,
    early: dict[str, Any] | None = None,
) -> tuple[pa.Table, list[tuple[int, str]]]:
    """Convert parsed string columns to the canonical schema; returns (table, invalid rows).

    ``early`` is :func:`_early_columns` already computed (on the reading thread)."""
    if early is None:
        early = _early_columns(table, layout)
    if early is None:
        return schema.empty_frame(), []
    col, timestamp, ip = early["col"], early["timestamp"], early["ip"]
    status, status_ok, size, size_ok = early["status"], early["status_ok"], early["size"], early["size_ok"]
    n = len(timestamp)
    request = split_requests(col["request"])
    host = request["host"]
    if "host" in col:
        host = pc.coalesce(normalise_hosts(col["host"]), host)
    columns = {
        "timestamp": timestamp,
        "ip": ip,
        "method": request["method"],
        "host": host,
        "path": request["path"],
        "query": request["query"],
        "status": status,
        "bytes": size,
        "source_file": repeat_string(source_name, n),
        "source_line": pa.array(line_numbers, type=pa.int64()),
    }
    if "user_agent" in col:
        columns["user_agent"] = _text_column(col["user_agent"], escapes)
        columns["referrer"] = _text_column(col["referrer"], escapes)
    out = schema.conform(columns, n)
    looks_like_time = pc.fill_null(pc.starts_with(col["time"], "["), False)
    checks = [
        (looks_like_time, f"not a {layout.name} line: no [time] field where the format has one"),
        (pc.is_valid(timestamp), "unparseable time"),
        (status_ok, "status is not a 3-digit number"),
        (size_ok, "size is neither a number nor '-'"),
    ]
    valid = checks[0][0]
    for mask, _ in checks[1:]:
        valid = pc.and_(valid, mask)
    if pc.all(valid).as_py():
        return out, []
    invalid: list[tuple[int, str]] = []
    valid_np = valid.to_numpy(zero_copy_only=False)
    masks = [(m.to_numpy(zero_copy_only=False), reason) for m, reason in checks]
    for i in np.flatnonzero(~valid_np).tolist():
        reason = next(r for m, r in masks if not m[i])
        invalid.append((i, reason))
    return out.filter(valid), invalid
