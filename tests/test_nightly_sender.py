"""Issue 14 (sender half) and issue 12 item 5: one sink protocol, and a run that fails fast and says why.

Everything runs against the project's receiver on loopback or a port where nothing listens."""

from __future__ import annotations

import datetime as dt
import json
import signal
import socket
import time

import pyarrow as pa
import pytest
from conftest import BROWSER

from importer.events import EVENT_SCHEMA
from importer.options import ConfigError, check_endpoint
from importer.receiver import Faults
from importer.report import RejectsFile, Report
from importer.sinks import make_sink
from importer.sinks.dryrun import DryRunWriter
from importer.sinks.http import HttpSender, SendOptions


def events(count: int) -> pa.Table:
    base = {
        "name": "pageview",
        "domain": "example.com",
        "referrer": None,
        "props": None,
        "user_agent": BROWSER,
        "timestamp": dt.datetime(2024, 3, 14, tzinfo=dt.UTC),
        "source_file": "t.log",
    }
    rows = [
        {**base, "url": f"https://example.com/{i}", "ip": f"203.0.113.{i % 250}", "source_line": i + 1}
        for i in range(count)
    ]
    return pa.Table.from_pylist(rows, schema=EVENT_SCHEMA)


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def sender(endpoint: str, tmp_path, report: Report | None = None, **options) -> tuple[HttpSender, Report]:
    report = report or Report()
    opts = SendOptions(
        **{"endpoint": endpoint, "rate": 0, "concurrency": 2, "backoff_base_s": 0.01, "backoff_cap_s": 0.05, **options}
    )
    return HttpSender(opts, report, RejectsFile(tmp_path / "failed.jsonl"), seed=1, handle_signals=False), report


class Batches:
    """An iterator of event tables that remembers how far it was read."""

    def __init__(self, *tables: pa.Table):
        self.tables = list(tables)
        self.taken = 0

    def __iter__(self):
        return self

    def __next__(self) -> pa.Table:
        if self.taken == len(self.tables):
            raise StopIteration
        self.taken += 1
        return self.tables[self.taken - 1]


# -- one sink protocol -------------------------------------------------------------------------------


def test_make_sink_gives_the_dry_run_writer_or_the_sender_and_both_run_the_same_way(tmp_path, receiver):
    table = events(30)
    dry_report = Report(dry_run=True)
    counted: list[int] = []
    dry = make_sink(dry_report, dry_run=True, output=tmp_path / "events.jsonl", on_settled=counted.append)
    assert isinstance(dry, DryRunWriter)
    dry.run(iter([table]))
    assert len((tmp_path / "events.jsonl").read_text().splitlines()) == 30 and sum(counted) == 30
    assert (dry.interrupted, dry.state_error, dry.fatal) == (None, None, None)

    report = Report(events=30)
    live = make_sink(report, dry_run=False, options=SendOptions(endpoint=receiver.endpoint, rate=0))
    assert isinstance(live, HttpSender) and report.window == SendOptions().window
    live.run(iter([table]))
    assert report.accepted == 30 and receiver.stats.accepted == 30
    assert (live.interrupted, live.state_error, live.fatal) == (None, None, None)


def test_interrupt_before_run_sends_nothing_and_reads_nothing(tmp_path, receiver):
    s, report = sender(receiver.endpoint, tmp_path)
    s.interrupt(signal.SIGTERM)
    batches = Batches(events(10))
    s.run(batches)
    assert batches.taken == 0 and receiver.stats.requests == 0
    assert report.settled == 0 and s.interrupted == signal.SIGTERM
    dry = DryRunWriter(tmp_path / "dry.jsonl")
    dry.interrupt()
    dry.run(Batches(events(10)))
    assert not (tmp_path / "dry.jsonl").read_text()


def test_interrupt_right_after_start_accounts_every_event_read(tmp_path, make_receiver):
    slow = make_receiver(Faults(delay_s=0.2))
    s, report = sender(slow.endpoint, tmp_path, concurrency=2, drain_s=5)
    s.on_first_batch = lambda table: s.interrupt()
    table = events(200)
    s.run(Batches(table, events(5)))
    assert s.interrupted == signal.SIGINT
    assert report.settled == 200 == report.accepted + report.failed
    assert report.drained + report.cut_off == 200 and report.cut_off == report.failed > 150
    assert report.drained == report.accepted == slow.stats.accepted
    assert "100%" not in report.summary()
    assert "in-flight events drained" in report.summary() and "no state file" in report.summary()


# -- fail fast -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("127.0.0.1:8000/api/event", "http:// or https://"),
        ("plausible.example.com/api/event", "http:// or https://"),
        ("ftp://example.com/api/event", "http:// or https://"),
        ("http:///api/event", "no host"),
        ("https://example.com:99999/api/event", "not a URL"),
    ],
)
def test_check_endpoint_refuses_a_url_it_cannot_send_to(url, words):
    with pytest.raises(ConfigError) as caught:
        check_endpoint(url)
    assert words in str(caught.value) and "\n" not in str(caught.value)


def test_check_endpoint_accepts_http_and_https_and_hides_a_password():
    check_endpoint("https://plausible.io/api/event")
    check_endpoint("http://127.0.0.1:8000/api/event")
    with pytest.raises(ConfigError) as caught:
        check_endpoint("user:secret@host/api/event")
    assert "secret" not in str(caught.value)


def test_a_closed_port_stops_before_reading_with_one_line_naming_host_and_error(tmp_path):
    port = closed_port()
    s, report = sender(f"http://127.0.0.1:{port}/api/event", tmp_path)
    batches = Batches(events(50))
    started = time.monotonic()
    s.run(batches)
    assert time.monotonic() - started < 5
    assert batches.taken == 0 and report.sent == 0
    assert f"connection refused by 127.0.0.1:{port}" in report.endpoint_error
    assert "--endpoint" in report.endpoint_error and "\n" not in report.endpoint_error
    assert report.exit_code() == 1


def test_connection_errors_in_a_row_stop_the_run_and_the_retry_shows_why(tmp_path):
    port = closed_port()
    shown: list[str] = []
    s, report = sender(
        f"http://127.0.0.1:{port}/api/event", tmp_path, check_connection=False, max_unanswered=20, max_attempts=5
    )
    s.on_retry = shown.append
    started = time.monotonic()
    s.run(iter([events(2000)]))
    assert time.monotonic() - started < 20
    assert report.accepted == 0 and report.failed == 2000
    assert report.sent + report.retries < 40  # was: every event tried 5 times for minutes
    assert report.endpoint_error.startswith("20 tries without an answer in a row from 127.0.0.1")
    assert f"connection refused by 127.0.0.1:{port}" in report.endpoint_error
    assert f"retrying: connection refused by 127.0.0.1:{port}, attempt 2/5" in shown
    s.failed_file.close()
    records = [json.loads(line) for line in (tmp_path / "failed.jsonl").read_text().splitlines()]
    assert len(records) == 2000 and all(r["sent_again_by_next_run"] for r in records)
    assert report.exit_code() == 1


def test_a_server_answering_501_to_everything_stops_the_run(tmp_path, make_receiver):
    broken = make_receiver(Faults(answer_status=501, answer_body=b"Not Implemented"))
    s, report = sender(broken.endpoint, tmp_path, max_unanswered=20)
    s.run(iter([events(1000)]))
    assert report.accepted == 0 and report.failed == 1000
    assert 20 <= broken.stats.requests < 40
    assert "answers with a server error in a row" in report.endpoint_error and "HTTP 501" in report.endpoint_error
    assert report.exit_code() == 1


def test_a_503_now_and_then_after_events_were_accepted_does_not_stop_the_run(tmp_path, make_receiver):
    flaky = make_receiver(Faults(fail_share=0.6, seed=1))
    s, report = sender(flaky.endpoint, tmp_path, max_unanswered=6, max_attempts=30, concurrency=1)
    s.run(iter([events(200)]))
    assert report.endpoint_error is None and report.accepted == 200
    assert flaky.stats.failed > 200  # many more 503s than the limit, none of them in a row from the start


# -- everything dropped ----------------------------------------------------------------------------------


def test_all_events_dropped_warns_with_the_likely_causes_and_exits_3(tmp_path, make_receiver):
    dropping = make_receiver(Faults(drop_share=1.0))
    s, report = sender(dropping.endpoint, tmp_path)
    s.run(iter([events(43)]))
    assert report.dropped == 43 and report.mostly_dropped and report.exit_code() == 3
    summary = report.summary()
    assert "dropped by Plausible" in summary
    (warning,) = [line for line in summary.splitlines() if line.startswith("warning:")]
    assert "every event" in warning and "--domain" in warning and "bots" in warning and "throttled" in warning


def test_a_share_of_drops_exits_3_only_above_the_threshold(tmp_path, make_receiver):
    dropping = make_receiver(Faults(drop_share=0.5, seed=3))
    s, report = sender(dropping.endpoint, tmp_path)
    s.run(iter([events(200)]))
    assert 0 < report.dropped < 200
    assert not report.mostly_dropped and report.exit_code() == 0
    report.max_dropped_share = 0.3
    assert report.mostly_dropped and report.exit_code() == 3 and "warning: Plausible dropped" in report.summary()
