"""The ten tables, one site-local day at a time, as Plausible's exporter writes them.

Plausible's exporter (``lib/plausible/exports.ex``) reads its native tables: ``events_v2`` (one
row per event) and ``sessions_v2`` (one row per session, as :mod:`.sessions` builds them). We
compute the same rows from the events:

* ``imported_pages`` and ``imported_custom_events`` group events by each event's own day in the
  site's zone; ``visitors`` counts distinct event ``user_id`` (which changes at midnight UTC),
  pages' ``visits`` distinct sessions. Pages are grouped by day and pathname only, not by
  host: one row per page and day, whose ``hostname`` is the host (without ``www.``) of the
  page's first pageview that day, the alphabetically first of several in that second. The
  exporter takes ``any(hostname)``, any one of them; we pin this one so runs are repeatable.
* The session tables (sources, entry and exit pages, locations, devices, browsers, operating
  systems, and the session figures of ``imported_visitors``) group sessions by the day of
  their **last** event; ``visitors`` counts distinct session ``user_id`` (the last event's).
  Entry and exit pages include sessions without a pageview, with page ``""``; locations leave
  out sessions of unknown country.
* ``imported_visitors.pageviews`` counts pageview events by their own day, joined by date to
  the session figures: a day has a row when it has events or sessions that end on it.

A session's source, location, device, browser and OS are its first event's. Events whose user
agent Plausible drops as a bot never reach a session.

Sessions are cut per day: a session whose last event is less than 30 minutes before the
site-local midnight may go on, so its events are carried into the next day's batch; the
session rows of a day are written once no carried session can still end on it.

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

from ..plausible import (
    LINK_URL_EVENTS,
    PATH_EVENTS,
    UNKNOWN_COUNTRIES,
    plausible_browser,
)
from . import referrers
from .devices import DeviceInfo, DeviceParser
from .geo import GeoLookup
from .locations import Locations
from .sessions import SESSION_TTL_S, Events, Sessions, build_sessions, sort_events
from .writer import CsvWriter

EPOCH = dt.date(1970, 1, 1)

SESSION_DIMENSIONS = {
    "imported_sources": list(referrers.FIELDS),
    "imported_locations": ["country", "region", "city"],
    "imported_devices": ["device"],
    "imported_browsers": ["browser", "browser_version"],
    "imported_operating_systems": ["operating_system", "operating_system_version"],
}

EVENT_COLUMNS = ("name", "url", "referrer", "props", "user_agent", "ip", "timestamp")


def day_to_date(day: int) -> dt.date:
    return EPOCH + dt.timedelta(days=int(day))


def parse_url(url: str | None) -> tuple[str, str, str]:
    """(hostname without www., decoded pathname, raw query) of an event URL (Plausible's rules)."""
    if not url:
        return "(none)", "/", ""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "(none)", "/", ""
    host = (parts.hostname or "").strip().lower()
    host = host.removeprefix("www.") or "(none)"
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


def drops_as_bot(info: DeviceInfo) -> bool:
    """Plausible drops what device-detector calls a bot and any client named Headless Chrome."""
    return info.bot or info.browser == "Headless Chrome"


@dataclass
class Totals:
    """Figures for the report, summed over all days."""

    sessions: int = 0
    visitors: int = 0  # sum of daily visitors (imported_visitors)
    pageviews: int = 0
    custom_events: int = 0
    bounces: int = 0
    carried_sessions: int = 0  # sessions that went on past a site-local midnight
    pageviews_by_day: dict = field(default_factory=dict)  # date -> pageviews (imported_pages)
    bot_events: int = 0  # events dropped because Plausible drops their user agent as a bot


@dataclass(frozen=True)
class Urls:
    """Each event's page, from one parse per distinct URL."""

    page_of_event: np.ndarray  # index into ``pages``
    pages: list[tuple[str, str]]  # (hostname, pathname)
    url_of_event: np.ndarray  # index into ``parsed`` / ``raw_hosts``
    parsed: list[tuple[str, str, str]]  # parse_url of each distinct URL
    raw_hosts: list[str]  # host as written, for the self-referral check


def _urls(table: pa.Table) -> Urls:
    url = pc.fill_null(table.column("url"), "").combine_chunks().dictionary_encode()
    distinct = url.dictionary.to_pylist()
    parsed = [parse_url(u) for u in distinct]
    keys: dict[tuple[str, str], int] = {}
    page_of_url = np.array([keys.setdefault((h, p), len(keys)) for h, p, _ in parsed], dtype=np.int64)
    url_of_event = url.indices.to_numpy()
    return Urls(page_of_url[url_of_event], list(keys), url_of_event, parsed, [referrers.url_host(u) for u in distinct])


class DayAggregator:
    """Feed it days in ascending order with :meth:`add_day`; call :meth:`finish` at the end."""

    def __init__(self, timezone: ZoneInfo, writer: CsvWriter, devices: DeviceParser, geo: GeoLookup, agents: list[str]):
        self.tz = timezone
        self.agents = agents  # ua_id -> user agent
        self.writer = writer
        self.devices = devices
        self.locations = Locations(geo)
        self.dropped_agent = np.array([drops_as_bot(devices.parse(a)) for a in agents] + [False], dtype=bool)
        self.carry: pa.Table | None = None
        self.pending: dict[int, list[pd.DataFrame]] = {}  # day of last event -> session rows
        self.event_days: dict[int, int] = {}  # day with events, not yet written -> its pageviews
        self.totals = Totals()

    def midnight_after(self, day: int) -> int:
        """UTC epoch seconds of the site-local midnight that ends ``day``."""
        next_day = day_to_date(day + 1)
        return int(dt.datetime.combine(next_day, dt.time(0), tzinfo=self.tz).timestamp())

    def add_day(self, day: int, events: pa.Table, *, last: bool) -> None:
        """Process one site-local day's events (any order), plus sessions carried into it."""
        bots = self.dropped_agent[events.column("ua_id").to_numpy()] if events.num_rows else np.zeros(0, bool)
        if bots.any():
            self.totals.bot_events += int(bots.sum())
            events = events.filter(pa.array(~bots))
        if events.num_rows:
            self.event_days[day] = 0
        frame = events if self.carry is None else pa.concat_tables([self.carry, events], promote_options="permissive")
        self.carry = None
        if frame.num_rows:
            self._process(day, frame, last=last)
        self._flush()

    def finish(self) -> None:
        if self.carry is not None and self.carry.num_rows:  # pragma: no cover - add_day(last=True) empties it
            raise RuntimeError("sessions still open at the end")
        self._flush(everything=True)

    def _process(self, day: int, frame: pa.Table, *, last: bool) -> None:
        events = sort_events(frame)
        sessions = build_sessions(events)
        urls = _urls(events.table)
        today = events.day == day  # carried events belong to earlier days
        self._pages(day, today & events.is_pageview, events, sessions, urls)
        self._custom_events(day, today & events.is_custom, events)
        open_ = np.zeros(len(sessions.first), dtype=bool)
        if not last:  # the next event may come after midnight and continue the session
            open_ = events.seconds[sessions.last] >= self.midnight_after(day) - SESSION_TTL_S
        if open_.any():
            self.carry = events.table.take(pa.array(np.flatnonzero(open_[sessions.of_event])))
        closed = np.flatnonzero(~open_)
        if len(closed):
            rows = self._session_rows(events, sessions, closed, urls)
            for d, part in rows.groupby("day", sort=True):
                assert isinstance(d, int | np.integer)  # the "day" column holds day numbers
                self.pending.setdefault(int(d), []).append(part)

    def _pages(self, day: int, mask: np.ndarray, events: Events, sessions: Sessions, urls: Urls) -> None:
        rows = np.flatnonzero(mask)
        if day not in self.event_days:  # only carried sessions (the day's own events were all bots)
            return
        date = day_to_date(day)
        self.totals.pageviews_by_day[date] = len(rows)
        self.event_days[day] = len(rows)
        if not len(rows):
            return
        page_of_row = urls.page_of_event[rows]
        # A page's hostname is its first view's, the alphabetically first in a tied second: the
        # smallest (second, host rank), packed into one integer so a group's min() finds it.
        hosts = sorted({h for h, _ in urls.pages})
        rank_of_page = np.searchsorted(np.array(hosts, dtype=object), [h for h, _ in urls.pages])
        df = pd.DataFrame(
            {
                "page": np.array([p for _, p in urls.pages], dtype=object)[page_of_row],
                "first_view": events.seconds[rows] * len(hosts) + rank_of_page[page_of_row],
                "session": sessions.of_event[rows],
                "user": events.user_id[rows],
            }
        )
        agg = (
            df.groupby("page", sort=True)
            .agg(
                first_view=("first_view", "min"),
                visits=("session", "nunique"),
                visitors=("user", "nunique"),
                pageviews=("session", "size"),
            )
            .reset_index()
        )
        agg.insert(1, "hostname", np.array(hosts, dtype=object)[agg.pop("first_view").to_numpy() % len(hosts)])
        agg.insert(0, "date", date.isoformat())
        self.writer.write(
            "imported_pages", agg.sort_values(["pageviews", "page"], ascending=[False, True], kind="stable")
        )
        self.totals.pageviews += len(rows)

    def _custom_events(self, day: int, mask: np.ndarray, events: Events) -> None:
        rows = np.flatnonzero(mask)
        if not len(rows):
            return
        taken = events.table.select(["name", "props"]).take(pa.array(rows))
        names = np.array(pc.fill_null(taken.column("name"), "").to_pylist(), dtype=object)
        props = taken.column("props").combine_chunks().dictionary_encode()
        props_dict = props.dictionary.to_pylist()
        props_idx = pc.fill_null(props.indices, -1).to_numpy(zero_copy_only=False)
        link = np.array([props_value(p, "url") for p in props_dict] + [""], dtype=object)
        path = np.array([props_value(p, "path") for p in props_dict] + [""], dtype=object)
        df = pd.DataFrame(
            {
                "name": names,
                "link_url": np.where(np.isin(names, list(LINK_URL_EVENTS)), link[props_idx], ""),
                "path": np.where(np.isin(names, list(PATH_EVENTS)), path[props_idx], ""),
                "user": events.user_id[rows],
            }
        )
        agg = (
            df.groupby(["name", "link_url", "path"], sort=True)
            .agg(visitors=("user", "nunique"), events=("user", "size"))
            .reset_index()
        )
        agg.insert(0, "date", day_to_date(day).isoformat())
        self.writer.write("imported_custom_events", agg)
        self.totals.custom_events += len(rows)

    def _session_rows(self, events: Events, sessions: Sessions, closed: np.ndarray, urls: Urls) -> pd.DataFrame:
        """One row per closed session: its day, user_id, figures and first-event dimensions."""
        first, last = sessions.first[closed], sessions.last[closed]
        self.totals.carried_sessions += int(np.count_nonzero(events.day[first] != events.day[last]))
        page_names = np.array([p for _, p in urls.pages] + [""], dtype=object)
        entry, exit_ = sessions.entry_row[closed], sessions.exit_row[closed]
        frame = pd.DataFrame(
            {
                "day": events.day[last],
                "user": events.user_id[last],
                "visit_duration": sessions.duration[closed],
                "pageviews": sessions.pageviews[closed],
                "bounces": sessions.bounce[closed].astype(np.int64),
                "entry_page": page_names[np.where(entry >= 0, urls.page_of_event[entry], -1)],
                "exit_page": page_names[np.where(exit_ >= 0, urls.page_of_event[exit_], -1)],
            }
        )
        firsts = events.table.take(pa.array(first))
        dimensions = [
            self._devices(firsts),
            self.locations.of_events(firsts),
            self._sources(firsts, urls.url_of_event[first], urls),
        ]
        return pd.concat([frame, *dimensions], axis=1)

    def _devices(self, firsts: pa.Table) -> pd.DataFrame:
        infos = [self.devices.parse(self.agents[i]) if i >= 0 else None for i in firsts.column("ua_id").to_pylist()]
        browsers = [plausible_browser(i.browser, i.browser_version) if i else ("", "") for i in infos]
        return pd.DataFrame(
            {
                "device": [i.device if i else "" for i in infos],
                "browser": [b for b, _ in browsers],
                "browser_version": [v for _, v in browsers],
                "operating_system": [i.os if i else "" for i in infos],
                "operating_system_version": [i.os_version if i else "" for i in infos],
            }
        )

    def _sources(self, firsts: pa.Table, url_index: np.ndarray, urls: Urls) -> pd.DataFrame:
        cache: dict[tuple, tuple[str, ...]] = {}
        out = []
        for u, ref in zip(url_index.tolist(), firsts.column("referrer").to_pylist(), strict=True):
            key = (u, ref)
            value = cache.get(key)
            if value is None:
                value = cache[key] = referrers.resolve(urls.parsed[u][2], ref, urls.raw_hosts[u]).as_tuple()
            out.append(value)
        return pd.DataFrame(out, columns=list(referrers.FIELDS))

    def _flush(self, everything: bool = False) -> None:
        """Write the rows of every day no carried session can still end on."""
        limit = None
        if not everything and self.carry is not None and self.carry.num_rows:
            limit = int(pc.min(self.carry.column("day")).as_py())
        for d in sorted(set(self.pending) | set(self.event_days)):
            if limit is not None and d >= limit:
                break
            parts = self.pending.pop(d, [])
            self._write_sessions(d, pd.concat(parts, ignore_index=True) if parts else None, self.event_days.pop(d, 0))

    def _write_sessions(self, day: int, s: pd.DataFrame | None, pageviews: int) -> None:
        date = day_to_date(day).isoformat()
        visitors = int(s["user"].nunique()) if s is not None else 0
        self.writer.write(
            "imported_visitors",
            pd.DataFrame(
                [
                    {
                        "date": date,
                        "visitors": visitors,
                        "pageviews": pageviews,
                        "bounces": int(s["bounces"].sum()) if s is not None else 0,
                        "visits": len(s) if s is not None else 0,
                        "visit_duration": int(s["visit_duration"].sum()) if s is not None else 0,
                    }
                ]
            ),
        )
        if s is None:
            return
        self.totals.sessions += len(s)
        self.totals.visitors += visitors
        self.totals.bounces += int(s["bounces"].sum())
        metrics = dict(
            visitors=("user", "nunique"),
            visit_duration=("visit_duration", "sum"),
            bounces=("bounces", "sum"),
            pageviews=("pageviews", "sum"),
        )
        sessions = ("user", "size")
        known = s[~s["country"].isin(list(UNKNOWN_COUNTRIES))]
        for table, dims in SESSION_DIMENSIONS.items():
            rows = known if table == "imported_locations" else s
            self._write_grouped(table, date, rows, dims, dict(metrics, visits=sessions), "visits")
        self._write_grouped(
            "imported_entry_pages", date, s, ["entry_page"], dict(metrics, entrances=sessions), "entrances"
        )
        self._write_grouped("imported_exit_pages", date, s, ["exit_page"], dict(metrics, exits=sessions), "exits")

    def _write_grouped(
        self, table: str, date: str, rows: pd.DataFrame, dims: list[str], metrics: dict, order_by: str
    ) -> None:
        if rows.empty:
            return
        agg = rows.groupby(dims, sort=True).agg(**metrics).reset_index()
        agg.insert(0, "date", date)
        self.writer.write(table, agg.sort_values(order_by, ascending=False, kind="stable"))
