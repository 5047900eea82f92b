"""Bad input never stops or shrinks a run: one regression test per failure found by fuzzing."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from importer import send

from conftest import BROWSER, combined_line

SWALLOWER = '5.6.7.8 - a"b [10/Mar/2024:00:00:01 +0100] "GET /b HTTP/1.1" 200 1 "-" "Mozilla/5.0" "c'


def rejects_of(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()] if path.exists() else []


def assert_accounting(report) -> None:
    assert report.rows_read == report.rows_invalid + sum(report.rows_filtered.values()) + report.events


def run_cli(tmp_path: Path, *inputs: Path, extra: tuple[str, ...] = ()) -> tuple[int, dict, list[dict]]:
    """The real command line in a subprocess; returns (exit code, JSON report, rejects)."""
    report, rejects = tmp_path / "report.json", tmp_path / "rejects.jsonl"
    proc = subprocess.run(
        [sys.executable, "-m", "importer", "send", *map(str, inputs), "-d", "example.com", "--dry-run",
         "--output", str(tmp_path / "events.jsonl"), "--report", str(report), "--rejects", str(rejects), *extra],
        capture_output=True, text=True, timeout=120)
    assert proc.returncode in (0, 1), proc.stderr
    return proc.returncode, json.loads(report.read_text()), rejects_of(rejects)


def test_a_quote_opening_at_line_end_does_not_swallow_the_next_line(tmp_path):
    log = tmp_path / "crash.log"
    log.write_text("\n".join([combined_line(target="/a"), SWALLOWER, combined_line(target="/c")]) + "\n")
    code, report, rejects = run_cli(tmp_path, log)
    assert (report["rows_read"], report["rows_invalid"], report["events"]) == (3, 1, 2)
    assert [(r["line"], r["reason"]) for r in rejects] == [(2, "unbalanced quotes (a truncated line?)")]
    urls = [json.loads(line)["url"] for line in (tmp_path / "events.jsonl").read_text().splitlines()]
    assert [u.rsplit("/", 1)[1] for u in urls] == ["a", "c"]


def test_swallowing_lines_in_a_big_log_keep_every_good_line(tmp_path):
    lines = [combined_line(target=f"/p{i}", user_agent=BROWSER) for i in range(5000)]
    for i in range(7, 5000, 997):
        lines[i] = SWALLOWER
    log = tmp_path / "big.log"
    log.write_text("\n".join(lines) + "\n")
    report = send([log], domain="example.com", dry_run=True, output=tmp_path / "e.jsonl",
                  rejects_path=tmp_path / "r.jsonl", state=tmp_path / "state.db")
    bad = {r["line"] for r in rejects_of(tmp_path / "r.jsonl")}
    assert bad == {i + 1 for i in range(7, 5000, 997)}
    assert report.events == 5000 - len(bad)
    assert_accounting(report)
