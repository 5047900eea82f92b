"""Named log fields -> the canonical frame, with Arrow kernels (Python only per distinct value).

Every line-format reader other than the CLF fast path ends the same way: it has a handful of
string columns named after what they hold (``client`` = ``ip:port``, ``time_iso``,
``request``, ``url``...), and :func:`to_canonical` turns them into canonical columns, decides
which rows are invalid (and why) and drops them. The field names it understands:

===================  ==========================================================================
field                meaning
===================  ==========================================================================
``ip``               client address, maybe with ``:port`` or ``[v6]:port``
``client``           ``ip:port`` (the port is always there; split on the last colon)
``xff``              an ``X-Forwarded-For`` list; its first address is the original client
``time_clf``         ``14/Mar/2024:09:26:53 +0100`` (brackets allowed)
``time_clf_local``   ``14/Mar/2024:09:26:53.512`` without a zone (HAProxy)
``time_iso``         ISO 8601 / RFC 3339, with or without a zone, any fraction
``time_epoch``       seconds, milliseconds, microseconds or nanoseconds since 1970 (by size)
``time_strftime``    in the strftime format of ``--time-format`` or Apache's ``%{...}t``
``date``, ``time``   W3C ``2024-03-14`` and ``08:26:53`` (UTC unless ``local_time``)
``request``          a request line ``GET /path?q HTTP/1.1``
``method``           the method
``uri``, ``url``     path + query as sent, or an absolute URL (host taken from it)
``path``, ``query``  the path and the query string (a leading ``?`` is dropped)
``host``             Host header or virtual host (port dropped)
``status``           status code; ``000`` and ``-`` are missing
``bytes``            response size; ``-`` is missing
``referrer``         Referer header
``user_agent``       User-Agent header
===================  ==========================================================================
"""

from __future__ import annotations

import zoneinfo
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .. import schema
from ..arrowutil import repeat_string
from .fields import (
    NULL_STR,
    TextStyle,
    decode_text,
    first_forwarded,
    normalise_hosts,
    offset_seconds,
    split_requests,
    split_urls,
    strip_port,
)

# --- times ------------------------------------------------------------------------------------


def _assume(naive_us: pa.Array, timezone: str) -> pa.Array:
    """int64 local microseconds without a zone -> UTC timestamps, read in ``timezone``."""
    ts = naive_us.cast(pa.timestamp("us"))
    if timezone.upper() == "UTC":
        return ts.cast(schema.TIMESTAMP_TYPE)
    return pc.assume_timezone(ts, timezone=timezone, ambiguous="earliest", nonexistent="earliest").cast(
        schema.TIMESTAMP_TYPE
    )


def _fraction_us(frac: pa.Array) -> pa.Array:
    """Fraction digits (``512``, ``512345678``) -> microseconds; null/empty -> 0."""
    padded = pc.binary_join_element_wise(pc.fill_null(frac, ""), "000000", "")
    return pc.utf8_slice_codeunits(padded, 0, 6).cast(pa.int64())


def _combine(seconds: pa.Array, frac_us: pa.Array, zone: pa.Array | None, timezone: str) -> tuple[pa.Array, bool]:
    """Local seconds + fraction + zone text (null: no zone) -> (UTC timestamps, zone assumed?)."""
    local_us = pc.add(pc.multiply(seconds.cast(pa.int64()), 1_000_000), frac_us)
    if zone is None:
        return _assume(local_us, timezone), bool(pc.any(pc.is_valid(seconds)).as_py())
    has_zone = pc.is_valid(zone)
    encoded = pc.dictionary_encode(pc.fill_null(zone, ""))
    offsets = pa.array([offset_seconds(v) if v else None for v in encoded.dictionary.to_pylist()], pa.int64())
    offset = pc.take(offsets, encoded.indices)
    utc_us = pc.subtract(local_us, pc.multiply(pc.fill_null(offset, 0), 1_000_000))
    if pc.all(has_zone).as_py():
        bad_zone = pc.is_null(offset)
        return pc.if_else(bad_zone, pa.scalar(None, schema.TIMESTAMP_TYPE), utc_us.cast(schema.TIMESTAMP_TYPE)), False
    assumed = _assume(local_us, timezone)
    zone_less = pc.any(pc.and_(pc.is_valid(seconds), pc.invert(has_zone))).as_py()
    return pc.if_else(has_zone, utc_us.cast(schema.TIMESTAMP_TYPE), assumed), bool(zone_less)


_CLF_TIME = (
    r"^\[?(?P<s>\d{1,2}/[A-Za-z]{3}/\d{4}:\d{2}:\d{2}:\d{2})(?:[.,](?P<f>\d+))?"
    r"(?: ?(?P<z>[+-]\d{2}:?\d{2}|Z))?\]?$"
)
_ISO_TIME = (
    r"^\s*(?P<s>\d{4}-\d{2}-\d{2})[T ](?P<t>\d{2}:\d{2}:\d{2})(?:[.,](?P<f>\d+))?"
    r" ?(?P<z>Z|z|[+-]\d{2}:?\d{2})?\s*$"
)


def _on_distinct(values: pa.Array, fn: Callable[[pa.Array], tuple[pa.Array, bool]]) -> tuple[pa.Array, bool]:
    encoded = pc.dictionary_encode(values)
    out, assumed = fn(encoded.dictionary)
    return pc.take(out, encoded.indices), assumed


def clf_times(values: pa.Array, timezone: str) -> tuple[pa.Array, bool]:
    def convert(d: pa.Array) -> tuple[pa.Array, bool]:
        parts = pc.extract_regex(d, _CLF_TIME)
        seconds = pc.strptime(pc.struct_field(parts, "s"), format="%d/%b/%Y:%H:%M:%S", unit="s", error_is_null=True)
        zone = pc.struct_field(parts, "z")
        zone = pc.if_else(pc.equal(zone, ""), NULL_STR, zone)
        return _combine(seconds.cast(pa.int64()), _fraction_us(pc.struct_field(parts, "f")), zone, timezone)

    return _on_distinct(values, convert)


def iso_times(values: pa.Array, timezone: str) -> tuple[pa.Array, bool]:
    parts = pc.extract_regex(values, _ISO_TIME)
    stamp = pc.binary_join_element_wise(pc.struct_field(parts, "s"), pc.struct_field(parts, "t"), "T")
    seconds = pc.strptime(stamp, format="%Y-%m-%dT%H:%M:%S", unit="s", error_is_null=True)
    zone = pc.struct_field(parts, "z")
    zone = pc.if_else(pc.equal(zone, ""), NULL_STR, zone)
    return _combine(seconds.cast(pa.int64()), _fraction_us(pc.struct_field(parts, "f")), zone, timezone)


def w3c_times(date: pa.Array, time: pa.Array, timezone: str, local: bool) -> tuple[pa.Array, bool]:
    stamp = pc.binary_join_element_wise(date, time, "T")
    if local:
        times, _ = iso_times(stamp, timezone)
        return times, True
    return iso_times(stamp, "UTC")[0], False


def strftime_times(values: pa.Array, time_format: str, timezone: str) -> tuple[pa.Array, bool]:
    """Times in a strftime format (``--time-format``, Apache's ``%{...}t``); without ``%z`` they
    are read in ``timezone``. Parsed once per distinct value."""

    def convert(d: pa.Array) -> tuple[pa.Array, bool]:
        parsed = pc.strptime(d, format=time_format, unit="s", error_is_null=True)
        if "%z" in time_format:
            return parsed.cast(schema.TIMESTAMP_TYPE), False
        seconds = parsed.cast(pa.int64())
        return _assume(pc.multiply(seconds, 1_000_000), timezone), bool(pc.any(pc.is_valid(seconds)).as_py())

    return _on_distinct(values, convert)


def epoch_times(values: pa.Array) -> pa.Array:
    """Epoch numbers as text; the unit is taken from the size (s, ms, µs or ns)."""
    ok = pc.fill_null(pc.match_substring_regex(values, r"^\d{1,20}(\.\d+)?$"), False)
    numbers = pc.if_else(ok, values, NULL_STR).cast(pa.float64())
    scale = pc.if_else(
        pc.greater(numbers, 1e17),
        1e-3,
        pc.if_else(pc.greater(numbers, 1e14), 1.0, pc.if_else(pc.greater(numbers, 1e11), 1e3, 1e6)),
    )
    integral = pc.fill_null(pc.match_substring_regex(values, r"^\d{1,20}$"), False)
    exact_ns = pc.if_else(pc.and_(integral, pc.greater(numbers, 1e17)), values, NULL_STR).cast(pa.int64())
    micros = pc.multiply(numbers, scale).cast(pa.int64(), safe=False)
    micros = pc.coalesce(pc.divide(exact_ns, 1000), micros)
    return micros.cast(schema.TIMESTAMP_TYPE)


def any_times(values: pa.Array, timezone: str) -> tuple[pa.Array, bool]:
    """ISO, CLF or epoch, whichever each value is (JSON logs whose time key varies)."""
    iso, assumed_iso = iso_times(values, timezone)
    clf, assumed_clf = clf_times(values, timezone)
    epoch = epoch_times(values)
    out = pc.coalesce(iso, clf, epoch)
    return out, assumed_iso or assumed_clf


# --- the conversion ---------------------------------------------------------------------------


def _int_column(values: pa.Array, type_: pa.DataType, pattern: str) -> tuple[pa.Array, pa.Array]:
    """(parsed ints with missing as null, mask of values that were fine: digits or missing)."""
    missing = pc.or_(pc.is_null(values), pc.is_in(values, value_set=pa.array(["", "-"])))
    digits = pc.fill_null(pc.match_substring_regex(values, pattern), False)
    parsed = pc.if_else(digits, values, NULL_STR).cast(type_)
    return parsed, pc.or_(digits, pc.fill_null(missing, True))


def _request_columns(f: dict[str, pa.Array], style: TextStyle) -> tuple[dict[str, pa.Array], pa.Array | None]:
    """Method, path and query from a request line, a URI or URL, or a path and a query; and the
    host an absolute target names (None when no field can say)."""
    out: dict[str, pa.Array] = {}
    host = None
    if "request" in f:
        parts = split_requests(decode_text(f["request"], TextStyle(hash_hex=style.hash_hex)))
        out.update(method=parts["method"], path=parts["path"], query=parts["query"])
        host = parts["host"]
    target = f.get("url", f.get("uri"))
    if target is not None:
        parts = split_urls(target)
        path = pc.if_else(pc.is_valid(schema.null_if_missing(target)), parts["path"], NULL_STR)
        out["path"] = path if "path" not in out else pc.coalesce(out["path"], path)
        out["query"] = parts["query"] if "query" not in out else pc.coalesce(out["query"], parts["query"])
        host = parts["host"] if host is None else pc.coalesce(host, parts["host"])
    if "path" in f:
        path, query = _split_path(schema.null_if_missing(f["path"]))
        out["path"] = pc.coalesce(out["path"], path) if "path" in out else path
        if query is not None:
            out["query"] = pc.coalesce(out["query"], query) if "query" in out else query
    if "query" in f:
        query = schema.null_if_missing(pc.replace_substring_regex(f["query"], r"^\?", ""))
        out["query"] = pc.coalesce(out["query"], query) if "query" in out else query
    if "method" in f:
        out["method"] = pc.utf8_upper(schema.null_if_missing(f["method"]))
    if "path" in out:
        # A log without a method (nginx JSON layouts often leave it out) is taken to record GET
        # requests, rather than have every row filtered as a bad method; a request line says.
        method = out.get("method")
        if method is None or method.null_count:  # (the usual log has a method on every row: no work)
            unsaid = pc.is_valid(out["path"])
            if method is not None:
                unsaid = pc.and_(unsaid, pc.is_null(method))
            if "request" in f:
                unsaid = pc.and_(unsaid, pc.is_null(schema.null_if_missing(f["request"])))
            assumed = pc.if_else(unsaid, pa.scalar("GET"), NULL_STR)
            out["method"] = assumed if method is None else pc.coalesce(method, assumed)
    if "host" in f:
        own = normalise_hosts(f["host"])
        host = own if host is None else pc.coalesce(own, host)
    return out, host


def _split_path(path: pa.Array) -> tuple[pa.Array, pa.Array | None]:
    """A path field that may hold the query too (nginx JSON layouts log "uri": "$request_uri"):
    (path, query), the query None when no value has one."""
    if not pc.any(pc.fill_null(pc.match_substring(path, "?"), False)).as_py():
        return path, None
    split = pc.split_pattern(path, "?", max_splits=1)
    with_query = pc.fill_null(pc.greater(pc.list_value_length(split), 1), False)
    query = schema.null_if_missing(pc.if_else(with_query, pc.binary_join(pc.list_slice(split, 1, 2), ""), NULL_STR))
    return pc.list_element(split, 0), query


@dataclass
class Converted:
    table: pa.Table
    invalid: list[tuple[int, str]]  # (row index in the input columns, reason)
    zone_assumed: bool


def to_canonical(
    fields: dict[str, pa.Array],
    n: int,
    source_name: str,
    line_numbers: np.ndarray,
    *,
    style: TextStyle = TextStyle(),
    timezone: str = "UTC",
    local_time: bool = False,
    matched: pa.Array | None = None,
    format_name: str = "",
    time_format: str | None = None,
) -> Converted:
    """Convert named string fields (see the module doc) to a canonical table.

    ``matched`` marks rows whose line had the format's shape at all; the others are invalid
    ("does not match"). Rows without a usable time or with a malformed status or size are
    invalid too. Returns the valid rows only, plus the invalid row indexes and reasons.
    """
    if n == 0:
        return Converted(schema.empty_frame(), [], False)
    f = {k: (v.combine_chunks() if isinstance(v, pa.ChunkedArray) else v) for k, v in fields.items()}
    zone_assumed = False
    out: dict[str, pa.Array] = {}

    # time
    if "time_clf" in f:
        ts, zone_assumed = clf_times(f["time_clf"], timezone)
    elif "time_clf_local" in f:
        ts, zone_assumed = clf_times(f["time_clf_local"], timezone)
    elif "time_iso" in f:
        ts, zone_assumed = iso_times(f["time_iso"], timezone)
    elif "date" in f and "time" in f:
        ts, zone_assumed = w3c_times(f["date"], f["time"], timezone, local_time)
    elif "time_epoch" in f:
        ts = epoch_times(f["time_epoch"])
    elif "time_strftime" in f:
        ts, zone_assumed = strftime_times(f["time_strftime"], time_format or "", timezone)
    elif "time_any" in f:
        ts, zone_assumed = any_times(f["time_any"], timezone)
    else:
        ts = pa.nulls(n, schema.TIMESTAMP_TYPE)
    out["timestamp"] = ts

    # client
    ip = None
    if "client" in f:
        ip = strip_port(schema.null_if_missing(f["client"]), always=True)
    elif "ip" in f:
        ip = strip_port(schema.null_if_missing(f["ip"]))
    if "xff" in f:
        original = first_forwarded(f["xff"])
        ip = original if ip is None else pc.coalesce(original, ip)
    if ip is not None:
        out["ip"] = ip

    requested, host = _request_columns(f, style)
    out.update(requested)
    if host is not None:
        out["host"] = host

    checks: list[tuple[pa.Array, str]] = []
    if matched is not None:
        checks.append((matched, f"does not match the {format_name} format" if format_name else "does not match"))
    checks.append((pc.is_valid(ts), "unparseable or missing time"))
    if "status" in f:
        status, ok = _int_column(f["status"], pa.int16(), r"^\d{3}$")
        out["status"] = pc.if_else(pc.equal(status, 0), pa.scalar(None, pa.int16()), status)
        checks.append((ok, "status is not a 3-digit number"))
    if "bytes" in f:
        size, ok = _int_column(f["bytes"], pa.int64(), r"^\d{1,18}$")
        out["bytes"] = size
        checks.append((ok, "size is neither a number nor '-'"))
    for name in ("referrer", "user_agent"):
        if name in f:
            text = decode_text(f[name], style, ua=name == "user_agent")
            out[name] = schema.null_if_missing(text)
    out["source_file"] = repeat_string(source_name, n)
    out["source_line"] = pa.array(line_numbers, type=pa.int64())
    table = schema.conform(out, n)

    valid = None
    for mask, _ in checks:
        mask = pc.fill_null(mask, False)
        valid = mask if valid is None else pc.and_(valid, mask)
    if valid is None or pc.all(valid).as_py():
        return Converted(table, [], zone_assumed)
    masks = [(pc.fill_null(m, False).to_numpy(zero_copy_only=False), reason) for m, reason in checks]
    invalid = []
    for i in np.flatnonzero(~valid.to_numpy(zero_copy_only=False)).tolist():
        invalid.append((i, next(reason for m, reason in masks if not m[i])))
    return Converted(table.filter(valid), invalid, zone_assumed)


def check_timezone(name: str) -> str:
    """Validate an IANA zone name; raises ValueError with a helpful message."""
    if name.upper() == "UTC":
        return "UTC"
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {name!r}; give an IANA name such as Europe/Berlin or UTC") from None
    return name
