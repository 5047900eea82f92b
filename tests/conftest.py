"""Shared fixtures: a real receiver on loopback, and helpers to write log files."""

from __future__ import annotations

import datetime as dt
import gzip
import json
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from importer.receiver import Faults, Receiver

BROWSER = "Mozilla/5.0 (X11; Linux x86_64; rv:123.0) Gecko/20100101 Firefox/123.0"
IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_3 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.3 Mobile/15E148 Safari/604.1"
)


def clf_time(when: dt.datetime) -> str:
    return when.strftime("%d/%b/%Y:%H:%M:%S %z")


def combined_line(
    ip: str = "203.0.113.5",
    when: dt.datetime | None = None,
    method: str = "GET",
    target: str = "/",
    status: int = 200,
    size: str | int = 512,
    referrer: str = "-",
    user_agent: str = BROWSER,
    vhost: str | None = None,
) -> str:
    """One nginx/Apache combined line (vhost-prefixed when ``vhost`` is given)."""
    when = when or dt.datetime(2024, 3, 14, 9, 26, 53, tzinfo=dt.timezone(dt.timedelta(hours=1)))
    line = f'{ip} - - [{clf_time(when)}] "{method} {target} HTTP/1.1" {status} {size} "{referrer}" "{user_agent}"'
    return f"{vhost} {line}" if vhost else line


def wait_for(condition: Callable[[], object], timeout: float = 120.0) -> None:
    """Poll until ``condition()`` holds. The timeout only ends a hang: on a busy machine a step
    can take many seconds, so tests wait for what they need, never for a guessed time."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out after {timeout} s"
        time.sleep(0.005)


def start_send(tmp_path: Path, endpoint: str, tag: str, *args: str, domain: str = "example.com") -> subprocess.Popen:
    """A ``send`` run in a subprocess, as a scheduled job starts it: history replayed to
    ``endpoint``, no progress bar, its report, failed and rejects files in ``tmp_path`` named by
    ``tag``. ``args`` are the sources and the options the test is about."""
    command = [
        sys.executable,
        "-m",
        "importer",
        "send",
        "--replay-history",
        "--domain",
        domain,
        "--endpoint",
        endpoint,
        "--no-progress",
        "--report",
        str(tmp_path / f"report-{tag}.json"),
        "--failed",
        str(tmp_path / f"failed-{tag}.jsonl"),
        "--rejects",
        str(tmp_path / f"rejects-{tag}.jsonl"),
        *args,
    ]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path)


def finish(process: subprocess.Popen) -> tuple[int, str]:
    """The exit code and standard error of a run started by :func:`start_send`."""
    _, err = process.communicate(timeout=120)
    return process.returncode, err


def accounted(tmp_path: Path, tag: str) -> dict:
    """The report of the run tagged ``tag``, every event of it accounted for."""
    report = json.loads((tmp_path / f"report-{tag}.json").read_text())
    assert report["events"] == report["accepted"] + report["dropped"] + report["rejected"] + report["failed"]
    return report


def write_log(path: Path, lines: list[str], compress: bool = False, newline: str = "\n") -> Path:
    data = (newline.join(lines) + newline).encode("utf-8")
    if compress:
        path.write_bytes(gzip.compress(data))
    else:
        path.write_bytes(data)
    return path


@pytest.fixture(autouse=True)
def _private_state_dir(tmp_path, monkeypatch):
    """`send` keeps a checkpoint under $XDG_STATE_HOME by default, and reads a config file under
    $XDG_CONFIG_HOME: never the real ones in tests."""
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg-state"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg-config"))  # nor the user's config file
    for variable in ("STATE", "CONFIG", "PROFILE", "DOMAIN", "ENDPOINT", "REPLAY_HISTORY"):
        monkeypatch.delenv(f"PLAUSIBLE_IMPORT_{variable}", raising=False)


@pytest.fixture
def receiver(tmp_path) -> Iterator[Receiver]:
    """A Plausible-compatible receiver on a free loopback port, recording to a file."""
    r = Receiver(record=tmp_path / "received.jsonl")
    with r.running():
        yield r


@pytest.fixture
def make_receiver(tmp_path):
    """Start receivers with fault injection: ``make_receiver(Faults(fail_share=0.2, seed=1))``."""
    started: list[Receiver] = []

    def make(faults: Faults | None = None) -> Receiver:
        r = Receiver(record=tmp_path / f"received-{len(started)}.jsonl", faults=faults)
        r.start_in_thread()
        started.append(r)
        return r

    yield make
    for r in started:
        r.stop_thread()
