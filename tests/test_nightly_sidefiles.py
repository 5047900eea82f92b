"""Issue 14: side files that stay useful: run ids and times, no rejected line written twice across
runs, and failed-file records removed once a later run has sent their events."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

from conftest import combined_line, wait_for, write_log

from importer import send
from importer.options import DeliveryOptions, OutputOptions
from importer.receiver import Faults


def records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def mixed_log(path: Path, n: int) -> set[int]:
    """n lines, every tenth garbage; returns the garbage lines' numbers."""
    lines = [
        f"garbage {i}" if i % 10 == 9 else combined_line(ip=f"198.51.100.{i % 50}", target=f"/p{i}") for i in range(n)
    ]
    write_log(path, lines)
    return {i + 1 for i in range(n) if i % 10 == 9}


def cli(tmp_path: Path, log: Path, endpoint: str, tag: str) -> subprocess.Popen:
    command = [
        sys.executable,
        "-m",
        "importer",
        "send",
        "--replay-history",
        str(log),
        "--domain",
        "example.com",
        "--endpoint",
        endpoint,
        "--rate",
        "1000",
        "--timeout",
        "120",  # answers held by Receiver.hold wait while the test acts, however long that takes
        "--state",
        str(tmp_path / "state.sqlite"),
        "--no-progress",
        "--rejects",
        str(tmp_path / "rejects.jsonl"),
        "--failed",
        str(tmp_path / "failed.jsonl"),
        "--report",
        str(tmp_path / f"report-{tag}.json"),
    ]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path)


def test_rejected_lines_are_written_once_across_a_crash_and_carry_run_and_time(tmp_path, make_receiver):
    log = tmp_path / "access.log"
    bad = mixed_log(log, 3000)
    receiver = make_receiver(Faults(delay_s=0.002))
    receiver.hold(after=300)  # the run cannot end before it is killed
    first = cli(tmp_path, log, receiver.endpoint, "1")
    wait_for(lambda: receiver.stats.accepted >= 300 or first.poll() is not None)
    assert first.poll() is None, "the run ended before it could be killed"
    os.kill(first.pid, signal.SIGKILL)
    first.wait(30)
    receiver.release()
    written_first = records(tmp_path / "rejects.jsonl")
    assert written_first and len({r["run"] for r in written_first}) == 1
    second = cli(tmp_path, log, receiver.endpoint, "2")
    _, err = second.communicate(timeout=120)
    all_written_before = len(written_first) == len(bad)
    assert second.returncode == (0 if all_written_before else 1), err  # bad lines not reported again: exit 0
    rejected = [r for r in records(tmp_path / "rejects.jsonl") if r["stage"] == "read"]
    lines = Counter(r["line"] for r in rejected)
    assert set(lines) == bad and max(lines.values()) == 1  # each bad line once, over both runs
    assert all(r["time"].endswith("Z") and r["run"] for r in rejected)
    assert len({r["run"] for r in rejected}) == (1 if all_written_before else 2)
    assert len({e["url"] for e in receiver.events}) == 2700


def run(tmp_path: Path, log: Path, endpoint: str, **options):
    delivery = DeliveryOptions(
        endpoint=endpoint, rate=0, backoff_s=0.01, state=tmp_path / "state.sqlite", replay_history=True, **options
    )
    outputs = OutputOptions(rejects=tmp_path / "rejects.jsonl", failed=tmp_path / "failed.jsonl")
    return send([log], "example.com", delivery=delivery, outputs=outputs)


def test_the_failed_file_is_cleaned_once_a_resume_has_sent_its_events(tmp_path, make_receiver):
    log = tmp_path / "access.log"
    write_log(log, [combined_line(ip=f"198.51.100.{i}", target=f"/p{i}") for i in range(100)])
    receiver = make_receiver(Faults(fail_first=12, retry_after=None))  # one endpoint: one job in the state
    first = run(tmp_path, log, receiver.endpoint, max_attempts=1, concurrency=1)
    assert first.failed == 12 and first.accepted == 88
    failed_first = [r["line"] for r in records(tmp_path / "failed.jsonl")]
    assert len(set(failed_first)) == len(failed_first) == 12

    # A resume on a flaky endpoint: some of the 12 fail again, and replace their old records.
    receiver.faults = Faults(fail_first=receiver.stats.requests + 5, retry_after=None)
    second = run(tmp_path, log, receiver.endpoint, max_attempts=1, concurrency=1)
    assert second.events == 12 and second.failed == 5 and second.failed_resolved == 12
    left = records(tmp_path / "failed.jsonl")
    failed_again = [r["line"] for r in left]
    assert len(set(failed_again)) == len(failed_again) == 5 and set(failed_again) <= set(failed_first)
    assert len({r["run"] for r in left}) == 1 and "sent again" in second.summary()

    receiver.faults = Faults()
    third = run(tmp_path, log, receiver.endpoint)
    assert third.accepted == third.events == 5 and third.failed_resolved == 5
    assert (tmp_path / "failed.jsonl").read_text() == ""  # "failed file not empty" means work is left
    assert sorted(e["url"] for e in receiver.events) == sorted(f"https://example.com/p{i}" for i in range(100))


def test_without_a_state_file_the_failed_file_is_left_alone(tmp_path, make_receiver):
    log = tmp_path / "access.log"
    write_log(log, [combined_line(ip=f"198.51.100.{i}", target=f"/p{i}") for i in range(10)])
    failing = make_receiver(Faults(fail_first=3, retry_after=None))
    send(
        [log],
        "example.com",
        delivery=DeliveryOptions(endpoint=failing.endpoint, rate=0, max_attempts=1, concurrency=1, replay_history=True),
        outputs=OutputOptions(failed=tmp_path / "failed.jsonl", rejects=None),
    )
    healthy = make_receiver()
    again = send(
        [log],
        "example.com",
        delivery=DeliveryOptions(endpoint=healthy.endpoint, rate=0, replay_history=True),
        outputs=OutputOptions(failed=tmp_path / "failed.jsonl", rejects=None),
    )
    assert again.accepted == 10 and again.failed_resolved == 0
    assert len(records(tmp_path / "failed.jsonl")) == 3


def test_after_ctrl_c_the_summary_says_what_was_drained_cut_off_and_sent_next(tmp_path, make_receiver):
    log = tmp_path / "access.log"
    write_log(log, [combined_line(ip=f"198.51.100.{i % 50}", target=f"/p{i}") for i in range(800)])
    receiver = make_receiver(Faults(delay_s=0.01))
    receiver.hold(after=100)  # the run cannot end before Ctrl-C
    process = cli(tmp_path, log, receiver.endpoint, "1")
    wait_for(lambda: receiver.stats.accepted >= 100 or process.poll() is not None)
    assert process.poll() is None
    os.kill(process.pid, signal.SIGINT)
    receiver.release()  # the requests in flight are answered and drained
    _, err = process.communicate(timeout=120)
    assert process.returncode == 130, err
    report = json.loads((tmp_path / "report-1.json").read_text())
    failed = records(tmp_path / "failed.jsonl")
    assert len(failed) == report["failed"] > 0
    assert f"{len(failed):,} cut off" in err and "in-flight events drained" in err
    assert f"state saved: sends again {len(failed):,} events" in err
    # The next run sends those again, and the failed file is then empty.
    again = cli(tmp_path, log, receiver.endpoint, "2")
    _, err = again.communicate(timeout=120)
    assert again.returncode == 0, err
    assert (tmp_path / "failed.jsonl").read_text() == ""
    assert len({e["url"] for e in receiver.events}) == 800
