"""Cross-check: the backfill's ten files equal what Plausible's own exporter writes.

The events of ``send --dry-run`` are loaded into an in-process ClickHouse (chdb) and turned
into Plausible's native tables the way its ingestion builds them: ``events_v2`` (bots dropped,
timestamps cut to whole seconds, ``user_id`` a hash of the UTC day's salt, user agent and IP)
and ``sessions_v2`` (per IP and user agent, a new session after a gap of more than 1,800 s;
``timestamp`` and ``user_id`` of the last event; source, location, device and browser of the
first). Then the exporter's queries (``export_queries/2`` in ``lib/plausible/exports.ex``) run
over them as SQL, and every file the backfill wrote is read with ``CSVWithNames`` and the
column structures of Plausible's CSV importer (``input_structures`` in
``lib/plausible/imported/csv_importer.ex``), so a file Plausible would reject or misread fails.

Per distinct user agent, IP and (URL, referrer) the derived values (device-detector's verdict
and names, the country, the source) come from the same components the backfill uses; the
sessions, days, salts and every aggregate are SQL's own.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from conftest import BROWSER, IPHONE, combined_line, write_log
from test_backfill import IPAD, WINDOWS, handmade_lines

from importer import send
from importer.backfill import backfill
from importer.backfill.aggregate import drops_as_bot
from importer.backfill.devices import DeviceParser
from importer.backfill.geo import GeoLookup
from importer.backfill.referrers import resolve, url_host
from importer.options import BackfillOptions, OutputOptions, ReadOptions
from importer.plausible import LINK_URL_EVENTS, PATH_EVENTS, plausible_browser

chdb_session = pytest.importorskip("chdb.session")

MAPPING = "web-goals"  # pageviews plus 404 and File Download goals
SAMPLE = Path(__file__).resolve().parent.parent / "sample_data" / "access.log"

# input_structures of Plausible's CSV importer
STRUCTURES = {
    "imported_visitors": "date Date, visitors UInt64, pageviews UInt64, bounces UInt64, visits UInt64, "
    "visit_duration UInt64",
    "imported_sources": "date Date, source String, referrer String, utm_source String, utm_medium String, "
    "utm_campaign String, utm_content String, utm_term String, pageviews UInt64, "
    "visitors UInt64, visits UInt64, visit_duration UInt64, bounces UInt32",
    "imported_pages": "date Date, hostname String, page String, visits UInt64, visitors UInt64, pageviews UInt64, "
    "total_scroll_depth UInt64, total_scroll_depth_visits UInt64, total_time_on_page UInt64, "
    "total_time_on_page_visits UInt64",
    "imported_entry_pages": "date Date, entry_page String, visitors UInt64, entrances UInt64, "
    "visit_duration UInt64, bounces UInt32, pageviews UInt64",
    "imported_exit_pages": "date Date, exit_page String, visitors UInt64, visit_duration UInt64, exits UInt64, "
    "bounces UInt32, pageviews UInt64",
    "imported_custom_events": "date Date, name String, link_url String, path String, visitors UInt64, events UInt64",
    "imported_locations": "date Date, country String, region String, city UInt64, visitors UInt64, "
    "visits UInt64, visit_duration UInt64, bounces UInt32, pageviews UInt64",
    "imported_devices": "date Date, device String, visitors UInt64, visits UInt64, visit_duration UInt64, "
    "bounces UInt32, pageviews UInt64",
    "imported_browsers": "date Date, browser String, browser_version String, visitors UInt64, visits UInt64, "
    "visit_duration UInt64, bounces UInt32, pageviews UInt64",
    "imported_operating_systems": "date Date, operating_system String, operating_system_version String, "
    "visitors UInt64, visits UInt64, visit_duration UInt64, bounces UInt32, "
    "pageviews UInt64",
}

PREPARED = (
    "rn UInt64, name String, url String, ts String, ip String, user_agent String, "
    "interactive UInt8, bot UInt8, device String, browser String, browser_version String, os String, "
    "os_version String, country String, source String, referrer String, utm_source String, "
    "utm_medium String, utm_campaign String, utm_content String, utm_term String, link_url String, "
    "path String"
)

BUILD_EVENTS = """
CREATE TABLE events_v2 ENGINE = Memory AS
SELECT *, sipHash64(ip, user_agent, sum(new) OVER (PARTITION BY ip, user_agent ORDER BY timestamp, rn
                                                   ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)) AS session_id
FROM (
    SELECT *, row_number() OVER person = 1
              OR dateDiff('second', lagInFrame(timestamp) OVER person, timestamp) > 1800 AS new
    FROM (
        SELECT rn, name, toDateTime(parseDateTime64BestEffort(ts, 6, 'UTC'), 'UTC') AS timestamp, ip, user_agent,
               interactive, sipHash64(toDate(timestamp, 'UTC'), user_agent, ip) AS user_id,
               decodeURLComponent(if(path(url) = '', '/', path(url))) AS pathname,
               if(domain(url) = '', '(none)', replaceRegexpOne(lower(domain(url)), '^www\\\\.', '')) AS hostname,
               device, browser, browser_version, os, os_version, country, source, referrer, utm_source,
               utm_medium, utm_campaign, utm_content, utm_term, link_url, path
        FROM prepared WHERE NOT bot
    )
    WINDOW person AS (PARTITION BY ip, user_agent ORDER BY timestamp, rn
                      ROWS BETWEEN 1 PRECEDING AND CURRENT ROW)
)
"""

BUILD_SESSIONS = """
CREATE TABLE sessions_v2 ENGINE = Memory AS
SELECT session_id,
       max(timestamp) AS timestamp,
       argMax(user_id, (timestamp, rn)) AS user_id,
       toUInt32(max(timestamp) - min(timestamp)) AS duration,
       countIf(name = 'pageview') AS pageviews,
       toUInt8(countIf(name = 'pageview') < 2
               AND countIf(name NOT IN ('pageview', 'engagement') AND interactive AND NOT first) = 0) AS is_bounce,
       argMinIf(pathname, (timestamp, rn), name = 'pageview') AS entry_page,
       argMaxIf(pathname, (timestamp, rn), name = 'pageview') AS exit_page,
       toFixedString(argMin(country, (timestamp, rn)), 2) AS country_code,
       '' AS subdivision1_code, toUInt64(0) AS city_geoname_id,
       argMin(device, (timestamp, rn)) AS screen_size,
       argMin(browser, (timestamp, rn)) AS browser,
       argMin(browser_version, (timestamp, rn)) AS browser_version,
       argMin(os, (timestamp, rn)) AS operating_system,
       argMin(os_version, (timestamp, rn)) AS operating_system_version,
       argMin(source, (timestamp, rn)) AS referrer_source,
       argMin(referrer, (timestamp, rn)) AS referrer,
       argMin(utm_source, (timestamp, rn)) AS utm_source,
       argMin(utm_medium, (timestamp, rn)) AS utm_medium,
       argMin(utm_campaign, (timestamp, rn)) AS utm_campaign,
       argMin(utm_content, (timestamp, rn)) AS utm_content,
       argMin(utm_term, (timestamp, rn)) AS utm_term
FROM (SELECT *, rn = first_value(rn) OVER (PARTITION BY session_id ORDER BY timestamp, rn) AS first FROM events_v2)
GROUP BY session_id
SETTINGS prefer_column_name_to_alias = 1
"""

SESSION_METRICS = (
    "uniq(user_id) AS visitors, count() AS visits, sum(duration) AS visit_duration, "
    "sum(is_bounce) AS bounces, sum(pageviews) AS pageviews"
)


def _by_session(dims: str, where: str = "") -> str:
    return (
        f"SELECT toDate(timestamp, {{tz}}) AS date, {dims}, {SESSION_METRICS} FROM sessions_v2 {where} "
        f"GROUP BY date, {dims}"
    )


# The exporter's queries, one per file, with its column names.
EXPORT_QUERIES = {
    "imported_visitors": """
        SELECT greatest(s.date, e.date) AS date, s.visitors AS visitors, e.pageviews AS pageviews,
               s.bounces AS bounces, s.visits AS visits, s.visit_duration AS visit_duration
        FROM (SELECT toDate(timestamp, {tz}) AS date, countIf(name = 'pageview') AS pageviews
              FROM events_v2 GROUP BY date) AS e
        FULL JOIN (SELECT toDate(timestamp, {tz}) AS date, sum(is_bounce) AS bounces, count() AS visits,
                          sum(duration) AS visit_duration, uniq(user_id) AS visitors
                   FROM sessions_v2 GROUP BY date) AS s ON e.date = s.date""",
    "imported_sources": """
        SELECT toDate(timestamp, {tz}) AS date, referrer_source AS source, referrer, utm_source, utm_medium,
               utm_campaign, utm_content, utm_term, sum(pageviews) AS pageviews, uniq(user_id) AS visitors,
               count() AS visits, sum(duration) AS visit_duration, sum(is_bounce) AS bounces
        FROM sessions_v2
        GROUP BY date, source, referrer, utm_source, utm_medium, utm_campaign, utm_content, utm_term""",
    # The exporter takes any(hostname), any host of the page's views that day; we pin one: the
    # host of the first view, the alphabetically first of those in the same second.
    "imported_pages": """
        SELECT toDate(timestamp, {tz}) AS date, argMin(hostname, (timestamp, hostname)) AS hostname, pathname AS page,
               uniq(session_id) AS visits, uniq(user_id) AS visitors, count() AS pageviews
        FROM events_v2 WHERE name = 'pageview' GROUP BY date, page""",
    "imported_entry_pages": """
        SELECT toDate(timestamp, {tz}) AS date, entry_page, uniq(user_id) AS visitors, count() AS entrances,
               sum(duration) AS visit_duration, sum(is_bounce) AS bounces, sum(pageviews) AS pageviews
        FROM sessions_v2 GROUP BY date, entry_page""",
    "imported_exit_pages": """
        SELECT toDate(timestamp, {tz}) AS date, exit_page, uniq(user_id) AS visitors,
               sum(duration) AS visit_duration, count() AS exits, sum(is_bounce) AS bounces,
               sum(pageviews) AS pageviews
        FROM sessions_v2 GROUP BY date, exit_page""",
    "imported_custom_events": f"""
        SELECT toDate(timestamp, {{tz}}) AS date, name,
               if(name IN {tuple(sorted(LINK_URL_EVENTS))}, link_url, '') AS link_url_,
               if(name IN {tuple(sorted(PATH_EVENTS))}, path, '') AS path_,
               uniq(user_id) AS visitors, count() AS events
        FROM events_v2 WHERE name NOT IN ('pageview', 'engagement') GROUP BY date, name, link_url_, path_""",
    "imported_locations": _by_session(
        "country_code AS country, subdivision1_code AS region, city_geoname_id AS city",
        "WHERE country_code != '\\0\\0' AND country_code != 'ZZ'",
    ),
    "imported_devices": _by_session("screen_size AS device"),
    "imported_browsers": _by_session("browser, browser_version"),
    "imported_operating_systems": _by_session("operating_system, operating_system_version"),
}


def prepare(dry_run: Path, out: Path) -> None:
    """The dry-run events plus, per distinct value, what Plausible's parsers make of them."""
    devices, geo = DeviceParser(None), GeoLookup()
    lines = []
    for rn, line in enumerate(dry_run.read_text(encoding="utf-8").splitlines()):
        e = json.loads(line)
        info = devices.parse(e["user_agent"])
        browser, browser_version = plausible_browser(info.browser, info.browser_version)
        url = e["url"]
        query = url.split("?", 1)[1] if "?" in url else ""
        source = resolve(query, e["referrer"], url_host(url))
        props = e["props"] or {}
        lines.append(
            json.dumps(
                {
                    "rn": rn,
                    "name": e["name"],
                    "url": url,
                    "ts": e["timestamp"],
                    "ip": e["ip"] or "",
                    "user_agent": e["user_agent"] or "",
                    "interactive": e.get("interactive", True),
                    "bot": drops_as_bot(info),
                    "device": info.device,
                    "browser": browser,
                    "browser_version": browser_version,
                    "os": info.os,
                    "os_version": info.os_version,
                    "country": geo.country(e["ip"]),
                    **dict(
                        zip(
                            (
                                "source",
                                "referrer",
                                "utm_source",
                                "utm_medium",
                                "utm_campaign",
                                "utm_content",
                                "utm_term",
                            ),
                            source.as_tuple(),
                            strict=True,
                        )
                    ),
                    "link_url": str(props.get("url", "")),
                    "path": str(props.get("path", "")),
                }
            )
        )
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")


def rows(session, sql: str) -> list[str]:
    return sorted(str(session.query(sql, "TSV")).splitlines())


def midnight_lines() -> list[str]:
    """Traffic around midnight UTC and midnight in the zones tested, and a 30:30 gap."""
    plus0 = dt.UTC
    people = [("198.51.100.20", BROWSER), ("198.51.100.21", IPHONE), ("8.8.4.4", IPAD), ("1.1.1.1", WINDOWS)]
    lines = []
    for i, (ip, agent) in enumerate(people):
        start = dt.datetime(2024, 3, 20 + i, 23, 45, tzinfo=plus0)
        for minutes in (0, 10, 20, 50.5, 60, 70, 100.5):  # gaps of 30:30 after 20 and 60 minutes
            when = start + dt.timedelta(minutes=minutes)
            lines.append(
                combined_line(
                    ip=ip,
                    user_agent=agent,
                    when=when,
                    target=f"/m{int(minutes)}",
                    referrer="https://duckduckgo.com/" if minutes == 0 else "-",
                )
            )
        for hour in (3, 4, 5, 16, 17, 18, 22):  # the zones' midnights (UTC-5/-4, +1, +5:30)
            when = dt.datetime(2024, 3, 20 + i, hour, 15 + 4 * i, tzinfo=plus0)
            lines += [
                combined_line(ip=ip, user_agent=agent, when=when, target="/late"),
                combined_line(ip=ip, user_agent=agent, when=when + dt.timedelta(minutes=25), target="/next"),
            ]
    return lines


def hostname_lines() -> list[str]:
    """One pathname under several hosts on one day: the pages file has one row per day and page.

    ``/shared`` is viewed on ``blog.example.com`` first, then on ``example.com``, and the next
    day on ``example.com`` first; ``/cart`` on ``www.shop.example.org`` and ``shop.example.org``
    (one host without ``www.``); ``/tie`` on two hosts in the same second.
    """
    noon = dt.datetime(2024, 3, 21, 12, 0, tzinfo=dt.UTC)  # the same day in every zone tested
    views = [
        ("198.51.100.40", BROWSER, "blog.example.com", "/shared", 0),
        ("198.51.100.41", IPHONE, "example.com", "/shared", 5),
        ("198.51.100.40", BROWSER, "example.com", "/shared", 10),
        ("198.51.100.41", IPHONE, "blog.example.com", "/shared", 24 * 60),
        ("198.51.100.40", BROWSER, "example.com", "/shared", 24 * 60 - 1),
        ("198.51.100.42", IPAD, "www.shop.example.org", "/cart", 60),
        ("198.51.100.43", WINDOWS, "shop.example.org", "/cart", 61),
        ("198.51.100.44", BROWSER, "c.example.com", "/tie", 120),
        ("198.51.100.45", IPHONE, "b.example.com", "/tie", 120),
        ("198.51.100.46", IPAD, "a.example.com", "/tie", 120),
    ]
    return [
        combined_line(ip=ip, user_agent=agent, vhost=host, target=path, when=noon + dt.timedelta(minutes=minutes))
        for ip, agent, host, path, minutes in views
    ]


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    """The inputs, and their dry-run events prepared for ClickHouse (the same for every zone)."""
    base = tmp_path_factory.mktemp("exporter")
    downloads = [
        combined_line(
            ip="8.8.8.8",
            user_agent=BROWSER,
            target="/files/report.pdf",
            when=dt.datetime(2024, 3, 20, 23, 50 + i, tzinfo=dt.UTC),
        )
        for i in (0, 5)
    ]
    inputs = [
        write_log(base / "handmade.log", handmade_lines() + midnight_lines() + downloads),
        write_log(base / "vhosts.log", hostname_lines()),
        SAMPLE,
    ]
    send(
        inputs,
        "example.com",
        dry_run=True,
        read=ReadOptions(mapping=MAPPING),
        outputs=OutputOptions(events=base / "events.jsonl", rejects=None),
    )
    prepare(base / "events.jsonl", base / "prepared.jsonl")
    return base, inputs


def exporter_session(prepared_jsonl: Path):
    session = chdb_session.Session()
    session.query(
        f"CREATE TABLE prepared ENGINE = Memory AS SELECT * FROM file('{prepared_jsonl}', 'JSONEachRow', '{PREPARED}')"
    )
    session.query(BUILD_EVENTS)
    session.query(BUILD_SESSIONS)
    return session


def read_written(session, path: str, table: str) -> list[str]:
    """A written file as Plausible's importer reads it (pages: its six documented columns)."""
    optional = (
        " EXCEPT (total_scroll_depth, total_scroll_depth_visits, total_time_on_page, total_time_on_page_visits)"
        if table == "imported_pages"
        else ""
    )
    return rows(session, f"SELECT *{optional} FROM file('{path}', 'CSVWithNames', '{STRUCTURES[table]}')")


@pytest.mark.parametrize("tz", ["UTC", "Europe/Berlin", "America/New_York", "Asia/Kolkata"])
def test_files_equal_the_exporters_output(prepared, tz, tmp_path):
    base, inputs = prepared
    report = backfill(
        inputs,
        "example.com",
        BackfillOptions(site_timezone=tz, out_dir=tmp_path / "out"),
        read=ReadOptions(mapping=MAPPING),
        outputs=OutputOptions(rejects=None, failed=None),
        ua_cache=base / "ua.json",
        today=dt.date(2026, 1, 1),
    )
    assert report.ok, report.problems
    session = exporter_session(base / "prepared.jsonl")
    assert rows(session, "SELECT count() FROM sessions_v2") == [str(report.sessions)]
    for table, query in EXPORT_QUERIES.items():
        written = read_written(session, report.files[table], table)
        assert written == rows(session, query.format(tz=f"'{tz}'")), table
        assert written, table
