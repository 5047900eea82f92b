"""Plausible's sessions and visitor ids, worked out on whole columns of one batch of events.

As Plausible's ingestion builds them (``lib/plausible/ingestion/event.ex``,
``lib/plausible/session/cache_store.ex``):

* **user_id** is a hash of (daily salt, user agent, IP, site domain). The salt rotates at
  00:00 UTC, so the same IP and user agent are one ``user_id`` per UTC day: here a hash of
  (IP, user agent number, UTC day of the event). The domain is fixed for a run.
* **session**: one IP and user agent's events in time order (timestamps cut to whole seconds,
  as Plausible stores them), cut where the gap is over 30 minutes: the session cache forgets a
  session 30 minutes (1,800 s) after its last event. The session goes on across midnight UTC
  (Plausible also looks it up under the previous salt) and its ``user_id`` becomes the latest
  event's.
* **timestamp** of a session is its last event's (``update_session`` moves it); the session's
  day, in the site's zone, is that event's day.
* **bounce**: fewer than two pageviews and no interactive custom event after the first event.
* **duration**: last event minus first, in seconds.
* **entry / exit page**: the first / last pageview's pathname, ``""`` without a pageview.
* source, location, device, browser and OS are the first event's (see :mod:`.aggregate`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

SESSION_TTL_S = 30 * 60  # a gap longer than this starts a new session
SECONDS_PER_DAY = 86_400
_DAY_SPREAD = np.uint64(0x9E3779B97F4A7C15)  # keeps a day number's hash apart from a user agent number's


@dataclass(frozen=True)
class Events:
    """One batch of events sorted by (IP + user agent, time), with its per-event columns."""

    table: pa.Table  # the events, in session order
    seconds: np.ndarray  # UTC epoch seconds (whole)
    user_id: np.ndarray  # uint64: (IP, user agent, UTC day)
    is_pageview: np.ndarray
    is_custom: np.ndarray  # neither a pageview nor an engagement event
    day: np.ndarray  # site-local day number of each event


@dataclass(frozen=True)
class Sessions:
    """Per session (arrays of the number of sessions), plus each event's session number."""

    of_event: np.ndarray  # session number of each event
    first: np.ndarray  # row of the session's first event
    last: np.ndarray  # row of its last event
    pageviews: np.ndarray
    bounce: np.ndarray  # bool
    duration: np.ndarray  # seconds
    entry_row: np.ndarray  # row of the first pageview, -1 without one
    exit_row: np.ndarray  # row of the last pageview, -1 without one


def sort_events(table: pa.Table) -> Events:
    """Order events (at least one) for :func:`build_sessions` and work out their visitor ids."""
    n = table.num_rows
    seconds = np.floor_divide(table.column("timestamp").cast(pa.int64()).to_numpy(), 1_000_000)
    ip = pc.fill_null(table.column("ip"), "").combine_chunks().dictionary_encode()
    ip_hash = pd.util.hash_array(ip.dictionary.to_numpy(zero_copy_only=False))[ip.indices.to_numpy()]
    person = ip_hash ^ pd.util.hash_array(table.column("ua_id").to_numpy().astype(np.int64))
    order = np.lexsort((np.arange(n), seconds, person))
    table, seconds, person = table.take(pa.array(order)), seconds[order], person[order]
    utc_day = np.floor_divide(seconds, SECONDS_PER_DAY).astype(np.uint64)
    user_id = pd.util.hash_array(person ^ pd.util.hash_array(utc_day * _DAY_SPREAD))
    names = table.column("name").combine_chunks()
    is_pageview = pc.fill_null(pc.equal(names, "pageview"), False).to_numpy(zero_copy_only=False)
    engagement = pc.fill_null(pc.equal(names, "engagement"), False).to_numpy(zero_copy_only=False)
    return Events(table, seconds, user_id, is_pageview, ~is_pageview & ~engagement, table.column("day").to_numpy())


def _person_changes(events: Events) -> np.ndarray:
    ip = pc.fill_null(events.table.column("ip"), "").combine_chunks()
    ua = events.table.column("ua_id").to_numpy()
    same_ip = pc.equal(ip.slice(1), ip.slice(0, len(ip) - 1)).to_numpy(zero_copy_only=False)
    return ~same_ip | (ua[1:] != ua[:-1])


def build_sessions(events: Events) -> Sessions:
    """Cut the sorted events (at least one) into sessions and work out each session's figures."""
    n = events.table.num_rows
    new = np.ones(n, dtype=bool)
    if n > 1:
        new[1:] = _person_changes(events) | (np.diff(events.seconds) > SESSION_TTL_S)
    of_event = np.cumsum(new) - 1
    first = np.flatnonzero(new)
    last = np.append(first[1:] - 1, n - 1)
    pageviews = np.add.reduceat(events.is_pageview.astype(np.int64), first)
    if "interactive" in events.table.column_names:
        interactive = pc.fill_null(events.table.column("interactive").cast(pa.bool_()), True).to_numpy(
            zero_copy_only=False
        )
    else:
        interactive = np.ones(n, dtype=bool)
    engages = events.is_custom & interactive
    engages[first] = False
    engaged = np.logical_or.reduceat(engages, first)
    entry_row = np.full(len(first), -1, dtype=np.int64)
    exit_row = np.full(len(first), -1, dtype=np.int64)
    pv_rows = np.flatnonzero(events.is_pageview)
    if len(pv_rows):
        pv_session = of_event[pv_rows]
        starts = np.ones(len(pv_rows), dtype=bool)
        starts[1:] = pv_session[1:] != pv_session[:-1]
        ends = np.ones(len(pv_rows), dtype=bool)
        ends[:-1] = pv_session[:-1] != pv_session[1:]
        entry_row[pv_session[starts]] = pv_rows[starts]
        exit_row[pv_session[ends]] = pv_rows[ends]
    return Sessions(
        of_event,
        first,
        last,
        pageviews,
        (pageviews < 2) & ~engaged,
        events.seconds[last] - events.seconds[first],
        entry_row,
        exit_row,
    )
