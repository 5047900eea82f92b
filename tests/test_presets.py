"""Every migration preset turns its bundled sample into the expected events.

The samples are written by ``sample_data/generate_presets.py`` from explicit row lists; the
expectations below follow from those lists and from each preset's rules (see the comments).
"""

from __future__ import annotations

import ipaddress
import json
from collections import Counter
from pathlib import Path

import pytest

from importer import resources
from importer.options import DeliveryOptions, OutputOptions, ReadOptions
from importer.pipeline import send

SAMPLES = resources.sample_data_dir()
SITE = "https://www.example.com"
DOC_RANGE = ipaddress.ip_network("2001:db8::/32")


def run(tmp_path: Path, preset: str, sample: str) -> tuple[list[dict], dict]:
    out = tmp_path / f"{preset}.jsonl"
    report = send(
        [SAMPLES / sample],
        domain="example.com",
        dry_run=True,
        read=ReadOptions(mapping=preset),
        outputs=OutputOptions(events=out, rejects=tmp_path / "rejects.jsonl"),
    )
    data = report.as_dict()
    assert data["rows_read"] == data["rows_invalid"] + sum(data["rows_filtered"].values()) + data["events"]
    assert data["rows_invalid"] == 0
    events = [json.loads(line) for line in out.read_text().splitlines()]
    return events, data


def summary(events: list[dict]) -> list[tuple]:
    return [(e["name"], e["url"], e["props"], e.get("revenue")) for e in events]


def synthetic(ip: str) -> bool:
    return ipaddress.ip_address(ip) in DOC_RANGE


# --- GA4 -------------------------------------------------------------------------------------

GA4_EXPECTED = [
    ("pageview", f"{SITE}/?utm_source=newsletter", None, None),
    ("pageview", f"{SITE}/pricing?plan=pro", None, None),
    ("Outbound Link: Click", f"{SITE}/pricing?plan=pro", {"url": "https://github.com/example/app"}, None),
    ("File Download", f"{SITE}/docs/", {"url": f"{SITE}/files/whitepaper.pdf"}, None),
    ("pageview", f"{SITE}/signup", None, None),
    # GA4 internals (ga_session_id, engagement_time_msec, page_location) are not props.
    ("sign_up", f"{SITE}/signup", {"method": "email"}, None),
    # Revenue from ecommerce.purchase_revenue + the currency param; value/currency are not props.
    ("purchase", f"{SITE}/checkout/done", {"transaction_id": "T-1001"}, {"amount": "129.9", "currency": "EUR"}),
    ("pageview", f"{SITE}/blog/launch-week", None, None),
    # An int_value param (video_percent = 0) becomes the string "0".
    (
        "video_start",
        f"{SITE}/blog/launch-week",
        {"video_title": "Launch week", "video_percent": "0", "video_provider": "youtube"},
        None,
    ),
]


@pytest.mark.parametrize("sample", ["ga4-events.parquet", "ga4-events.jsonl"])
def test_ga4_bigquery_export(tmp_path, sample):
    events, report = run(tmp_path, "ga4-bigquery", sample)
    assert summary(events) == GA4_EXPECTED
    # session_start x2, first_visit, scroll, user_engagement become nothing.
    assert report["rows_filtered"] == {"rule:GA4 automatic events": 5}
    assert events[1]["referrer"] == f"{SITE}/?utm_source=newsletter"
    assert events[4]["referrer"] == "https://www.google.com/"
    # Three user_pseudo_ids -> three stable synthetic addresses, one per visitor.
    by_ip = Counter(e["ip"] for e in events)
    assert len(by_ip) == 3 and all(synthetic(ip) for ip in by_ip)
    assert sorted(by_ip.values()) == [2, 3, 4]
    # User agents built from device.category / web_info.browser / operating_system.
    assert "Firefox/123.0" in events[0]["user_agent"] and "Linux" in events[0]["user_agent"]
    assert "iPhone OS 17_3" in events[4]["user_agent"] and "Version/17.3" in events[4]["user_agent"]
    tablet = events[7]["user_agent"]
    assert "Android 14" in tablet and "Chrome/122.0.6261.105" in tablet and "Mobile" not in tablet
    assert events[0]["timestamp"] == "2024-03-14T08:26:53.512000Z"


def test_ga4_revenue_reaches_the_receiver(tmp_path, receiver):
    report = send(
        [SAMPLES / "ga4-events.parquet"],
        domain="example.com",
        read=ReadOptions(mapping="ga4-bigquery"),
        delivery=DeliveryOptions(endpoint=receiver.endpoint, rate=0, replay_history=True),
        outputs=OutputOptions(rejects=tmp_path / "rejects.jsonl", failed=None),
    )
    assert report.accepted == report.events == 9
    purchase = [e for e in receiver.events if e["name"] == "purchase"]
    assert len(purchase) == 1 and purchase[0]["revenue"] == {"amount": "129.9", "currency": "EUR"}
    assert purchase[0]["props"] == {"transaction_id": "T-1001"}
    assert synthetic(purchase[0]["x_forwarded_for"])


# --- Umami ------------------------------------------------------------------------------------


def test_umami_export(tmp_path):
    events, report = run(tmp_path, "umami", "umami-events.csv")
    assert summary(events) == [
        ("pageview", f"{SITE}/", None, None),
        ("pageview", f"{SITE}/pricing?plan=pro", None, None),
        ("signup", f"{SITE}/pricing?plan=pro", {"plan": "pro"}, None),
        ("pageview", f"{SITE}/blog/post?utm_source=twitter&utm_medium=social", None, None),
        ("checkout", f"{SITE}/checkout", {"plan": "team", "seats": "5"}, {"amount": "49.0000", "currency": "USD"}),
        ("pageview", f"{SITE}/docs", None, None),
    ]
    # event_type 5 (performance) and 3 (link) rows are not events.
    assert report["rows_filtered"] == {"rule:link, pixel and performance rows": 2}
    # The referrer is rebuilt from referrer_domain + referrer_path.
    assert [e["referrer"] for e in events] == ["https://www.google.com/", None, None, "https://t.co/", None, None]
    assert len({e["ip"] for e in events}) == 3 and all(synthetic(e["ip"]) for e in events)
    assert "Edg/" in events[0]["user_agent"] and "Windows NT 10.0" in events[0]["user_agent"]
    assert "iPhone" in events[3]["user_agent"]
    assert "Firefox" in events[5]["user_agent"] and "Linux" in events[5]["user_agent"]  # "laptop" -> desktop


# --- Matomo -----------------------------------------------------------------------------------


def test_matomo_export(tmp_path):
    events, report = run(tmp_path, "matomo", "matomo-actions.csv")
    assert summary(events) == [
        ("pageview", f"{SITE}/", None, None),
        ("pageview", f"{SITE}/pricing", None, None),
        ("Outbound Link: Click", f"{SITE}/pricing", {"url": "https://github.com/example"}, None),
        ("File Download", f"{SITE}/docs/", {"url": f"{SITE}/files/guide.pdf"}, None),
        ("pageview", f"{SITE}/shop", None, None),
        ("Video: Play", f"{SITE}/shop", {"name": "Intro", "value": "12"}, None),
        ("Purchase", f"{SITE}/shop/thanks", {"order_id": "O-42"}, {"amount": "59.90", "currency": "EUR"}),
    ]
    assert report["rows_filtered"] == {}
    # Visitor 1 has an (anonymised) IP and keeps it; visitor 2 has none and gets a synthetic one.
    assert {e["ip"] for e in events[:4]} == {"203.0.113.0"}
    assert len({e["ip"] for e in events[4:]}) == 1 and synthetic(events[4]["ip"])
    # Matomo's codes: WIN + CH 122.0 desktop; IOS + SF 17.3 smartphone.
    assert "Windows NT 10.0" in events[0]["user_agent"] and "Chrome/122.0" in events[0]["user_agent"]
    assert "iPhone" in events[4]["user_agent"] and "Version/17.3" in events[4]["user_agent"]


def test_matomo_export_as_the_mysql_client_writes_it(tmp_path):
    """``mysql --batch``: tab-separated, a header, NULL for nulls: the same events as the CSV."""
    import csv

    with open(SAMPLES / "matomo-actions.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    tsv = tmp_path / "matomo-actions.tsv"
    tsv.write_text(
        "".join("\t".join(v if v or n == 0 else "NULL" for v in row) + "\n" for n, row in enumerate(rows)),
        encoding="utf-8",
    )
    assert "NULL" in tsv.read_text()
    out = tmp_path / "tsv.jsonl"
    send(
        [tsv],
        domain="example.com",
        dry_run=True,
        read=ReadOptions(mapping="matomo"),
        outputs=OutputOptions(events=out, rejects=None),
    )
    events, _ = run(tmp_path, "matomo", "matomo-actions.csv")
    assert [json.loads(line) for line in out.read_text().splitlines()] == events


# --- Simple Analytics ------------------------------------------------------------------------


def test_simple_analytics_export(tmp_path):
    events, report = run(tmp_path, "simple-analytics", "simple-analytics-datapoints.csv")
    assert summary(events) == [
        ("pageview", f"{SITE}/", None, None),
        ("pageview", f"{SITE}/pricing?ref=producthunt", None, None),
        ("newsletter_signup", f"{SITE}/pricing", None, None),
        ("pageview", f"{SITE}/blog/", None, None),
        ("download_pricing_pdf", f"{SITE}/blog/", None, None),
    ]
    # is_robot = true -> dropped by the rule; the Googlebot row by the user-agent filter first.
    assert report["rows_filtered"] == {"rule:robot": 1, "bot": 1}
    # The export's own user agents are kept; addresses are synthetic, one per session_id.
    assert events[0]["user_agent"].endswith("Firefox/123.0")
    assert len({e["ip"] for e in events}) == 2 and all(synthetic(e["ip"]) for e in events)


# --- PostHog ----------------------------------------------------------------------------------


def test_posthog_export(tmp_path):
    events, report = run(tmp_path, "posthog", "posthog-events.jsonl")
    assert summary(events) == [
        ("pageview", f"{SITE}/pricing?plan=pro", None, None),
        # $-properties ($lib, $browser...) are PostHog's own; plan and trial are the event's.
        ("signed_up", f"{SITE}/signup", {"plan": "pro", "trial": "true"}, None),
        ("pageview", f"{SITE}/", None, None),
        ("pageview", f"{SITE}/shop", None, None),
        ("purchase", f"{SITE}/shop/thanks", {"items": "2"}, {"amount": "99.5", "currency": "USD"}),
    ]
    # $autocapture, $pageleave, $identify
    assert report["rows_filtered"] == {"rule:PostHog internal events": 3}
    assert events[0]["referrer"] == "https://www.example.org/"
    assert events[2]["referrer"] is None  # "$direct" means no referrer
    # User 1 was captured with $ip and $raw_user_agent; user 2 without either.
    assert events[0]["ip"] == "203.0.113.42" and events[0]["user_agent"].endswith("Firefox/123.0")
    assert synthetic(events[2]["ip"]) and events[2]["ip"] == events[4]["ip"]
    assert "iPhone OS 17_3" in events[2]["user_agent"]


# --- Snowplow ---------------------------------------------------------------------------------


def test_snowplow_enriched_tsv(tmp_path):
    events, report = run(tmp_path, "snowplow", "snowplow-enriched.tsv")
    assert summary(events) == [
        ("pageview", f"{SITE}/?utm_source=newsletter", None, None),
        ("pageview", f"{SITE}/pricing", None, None),
        # se_property is empty in the sample, so that prop is left out.
        ("play", f"{SITE}/pricing", {"category": "video", "label": "intro", "value": "12"}, None),
        ("Purchase", f"{SITE}/checkout", {"order_id": "T-9"}, {"amount": "42.50", "currency": "GBP"}),
        ("newsletter_signup", f"{SITE}/docs/", None, None),
        ("pageview", f"{SITE}/docs/", None, None),
    ]
    # page_ping x2 and transaction_item
    assert report["rows_filtered"] == {"rule:page_ping and transaction_item": 3}
    assert {e["ip"] for e in events} == {"203.0.113.42"}
    assert events[1]["referrer"] == f"{SITE}/" and events[0]["referrer"] is None
    # The JSON inside unstruct_event (quotes, no quoting) did not shift any column.
    assert [e["timestamp"] for e in events][-1] == "2024-03-14T08:28:28.512000Z"


# --- Segment ----------------------------------------------------------------------------------


def test_segment_export(tmp_path):
    events, report = run(tmp_path, "segment", "segment-events.csv")
    assert summary(events) == [
        ("pageview", f"{SITE}/pricing?plan=pro", None, None),
        ("Signed Up", f"{SITE}/signup", {"plan": "pro", "trial": "true"}, None),
        # revenue and currency are revenue, not props.
        (
            "Order Completed",
            f"{SITE}/checkout",
            {"order_id": "50314b8e", "coupon": "SPRING"},
            {"amount": "120.00", "currency": "USD"},
        ),
        ("pageview", f"{SITE}/docs/", None, None),
        ("pageview", f"{SITE}/docs/install", None, None),
    ]
    assert report["rows_filtered"] == {}
    # "2024-03-14 08:26:53.512 UTC" (warehouse style) is read as UTC.
    assert events[0]["timestamp"] == "2024-03-14T08:26:53.512000Z"
    # Server-side pages have neither IP nor UA: one synthetic visitor, a generic desktop browser.
    assert events[0]["ip"] == "203.0.113.42"
    assert synthetic(events[3]["ip"]) and events[3]["ip"] == events[4]["ip"]
    assert "Windows NT 10.0" in events[3]["user_agent"]


def test_an_export_read_with_the_wrong_preset_is_skipped_with_a_clear_reason(tmp_path):
    # Matomo's column names are not in Umami's file: the file is skipped, not read as empty rows.
    report = send(
        [SAMPLES / "umami-events.csv"],
        domain="example.com",
        dry_run=True,
        read=ReadOptions(mapping="matomo"),
        outputs=OutputOptions(rejects=tmp_path / "rejects.jsonl"),
    )
    assert report.rows_read == 0 and report.events == 0
    assert len(report.skipped_sources) == 1
    reason = report.skipped_sources[0]
    assert "server_time" in reason and "not in the file" in reason and "created_at" in reason
