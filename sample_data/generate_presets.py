"""Regenerate the small samples the migration presets read: ``python sample_data/generate_presets.py``.

Each sample is written row by row from the lists below (no randomness), so every file is the
same on every run and the tests can reason about what each row must become. Each sample is
shaped like the tool's real export (see ``mappings/<preset>.toml`` for how to produce it):

* ``ga4-events.parquet`` and ``ga4-events.jsonl``: GA4's BigQuery export (``events_*``) as
  Parquet and as newline-delimited JSON, with nested ``event_params``, ``device`` and
  ``ecommerce`` records (the JSON one writes INT64 values as strings, as BigQuery does).
* ``umami-events.csv``: Umami's ``website_event`` joined to ``session``, ``revenue`` and a JSON
  aggregate of ``event_data``.
* ``matomo-actions.csv``: Matomo's ``log_link_visit_action`` joined to ``log_action``,
  ``log_visit`` and ``log_conversion``.
* ``simple-analytics-datapoints.csv``: Simple Analytics' data-point export.
* ``posthog-events.jsonl``: a PostHog batch export in JSONLines (``properties`` as a JSON string).
* ``snowplow-enriched.tsv``: Snowplow enriched events (131 tab-separated fields, no header).
* ``segment-events.csv``: Segment's ``pages`` and ``tracks`` tables unioned.

All addresses are from documentation ranges; all sites are example.com.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

HERE = Path(__file__).resolve().parent
T0 = dt.datetime(2024, 3, 14, 8, 26, 53, 512000, tzinfo=dt.UTC)

FIREFOX_LINUX = "Mozilla/5.0 (X11; Linux x86_64; rv:123.0) Gecko/20100101 Firefox/123.0"
CHROME_WINDOWS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/122.0.0.0 Safari/537.36"
)
SAFARI_IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_3 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.3 Mobile/15E148 Safari/604.1"
)
GOOGLEBOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"


def at(seconds: int) -> dt.datetime:
    return T0 + dt.timedelta(seconds=seconds)


# --- GA4 ------------------------------------------------------------------------------------

GA4_DEVICES = {
    "1234567890.1710404700": {
        "category": "desktop",
        "operating_system": "Linux",
        "operating_system_version": None,
        "language": "de-de",
        "web_info": {"browser": "Firefox", "browser_version": "123.0", "hostname": "www.example.com"},
    },
    "2222222222.1710405000": {
        "category": "mobile",
        "operating_system": "iOS",
        "operating_system_version": "17.3",
        "language": "en-us",
        "web_info": {"browser": "Safari", "browser_version": "17.3", "hostname": "www.example.com"},
    },
    "3333333333.1710405300": {
        "category": "tablet",
        "operating_system": "Android",
        "operating_system_version": "14",
        "language": "fr-fr",
        "web_info": {"browser": "Chrome", "browser_version": "122.0.6261.105", "hostname": "www.example.com"},
    },
}
A, B, C = list(GA4_DEVICES)
SITE = "https://www.example.com"

# (seconds after T0, user, event name, params {key: str | int | float}, ecommerce or None)
GA4_EVENTS = [
    (
        0,
        A,
        "session_start",
        {"page_location": f"{SITE}/?utm_source=newsletter", "ga_session_id": 1710404700, "ga_session_number": 1},
        None,
    ),
    (0, A, "first_visit", {"page_location": f"{SITE}/?utm_source=newsletter", "ga_session_id": 1710404700}, None),
    (
        0,
        A,
        "page_view",
        {
            "page_location": f"{SITE}/?utm_source=newsletter",
            "page_title": "Example",
            "ga_session_id": 1710404700,
            "engagement_time_msec": 0,
        },
        None,
    ),
    (
        40,
        A,
        "page_view",
        {
            "page_location": f"{SITE}/pricing?plan=pro",
            "page_referrer": f"{SITE}/?utm_source=newsletter",
            "page_title": "Pricing",
            "ga_session_id": 1710404700,
        },
        None,
    ),
    (
        55,
        A,
        "scroll",
        {"page_location": f"{SITE}/pricing?plan=pro", "percent_scrolled": 90, "ga_session_id": 1710404700},
        None,
    ),
    (70, A, "user_engagement", {"page_location": f"{SITE}/pricing?plan=pro", "engagement_time_msec": 29871}, None),
    (
        75,
        A,
        "click",
        {
            "page_location": f"{SITE}/pricing?plan=pro",
            "link_url": "https://github.com/example/app",
            "link_domain": "github.com",
            "outbound": "true",
            "ga_session_id": 1710404700,
        },
        None,
    ),
    (
        90,
        A,
        "file_download",
        {
            "page_location": f"{SITE}/docs/",
            "link_url": f"{SITE}/files/whitepaper.pdf",
            "file_extension": "pdf",
            "file_name": "/files/whitepaper.pdf",
            "ga_session_id": 1710404700,
        },
        None,
    ),
    (
        300,
        B,
        "page_view",
        {"page_location": f"{SITE}/signup", "page_referrer": "https://www.google.com/", "ga_session_id": 1710405000},
        None,
    ),
    (
        330,
        B,
        "sign_up",
        {
            "page_location": f"{SITE}/signup",
            "method": "email",
            "ga_session_id": 1710405000,
            "engagement_time_msec": 12000,
        },
        None,
    ),
    (
        400,
        B,
        "purchase",
        {
            "page_location": f"{SITE}/checkout/done",
            "transaction_id": "T-1001",
            "currency": "EUR",
            "value": 129.9,
            "ga_session_id": 1710405000,
        },
        {"transaction_id": "T-1001", "purchase_revenue": 129.9, "purchase_revenue_in_usd": 141.2},
    ),
    (
        600,
        C,
        "page_view",
        {
            "page_location": f"{SITE}/blog/launch-week",
            "page_referrer": "https://news.example.org/",
            "ga_session_id": 1710405300,
        },
        None,
    ),
    (
        620,
        C,
        "video_start",
        {
            "page_location": f"{SITE}/blog/launch-week",
            "video_title": "Launch week",
            "video_percent": 0,
            "video_provider": "youtube",
            "ga_session_id": 1710405300,
            "engagement_time_msec": 1500,
        },
        None,
    ),
    (900, C, "session_start", {"page_location": f"{SITE}/blog/launch-week", "ga_session_id": 1710405900}, None),
]


def _ga4_param(key, value, as_json: bool) -> dict:
    slot = {"string_value": None, "int_value": None, "float_value": None, "double_value": None}
    if isinstance(value, str):
        slot["string_value"] = value
    elif isinstance(value, int):
        slot["int_value"] = str(value) if as_json else value
    else:
        slot["double_value"] = value
    if as_json:
        slot = {k: v for k, v in slot.items() if v is not None}
    return {"key": key, "value": slot}


def ga4_rows(as_json: bool) -> list[dict]:
    rows = []
    for seconds, user, name, params, ecommerce in GA4_EVENTS:
        micros = int(at(seconds).timestamp() * 1_000_000)
        row = {
            "event_date": at(seconds).strftime("%Y%m%d"),
            "event_timestamp": str(micros) if as_json else micros,
            "event_name": name,
            "event_params": [_ga4_param(k, v, as_json) for k, v in params.items()],
            "user_pseudo_id": user,
            "device": GA4_DEVICES[user],
            "geo": {"continent": "Europe", "country": "Germany", "region": "Bavaria", "city": "Munich"},
            "traffic_source": {"name": "(direct)", "medium": "(none)", "source": "(direct)"},
            "ecommerce": ecommerce,
            "platform": "WEB",
            "stream_id": "1234567890",
        }
        if as_json and ecommerce is None:
            del row["ecommerce"]
        rows.append(row)
    return rows


def write_ga4() -> None:
    value = pa.struct(
        [
            ("string_value", pa.string()),
            ("int_value", pa.int64()),
            ("float_value", pa.float64()),
            ("double_value", pa.float64()),
        ]
    )
    schema = pa.schema(
        [
            ("event_date", pa.string()),
            ("event_timestamp", pa.int64()),
            ("event_name", pa.string()),
            ("event_params", pa.list_(pa.struct([("key", pa.string()), ("value", value)]))),
            ("user_pseudo_id", pa.string()),
            (
                "device",
                pa.struct(
                    [
                        ("category", pa.string()),
                        ("operating_system", pa.string()),
                        ("operating_system_version", pa.string()),
                        ("language", pa.string()),
                        (
                            "web_info",
                            pa.struct(
                                [("browser", pa.string()), ("browser_version", pa.string()), ("hostname", pa.string())]
                            ),
                        ),
                    ]
                ),
            ),
            (
                "geo",
                pa.struct(
                    [
                        ("continent", pa.string()),
                        ("country", pa.string()),
                        ("region", pa.string()),
                        ("city", pa.string()),
                    ]
                ),
            ),
            ("traffic_source", pa.struct([("name", pa.string()), ("medium", pa.string()), ("source", pa.string())])),
            (
                "ecommerce",
                pa.struct(
                    [
                        ("transaction_id", pa.string()),
                        ("purchase_revenue", pa.float64()),
                        ("purchase_revenue_in_usd", pa.float64()),
                    ]
                ),
            ),
            ("platform", pa.string()),
            ("stream_id", pa.string()),
        ]
    )
    pq.write_table(pa.Table.from_pylist(ga4_rows(as_json=False), schema=schema), HERE / "ga4-events.parquet")
    with open(HERE / "ga4-events.jsonl", "w", encoding="utf-8") as out:
        for row in ga4_rows(as_json=True):
            out.write(json.dumps(row, separators=(",", ":")) + "\n")


# --- Umami ----------------------------------------------------------------------------------


def write_umami() -> None:
    sessions = {
        "9a8b7c6d-0000-4000-8000-000000000001": ("desktop", "edge-chromium", "Windows 10"),
        "9a8b7c6d-0000-4000-8000-000000000002": ("mobile", "ios", "iOS"),
        "9a8b7c6d-0000-4000-8000-000000000003": ("laptop", "firefox", "Linux"),
    }
    s1, s2, s3 = list(sessions)
    # (seconds, session, event_type, event_name, path, query, referrer domain, referrer path,
    #  event_data, revenue, currency)
    events = [
        (0, s1, 1, "", "/", "", "www.google.com", "/", "", "", ""),
        (30, s1, 1, "", "/pricing", "plan=pro", "", "", "", "", ""),
        (45, s1, 2, "signup", "/pricing", "plan=pro", "", "", '{"plan":"pro"}', "", ""),
        (300, s2, 1, "", "/blog/post", "utm_source=twitter&utm_medium=social", "t.co", "/", "", "", ""),
        (360, s2, 2, "checkout", "/checkout", "", "", "", '{"plan":"team","seats":5}', "49.0000", "USD"),
        (600, s3, 1, "", "/docs", "", "", "", "", "", ""),
        (601, s3, 5, "", "/docs", "", "", "", "", "", ""),
        (640, s3, 3, "", "/docs", "", "", "", "", "", ""),
    ]
    header = [
        "event_id",
        "website_id",
        "session_id",
        "visit_id",
        "created_at",
        "hostname",
        "url_path",
        "url_query",
        "referrer_domain",
        "referrer_path",
        "page_title",
        "event_type",
        "event_name",
        "device",
        "browser",
        "os",
        "screen",
        "country",
        "event_data",
        "revenue",
        "currency",
    ]
    with open(HERE / "umami-events.csv", "w", newline="", encoding="utf-8") as out:
        w = csv.writer(out)
        w.writerow(header)
        for i, (sec, sid, etype, name, path, query, rdom, rpath, data, revenue, currency) in enumerate(events, 1):
            device, browser, os_ = sessions[sid]
            w.writerow(
                [
                    f"6f1c2d7e-0000-4000-8000-{i:012d}",
                    "0d1e2f3a-0000-4000-8000-000000000002",
                    sid,
                    f"1b2c3d4e-0000-4000-8000-{sid[-1]:0>12}",
                    at(sec).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] + "+00",
                    "www.example.com",
                    path,
                    query,
                    rdom,
                    rpath,
                    "",
                    etype,
                    name,
                    device,
                    browser,
                    os_,
                    "1920x1080" if device != "mobile" else "390x844",
                    "DE",
                    data,
                    revenue,
                    currency,
                ]
            )


# --- Matomo ---------------------------------------------------------------------------------


def write_matomo() -> None:
    header = [
        "server_time",
        "idvisitor",
        "visit_ip",
        "action_type",
        "page_url",
        "target_url",
        "event_category",
        "event_action",
        "event_name",
        "event_value",
        "referer_url",
        "config_os",
        "config_browser_name",
        "config_browser_version",
        "device_type",
        "revenue",
        "currency",
        "order_id",
    ]
    v1 = ("a1b2c3d4e5f60718", "203.0.113.0", "WIN", "CH", "122.0", "desktop")
    v2 = ("0f1e2d3c4b5a6978", "", "IOS", "SF", "17.3", "smartphone")
    rows = [
        (0, v1, "pageview", f"{SITE}/", "", "", "", "", "", "https://www.google.com/", "", "", ""),
        (20, v1, "pageview", f"{SITE}/pricing", "", "", "", "", "", "https://www.google.com/", "", "", ""),
        (35, v1, "outlink", f"{SITE}/pricing", "https://github.com/example", "", "", "", "", "", "", "", ""),
        (50, v1, "download", f"{SITE}/docs/", f"{SITE}/files/guide.pdf", "", "", "", "", "", "", "", ""),
        (400, v2, "pageview", f"{SITE}/shop", "", "", "", "", "", "", "", "", ""),
        (420, v2, "event", f"{SITE}/shop", "", "Video", "Play", "Intro", "12", "", "", "", ""),
        (480, v2, "ecommerce_order", f"{SITE}/shop/thanks", "", "", "", "", "", "", "59.90", "EUR", "O-42"),
    ]
    with open(HERE / "matomo-actions.csv", "w", newline="", encoding="utf-8") as out:
        w = csv.writer(out)
        w.writerow(header)
        for sec, v, atype, page, target, cat, act, name, value, ref, revenue, currency, order in rows:
            idvisitor, ip, os_, browser, version, device = v
            w.writerow(
                [
                    at(sec).strftime("%Y-%m-%d %H:%M:%S"),
                    idvisitor,
                    ip,
                    atype,
                    page,
                    target,
                    cat,
                    act,
                    name,
                    value,
                    ref,
                    os_,
                    browser,
                    version,
                    device,
                    revenue,
                    currency,
                    order,
                ]
            )


# --- Simple Analytics -----------------------------------------------------------------------


def write_simple_analytics() -> None:
    header = [
        "added_iso",
        "hostname",
        "path",
        "query",
        "document_referrer",
        "user_agent",
        "session_id",
        "device_type",
        "browser_name",
        "os_name",
        "is_robot",
        "datapoint",
        "uuid",
    ]
    rows = [
        (0, "/", "", "https://www.example.org/", FIREFOX_LINUX, "sa-s1", "desktop", "Firefox", "Linux", "false", ""),
        (25, "/pricing", "ref=producthunt", "", FIREFOX_LINUX, "sa-s1", "desktop", "Firefox", "Linux", "false", ""),
        (40, "/pricing", "", "", FIREFOX_LINUX, "sa-s1", "desktop", "Firefox", "Linux", "false", "newsletter_signup"),
        (
            300,
            "/blog/",
            "",
            "https://duckduckgo.com/",
            SAFARI_IPHONE,
            "sa-s2",
            "mobile",
            "Mobile Safari",
            "iOS",
            "false",
            "",
        ),
        (
            320,
            "/blog/",
            "",
            "",
            SAFARI_IPHONE,
            "sa-s2",
            "mobile",
            "Mobile Safari",
            "iOS",
            "false",
            "download_pricing_pdf",
        ),
        (500, "/", "", "", CHROME_WINDOWS, "sa-s3", "desktop", "Chrome", "Windows", "true", ""),
        (510, "/about", "", "", GOOGLEBOT, "sa-s4", "desktop", "Googlebot", "", "false", ""),
    ]
    with open(HERE / "simple-analytics-datapoints.csv", "w", newline="", encoding="utf-8") as out:
        w = csv.writer(out)
        w.writerow(header)
        for i, (sec, path, query, ref, ua, sid, device, browser, os_, robot, datapoint) in enumerate(rows, 1):
            w.writerow(
                [
                    at(sec).strftime("%Y-%m-%dT%H:%M:%S.") + f"{at(sec).microsecond // 1000:03d}Z",
                    "www.example.com",
                    path,
                    query,
                    ref,
                    ua,
                    sid,
                    device,
                    browser,
                    os_,
                    robot,
                    datapoint,
                    f"sa-{i:04d}",
                ]
            )


# --- PostHog --------------------------------------------------------------------------------


def write_posthog() -> None:
    u1 = "018e3a6a-0000-7000-8000-000000000021"
    u2 = "018e3a6a-0000-7000-8000-000000000031"
    web1 = {
        "$raw_user_agent": FIREFOX_LINUX,
        "$ip": "203.0.113.42",
        "$browser": "Firefox",
        "$os": "Linux",
        "$device_type": "Desktop",
        "$lib": "web",
        "$screen_width": 1920,
    }
    # A visitor captured with IP collection off and no raw UA in the export.
    web2 = {
        "$browser": "Mobile Safari",
        "$browser_version": 17.3,
        "$os": "iOS",
        "$os_version": "17.3",
        "$device_type": "Mobile",
        "$lib": "web",
        "$screen_width": 390,
    }
    events = [
        (
            0,
            u1,
            "$pageview",
            {**web1, "$current_url": f"{SITE}/pricing?plan=pro", "$referrer": "https://www.example.org/"},
        ),
        (20, u1, "$autocapture", {**web1, "$current_url": f"{SITE}/pricing?plan=pro", "$event_type": "click"}),
        (30, u1, "signed_up", {**web1, "$current_url": f"{SITE}/signup", "plan": "pro", "trial": True}),
        (60, u1, "$pageleave", {**web1, "$current_url": f"{SITE}/signup"}),
        (300, u2, "$pageview", {**web2, "$current_url": f"{SITE}/", "$referrer": "$direct"}),
        (310, u2, "$identify", {**web2, "$current_url": f"{SITE}/"}),
        (330, u2, "$pageview", {**web2, "$current_url": f"{SITE}/shop", "$referrer": f"{SITE}/"}),
        (
            360,
            u2,
            "purchase",
            {**web2, "$current_url": f"{SITE}/shop/thanks", "revenue": 99.5, "currency": "usd", "items": 2},
        ),
    ]
    with open(HERE / "posthog-events.jsonl", "w", encoding="utf-8") as out:
        for i, (sec, user, name, props) in enumerate(events, 1):
            row = {
                "uuid": f"018e3a6b-0000-7000-8000-{i:012d}",
                "event": name,
                "distinct_id": user,
                "person_id": user.replace("-0000-", "-1111-"),
                "properties": json.dumps(props, separators=(",", ":")),
                "team_id": 1,
                "timestamp": at(sec).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
                "created_at": at(sec + 1).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
                "elements_chain": "",
            }
            out.write(json.dumps(row, separators=(",", ":")) + "\n")


# --- Snowplow -------------------------------------------------------------------------------

SNOWPLOW_FIELDS = [
    "app_id",
    "platform",
    "etl_tstamp",
    "collector_tstamp",
    "dvce_created_tstamp",
    "event",
    "event_id",
    "txn_id",
    "name_tracker",
    "v_tracker",
    "v_collector",
    "v_etl",
    "user_id",
    "user_ipaddress",
    "user_fingerprint",
    "domain_userid",
    "domain_sessionidx",
    "network_userid",
    "geo_country",
    "geo_region",
    "geo_city",
    "geo_zipcode",
    "geo_latitude",
    "geo_longitude",
    "geo_region_name",
    "ip_isp",
    "ip_organization",
    "ip_domain",
    "ip_netspeed",
    "page_url",
    "page_title",
    "page_referrer",
    "page_urlscheme",
    "page_urlhost",
    "page_urlport",
    "page_urlpath",
    "page_urlquery",
    "page_urlfragment",
    "refr_urlscheme",
    "refr_urlhost",
    "refr_urlport",
    "refr_urlpath",
    "refr_urlquery",
    "refr_urlfragment",
    "refr_medium",
    "refr_source",
    "refr_term",
    "mkt_medium",
    "mkt_source",
    "mkt_term",
    "mkt_content",
    "mkt_campaign",
    "contexts",
    "se_category",
    "se_action",
    "se_label",
    "se_property",
    "se_value",
    "unstruct_event",
    "tr_orderid",
    "tr_affiliation",
    "tr_total",
    "tr_tax",
    "tr_shipping",
    "tr_city",
    "tr_state",
    "tr_country",
    "ti_orderid",
    "ti_sku",
    "ti_name",
    "ti_category",
    "ti_price",
    "ti_quantity",
    "pp_xoffset_min",
    "pp_xoffset_max",
    "pp_yoffset_min",
    "pp_yoffset_max",
    "useragent",
    "br_name",
    "br_family",
    "br_version",
    "br_type",
    "br_renderengine",
    "br_lang",
    "br_features_pdf",
    "br_features_flash",
    "br_features_java",
    "br_features_director",
    "br_features_quicktime",
    "br_features_realplayer",
    "br_features_windowsmedia",
    "br_features_gears",
    "br_features_silverlight",
    "br_cookies",
    "br_colordepth",
    "br_viewwidth",
    "br_viewheight",
    "os_name",
    "os_family",
    "os_manufacturer",
    "os_timezone",
    "dvce_type",
    "dvce_ismobile",
    "dvce_screenwidth",
    "dvce_screenheight",
    "doc_charset",
    "doc_width",
    "doc_height",
    "tr_currency",
    "tr_total_base",
    "tr_tax_base",
    "tr_shipping_base",
    "ti_currency",
    "ti_price_base",
    "base_currency",
    "geo_timezone",
    "mkt_clickid",
    "mkt_network",
    "etl_tags",
    "dvce_sent_tstamp",
    "refr_domain_userid",
    "refr_device_tstamp",
    "derived_contexts",
    "domain_sessionid",
    "derived_tstamp",
    "event_vendor",
    "event_name",
    "event_format",
    "event_version",
    "event_fingerprint",
    "true_tstamp",
]
assert len(SNOWPLOW_FIELDS) == 131


def write_snowplow() -> None:
    def ts(sec: int) -> str:
        return at(sec).strftime("%Y-%m-%d %H:%M:%S.") + f"{at(sec).microsecond // 1000:03d}"

    visitor = {
        "user_ipaddress": "203.0.113.42",
        "domain_userid": "abc123def4567890",
        "useragent": FIREFOX_LINUX,
        "br_name": "Firefox 12",
        "br_family": "Firefox",
        "os_name": "Linux",
        "dvce_type": "Computer",
        "network_userid": "3c8e0a1d-0000-4000-8000-000000000099",
    }
    page = {
        "page_title": "Pricing",
        "page_urlscheme": "https",
        "page_urlhost": "www.example.com",
        "page_urlport": "443",
    }
    rows = [
        (
            0,
            "page_view",
            {
                "page_url": f"{SITE}/?utm_source=newsletter",
                "page_referrer": "",
                "event_vendor": "com.snowplowanalytics.snowplow",
                "event_name": "page_view",
            },
        ),
        (10, "page_ping", {"page_url": f"{SITE}/?utm_source=newsletter", "event_name": "page_ping"}),
        (20, "page_view", {"page_url": f"{SITE}/pricing", "page_referrer": f"{SITE}/", "event_name": "page_view"}),
        (30, "page_ping", {"page_url": f"{SITE}/pricing", "event_name": "page_ping"}),
        (
            40,
            "struct",
            {
                "page_url": f"{SITE}/pricing",
                "se_category": "video",
                "se_action": "play",
                "se_label": "intro",
                "se_value": "12",
                "event_name": "event",
            },
        ),
        (
            60,
            "transaction",
            {
                "page_url": f"{SITE}/checkout",
                "tr_orderid": "T-9",
                "tr_total": "42.50",
                "tr_currency": "GBP",
                "event_name": "transaction",
            },
        ),
        (
            60,
            "transaction_item",
            {
                "page_url": f"{SITE}/checkout",
                "ti_orderid": "T-9",
                "ti_sku": "SKU-1",
                "ti_price": "42.50",
                "ti_quantity": "1",
                "event_name": "transaction_item",
            },
        ),
        (
            90,
            "unstruct",
            {
                "page_url": f"{SITE}/docs/",
                "event_vendor": "com.example",
                "event_name": "newsletter_signup",
                "unstruct_event": '{"schema":"iglu:com.snowplowanalytics.snowplow/unstruct_event/jsonschema/1-0-0",'
                '"data":{"schema":"iglu:com.example/newsletter_signup/jsonschema/1-0-0",'
                '"data":{"list":"weekly"}}}',
            },
        ),
        (95, "page_view", {"page_url": f"{SITE}/docs/", "page_referrer": f"{SITE}/pricing", "event_name": "page_view"}),
    ]
    with open(HERE / "snowplow-enriched.tsv", "w", encoding="utf-8", newline="") as out:
        for i, (sec, event, fields) in enumerate(rows, 1):
            values = {
                "app_id": "website",
                "platform": "web",
                "etl_tstamp": ts(sec + 17),
                "collector_tstamp": ts(sec + 1),
                "dvce_created_tstamp": ts(sec),
                "event": event,
                "event_id": f"3c8e0a1d-0000-4000-8000-{i:012d}",
                "name_tracker": "sp1",
                "v_tracker": "js-3.20.0",
                "v_collector": "ssc-3.0.0-kinesis",
                "v_etl": "enrich-4.0.0",
                "derived_tstamp": ts(sec),
                "dvce_sent_tstamp": ts(sec),
                "domain_sessionid": "5d2f0a1d-0000-4000-8000-000000000001",
                "domain_sessionidx": "3",
                **visitor,
                **page,
                **fields,
            }
            out.write("\t".join(values.get(f, "") for f in SNOWPLOW_FIELDS) + "\n")


# --- Segment --------------------------------------------------------------------------------


def write_segment() -> None:
    header = [
        "id",
        "anonymous_id",
        "user_id",
        "timestamp",
        "type",
        "event_text",
        "context_ip",
        "context_user_agent",
        "context_page_url",
        "context_page_referrer",
        "revenue",
        "currency",
        "properties",
    ]
    a1 = "7f3c2a10-0000-4000-8000-000000000040"
    a2 = "7f3c2a10-0000-4000-8000-000000000041"
    rows = [
        (
            0,
            a1,
            "",
            "page",
            "",
            "203.0.113.42",
            CHROME_WINDOWS,
            f"{SITE}/pricing?plan=pro",
            "https://www.example.org/",
            "",
            "",
            "",
        ),
        (
            30,
            a1,
            "u-17",
            "track",
            "Signed Up",
            "203.0.113.42",
            CHROME_WINDOWS,
            f"{SITE}/signup",
            "",
            "",
            "",
            '{"plan":"pro","trial":true}',
        ),
        (
            60,
            a1,
            "u-17",
            "track",
            "Order Completed",
            "203.0.113.42",
            CHROME_WINDOWS,
            f"{SITE}/checkout",
            "",
            "120.00",
            "USD",
            '{"order_id":"50314b8e","revenue":120,"currency":"USD","coupon":"SPRING"}',
        ),
        # Server-side calls: no IP, no user agent.
        (300, a2, "", "page", "", "", "", f"{SITE}/docs/", "", "", "", ""),
        (330, a2, "", "page", "", "", "", f"{SITE}/docs/install", f"{SITE}/docs/", "", "", ""),
    ]
    with open(HERE / "segment-events.csv", "w", newline="", encoding="utf-8") as out:
        w = csv.writer(out)
        w.writerow(header)
        for i, (sec, anon, user, kind, event, ip, ua, url, ref, revenue, currency, props) in enumerate(rows, 1):
            w.writerow(
                [
                    f"ajs-next-{i:031d}",
                    anon,
                    user,
                    at(sec).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] + " UTC",
                    kind,
                    event,
                    ip,
                    ua,
                    url,
                    ref,
                    revenue,
                    currency,
                    props,
                ]
            )


def main() -> None:
    write_ga4()
    write_umami()
    write_matomo()
    write_simple_analytics()
    write_posthog()
    write_snowplow()
    write_segment()


if __name__ == "__main__":
    main()
