"""Crash and interrupt the real command, then resume: nothing lost, duplicates bounded.

``kill -9`` may hit at any moment; the re-run may send again only the events that were
undecided at that moment, at most the in-flight window printed in the summary. SIGINT and
SIGTERM drain what is in flight, save state and exit 130 / 143, and the re-run then sends each
remaining event exactly once.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from collections import Counter
from pathlib import Path

import pytest
from conftest import accounted, finish, start_send, wait_for
from test_sender_faults import make_log, pages_of

from importer.receiver import Faults

CONCURRENCY = 4
QUEUE = 32  # SendOptions.queue_per_worker
WINDOW = CONCURRENCY * (QUEUE + 1)


def start(tmp_path: Path, log: Path, endpoint: str, tag: str, rate: str = "0") -> subprocess.Popen:
    return start_send(
        tmp_path,
        endpoint,
        tag,
        str(log),
        "--rate",
        rate,
        "--concurrency",
        str(CONCURRENCY),
        "--state",
        str(tmp_path / "state.sqlite"),
        "--drain-timeout",
        "5",
        "--timeout",
        "120",  # answers held by Receiver.hold wait while the test acts, however long that takes
        "--backoff",
        "0.01",
    )


def check_report(tmp_path: Path, tag: str) -> dict:
    report = accounted(tmp_path, tag)
    assert report["rows_read"] == report["rows_invalid"] + sum(report["rows_filtered"].values()) + report["events"]
    return report


def test_kill_9_twice_then_resume_loses_nothing_and_resends_at_most_the_window(tmp_path, make_receiver):
    log = tmp_path / "access.log"
    pages = make_log(log, 3000)
    receiver = make_receiver(Faults(fail_share=0.02, retry_after="0", seed=9))

    def received():
        return receiver.stats.accepted

    for tag, kill_at in (("a", 500), ("b", 1500)):
        receiver.hold(after=kill_at)  # the run cannot end before it is killed
        process = start(tmp_path, log, receiver.endpoint, tag, rate="3000")
        wait_for(lambda kill_at=kill_at, process=process: received() >= kill_at or process.poll() is not None)
        assert process.poll() is None, "the run ended before it could be killed"
        process.kill()  # SIGKILL: no cleanup at all
        process.wait(10)
        receiver.release()
        # Requests it wrote before dying may still be unread in the receiver's sockets: once the
        # receiver has seen every connection close, nothing more can come from the dead process.
        wait_for(lambda: receiver.stats.open_connections == 0)
        before = received()
        time.sleep(0.1)
        assert received() == before  # nothing more arrives from a dead process

    delivered = len(pages_of(receiver))
    process = start(tmp_path, log, receiver.endpoint, "c")
    code, err = finish(process)
    assert code == 0, err
    last = check_report(tmp_path, "c")
    assert last["failed"] == 0
    assert re.search(rf"in-flight window\s+{WINDOW:,} events", err)

    got = pages_of(receiver)
    assert set(got) == set(pages)  # nothing lost
    duplicates = sum(count - 1 for count in got.values())
    assert duplicates <= 2 * WINDOW, duplicates  # each kill re-sends at most the window
    print(f"duplicates after two kills: {duplicates} (bound {2 * WINDOW})")
    assert last["sent"] - (3000 - delivered) <= WINDOW  # the last run resumed instead of starting over

    # And once everything is settled, the same command sends nothing.
    again = start(tmp_path, log, receiver.endpoint, "d")
    code, err = finish(again)
    assert code == 0 and check_report(tmp_path, "d")["sent"] == 0
    assert pages_of(receiver) == got


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_sigterm_and_sigint_drain_save_and_exit_then_resume_sends_the_rest_once(tmp_path, make_receiver, signum, code):
    log = tmp_path / "access.log"
    pages = make_log(log, 800)
    receiver = make_receiver(Faults(delay_s=0.01))
    receiver.hold(after=100)  # the run cannot end before the signal
    process = start(tmp_path, log, receiver.endpoint, "a")
    wait_for(lambda: receiver.stats.accepted >= 100 or process.poll() is not None)
    assert process.poll() is None
    sent_at = time.monotonic()
    os.kill(process.pid, signum)
    receiver.release()  # the requests in flight are answered and drained
    rc, err = finish(process)
    assert rc == code, err
    # Drained within --drain-timeout (5 s); the rest of the bound is the exit on a busy machine.
    assert time.monotonic() - sent_at < 30
    assert "interrupted" in err and "accepted" in err
    first = check_report(tmp_path, "a")
    assert 100 <= first["accepted"] < 800 and first["events"] <= 800
    not_sent = [json.loads(line) for line in (tmp_path / "failed-a.jsonl").read_text().splitlines()]
    assert len(not_sent) == first["failed"] > 0
    assert all(r["sent_again_by_next_run"] for r in not_sent)

    process = start(tmp_path, log, receiver.endpoint, "b")
    rc, err = finish(process)
    assert rc == 0, err
    second = check_report(tmp_path, "b")
    assert first["accepted"] + second["accepted"] == 800
    assert pages_of(receiver) == Counter(pages)  # a clean interrupt causes no duplicate at all
