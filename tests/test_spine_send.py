"""`send` against the project's receiver on loopback: delivery, retries, rejects, drops, accounting."""

from __future__ import annotations

import datetime as dt
import json
import random
from collections import Counter

import pyarrow as pa
from conftest import BROWSER, IPHONE, combined_line, write_log

from importer import DeliveryOptions, OutputOptions, send
from importer.events import EVENT_SCHEMA
from importer.receiver import Faults
from importer.report import RejectsFile, Report
from importer.sinks.http import HttpSender, SendOptions

BOTS = [
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "curl/8.5.0",
    "Mozilla/5.0+(compatible; UptimeRobot/2.0; http://www.uptimerobot.com/)",
]
ANDROID = "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/122.0.0.0 Mobile Safari/537.36"


def generated_log(tmp_path, seed: int = 7, people: int = 120):
    """A log whose true content is known: returns (path, expected events, expected filter counts)."""
    rng = random.Random(seed)
    base = dt.datetime(2024, 3, 14, 0, 0, tzinfo=dt.timezone(dt.timedelta(hours=-5)))
    lines, expected = [], []
    filtered: Counter = Counter()
    for i in range(people):
        when = base + dt.timedelta(seconds=37 * i)
        ip = f"198.51.100.{i % 200 + 1}" if i % 7 else f"2001:db8::{i:x}"
        ua = [BROWSER, IPHONE, ANDROID][i % 3]
        path = f"/page/{i % 13}"
        query = "utm_source=newsletter&utm_campaign=spring" if i % 5 == 0 else ""
        referrer = "https://www.example.org/links" if i % 4 == 0 else "-"
        target = path + (f"?{query}" if query else "")
        lines.append(
            combined_line(
                ip=ip, when=when, target=target, status=200 if i % 6 else 304, referrer=referrer, user_agent=ua
            )
        )
        expected.append(
            {
                "url": f"https://example.com{target}",
                "referrer": None if referrer == "-" else referrer,
                "user_agent": ua,
                "x_forwarded_for": ip,
                "name": "pageview",
                "domain": "example.com",
            }
        )
        kind = rng.randrange(6)
        if kind == 0:
            lines.append(combined_line(ip=ip, when=when, target="/assets/site.css", user_agent=ua))
            filtered["static_asset"] += 1
        elif kind == 1:
            lines.append(combined_line(ip="203.0.113.200", when=when, target=path, user_agent=BOTS[i % 3]))
            filtered[["bot", "http_client", "monitoring"][i % 3]] += 1
        elif kind == 2:
            lines.append(combined_line(ip=ip, when=when, method="POST", target="/signup", status=302, user_agent=ua))
            filtered["method"] += 1
        elif kind == 3:
            lines.append(combined_line(ip=ip, when=when, target="/missing", status=404, user_agent=ua))
            filtered["status"] += 1
        elif kind == 4:
            lines.append("garbage that is not a log line")
    path = write_log(tmp_path / "access.log", lines)
    invalid = sum(1 for line in lines if line.startswith("garbage"))
    return path, expected, filtered, invalid, len(lines)


def key(event: dict) -> tuple:
    return (
        event["name"],
        event["url"],
        event["domain"],
        event["referrer"],
        event["user_agent"],
        event["x_forwarded_for"],
    )


def assert_invariants(report: Report) -> None:
    assert report.rows_read == report.rows_invalid + sum(report.rows_filtered.values()) + report.events
    assert report.events == report.accepted + report.dropped + report.rejected + report.failed


def test_send_delivers_exactly_the_expected_events(tmp_path, receiver):
    path, expected, filtered, invalid, total = generated_log(tmp_path)
    report = send(
        [path],
        domain="example.com",
        delivery=DeliveryOptions(endpoint=receiver.endpoint, rate=0, replay_history=True),
        outputs=OutputOptions(rejects=tmp_path / "rejects.jsonl"),
    )
    assert_invariants(report)
    assert report.rows_read == total
    assert report.rows_invalid == invalid
    assert report.rows_filtered == filtered
    assert report.events == report.accepted == report.sent == len(expected)
    assert report.events_by_name == {"pageview": len(expected)}
    assert (report.dropped, report.rejected, report.failed, report.retries) == (0, 0, 0, 0)
    assert Counter(key(e) for e in receiver.events) == Counter(key(e) for e in expected)
    # The receiver's record file holds the same events, one JSON line each.
    recorded = [json.loads(line) for line in receiver.record_path.read_text().splitlines()]
    assert Counter(key(e) for e in recorded) == Counter(key(e) for e in expected)
    rejects = [json.loads(line) for line in (tmp_path / "rejects.jsonl").read_text().splitlines()]
    assert len(rejects) == invalid
    assert all(r["file"] == str(path) and r["line"] and r["reason"] for r in rejects)


def test_events_of_one_visitor_arrive_in_order(tmp_path, receiver):
    path, expected, *_ = generated_log(tmp_path, people=300)
    send(
        [path],
        domain="example.com",
        delivery=DeliveryOptions(endpoint=receiver.endpoint, rate=0, concurrency=8, replay_history=True),
    )
    by_visitor: dict[tuple, list[str]] = {}
    for event in receiver.events:
        by_visitor.setdefault((event["x_forwarded_for"], event["user_agent"]), []).append(event["url"])
    wanted: dict[tuple, list[str]] = {}
    for event in expected:
        wanted.setdefault((event["x_forwarded_for"], event["user_agent"]), []).append(event["url"])
    assert by_visitor == wanted


def test_503s_and_dropped_connections_are_retried_without_loss_or_duplicates(tmp_path, make_receiver):
    path, expected, *_ = generated_log(tmp_path, people=60)
    receiver = make_receiver(Faults(fail_share=0.25, reset_share=0.15, retry_after="0", seed=3))
    report = send(
        [path],
        domain="example.com",
        delivery=DeliveryOptions(endpoint=receiver.endpoint, rate=0, max_attempts=12, replay_history=True),
        outputs=OutputOptions(rejects=tmp_path / "rejects.jsonl"),
    )
    assert_invariants(report)
    assert report.accepted == len(expected) and report.failed == 0
    assert report.retries >= receiver.stats.failed + receiver.stats.resets > 0
    assert Counter(key(e) for e in receiver.events) == Counter(key(e) for e in expected)


def _events(rows: list[dict]) -> pa.Table:
    base = {
        "name": "pageview",
        "url": "https://example.com/",
        "domain": "example.com",
        "referrer": None,
        "props": None,
        "user_agent": BROWSER,
        "ip": "203.0.113.5",
        "timestamp": dt.datetime(2024, 3, 14, tzinfo=dt.UTC),
        "source_file": "t.log",
    }
    full = [{**base, **row, "source_line": i + 1} for i, row in enumerate(rows)]
    return pa.Table.from_pylist(full, schema=EVENT_SCHEMA)


def _run_sender(endpoint: str, table: pa.Table, tmp_path, **options) -> tuple[Report, list[dict]]:
    report = Report(events=table.num_rows)
    rejects = RejectsFile(tmp_path / "rejects.jsonl")
    opts = SendOptions(endpoint=endpoint, rate=0, concurrency=4, backoff_base_s=0.01, **options)
    HttpSender(opts, report, rejects, seed=1).run(iter([table]))
    rejects.close()
    path = tmp_path / "rejects.jsonl"
    records = [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []
    return report, records


def test_a_400_is_rejected_once_with_the_servers_error(tmp_path, receiver):
    table = _events([{"name": "n" * 121, "url": "https://example.com/bad"}, {"url": "https://example.com/good"}])
    report, records = _run_sender(receiver.endpoint, table, tmp_path)
    assert (report.accepted, report.rejected, report.retries) == (1, 1, 0)
    assert receiver.stats.requests == 2  # never retried
    (record,) = records
    assert record["status"] == 400 and record["line"] == 1 and record["file"] == "t.log"
    assert record["error"] == {"errors": {"event_name": ["should be at most 120 character(s)"]}}
    assert record["event"]["url"] == "https://example.com/bad"


def test_dropped_events_are_counted_as_dropped_not_accepted(tmp_path, make_receiver):
    receiver = make_receiver(Faults(drop_share=0.5, seed=11))
    table = _events(
        [{"url": f"https://example.com/{i}"} for i in range(40)]
        + [{"user_agent": "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"}]
    )
    report, _ = _run_sender(receiver.endpoint, table, tmp_path)
    assert report.dropped == receiver.stats.dropped >= 1
    assert report.accepted == receiver.stats.accepted == len(receiver.events)
    assert report.accepted + report.dropped == table.num_rows
    assert report.retries == 0


def test_exhausted_retries_fail_with_the_last_error(tmp_path, make_receiver):
    receiver = make_receiver(Faults(fail_share=1.0, retry_after="0"))
    table = _events([{"url": "https://example.com/a"}, {"url": "https://example.com/b"}])
    report, records = _run_sender(receiver.endpoint, table, tmp_path, max_attempts=3)
    assert (report.failed, report.accepted, report.retries) == (2, 0, 4)
    assert receiver.stats.requests == 6
    assert all("failed after 3 attempts: HTTP 503" in r["reason"] for r in records)


def test_a_wrong_endpoint_stops_the_run_instead_of_failing_every_event(tmp_path, receiver):
    wrong = receiver.endpoint.replace("/api/event", "/api/nothing-here")
    table = _events([{"url": f"https://example.com/{i}"} for i in range(500)])
    report = Report(events=table.num_rows)
    rejects = RejectsFile(tmp_path / "r.jsonl")
    sender = HttpSender(SendOptions(endpoint=wrong, rate=0, concurrency=2, queue_per_worker=8), report, rejects)
    sender.run(iter([table]))
    rejects.close()
    assert sender.fatal and "404" in sender.fatal
    assert report.failed == 500 and report.accepted == 0
    records = [json.loads(line) for line in (tmp_path / "r.jsonl").read_text().splitlines()]
    attempted = [r for r in records if r.get("status") == 404]
    assert len(records) == 500
    assert 10 <= len(attempted) < 50  # stopped early instead of hammering the wrong URL
    assert all(r["reason"].startswith("not sent: ") for r in records if r.get("status") != 404)


def test_rejected_lines_keep_their_text_but_not_visitors_addresses(tmp_path):
    log = write_log(
        tmp_path / "access.log",
        [
            combined_line(),
            combined_line(),
            '198.51.100.77 - - [14/Mar/2024:09:00:00 +0100] "GET /x HTTP/1.1" 200 5 "-" "Mozilla/5.0 (trunc',
            "2001:db8::42 sent something that is not a log line",
            combined_line(),
        ],
    )
    rejects = tmp_path / "rejects.jsonl"
    report = send([log], domain="example.com", dry_run=True, outputs=OutputOptions(rejects=rejects))
    text = rejects.read_text()
    records = [json.loads(line) for line in text.splitlines()]
    assert [r["line"] for r in records] == [3, 4]
    assert "198.51.100.77" not in text and "2001:db8::42" not in text
    assert records[0]["text"].startswith("ip:") and "GET /x HTTP/1.1" in records[0]["text"]
    assert all("198.51.100.77" not in s and "2001:db8::42" not in s for s in report.invalid_samples)
