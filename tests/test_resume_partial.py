"""A nightly run over the live log while the server writes: a half-written last line is left
for the next run, which sends it once it is whole; nothing is lost, nothing sent twice."""

from __future__ import annotations

import datetime as dt
import os
import time
from collections import Counter

from conftest import combined_line
from test_sender_faults import START, invariant, pages_of

from importer.options import DeliveryOptions, OutputOptions
from importer.pipeline import send
from importer.sources import Source


def line(i: int) -> str:
    return combined_line(ip=f"192.0.2.{i % 9}", target=f"/p{i}", when=START + dt.timedelta(seconds=i)) + "\n"


def run(log, state, receiver, tmp_path):
    return send(
        [log],
        domain="example.com",
        delivery=DeliveryOptions(endpoint=receiver.endpoint, rate=0, state=state, replay_history=True),
        outputs=OutputOptions(rejects=tmp_path / "rejects.jsonl", failed=None),
    )


def test_a_line_being_written_waits_for_the_next_run(tmp_path, receiver):
    log, state = tmp_path / "access.log", tmp_path / "state.sqlite"
    sixth = line(5)
    log.write_text("".join(line(i) for i in range(5)) + sixth[:50])  # the server is mid-line
    report = run(log, state, receiver, tmp_path)
    invariant(report)
    assert report.rows_read == 5 and report.rows_invalid == 0 and report.accepted == 5
    assert any("left for the next run" in n and f"{50:,} bytes" in n for n in report.notices), report.notices
    with open(log, "a") as out:  # the server finishes the line and writes another
        out.write(sixth[50:] + line(6))
    report = run(log, state, receiver, tmp_path)
    invariant(report)
    assert report.rows_read == 2 and report.accepted == 2 and not report.notices
    assert pages_of(receiver) == Counter(f"/p{i}" for i in range(7))


def test_a_finished_file_without_a_final_newline_is_read_to_its_end(tmp_path, receiver):
    log, state = tmp_path / "access.log.1", tmp_path / "state.sqlite"
    log.write_text("".join(line(i) for i in range(3)) + line(3).rstrip("\n"))
    an_hour_ago = time.time() - 3600
    os.utime(log, (an_hour_ago, an_hour_ago))
    report = run(log, state, receiver, tmp_path)
    assert report.accepted == 4 and not report.notices
    assert pages_of(receiver) == Counter(f"/p{i}" for i in range(4))


def test_complete_lines_only_holds_back_a_fresh_unfinished_plain_file(tmp_path):
    plain = tmp_path / "a.log"
    plain.write_bytes(b"one\ntwo\nthr")
    assert Source("a.log", plain).complete_lines().limit == 8
    assert Source("a.log", plain).complete_lines(now=time.time() + 60).limit is None  # quiet for a minute
    done = tmp_path / "b.log"
    done.write_bytes(b"one\ntwo\n")
    assert Source("b.log", done).complete_lines().limit is None
    import gzip

    packed = tmp_path / "c.log.gz"
    packed.write_bytes(gzip.compress(b"one\ntwo\nthr"))
    assert Source("c.log.gz", packed).complete_lines().limit is None  # a compressed file is finished
    limited = Source("a.log", plain).complete_lines()
    assert limited.size == 8 and limited.open_raw().read() == b"one\ntwo\n"
