"""The command line end to end, as a user runs it (subprocesses, real receiver on loopback)."""

from __future__ import annotations

import contextlib
import json
import platform
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import combined_line, wait_for, write_log

from importer import resources

REPORT_KEYS = [
    "lines_skipped",
    "rows_read",
    "rows_invalid",
    "inputs_damaged",
    "rows_filtered",
    "events",
    "extra_events",
    "events_by_name",
    "sent",
    "accepted",
    "dropped",
    "rejected",
    "failed",
    "retries",
    "timeouts",
    "maybe_duplicated",
    "duration_s",
]


def run_cli(*args: str, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "importer", *args], capture_output=True, text=True, cwd=cwd, timeout=120
    )


def test_send_to_the_receiver_writes_the_report_and_the_summary(tmp_path, receiver):
    log = write_log(
        tmp_path / "access.log",
        [
            combined_line(target="/a", referrer="https://www.example.org/"),
            combined_line(target="/b?utm_source=x"),
            combined_line(target="/app.js"),
            combined_line(user_agent="curl/8.5.0"),
            "not a log line",
        ],
    )
    report_path = tmp_path / "report.json"
    result = run_cli(
        "send",
        str(log),
        "--domain",
        "example.com",
        "--endpoint",
        receiver.endpoint,
        "--rate",
        "0",
        "--replay-history",
        "--report",
        str(report_path),
        "--rejects",
        str(tmp_path / "rejects.jsonl"),
        "--no-progress",
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(report_path.read_text())
    assert list(report) == REPORT_KEYS
    assert report["rows_read"] == 5 and report["rows_invalid"] == 1
    assert report["rows_filtered"] == {"static_asset": 1, "http_client": 1}
    assert report["events"] == report["accepted"] == report["sent"] == 2
    assert sorted(e["url"] for e in receiver.events) == ["https://example.com/a", "https://example.com/b?utm_source=x"]
    # The summary table and the one-time note about Plausible dating events at arrival.
    assert "rows read" in result.stderr and "accepted" in result.stderr
    assert result.stderr.count("no timestamp field") == 1
    rejected = json.loads((tmp_path / "rejects.jsonl").read_text())
    assert rejected["line"] == 5 and rejected["file"] == str(log)


def test_dry_run_output_has_one_json_line_per_event_with_original_time(tmp_path):
    log = write_log(
        tmp_path / "access.log",
        [
            (
                '203.0.113.42 - - [14/Mar/2024:09:26:53 +0100] "GET /pricing?plan=pro HTTP/1.1" 200 5123 '
                '"https://www.example.org/" "Mozilla/5.0 (X11; Linux x86_64; rv:123.0) Gecko/20100101 Firefox/123.0"'
            ),
        ],
    )
    out = tmp_path / "events.jsonl"
    result = run_cli(
        "send", str(log), "--domain", "example.com", "--dry-run", "--output", str(out), "--no-progress", cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    (line,) = out.read_text().splitlines()
    assert json.loads(line) == {
        "name": "pageview",
        "url": "https://example.com/pricing?plan=pro",
        "domain": "example.com",
        "referrer": "https://www.example.org/",
        "props": None,
        "user_agent": "Mozilla/5.0 (X11; Linux x86_64; rv:123.0) Gecko/20100101 Firefox/123.0",
        "ip": "203.0.113.42",
        "timestamp": "2024-03-14T08:26:53Z",
    }
    assert "no timestamp field" not in result.stderr  # nothing is sent in a dry run


def test_csv_and_parquet_exports_give_the_same_events_as_each_other(tmp_path):
    sample = resources.sample_data_dir()
    outputs = {}
    for name in ("export.csv", "export.parquet"):
        out = tmp_path / f"{name}.jsonl"
        result = run_cli(
            "send",
            str(sample / name),
            "--mapping",
            "sample-export",
            "--domain",
            "example.com",
            "--dry-run",
            "--output",
            str(out),
            "--no-progress",
            cwd=tmp_path,
        )
        assert result.returncode == 0, result.stderr
        outputs[name] = [json.loads(line) for line in out.read_text().splitlines()]
    assert outputs["export.csv"] == outputs["export.parquet"]
    assert len(outputs["export.csv"]) > 1000


def test_usage_errors_exit_2_with_a_message(tmp_path):
    log = write_log(tmp_path / "access.log", [combined_line()])
    cases = [
        (["send", str(tmp_path / "missing.log"), "--domain", "example.com", "--dry-run"], "no such file"),
        (["send", str(log), "--domain", "https://example.com/", "--dry-run"], "--domain"),
        (["send", str(log), "--domain", "example.com", "--mapping", "nope", "--dry-run"], "no built-in mapping"),
        (["send", str(log), "--domain", "example.com", "--output", "x.jsonl"], "--dry-run"),
    ]
    for args, expected in cases:
        result = run_cli(*args, cwd=tmp_path)
        assert result.returncode == 2, (args, result.stderr)
        assert expected in result.stderr
        assert "Traceback" not in result.stderr


def test_exit_code_is_0_when_all_accepted_and_1_when_events_fail(tmp_path, receiver):
    mapping = tmp_path / "long.toml"
    mapping.write_text('extends = "web"\n[event]\nname = "' + "n" * 120 + '"\n')
    log = write_log(tmp_path / "access.log", [combined_line()])
    # 120 characters is Plausible's limit, so this is accepted ...
    ok = run_cli(
        "send",
        "--replay-history",
        str(log),
        "--domain",
        "example.com",
        "--endpoint",
        receiver.endpoint,
        "--mapping",
        str(mapping),
        "--no-progress",
        cwd=tmp_path,
    )
    assert ok.returncode == 0, ok.stderr
    # ... while an endpoint that answers 404 makes the event fail.
    fail = run_cli(
        "send",
        "--replay-history",
        str(log),
        "--domain",
        "example.com",
        "--endpoint",
        receiver.endpoint.replace("/api/event", "/api/missing"),
        "--no-progress",
        "--max-attempts",
        "1",
        cwd=tmp_path,
    )
    assert fail.returncode == 1
    assert "failed" in fail.stderr


def test_demo_replays_the_sample_log_to_a_local_receiver(tmp_path):
    result = run_cli("demo", "--rate", "0", "--no-progress", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    recorded = [json.loads(line) for line in (tmp_path / "demo-events.jsonl").read_text().splitlines()]
    assert len(recorded) > 1000
    assert all(e["domain"] == "example.com" and e["x_forwarded_for"] for e in recorded)
    assert "accepted" in result.stderr


READ_SYSCALL = {"x86_64": "0", "aarch64": "63"}.get(platform.machine())


def reading_stdin(pid: int) -> bool:
    """Whether a thread of the process is blocked in read() on its stdin (fd 0)."""
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with contextlib.suppress(OSError):
            if (task / "syscall").read_text().split()[:2] == [READ_SYSCALL, "0x0"]:
                return True
    return False


@pytest.mark.skipif(READ_SYSCALL is None or not Path("/proc/self/syscall").exists(), reason="needs Linux /proc")
def test_ctrl_c_before_sending_exits_130_with_one_line(tmp_path, receiver):
    # A live endpoint: with nothing listening the run would now stop by itself before reading stdin.
    command = [
        sys.executable,
        "-m",
        "importer",
        "send",
        "--replay-history",
        "-",
        "--domain",
        "example.com",
        "--endpoint",
        receiver.endpoint,
        "--state",
        str(tmp_path / "state.sqlite"),
        "--no-progress",
    ]
    process = subprocess.Popen(
        command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path
    )
    # Started, and waiting for input on stdin: the moment a user at a pipe would press Ctrl-C.
    wait_for(lambda: reading_stdin(process.pid) or process.poll() is not None)
    assert process.poll() is None, process.communicate()
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 130, err
    assert "Traceback" not in err and "interrupted" in err
