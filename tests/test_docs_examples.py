"""The nightly-job examples in docs/nightly.md work as written: the crontab line's command, the
systemd service's command and logrotate's postrotate command run against the local receiver,
and the unit files pass ``systemd-analyze verify`` where it is installed.

Only two things change from the page: the example paths (/var/log/nginx, /var/lib/plausible-import)
move into the test's directory, and ``PLAUSIBLE_IMPORT_ENDPOINT`` points at the receiver.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import combined_line, write_log

NIGHTLY = Path(__file__).resolve().parent.parent / "docs" / "nightly.md"


def blocks(text: str) -> list[str]:
    return re.findall(r"```[a-z]*\n(.*?)```", text, flags=re.S)


def cron_command() -> str:
    (line,) = [ln for b in blocks(NIGHTLY.read_text()) for ln in b.splitlines() if ln.startswith("15 3 * * *")]
    return line.split(None, 5)[5]


def unit_files() -> dict[str, str]:
    units = {}
    for block in blocks(NIGHTLY.read_text()):
        first = block.splitlines()[0]
        if first.startswith("# /etc/systemd/system/"):
            units[first.rsplit("/", 1)[1]] = block
    return units


def postrotate_command() -> str:
    (block,) = [b for b in blocks(NIGHTLY.read_text()) if "postrotate" in b]
    (line,) = [ln.strip() for ln in block.splitlines() if ln.strip().startswith("plausible-import ")]
    return line


def in_test_dir(command: str, root: Path) -> str:
    return command.replace("/var/log/nginx/", f"{root}/log/").replace("/var/lib/plausible-import/", f"{root}/lib/")


def run_shell(command: str, root: Path, receiver, **env: str) -> subprocess.CompletedProcess:
    bin_dir = str(Path(sys.executable).parent)  # where pip put the plausible-import command
    environ = {
        **os.environ,
        "PATH": bin_dir + os.pathsep + os.environ.get("PATH", ""),
        "PLAUSIBLE_IMPORT_ENDPOINT": receiver.endpoint,
        **env,
    }
    return subprocess.run(command, shell=True, cwd=root, env=environ, capture_output=True, text=True, timeout=120)


def recent_log(path: Path, n: int, first: int = 0) -> Path:
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    lines = [
        combined_line(ip=f"198.51.100.{i % 200}", target=f"/p{first + i}", when=now - dt.timedelta(minutes=n - i))
        for i in range(n)
    ]
    return write_log(path, lines)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    (tmp_path / "log").mkdir()
    (tmp_path / "lib").mkdir()
    return tmp_path


def test_the_crontab_line_runs_as_written_and_a_second_night_sends_nothing_twice(root, receiver):
    recent_log(root / "log" / "access.log", 20)
    command = in_test_dir(cron_command(), root)
    state = {"PLAUSIBLE_IMPORT_STATE": str(root / "lib" / "state.sqlite")}
    first = run_shell(command, root, receiver, **state)
    assert first.returncode == 0, first.stderr
    assert receiver.stats.accepted == 20 and (root / "lib" / "last-run.json").exists()
    again = run_shell(command, root, receiver, **state)
    assert again.returncode == 0 and receiver.stats.accepted == 20, again.stderr


def test_the_systemd_service_command_runs_and_the_units_verify(root, receiver):
    units = unit_files()
    assert set(units) == {"plausible-import.service", "plausible-import.timer"}
    service = units["plausible-import.service"]
    (exec_start,) = [ln.split("=", 1)[1] for ln in service.splitlines() if ln.startswith("ExecStart=")]
    recent_log(root / "log" / "access.log", 5)
    # ExecStart runs without a shell: the words as they are, the glob left to plausible-import
    words = shlex.split(in_test_dir(exec_start, root))
    words[0] = str(Path(sys.executable).parent / "plausible-import")
    done = subprocess.run(
        words,
        cwd=root / "lib",
        capture_output=True,
        text=True,
        timeout=120,
        env={
            **os.environ,
            "PLAUSIBLE_IMPORT_ENDPOINT": receiver.endpoint,
            "PLAUSIBLE_IMPORT_STATE": str(root / "lib" / "state.sqlite"),
        },
    )
    assert done.returncode == 0, done.stderr
    assert receiver.stats.accepted == 5 and (root / "lib" / "last-run.json").exists()
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed: the unit files were not verified")
    units_dir = root / "units"
    units_dir.mkdir()
    for name, text in units.items():
        text = text.replace("/usr/local/bin/plausible-import", words[0])  # an executable that exists here
        (units_dir / name).write_text(text)
    verified = subprocess.run(
        ["systemd-analyze", "verify", *map(str, sorted(units_dir.iterdir()))],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert verified.returncode == 0, verified.stderr


def test_the_logrotate_postrotate_command_sends_the_rotated_file_once(root, receiver):
    recent_log(root / "log" / "access.log.1", 8)
    command = in_test_dir(postrotate_command(), root)
    done = run_shell(command, root, receiver)
    assert done.returncode == 0, done.stderr
    assert receiver.stats.accepted == 8
    again = run_shell(command, root, receiver)
    assert again.returncode == 0 and receiver.stats.accepted == 8, again.stderr
