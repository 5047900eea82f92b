"""Which rows count: the mapping's filters, each a drop mask, and the ``--since``/``--until`` window.

Each dropped row is counted under the first filter it fails, in ``FILTER_ORDER``. Filters on
the path, the host and the IP are evaluated once per distinct value (see :mod:`.batch`).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import re

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .. import schema
from ..useragents import REASONS, Classifier
from .arrow import any_regex, np_bool
from .batch import Columns, Tally
from .model import Mapping

FILTER_ORDER = (
    "bad_request",
    "date_window",
    "host",
    "unmatched_host",
    "ip",
    "empty_user_agent",
    "headless_browser",
    "monitoring",
    "http_client",
    "bot",
    "method",
    "status",
    "partial_content",
    "path",
    "static_asset",
    "endpoint",
    "not_a_page",
    "same_download",
    "url_too_long",
)

Window = tuple[dt.datetime | None, dt.datetime | None]


def keep_rows(
    mapping: Mapping,
    columns: Columns,
    window: Window,
    classifier: Classifier,
    ip_cache: dict[str | None, bool],
    tally: Tally,
) -> np.ndarray:
    """The rows no filter drops; the others are counted in ``tally`` under the first filter
    they fail (and, for ``unmatched_host``, under their host)."""
    keep = np.ones(columns.n, bool)
    order = {reason: i for i, reason in enumerate(FILTER_ORDER)}
    drops = _drops(mapping, columns, window, classifier, ip_cache)
    for reason, drop in sorted(drops, key=lambda item: order.get(item[0], 99)):
        hits = keep & drop
        count = int(np.count_nonzero(hits))
        if not count:
            continue
        tally.filtered[reason] += count
        if reason == "unmatched_host":
            note_hosts(columns["host"].filter(pa.array(hits)), tally)
        keep &= ~drop
    return keep


def note_hosts(hosts: pa.Array, tally: Tally) -> None:
    for item in pc.value_counts(pc.fill_null(hosts, "(no host)")).to_pylist():
        tally.unmatched_hosts[item["values"]] += item["counts"]


def _drops(
    mapping: Mapping, columns: Columns, window: Window, classifier: Classifier, ip_cache: dict[str | None, bool]
) -> list[tuple[str, np.ndarray]]:
    """(reason, drop mask) pairs, in no particular order."""
    m = mapping
    drops = [("bad_request", columns.per_row("path", lambda p: pc.invert(pc.fill_null(pc.starts_with(p, "/"), False))))]
    if window != (None, None):
        drops.append(("date_window", _outside(columns["timestamp"], window)))
    if m.hosts or m.exclude_hosts:
        drops.append(
            ("host", columns.per_row("host", lambda hosts: _outside_patterns(hosts, m.hosts, m.exclude_hosts)))
        )
    if m.site_hosts and m.unmatched == "drop":
        drops.append(("unmatched_host", ~np_bool(is_site_host(m, columns["host"]))))
    if m.exclude_networks:
        drops.append(("ip", columns.per_row("ip", lambda ips: _in_networks(m, ips, ip_cache))))
    if m.non_human:
        # Rows without a user agent get one built from their device columns with [visitor].
        codes = classifier.classify_codes(columns["user_agent"], None if m.visitor else "empty_user_agent")
        for code in np.unique(codes[codes >= 0]):
            drops.append((REASONS[code], codes == code))
    if m.methods:
        keep = pc.is_in(columns["method"], value_set=pa.array(m.methods, pa.string()))
        drops.append(("method", ~np_bool(keep)))
    if m.statuses is not None or m.exclude_statuses is not None:
        status = columns["status"]
        drop = np.zeros(columns.n, bool) if m.statuses is None else ~m.statuses.holds(status)
        if m.exclude_statuses is not None:
            drop |= m.exclude_statuses.holds(status)
        drops.append(("status", drop))
    if m.paths or m.exclude_paths:
        drops.append(
            ("path", columns.per_row("path", lambda paths: _outside_patterns(paths, m.paths, m.exclude_paths)))
        )
    if m.static_extensions or m.static_files:
        drops.append(("static_asset", columns.per_row("path", lambda paths: _is_static(m, paths))))
    # A file the [downloads] table tracks is a download, not a page; its range requests are
    # folded into one download later (see .downloads), so neither of these drops it.
    tracked = m.downloads.extensions if m.downloads else frozenset()
    download = (
        columns.per_row("path", lambda paths: has_extension(paths, tracked)) if tracked else np.zeros(columns.n, bool)
    )
    if m.drop_partial_content:
        status = columns["status"]
        drops.append(("partial_content", np_bool(pc.fill_null(pc.equal(status, 206), False)) & ~download))
    if m.endpoints:
        drops.append(("endpoint", columns.per_row("path", lambda paths: any_regex(pc.utf8_lower(paths), m.endpoints))))
    if m.not_page_extensions:
        not_page = columns.per_row("path", lambda paths: has_extension(paths, m.not_page_extensions))
        drops.append(("not_a_page", not_page & ~download))
    return drops


def _outside(timestamps: pa.Array, window: Window) -> np.ndarray:
    since, until = window
    outside = np.zeros(len(timestamps), bool)
    if since is not None:
        outside |= ~np_bool(pc.greater_equal(timestamps, pa.scalar(since, schema.TIMESTAMP_TYPE)))
    if until is not None:
        outside |= ~np_bool(pc.less(timestamps, pa.scalar(until, schema.TIMESTAMP_TYPE)))
    return outside  # a row without a timestamp is outside any window


def _outside_patterns(values: pa.Array, only: tuple[str, ...], exclude: tuple[str, ...]) -> np.ndarray:
    """Rows whose value matches none of ``only`` (when there are any) or one of ``exclude``."""
    drop = ~np_bool(any_regex(values, only)) if only else np.zeros(len(values), bool)
    if exclude:
        drop |= np_bool(any_regex(values, exclude))
    return drop


def is_site_host(m: Mapping, hosts: pa.Array) -> pa.Array:
    return pc.fill_null(pc.is_in(hosts, value_set=pa.array(sorted(m.site_hosts), pa.string())), False)


def _is_static(m: Mapping, paths: pa.Array) -> pa.Array:
    base = _file_name(paths)
    return pc.or_(
        _extension_in(base, m.static_extensions),
        pc.fill_null(pc.is_in(base, value_set=pa.array(sorted(m.static_files), pa.string())), False),
    )


def _file_name(paths: pa.Array) -> pa.Array:
    """The last segment of each path, lower-cased."""
    return pc.struct_field(pc.extract_regex(pc.utf8_lower(paths), r"(?P<base>[^/]*)$"), "base")


def _extension_in(names: pa.Array, extensions: frozenset[str]) -> pa.Array:
    ext = pc.struct_field(pc.extract_regex(names, r"\.(?P<ext>[a-z0-9]+)$"), "ext")
    return pc.fill_null(pc.is_in(ext, value_set=pa.array(sorted(extensions), pa.string())), False)


def has_extension(paths: pa.Array, extensions: frozenset[str]) -> pa.Array:
    """Per path: does its last segment end in one of ``extensions`` (lower case, no dot)?"""
    return _extension_in(_file_name(paths), extensions)


def _in_networks(m: Mapping, ips: pa.Array, cache: dict[str | None, bool]) -> pa.Array:
    out = []
    for value in ips.to_pylist():
        hit = cache.get(value)
        if hit is None:
            try:
                address = ipaddress.ip_address(value)
                hit = any(address.version == n.version and address in n for n in m.exclude_networks)
            except (ValueError, TypeError):
                hit = False
            cache[value] = hit
        out.append(hit)
    return pa.array(out, pa.bool_())


def date_bound(value: object, *, end: bool = False) -> dt.datetime | None:
    """``--since`` / ``--until`` -> an aware UTC datetime (or None).

    A date (``2024-03-01``) means the start of that day UTC; for ``--until`` it means the
    end of that day (so ``--since 2024-03-01 --until 2024-03-31`` is all of March). A time
    (``2024-03-01T12:00``, ``2024-03-01 12:00:00+01:00``) is exact; without an offset it is UTC.
    ``since`` is inclusive and ``until`` exclusive. Raises ValueError with a usable message.
    """
    if value is None or value == "":
        return None
    if isinstance(value, dt.datetime):
        parsed = value
    elif isinstance(value, dt.date):
        parsed = dt.datetime(value.year, value.month, value.day) + (dt.timedelta(days=1) if end else dt.timedelta())
    else:
        text = str(value).strip()
        try:
            if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
                parsed = dt.datetime.fromisoformat(text) + (dt.timedelta(days=1) if end else dt.timedelta())
            else:
                parsed = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            flag = "--until" if end else "--since"
            raise ValueError(f"{flag} {text!r}: give a date (2024-03-01) or a time (2024-03-01T12:00:00Z)") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    return parsed.astimezone(dt.UTC)
