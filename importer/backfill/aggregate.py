"""Sessions and daily aggregates, one site-local day at a time (reference §11, §12, §16.3, §17).

Definitions, as Plausible's own exporter computes them from its native tables:

* **visitor**: one (IP, user agent) pair, counted once per day (the site domain is fixed);
* **session**: one visitor's events in time order, cut where the gap, in whole minutes of
  whole-second timestamps, is over 30 (Plausible's ``diff(..., :minutes) <= 30``: a gap of
  30 min 59 s continues, 31 min starts a new session);
* **bounce**: a session with at most one pageview and no interactive custom event after
  its first event;
* **visit duration**: last event minus first event, in seconds, summed over sessions;
* **entry / exit page**: the session's first / last pageview's pathname;
* the session's **source, UTM values, location, device, browser and OS** come from its first
  event.

Midnight. Plausible carries a session across midnight (the visitor id is also tried with the
previous day's salt), and its exporter dates every session-level table (visitors, sources,
entry and exit pages, locations, devices, browsers, operating systems) by the session's
*start*, in the site's time zone, while pages and custom events are dated by each event's own
time. We do the same: a session open at the end of a day (its last event within 31 minutes of
midnight) is carried into the next day's processing, its events with it; the session-level
rows of a day are written once no session that started on that day can still grow. Pageviews
per day therefore agree exactly between ``imported_pages`` and ``send --dry-run``, and a
session that straddles midnight counts its later pageviews on its start day in the
session-level tables, as Plausible's own export would.

Everything runs on whole columns (Arrow, NumPy, pandas group-bys); Python code runs only per
distinct URL, referrer, user agent, IP address and property set.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ..plausible import LINK_URL_EVENTS, PATH_EVENTS
from . import referrers as src
from .devices import DeviceParser
from .geo import GeoLookup
from .writer import CsvWriter

SESSION_GAP_S = 31 * 60  # a gap this long or longer starts a new session
EPOCH = dt.date(1970, 1, 1)


SESSION_DIMENSIONS = {
    "imported_sources": list(src.FIELDS),
    "imported_locations": ["country", "region", "city"],
    "imported_devices": ["device"],
    "imported_browsers": ["browser", "browser_version"],
    "imported_operating_systems": ["operating_system", "operating_system_version"],
}

EVENT_COLUMNS = ("name", "url", "referrer", "props", "user_agent", "ip", "timestamp")


def day_to_date(day: int) -> dt.date:
    return EPOCH + dt.timedelta(days=int(day))


def parse_url(url: str | None) -> tuple[str, str, str]:
    """(hostname without www., decoded pathname, raw query) of an event URL (reference §13)."""
    if not url:
        return "(none)", "/", ""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "(none)", "/", ""
    host = (parts.hostname or "").strip().lower()
    host = (host[4:] if host.startswith("www.") else host) or "(none)"
    path = unquote(parts.path).rstrip() or "/"
    return host, path, parts.query


def props_value(props: str | None, key: str) -> str:
    if not props:
        return ""
    try:
        value = json.loads(props).get(key)
    except (ValueError, AttributeError):
        return ""
    return "" if value is None else str(value)


@dataclass
class Totals:
    """Figures for the report, summed over all days."""

    sessions: int = 0
    visitors: int = 0  # sum of daily visitors
    pageviews: int = 0
    custom_events: int = 0
    bounces: int = 0
    days: int = 0
    carried_sessions: int = 0  # sessions that went on past a site-local midnight
    pageviews_by_day: dict = field(default_factory=dict)  # date -> pageviews (imported_pages)
    device_detector_bots: int = 0  # sessions whose agent device-detector calls a bot


class DayAggregator:
    """Feed it days in ascending order with :meth:`add_day`; call :meth:`finish` at the end."""

    def __init__(self, timezone: ZoneInfo, writer: CsvWriter, devices: DeviceParser, geo: GeoLookup,
                 agents: list[str]):
        self.tz = timezone
        self.agents = agents  # ua_id -> user agent
        self.writer = writer
        self.devices = devices
        self.geo = geo
        self.carry: pa.Table | None = None
        self.pending: dict[int, list[pd.DataFrame]] = {}
        self.totals = Totals()
        self.first_day: int | None = None
        self.last_day: int | None = None

    # -- helpers -------------------------------------------------------------------------

    def midnight_after(self, day: int) -> int:
        """UTC epoch seconds of the site-local midnight that ends ``day``."""
        next_day = day_to_date(day + 1)
        return int(dt.datetime.combine(next_day, dt.time(0), tzinfo=self.tz).timestamp())

    # -- the work ------------------------------------------------------------------------

    def add_day(self, day: int, events: pa.Table, *, last: bool) -> None:
        """Process one site-local day's events (any order), plus sessions carried into it."""
        self.totals.days += 1
        self.first_day = day if self.first_day is None else self.first_day
        self.last_day = day
        frame = events if self.carry is None else pa.concat_tables([self.carry, events], promote_options="permissive")
        self.carry = None
        if frame.num_rows:
            self._sessions(day, frame, last=last)
        self._flush()

    def finish(self) -> None:
        if self.carry is not None and self.carry.num_rows:  # pragma: no cover - add_day(last=True) empties it
            raise RuntimeError("sessions still open at the end")
        self._flush(everything=True)

    def _sessions(self, day: int, frame: pa.Table, *, last: bool) -> None:
        n = frame.num_rows
        ts = pc.divide(frame.column("timestamp").cast(pa.int64()), 1_000_000).to_numpy()
        # Visitor: a 64-bit hash of (IP, user agent number).
        ip = pc.fill_null(frame.column("ip"), "").combine_chunks().dictionary_encode()
        ip_hash = pd.util.hash_array(ip.dictionary.to_numpy(zero_copy_only=False))[ip.indices.to_numpy()]
        ua_id = frame.column("ua_id").to_numpy().astype(np.int64)
        vid = ip_hash ^ pd.util.hash_array(ua_id)
        order = np.lexsort((np.arange(n), ts, vid))
        frame = frame.take(order)
        ts, vid = ts[order], vid[order]
        days = frame.column("day").to_numpy()

        new = np.ones(n, dtype=bool)
        new[1:] = (vid[1:] != vid[:-1]) | ((ts[1:] - ts[:-1]) >= SESSION_GAP_S)
        sess = np.cumsum(new) - 1
        starts = np.flatnonzero(new)
        ends = np.append(starts[1:] - 1, n - 1)
        n_sess = len(starts)

        names = frame.column("name").combine_chunks()
        is_pv = pc.fill_null(pc.equal(names, "pageview"), False).to_numpy(zero_copy_only=False)
        # Plausible's "engagement" events (time on page) are neither pageviews nor goals.
        is_custom = ~is_pv & ~pc.fill_null(pc.equal(names, "engagement"), False).to_numpy(zero_copy_only=False)
        if "interactive" in frame.column_names:
            interactive = pc.fill_null(frame.column("interactive").cast(pa.bool_()), True).to_numpy(
                zero_copy_only=False)
        else:
            interactive = np.ones(n, dtype=bool)

        # Pages: one key per distinct URL -> (hostname, pathname), parsed once.
        url = pc.fill_null(frame.column("url"), "").combine_chunks().dictionary_encode()
        parsed = [parse_url(u) for u in url.dictionary.to_pylist()]
        page_keys: dict[tuple[str, str], int] = {}
        page_of_url = np.array([page_keys.setdefault((h, p), len(page_keys)) for h, p, _ in parsed],
                               dtype=np.int64)
        page_list = list(page_keys)
        url_idx = url.indices.to_numpy()
        page_id = page_of_url[url_idx] if len(page_of_url) else np.zeros(n, dtype=np.int64)

        pageviews = np.add.reduceat(is_pv.astype(np.int64), starts)
        later_interactive = is_custom & interactive
        later_interactive[starts] = False
        has_interactive = np.logical_or.reduceat(later_interactive, starts)
        bounce = (pageviews <= 1) & ~has_interactive
        duration = ts[ends] - ts[starts]

        entry = np.full(n_sess, -1, dtype=np.int64)
        exit_ = np.full(n_sess, -1, dtype=np.int64)
        pv_rows = np.flatnonzero(is_pv)
        if len(pv_rows):
            pv_sess = sess[pv_rows]
            first = np.ones(len(pv_rows), dtype=bool)
            first[1:] = pv_sess[1:] != pv_sess[:-1]
            lastm = np.ones(len(pv_rows), dtype=bool)
            lastm[:-1] = pv_sess[:-1] != pv_sess[1:]
            entry[pv_sess[first]] = page_id[pv_rows[first]]
            exit_[pv_sess[lastm]] = page_id[pv_rows[lastm]]

        # Event-level tables for this day (carried events belong to earlier days).
        today = days == day
        self._pages(day, today & is_pv, page_id, page_list, sess, vid)
        self._custom_events(day, today & is_custom, frame, vid)

        # Sessions still open at midnight wait for the next day.
        open_ = np.zeros(n_sess, dtype=bool)
        if not last:
            open_ = ts[ends] >= self.midnight_after(day) - SESSION_GAP_S + 1
        if open_.any():
            carry_rows = np.flatnonzero(open_[sess])
            self.carry = frame.take(pa.array(carry_rows))
        done = np.flatnonzero(~open_)
        self.totals.carried_sessions += int(np.count_nonzero(days[starts[done]] != days[ends[done]]))
        if len(done):
            self._finalise(frame, done, starts[done], days[starts[done]], vid[starts[done]], duration[done],
                           pageviews[done], bounce[done], entry[done], exit_[done], page_list, parsed, url_idx)

    def _pages(self, day, mask, page_id, page_list, sess, vid) -> None:
        rows = np.flatnonzero(mask)
        if not len(rows):
            self.totals.pageviews_by_day[day_to_date(day)] = self.totals.pageviews_by_day.get(day_to_date(day), 0)
            return
        df = pd.DataFrame({"page": page_id[rows], "sess": sess[rows], "vid": vid[rows]})
        agg = df.groupby("page", sort=False).agg(visits=("sess", "nunique"), visitors=("vid", "nunique"),
                                                 pageviews=("sess", "size"))
        keys = [page_list[i] for i in agg.index]
        out = pd.DataFrame({
            "date": day_to_date(day).isoformat(),
            "hostname": [k[0] for k in keys],
            "page": [k[1] for k in keys],
            "visits": agg["visits"].to_numpy(),
            "visitors": agg["visitors"].to_numpy(),
            "pageviews": agg["pageviews"].to_numpy(),
        }).sort_values(["pageviews", "page"], ascending=[False, True], kind="stable")
        self.writer.write("imported_pages", out)
        total = int(len(rows))
        self.totals.pageviews += total
        date = day_to_date(day)
        self.totals.pageviews_by_day[date] = self.totals.pageviews_by_day.get(date, 0) + total

    def _custom_events(self, day, mask, frame, vid) -> None:
        rows = np.flatnonzero(mask)
        if not len(rows):
            return
        taken = frame.select(["name", "props"]).take(pa.array(rows))
        names = pc.fill_null(taken.column("name"), "").to_pylist()
        props = taken.column("props").combine_chunks().dictionary_encode()
        props_dict = props.dictionary.to_pylist()
        props_idx = pc.fill_null(props.indices, -1).to_numpy(zero_copy_only=False)
        link = np.array([props_value(p, "url") for p in props_dict] + [""], dtype=object)
        path = np.array([props_value(p, "path") for p in props_dict] + [""], dtype=object)
        names_arr = np.array(names, dtype=object)
        link_col = np.where(np.isin(names_arr, list(LINK_URL_EVENTS)), link[props_idx], "")
        path_col = np.where(np.isin(names_arr, list(PATH_EVENTS)), path[props_idx], "")
        df = pd.DataFrame({"name": names_arr, "link_url": link_col, "path": path_col, "vid": vid[rows]})
        agg = df.groupby(["name", "link_url", "path"], sort=True).agg(
            visitors=("vid", "nunique"), events=("vid", "size")).reset_index()
        agg.insert(0, "date", day_to_date(day).isoformat())
        self.writer.write("imported_custom_events", agg)
        self.totals.custom_events += len(rows)

    def _finalise(self, frame, done, first_rows, start_days, vids, duration, pageviews, bounce, entry, exit_,
                  page_list, parsed, url_idx) -> None:
        """Turn closed sessions into rows (one per session) waiting for their day's flush."""
        firsts = frame.select(["ua_id", "ip", "referrer"]).take(pa.array(first_rows))
        uas = [self.agents[i] if i >= 0 else None for i in firsts.column("ua_id").to_pylist()]
        ips = firsts.column("ip").to_pylist()
        refs = firsts.column("referrer").to_pylist()
        first_urls = url_idx[first_rows]
        device_rows = {}
        dev_cols = []
        for ua_value in uas:
            info = device_rows.get(ua_value)
            if info is None:
                info = device_rows[ua_value] = self.devices.parse(ua_value)
            dev_cols.append(info)
        self.totals.device_detector_bots += sum(1 for info in dev_cols if info.bot)
        source_cache: dict[tuple, src.SessionSource] = {}
        source_rows = []
        for u, ref in zip(first_urls.tolist(), refs):
            host, _, query = parsed[u]
            k = (host, query, ref)
            value = source_cache.get(k)
            if value is None:
                value = source_cache[k] = src.resolve(query, ref, host)
            source_rows.append(value.as_tuple())
        countries = [self.geo.country(ip) for ip in ips]
        page_names = np.array([p for _, p in page_list] + [""], dtype=object)
        sessions = pd.DataFrame({
            "day": start_days,
            "vid": vids,
            "visit_duration": duration,
            "pageviews": pageviews,
            "bounces": bounce.astype(np.int64),
            "entry_page": page_names[entry],  # -1 picks "" (a session without pageviews)
            "exit_page": page_names[exit_],
            "country": countries,
            "region": "",
            "city": 0,
            "device": [d.device for d in dev_cols],
            "browser": [d.browser for d in dev_cols],
            "browser_version": [d.browser_version for d in dev_cols],
            "operating_system": [d.os for d in dev_cols],
            "operating_system_version": [d.os_version for d in dev_cols],
        })
        source_frame = pd.DataFrame(source_rows, columns=list(src.FIELDS))
        sessions = pd.concat([sessions, source_frame], axis=1)
        for d, part in sessions.groupby("day", sort=True):
            self.pending.setdefault(int(d), []).append(part)

    def _flush(self, everything: bool = False) -> None:
        """Write the session-level rows of every day no open session started on."""
        if everything or self.carry is None or not self.carry.num_rows:
            limit = None
        else:
            limit = int(pc.min(self.carry.column("day")).as_py())
        for d in sorted(self.pending):
            if limit is not None and d >= limit:
                break
            self._write_sessions(d, pd.concat(self.pending.pop(d), ignore_index=True))

    def _write_sessions(self, day: int, s: pd.DataFrame) -> None:
        date = day_to_date(day).isoformat()
        metrics = dict(visitors=("vid", "nunique"), visits=("vid", "size"), visit_duration=("visit_duration", "sum"),
                       bounces=("bounces", "sum"), pageviews=("pageviews", "sum"))
        visitors = int(s["vid"].nunique())
        self.writer.write("imported_visitors", pd.DataFrame([{
            "date": date, "visitors": visitors, "pageviews": int(s["pageviews"].sum()),
            "bounces": int(s["bounces"].sum()), "visits": len(s), "visit_duration": int(s["visit_duration"].sum()),
        }]))
        self.totals.sessions += len(s)
        self.totals.visitors += visitors
        self.totals.bounces += int(s["bounces"].sum())
        for table, dims in SESSION_DIMENSIONS.items():
            agg = s.groupby(dims, sort=True).agg(**metrics).reset_index()
            agg.insert(0, "date", date)
            agg = agg.sort_values("visits", ascending=False, kind="stable")
            self.writer.write(table, agg)
        with_pages = s[s["entry_page"] != ""]
        if len(with_pages):
            entry = with_pages.groupby("entry_page", sort=True).agg(
                visitors=("vid", "nunique"), entrances=("vid", "size"), visit_duration=("visit_duration", "sum"),
                bounces=("bounces", "sum"), pageviews=("pageviews", "sum")).reset_index()
            entry.insert(0, "date", date)
            self.writer.write("imported_entry_pages", entry.sort_values("entrances", ascending=False, kind="stable"))
            exit_ = with_pages.groupby("exit_page", sort=True).agg(
                visitors=("vid", "nunique"), visit_duration=("visit_duration", "sum"), exits=("vid", "size"),
                bounces=("bounces", "sum"), pageviews=("pageviews", "sum")).reset_index()
            exit_.insert(0, "date", date)
            self.writer.write("imported_exit_pages", exit_.sort_values("exits", ascending=False, kind="stable"))

