"""Field parsers every reader shares: escapes, hosts, client addresses, request lines, URLs and
zone offsets. Each works on Arrow columns, with Python only per distinct value where needed.

This module imports nothing from the other readers, so that any of them can use it.
"""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .. import schema

NULL_STR = pa.scalar(None, pa.string())


# --- escapes ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class TextStyle:
    """How a format escapes free text (user agent, referrer, request line)."""

    backslash: bool = False  # nginx / Apache: \xHH, \" and C escapes
    hash_hex: bool = False  # HAProxy: #HH
    percent_ua: bool = False  # CloudFront, Shoutcast: percent-encoded user agent (maybe twice)
    plus_ua: bool = False  # IIS / W3C: '+' for spaces in the user agent


def map_distinct(values: pa.Array, flag_substring: str, fn: Callable[[str], str]) -> pa.Array:
    """Apply ``fn`` to the distinct values that contain ``flag_substring``; leave the rest untouched."""
    if len(values) == 0 or not pc.any(pc.fill_null(pc.match_substring(values, flag_substring), False)).as_py():
        return values
    encoded = pc.dictionary_encode(values)
    items = encoded.dictionary.to_pylist()
    flagged = pc.fill_null(pc.match_substring(encoded.dictionary, flag_substring), False).to_numpy(zero_copy_only=False)
    for i in np.flatnonzero(flagged):
        items[i] = fn(items[i])
    return pc.take(pa.array(items, type=pa.string()), encoded.indices)


_HASH_HEX = re.compile(rb"#([0-9A-Fa-f]{2})")


def unhash(value: str) -> str:
    """Undo HAProxy's ``#HH`` escapes."""
    raw = _HASH_HEX.sub(lambda m: bytes([int(m.group(1), 16)]), value.encode("utf-8", "surrogateescape"))
    return raw.decode("utf-8", "replace")


def _unpercent(value: str) -> str:
    once = urllib.parse.unquote(value, errors="replace")
    if "%25" in value and re.search(r"%[0-9A-Fa-f]{2}", once):
        return urllib.parse.unquote(once, errors="replace")
    return once


_BACKSLASH = re.compile(rb'\\(x[0-9A-Fa-f]{2}|["\\ntrvfb])')
_SIMPLE = {b'"': b'"', b"\\": b"\\", b"n": b"\n", b"t": b"\t", b"r": b"\r", b"v": b"\v", b"f": b"\f", b"b": b"\b"}


def unbackslash(value: str) -> str:
    """One left-to-right pass over nginx/Apache escapes: ``\\xHH``, ``\\"``, ``\\\\`` and C escapes,
    then the bytes decoded as UTF-8 leniently."""
    raw = value.encode("utf-8", "surrogateescape")
    raw = _BACKSLASH.sub(
        lambda m: bytes([int(m.group(1)[1:], 16)]) if len(m.group(1)) == 3 else _SIMPLE[m.group(1)], raw
    )
    return raw.decode("utf-8", "replace")


def unescape_column(values: pa.Array) -> pa.Array:
    """nginx/Apache backslash escapes undone, per distinct value that holds a backslash."""
    return map_distinct(values, "\\", unbackslash)


def decode_text(values: pa.Array, style: TextStyle, ua: bool = False) -> pa.Array:
    """Free text as the format wrote it -> plain text."""
    if style.hash_hex:
        values = map_distinct(values, "#", unhash)
    if style.backslash:
        values = unescape_column(values)
    if ua and style.plus_ua:
        values = pc.replace_substring(values, "+", " ")
    if ua and style.percent_ua:
        values = map_distinct(values, "%", _unpercent)
    return values


# --- hosts and addresses ----------------------------------------------------------------------


def normalise_hosts(hosts: pa.Array) -> pa.Array:
    """Lower-case, drop a ``:port`` and IPv6 brackets, ``-``/empty to null."""
    hosts = schema.null_if_missing(hosts)
    hosts = pc.utf8_lower(hosts)
    hosts = pc.replace_substring_regex(hosts, r"^\[([0-9a-f:.]+)\](?::\d+)?$", r"\1")
    return pc.replace_substring_regex(hosts, r"^([^:\[\]]+):\d+$", r"\1")


def strip_port(values: pa.Array, always: bool = False) -> pa.Array:
    """``[2001:db8::1]:443`` / ``192.0.2.1:80`` -> the address; ``always``: the last ``:N`` is a port."""
    if always:  # unbracketed IPv6 with a port (ALB, ELB): split on the last colon
        values = pc.replace_substring_regex(values, r"^([0-9A-Fa-f]*:[0-9A-Fa-f:]*):\d+$", r"\1")
    values = pc.replace_substring_regex(values, r"^\[([^\]]+)\](?::\d+)?$", r"\1")
    return pc.replace_substring_regex(values, r"^(\d{1,3}(?:\.\d{1,3}){3}):\d+$", r"\1")


def first_forwarded(values: pa.Array) -> pa.Array:
    """The original client of an ``X-Forwarded-For`` list (its first address), or null."""
    first = pc.replace_substring_regex(values, r"^\s*([^,\s]*).*$", r"\1")
    first = strip_port(schema.null_if_missing(first))
    looks_ip = pc.fill_null(pc.match_substring_regex(first, r"^[0-9A-Fa-f:.]+$"), False)
    return pc.if_else(looks_ip, first, NULL_STR)


# --- request lines and URLs -------------------------------------------------------------------

_REQUEST = (
    r"^(?P<method>[A-Za-z][A-Za-z0-9_-]*) "
    r"(?:(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*)://(?P<authority>[^/?# ]*))?"
    r"(?P<path>[^?# ]*)(?:\?(?P<query>[^# ]*))?(?:#[^ ]*)?"
    r"(?: (?P<protocol>[A-Za-z]+/[0-9.]+))?$"
)
_SIMPLE_REQUEST = r"^[A-Z]+ /[^ #]* HTTP/\d(?:\.\d)?$"


def split_requests(requests: pa.Array) -> dict[str, pa.Array]:
    """Request lines -> method, path, query and (for absolute-form targets) host.

    Lines that are not requests (``-``, TLS bytes sent to a plain port) give nulls.
    """
    # The CSV parser already hands combined logs' requests over dictionary-encoded.
    encoded = requests if pa.types.is_dictionary(requests.type) else pc.dictionary_encode(requests)
    dictionary = unescape_column(encoded.dictionary)
    idx = encoded.indices
    fast = _split_simple_requests(dictionary)
    if fast is not None:
        return {
            "method": pc.take(fast[0], idx),
            "path": pc.take(fast[1], idx),
            "query": pc.take(fast[2], idx),
            "host": pa.nulls(len(requests), pa.string()),
        }
    parts = pc.extract_regex(dictionary, _REQUEST)
    method = pc.utf8_upper(pc.struct_field(parts, "method"))
    path = pc.struct_field(parts, "path")
    authority = pc.struct_field(parts, "authority")
    absolute = pc.and_(pc.is_valid(authority), pc.not_equal(authority, ""))
    path = pc.if_else(pc.and_(absolute, pc.equal(path, "")), "/", path)
    path = pc.if_else(pc.equal(path, ""), NULL_STR, path)
    query = schema.null_if_missing(pc.struct_field(parts, "query"))
    host = pc.if_else(absolute, normalise_hosts(authority), NULL_STR)
    return {
        "method": pc.take(method, idx),
        "path": pc.take(path, idx),
        "query": pc.take(pc.if_else(pc.equal(query, ""), NULL_STR, query), idx),
        "host": pc.take(host, idx),
    }


def _split_simple_requests(dictionary: pa.Array) -> tuple[pa.Array, pa.Array, pa.Array] | None:
    """(method, path, query) when every request is ``METHOD /target HTTP/x.y``, else None.

    Plain splits are several times cheaper than the general pattern's capture groups, and
    this is what nearly every line of a real log looks like.
    """
    if dictionary.null_count or not pc.all(pc.match_substring_regex(dictionary, _SIMPLE_REQUEST)).as_py():
        return None
    parts = pc.split_pattern(dictionary, " ", max_splits=2)
    method = pc.list_element(parts, 0)
    target = pc.split_pattern(pc.binary_join_element_wise(pc.list_element(parts, 1), "?", ""), "?", max_splits=1)
    path = pc.list_element(target, 0)
    query = pc.utf8_slice_codeunits(pc.list_element(target, 1), 0, -1)  # drop the "?" added above
    query = pc.if_else(pc.equal(query, ""), NULL_STR, query)
    return method, path, query


_URL = (
    r"^(?:(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*):)?(?://(?P<authority>[^/?#]*))?"
    r"(?P<path>[^?#]*)(?:\?(?P<query>[^#]*))?(?:#.*)?$"
)


def split_urls(urls: pa.Array) -> dict[str, pa.Array]:
    """Full URLs (or bare targets) -> host (lower case, no port, no credentials), path and query.

    A target without a leading slash (``pricing?plan=pro``, as some CDNs write ``cs-uri``) is
    a path: the slash is added."""
    urls = schema.null_if_missing(urls)
    encoded = pc.dictionary_encode(urls)
    parts = pc.extract_regex(encoded.dictionary, _URL)
    authority = pc.replace_substring_regex(pc.struct_field(parts, "authority"), r"^.*@", "")
    host = normalise_hosts(authority)
    path = pc.struct_field(parts, "path")
    path = pc.if_else(pc.equal(path, ""), pa.scalar("/"), path)
    path = pc.replace_substring_regex(path, r"^([^/])", r"/\1")
    query = schema.null_if_missing(pc.struct_field(parts, "query"))
    idx = encoded.indices
    return {"host": pc.take(host, idx), "path": pc.take(path, idx), "query": pc.take(query, idx)}


# --- zone offsets -----------------------------------------------------------------------------


def offset_seconds(text: str | None) -> int | None:
    """``+0100``, ``-04:00``, ``Z`` (or empty) -> seconds east of UTC; None when not an offset."""
    if text is None:
        return None
    if text in ("Z", "z", ""):
        return 0
    m = re.fullmatch(r"([+-])(\d{2}):?(\d{2})", text)
    if not m:
        return None
    sign = -1 if m.group(1) == "-" else 1
    return sign * (int(m.group(2)) * 3600 + int(m.group(3)) * 60)
