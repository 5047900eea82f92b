"""Issue 14: progress that tells the truth: share and ETA by input bytes, outcomes live, no 100% after Ctrl-C."""

from __future__ import annotations

import fcntl
import io
import os
import pty
import select
import struct
import termios

from importer.progress import Progress
from importer.report import Report


def drain(master: int) -> str:
    chunks = []
    while select.select([master], [], [], 0.2)[0]:
        try:
            data = os.read(master, 65536)
        except OSError:
            break
        if not data:
            break
        chunks.append(data)
    return b"".join(chunks).decode("utf-8", "replace")


def test_the_terminal_bar_follows_input_bytes_and_stops_where_an_interrupt_left_it():
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 200, 0, 0))  # a 200-column terminal
    stream = os.fdopen(slave, "w", buffering=1)
    report = Report()
    bar = Progress(True, total_bytes=1_000_000, stream=stream, report=report)
    assert bar.tty
    # A fifth of the file read; every event built so far is already settled (the old bar said ~95%).
    for step in range(1, 22):
        bar.rows_read(1000, position=step * 10_000)
        bar.events_built(1000)
        report.accepted += 990
        report.dropped += 5
        report.failed += 5
        bar.settled(1000)
    bar.retrying("retrying: connection refused by 127.0.0.1:1, attempt 3/5")
    bar.close()  # as after Ctrl-C: the input stops at 21%
    out = drain(master)
    stream.close()
    os.close(master)
    assert "21%" in out and "100%" not in out
    assert "accepted 20,790, dropped 105, rejected 0, failed 105" in out
    assert "retrying: connection refused by 127.0.0.1:1, attempt 3/5" in out


def test_the_plain_line_gives_share_eta_and_outcomes_by_bytes():
    out = io.StringIO()
    report = Report()
    bar = Progress(True, total_bytes=400, stream=out, interval_s=0.0, report=report)
    bar.rows_read(10, position=100)
    report.accepted, report.rejected = 8, 2
    bar.settled(10)
    line = out.getvalue().splitlines()[-1]
    assert line.startswith("progress: 25% of input, ETA ") and "accepted 8, dropped 0, rejected 2, failed 0" in line
    bar.next_source()
    bar.rows_read(10, position=300)
    bar.close()
    assert out.getvalue().splitlines()[-1].startswith("progress: 100% of input; 20 rows")


def test_stdin_has_no_share_and_a_dry_run_counts_events_written():
    out = io.StringIO()
    bar = Progress(
        True, total_bytes=None, events_label="events written", stream=out, interval_s=0.0, report=Report(dry_run=True)
    )
    bar.rows_read(5, position=500)
    bar.settled(5)
    bar.close()
    assert out.getvalue().splitlines()[-1].startswith("progress: 5 rows, 5 events written")
