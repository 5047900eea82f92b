"""A backfill stopped by SIGTERM removes its temporary spill files (they hold visitors' IPs)."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from conftest import combined_line


def test_sigterm_during_a_backfill_leaves_no_spill_files(tmp_path: Path) -> None:
    start = dt.datetime(2024, 3, 1, tzinfo=dt.UTC)
    lines = [
        combined_line(
            ip=f"198.51.{i % 200}.{i % 250}", target=f"/p{i % 500}", when=start + dt.timedelta(seconds=30 * i)
        )
        for i in range(60_000)
    ]
    log = tmp_path / "access.log"
    log.write_text("\n".join(lines * 4) + "\n")
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    script = textwrap.dedent(f"""
        from importer.backfill import backfill
        from importer.cli.common import exit_on_sigterm
        from importer.options import BackfillOptions, OutputOptions
        with exit_on_sigterm():  # as the backfill command runs it
            backfill([{str(log)!r}], "example.com", BackfillOptions(site_timezone="UTC", out_dir={str(tmp_path / "out")!r}),
                     outputs=OutputOptions(rejects=None, failed=None), memory_limit=1, ua_cache=None)
    """)
    process = subprocess.Popen(
        [sys.executable, "-c", script],
        env={**os.environ, "TMPDIR": str(scratch)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 120
    while not any(scratch.glob("plausible-backfill-*/*.arrow")) and time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()
        time.sleep(0.05)
    assert any(scratch.glob("plausible-backfill-*/*.arrow")), "the backfill never spilled"
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 128 + signal.SIGTERM, err
    assert list(scratch.iterdir()) == []
