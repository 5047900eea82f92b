"""``send --follow``: lines go out as they are written, across a rotation; SIGTERM then a
plain re-run sends nothing twice."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import time
from collections import Counter

from conftest import combined_line, wait_for
from test_sender_faults import START, pages_of


def lines(first: int, n: int) -> str:
    return "".join(
        combined_line(ip=f"192.0.2.{i % 9}", target=f"/p{i}", when=START + dt.timedelta(seconds=i)) + "\n"
        for i in range(first, first + n)
    )


def test_follow_forwards_new_lines_across_rotation_and_resumes_exactly(tmp_path, receiver):
    log = tmp_path / "access.log"
    log.write_text(lines(0, 5))
    state = tmp_path / "state.sqlite"
    command = [
        sys.executable,
        "-m",
        "importer",
        "send",
        str(log),
        "--domain",
        "example.com",
        "--replay-history",
        "--endpoint",
        receiver.endpoint,
        "--rate",
        "0",
        "--state",
        str(state),
        "--no-progress",
        "--follow",
        "--failed",
        str(tmp_path / "failed.jsonl"),
        "--rejects",
        str(tmp_path / "rejects.jsonl"),
    ]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path)
    try:
        wait_for(lambda: receiver.stats.accepted >= 5)
        with open(log, "a") as out:  # the server writes on
            out.write(lines(5, 3))
            out.flush()
            wait_for(lambda: receiver.stats.accepted >= 8)
            # logrotate: the file is renamed, the server still writes a little to it ...
            os.rename(log, tmp_path / "access.log.1")
            out.write(lines(8, 2))
        # ... until it reopens: a new access.log.
        log.write_text(lines(10, 4))
        wait_for(lambda: receiver.stats.accepted >= 14)
        with open(log, "a") as out:
            out.write(lines(14, 1))
        wait_for(lambda: receiver.stats.accepted >= 15)
        with open(log, "a") as out:  # a line half written when the run stops
            out.write(lines(15, 1).rstrip("\n")[:60])
        time.sleep(0.6)
    finally:
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=120)
    assert process.returncode == 143, err
    expected = Counter(f"/p{i}" for i in range(15))
    assert pages_of(receiver) == expected

    # The half line was left alone; the server finishes it.
    with open(log, "a") as out:
        out.write(lines(15, 1)[60:])
    # The nightly run over the rotated set sends only that line: both files are known by content.
    again = subprocess.run(
        [*command[:4], str(tmp_path / "access.log.1"), *command[5:-5]],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
    )
    assert again.returncode == 0, again.stderr
    again = subprocess.run(
        [*command[:4], str(log), *command[5:-5]], capture_output=True, text=True, cwd=tmp_path, timeout=120
    )
    assert again.returncode == 0, again.stderr
    time.sleep(0.1)
    assert pages_of(receiver) == expected + Counter(["/p15"])
