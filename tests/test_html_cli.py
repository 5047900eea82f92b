"""The --html options of backfill, send and preview, run as real subprocesses (no browser)."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path

from conftest import combined_line, write_log

REPO = Path(__file__).resolve().parents[1]


def run_cli(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run(
        [sys.executable, "-m", "importer", *args], capture_output=True, text=True, env=env, timeout=240, check=False
    )


def three_days(path: Path) -> Path:
    start = dt.datetime(2024, 5, 1, 9, tzinfo=dt.UTC)
    return write_log(
        path, [combined_line(ip=f"81.2.69.{i + 1}", when=start + dt.timedelta(days=i), target="/x") for i in range(3)]
    )


def test_backfill_html_elsewhere_and_bad_native_start(tmp_path):
    log = three_days(tmp_path / "access.log")
    bad = run_cli(
        "backfill",
        str(log),
        "-d",
        "example.com",
        "--site-timezone",
        "UTC",
        "-o",
        str(tmp_path / "out"),
        "--native-start",
        "May 2nd",
    )
    assert bad.returncode == 2
    assert "--native-start 'May 2nd': give a date as YYYY-MM-DD" in bad.stderr
    assert not (tmp_path / "out").exists()
    done = run_cli(
        "backfill",
        str(log),
        "-d",
        "example.com",
        "--site-timezone",
        "UTC",
        "-o",
        str(tmp_path / "out"),
        "--no-progress",
        "--html",
        str(tmp_path / "pages" / "import.html"),
        "--native-start",
        "2024-05-02",
    )
    assert done.returncode == 0, done.stderr
    page = (tmp_path / "pages" / "import.html").read_text(encoding="utf-8")
    assert not (tmp_path / "out" / "report.html").exists()
    assert len(list((tmp_path / "out").glob("imported_*.csv"))) == 10
    assert 'data-figure="Unique visitors" data-exact="2"' in page  # the third day is after the cut
    assert "shorter than 3 days: Plausible refuses such an import" in page


def test_send_dry_run_html_counts_per_day_and_name(tmp_path):
    log = three_days(tmp_path / "access.log")
    done = run_cli(
        "send",
        str(log),
        "-d",
        "example.com",
        "--dry-run",
        "--no-progress",
        "--html",
        str(tmp_path / "dry.html"),
        "--rejects",
        str(tmp_path / "rejects.jsonl"),
    )
    assert done.returncode == 0, done.stderr
    page = (tmp_path / "dry.html").read_text(encoding="utf-8")
    for day in ("2024-05-01", "2024-05-02", "2024-05-03"):
        assert f'data-start="{day}" data-end="{day}" data-events="1"' in page
    assert "Plausible will date every event at the moment it arrives" in page
    assert f"report: {tmp_path / 'dry.html'}" in done.stderr


def test_a_real_sends_report_gives_the_outcome_of_each_day(tmp_path, make_receiver):
    from importer.receiver import Faults

    start = dt.datetime(2024, 5, 1, 9, tzinfo=dt.UTC)
    # day 1: 4 events, day 2: 2, day 3: 3; the receiver drops every second event it answers
    days = [0, 0, 0, 0, 1, 1, 2, 2, 2]
    lines = [
        combined_line(ip="81.2.69.7", when=start + dt.timedelta(days=d, minutes=i), target=f"/p{i}")
        for i, d in enumerate(days)
    ]
    log = write_log(tmp_path / "access.log", lines)
    receiver = make_receiver(Faults(drop_share=0.5, seed=3))
    done = run_cli(
        "send",
        str(log),
        "-d",
        "example.com",
        "--endpoint",
        receiver.endpoint,
        "--rate",
        "0",
        "--concurrency",
        "1",
        "--replay-history",
        "--no-state",
        "--no-progress",
        "--html",
        str(tmp_path / "sent.html"),
        "--rejects",
        str(tmp_path / "r.jsonl"),
    )
    assert done.returncode in (0, 3), done.stderr
    page = (tmp_path / "sent.html").read_text(encoding="utf-8")
    table = page.split('class="outcomes"', 1)[1].split("</table>", 1)[0]
    rows = [row for row in table.split("<tr>")[1:] if "<td" in row]
    cells = [[cell.split(">", 1)[1] for cell in row.split("</td>")[:-1]] for row in rows]
    numbers = {c[0].split("<")[0][-10:]: [int(_digits(x)) for x in c[1:]] for c in cells}
    assert sorted(numbers) == ["2024-05-01", "2024-05-02", "2024-05-03"]
    assert [sum(v) for _, v in sorted(numbers.items())] == [4, 2, 3]  # every event of each day, settled
    accepted = sum(v[0] for v in numbers.values())
    dropped = sum(v[1] for v in numbers.values())
    assert accepted == receiver.stats.accepted and accepted + dropped == 9 and dropped > 0


def _digits(cell: str) -> str:
    """The exact figure of a number cell (its title holds it; the text may be rounded, 1.2k)."""
    return "".join(ch for ch in cell.split('title="', 1)[-1].split('"', 1)[0] if ch.isdigit()) or "".join(
        ch for ch in cell if ch.isdigit()
    )
