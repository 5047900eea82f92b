"""The sender against the receiver's fault modes: every event accounted, nothing lost, no duplicates.

Each input line is a distinct page (``/p<line>``), so what the receiver recorded can be checked
line by line: the accounting invariant, exact counts from the input, and how many times each
page arrived.
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
import time
from collections import Counter
from pathlib import Path

import pyarrow as pa
import pytest
from conftest import BROWSER, IPHONE, combined_line, wait_for, write_log

from importer import ConfigError, DeliveryOptions, OutputOptions, send
from importer.events import EVENT_SCHEMA
from importer.receiver import Faults
from importer.report import RejectsFile, Report
from importer.sinks.http import HttpSender, SendOptions
from importer.state import Ledger, StateStore

START = dt.datetime(2024, 3, 14, 9, 0, 0, tzinfo=dt.UTC)


def make_log(path: Path, n: int, first: int = 0, visitors: int = 40, gap_s: float = 1.0) -> list[str]:
    """n lines, each a distinct page; returns the pages in input order."""
    lines, pages = [], []
    for i in range(first, first + n):
        page = f"/p{i}"
        ua = BROWSER if i % 3 else IPHONE
        lines.append(
            combined_line(
                ip=f"198.51.100.{i % visitors}",
                target=page,
                user_agent=ua,
                when=START + dt.timedelta(seconds=i * gap_s),
            )
        )
        pages.append(page)
    write_log(path, lines)
    return pages


def pages_of(receiver) -> Counter:
    return Counter(e["url"].removeprefix("https://example.com") for e in receiver.events)


def invariant(report: Report) -> None:
    assert report.rows_read == report.rows_invalid + sum(report.rows_filtered.values()) + report.events
    assert report.events == report.accepted + report.dropped + report.rejected + report.failed


def run(path, receiver, tmp_path, **kw) -> Report:
    options = dict(
        endpoint=receiver.endpoint,
        rate=0,
        concurrency=8,
        state=tmp_path / "state.sqlite",
        backoff_s=0.01,
        max_attempts=8,
        replay_history=True,
    )
    options.update(kw)
    report = send(
        [path],
        "example.com",
        delivery=DeliveryOptions(**options),
        outputs=OutputOptions(rejects=tmp_path / "rejects.jsonl", failed=tmp_path / "failed.jsonl"),
    )
    invariant(report)
    return report


def records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_bursts_of_503_with_retry_after_lose_nothing_and_duplicate_nothing(tmp_path, make_receiver):
    pages = make_log(tmp_path / "access.log", 600)
    receiver = make_receiver(Faults(burst_every=50, burst_length=8, retry_after="0.02"))
    report = run(tmp_path / "access.log", receiver, tmp_path, max_attempts=20)
    assert report.accepted == report.events == report.sent == 600
    assert receiver.stats.failed >= 12 * 8  # the bursts happened ...
    assert report.retries == receiver.stats.failed  # ... and each 503 cost exactly one retry
    assert pages_of(receiver) == Counter(pages)  # each page exactly once
    assert not (tmp_path / "failed.jsonl").exists()


def test_retry_after_is_honoured(tmp_path, make_receiver):
    make_log(tmp_path / "access.log", 1)
    receiver = make_receiver(Faults(fail_first=1, retry_after="0.6"))
    started = time.monotonic()
    report = run(tmp_path / "access.log", receiver, tmp_path)
    assert time.monotonic() - started >= 0.6
    assert (report.accepted, report.retries, receiver.stats.requests) == (1, 1, 2)


def test_connection_resets_are_retried_in_order_per_visitor(tmp_path, make_receiver):
    pages = make_log(tmp_path / "access.log", 500, visitors=12)
    receiver = make_receiver(Faults(reset_share=0.2, seed=5))
    report = run(tmp_path / "access.log", receiver, tmp_path, max_attempts=15)
    assert report.accepted == 500 and report.failed == 0
    assert report.retries >= receiver.stats.resets > 50
    assert pages_of(receiver) == Counter(pages)
    # Lanes keep each visitor's events in input order, retries included.
    by_visitor: dict[tuple, list[int]] = {}
    for event in receiver.events:
        key = (event["x_forwarded_for"], event["user_agent"])
        by_visitor.setdefault(key, []).append(int(event["url"].rsplit("/p", 1)[1]))
    assert len(by_visitor) == 12
    assert all(seq == sorted(seq) for seq in by_visitor.values())


def test_slow_answers_time_out_fail_into_the_failed_file_and_the_next_run_sends_them(tmp_path, make_receiver):
    pages = make_log(tmp_path / "access.log", 8)  # 16 tries: fewer than the 20 in a row that stop a run
    slow = make_receiver(Faults(delay_s=0.5))
    report = run(tmp_path / "access.log", slow, tmp_path, timeout_s=0.15, max_attempts=2, concurrency=10)
    assert report.failed == 8 and report.accepted == 0 and report.retries == 8
    # No answer is an unknown outcome: the slow server did record both tries of every event.
    assert (report.timeouts, report.maybe_duplicated) == (16, 8)
    # The client gave up after 0.15 s; a busy receiver thread may read the last tries later.
    wait_for(lambda: slow.stats.accepted >= 16)
    assert sum(pages_of(slow).values()) == 16
    failed = records(tmp_path / "failed.jsonl")
    assert sorted(r["line"] for r in failed) == list(range(1, 9))
    assert all("failed after 2 attempts: no answer within 0.15 s" in r["reason"] for r in failed)
    assert all(r["sent_again_by_next_run"] and r["may_have_arrived"] for r in failed)
    # The next run, against a healthy endpoint, sends exactly those 8 again; the one after, nothing.
    healthy = make_receiver()
    again = run(tmp_path / "access.log", healthy, tmp_path)
    assert again.accepted == again.events == 8 and pages_of(healthy) == Counter(pages)
    third = run(tmp_path / "access.log", healthy, tmp_path)
    assert third.events == third.sent == 0 and healthy.stats.requests == 8


def test_slow_answers_within_the_timeout_are_all_accepted(tmp_path, make_receiver):
    pages = make_log(tmp_path / "access.log", 80)
    receiver = make_receiver(Faults(delay_s=0.05))
    # 0.05 s answers against a timeout that a busy machine's delays cannot reach.
    report = run(tmp_path / "access.log", receiver, tmp_path, concurrency=16, timeout_s=30)
    assert report.accepted == 80 and report.retries == 0
    assert pages_of(receiver) == Counter(pages)


def test_dropped_events_are_counted_and_retried_only_when_asked(tmp_path, make_receiver):
    make_log(tmp_path / "access.log", 300)
    plain = make_receiver(Faults(drop_share=0.3, seed=2))
    report = run(tmp_path / "access.log", plain, tmp_path, state=None)
    assert report.dropped == plain.stats.dropped > 50 and report.retries == 0
    assert report.accepted == plain.stats.accepted == 300 - report.dropped

    retrying = make_receiver(Faults(drop_share=0.3, seed=2))
    again = run(tmp_path / "access.log", retrying, tmp_path, state=None, retry_dropped=3)
    # A drop is retried up to 3 more times: about 0.3**4 of events stay dropped.
    assert again.dropped < 20
    assert again.accepted + again.dropped == 300
    assert again.retries == retrying.stats.dropped - again.dropped
    assert retrying.stats.requests == again.sent + again.retries
    assert len(retrying.events) == again.accepted == len(pages_of(retrying))


def test_a_second_nightly_run_sends_nothing_and_rotation_is_recognised(tmp_path, receiver):
    log = tmp_path / "access.log"
    first_pages = make_log(log, 200)
    first = run(log, receiver, tmp_path)
    assert first.accepted == 200
    second = run(log, receiver, tmp_path)
    assert (second.rows_read, second.events, second.sent) == (0, 0, 0)
    assert second.files_skipped == [f"{log} (already sent)"]
    assert receiver.stats.requests == 200

    # The log grows: only the new lines go.
    with open(log, "a") as out:
        for i in range(200, 250):
            out.write(combined_line(target=f"/p{i}", when=START + dt.timedelta(seconds=i)) + "\n")
    grown = run(log, receiver, tmp_path)
    assert grown.accepted == grown.rows_read == 50 and grown.rows_skipped == 200

    # logrotate: access.log -> access.log.1 -> compressed access.log.2.gz, and a new access.log.
    import gzip

    (tmp_path / "access.log.2.gz").write_bytes(gzip.compress(log.read_bytes()))
    log.unlink()
    new_pages = make_log(log, 30, first=1000)
    rotated = send(
        [tmp_path / "access.log.2.gz", log],
        domain="example.com",
        delivery=DeliveryOptions(
            endpoint=receiver.endpoint, rate=0, state=tmp_path / "state.sqlite", replay_history=True
        ),
        outputs=OutputOptions(rejects=None, failed=None),
    )
    invariant(rotated)
    assert rotated.accepted == 30 and rotated.rows_skipped == 250
    expected = Counter(first_pages + [f"/p{i}" for i in range(200, 250)] + new_pages)
    assert pages_of(receiver) == expected  # every page exactly once over four runs
    # Another endpoint (or domain) is another job: the same file is sent there in full.
    other = send(
        [log],
        domain="example.org",
        delivery=DeliveryOptions(
            endpoint=receiver.endpoint, rate=0, state=tmp_path / "state.sqlite", replay_history=True
        ),
        outputs=OutputOptions(rejects=None, failed=None),
    )
    assert other.accepted == 30


def test_the_state_file_and_the_failed_file_hold_no_ip_address(tmp_path, make_receiver):
    make_log(tmp_path / "access.log", 20)
    receiver = make_receiver(Faults(fail_share=1.0))
    report = run(tmp_path / "access.log", receiver, tmp_path, max_attempts=1)
    assert report.failed == 20
    assert b"198.51.100." not in (tmp_path / "state.sqlite").read_bytes()
    for suffix in ("-wal", "-shm"):
        extra = tmp_path / f"state.sqlite{suffix}"
        assert not extra.exists() or b"198.51.100." not in extra.read_bytes()
    assert "198.51.100." not in (tmp_path / "failed.jsonl").read_text()
    with sqlite3.connect(tmp_path / "state.sqlite") as db:
        assert db.execute("SELECT count(*) FROM pending").fetchone()[0] == 20


def test_pace_keeps_the_original_gaps_scaled(tmp_path, receiver):
    # Events 2 s apart, replayed 10x faster: the k-th is due 0.2 k s after the first is sent.
    make_log(tmp_path / "access.log", 6, gap_s=2.0, visitors=6)
    started = dt.datetime.now(dt.UTC)
    report = run(tmp_path / "access.log", receiver, tmp_path, pace="10")
    assert report.accepted == 6
    received = sorted(dt.datetime.fromisoformat(e["received_at"]) for e in receiver.events)
    offsets = [(at - started).total_seconds() for at in received]
    # None goes out before it is due (received_at is cut to the millisecond) ...
    assert all(offset >= 0.2 * k - 0.001 for k, offset in enumerate(offsets)), offsets
    # ... and the replay takes a tenth of the original 10 s. A busy machine only makes events
    # late, so this bound leaves it 9 s; the original pace would need 10 s at the least.
    assert offsets[-1] < 10, offsets


def _events(n: int) -> pa.Table:
    rows = [
        {
            "name": "pageview",
            "url": f"https://example.com/p{i}",
            "domain": "example.com",
            "referrer": None,
            "props": None,
            "user_agent": BROWSER,
            "ip": f"203.0.113.{i % 50}",
            "timestamp": START,
            "source_file": "t.log",
            "source_line": i + 1,
        }
        for i in range(n)
    ]
    return pa.Table.from_pylist(rows, schema=EVENT_SCHEMA)


def test_undecided_events_never_exceed_the_window(tmp_path, make_receiver):
    receiver = make_receiver(Faults(delay_s=0.01))
    options = SendOptions(endpoint=receiver.endpoint, rate=0, concurrency=3, queue_per_worker=4)
    report = Report(events=400)
    ledger = Ledger()
    seen = []
    original_add = ledger.add

    def add(file, line):
        seen.append(ledger.undecided)
        return original_add(file, line)

    ledger.add = add
    HttpSender(options, report, RejectsFile(None), ledger=ledger).run(iter([_events(400)]))
    assert report.accepted == 400
    assert max(seen) < options.window == 15


def test_429_from_a_proxy_is_retried_like_a_503(tmp_path, make_receiver):
    pages = make_log(tmp_path / "access.log", 20)
    receiver = make_receiver(Faults(fail_first=5, fail_status=429, retry_after="0"))
    report = run(tmp_path / "access.log", receiver, tmp_path)
    assert (report.accepted, report.retries, report.failed) == (20, 5, 0)
    assert pages_of(receiver) == Counter(pages)


def test_a_retry_after_beyond_the_retry_time_limit_fails_at_once(tmp_path, make_receiver):
    make_log(tmp_path / "access.log", 3)
    receiver = make_receiver(Faults(fail_share=1.0, retry_after="60"))
    started = time.monotonic()
    report = run(tmp_path / "access.log", receiver, tmp_path, max_retry_s=5)
    assert time.monotonic() - started < 30  # honouring the Retry-After would take 60 s
    assert (report.failed, report.retries, receiver.stats.requests) == (3, 0, 3)
    reasons = [r["reason"] for r in records(tmp_path / "failed.jsonl")]
    assert len(reasons) == 3 and all("gave up after 1 attempts" in r and "HTTP 503" in r for r in reasons)


def test_a_second_run_on_the_same_state_file_is_refused_while_the_first_runs(tmp_path, receiver):
    make_log(tmp_path / "access.log", 3)
    busy = StateStore(tmp_path / "state.sqlite", scope=f"{receiver.endpoint} example.com")  # the same job
    try:
        with pytest.raises(ConfigError, match="another run is using"):
            run(tmp_path / "access.log", receiver, tmp_path)
        assert receiver.stats.requests == 0
    finally:
        busy.close()
    assert run(tmp_path / "access.log", receiver, tmp_path).accepted == 3


def test_a_copy_of_a_file_in_the_same_run_is_not_sent_twice(tmp_path, receiver):
    pages = make_log(tmp_path / "access.log", 40)
    (tmp_path / "access.log.bak").write_bytes((tmp_path / "access.log").read_bytes())
    report = send(
        [tmp_path / "access.log", tmp_path / "access.log.bak"],
        domain="example.com",
        delivery=DeliveryOptions(
            endpoint=receiver.endpoint, rate=0, state=tmp_path / "state.sqlite", replay_history=True
        ),
        outputs=OutputOptions(rejects=None, failed=None),
    )
    invariant(report)
    assert report.accepted == 40
    assert report.files_skipped == [f"{tmp_path / 'access.log.bak'} (same content as {tmp_path / 'access.log'})"]
    assert any("not read, a copy" in note for note in report.notices)
    assert pages_of(receiver) == Counter(pages)
