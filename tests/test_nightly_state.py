"""Issue 14 (state half): a lock per (state file, endpoint, domain), --wait, and stdin under a state key."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import combined_line, start_send, wait_for, write_log

from importer import mapping as mapping_mod
from importer.mapping import Mapper
from importer.options import ReadOptions
from importer.pipeline import read_events
from importer.receiver import Faults
from importer.report import RejectsFile, Report
from importer.sinks.http import HttpSender, SendOptions
from importer.sources import Source
from importer.state import Resume, StateBusy, StateStore


def log_of(path: Path, n: int, prefix: str = "p") -> Path:
    return write_log(path, [combined_line(ip=f"198.51.100.{i % 50}", target=f"/{prefix}{i}") for i in range(n)])


def cli_send(tmp_path: Path, log: Path, endpoint: str, domain: str, state: Path, *extra: str) -> subprocess.Popen:
    return start_send(
        tmp_path,
        endpoint,
        domain,
        str(log),
        "--rate",
        "400",
        "--timeout",
        "120",  # answers held by Receiver.hold wait while the other job starts, however long that takes
        "--state",
        str(state),
        *extra,
        domain=domain,
    )


def test_two_sites_jobs_share_one_state_file_at_the_same_time(tmp_path, make_receiver):
    receiver = make_receiver(Faults(delay_s=0.002))
    receiver.hold(after=0)  # no job can finish before the other one has started sending
    state = tmp_path / "state.sqlite"
    logs = {domain: log_of(tmp_path / f"{domain}.log", 600, prefix=domain) for domain in ("a.example", "b.example")}
    jobs = {domain: cli_send(tmp_path, log, receiver.endpoint, domain, state) for domain, log in logs.items()}
    # Both are sending at once: neither waits for the other's lock.
    wait_for(
        lambda: (
            {e["domain"] for e in receiver.events} == set(jobs) or any(job.poll() is not None for job in jobs.values())
        ),
    )
    ended = {domain: job.communicate()[1] for domain, job in jobs.items() if job.poll() is not None}
    assert not ended, f"a job ended before the other started sending: {ended}"
    receiver.release()
    for domain, job in jobs.items():
        _, err = job.communicate(timeout=120)
        assert job.returncode == 0, err
        assert json.loads((tmp_path / f"report-{domain}.json").read_text())["accepted"] == 600
    assert len(list(tmp_path.glob("state.sqlite.lock-*"))) == 2
    # Each job's checkpoint was kept: a second night sends nothing.
    again = {domain: cli_send(tmp_path, log, receiver.endpoint, domain, state) for domain, log in logs.items()}
    for job in again.values():
        _, err = job.communicate(timeout=120)
        assert job.returncode == 0, err
    assert len(receiver.events) == 1200


def test_the_same_job_twice_is_still_refused(tmp_path):
    state = tmp_path / "state.sqlite"
    first = StateStore(state, scope="http://h/api/event a.example")
    try:
        with pytest.raises(StateBusy, match=r"another run is using it .*--wait SECONDS"):
            StateStore(state, scope="http://h/api/event a.example")
        StateStore(state, scope="http://h/api/event b.example").close()  # another site: its own lock
    finally:
        first.close()


def test_wait_queues_for_the_lock_instead_of_failing(tmp_path):
    state = tmp_path / "state.sqlite"
    scope = "http://h/api/event a.example"
    holder = StateStore(state, scope=scope)
    script = (
        "import sys, time; from importer.state import StateStore, StateBusy\n"
        "started = time.monotonic()\n"
        "print('trying', flush=True)\n"
        "try:\n"
        f"    StateStore(sys.argv[1], scope={scope!r}, wait_s=float(sys.argv[2])).close()\n"
        "except StateBusy as exc:\n"
        "    print('busy', exc); sys.exit(2)\n"
        "print('got it after', round(time.monotonic() - started, 1))\n"
    )
    queued = subprocess.Popen([sys.executable, "-c", script, str(state), "120"], stdout=subprocess.PIPE, text=True)
    impatient = subprocess.run(
        [sys.executable, "-c", script, str(state), "0.3"], stdout=subprocess.PIPE, text=True, check=False, timeout=120
    )
    assert impatient.returncode == 2 and "after waiting 0.3 s (--wait)" in impatient.stdout
    assert queued.stdout is not None and queued.stdout.readline() == "trying\n"  # its clock runs from here
    time.sleep(1.0)  # how long the lock is kept from it, not a guess at how long something takes
    assert queued.poll() is None  # still waiting
    holder.close()
    out, _ = queued.communicate(timeout=120)
    assert queued.returncode == 0 and out.startswith("got it after")
    assert float(out.split()[-1]) >= 1.0


# What versions before the per-scope locks did for their whole run (importer/state.py up to
# commit 88cd97a): open STATE.lock "a+" and flock it exclusively without blocking; a run that
# cannot take it stops ("another run is using it"). argv: the state file.
OLD_VERSION_RUN = (
    "import fcntl, sys\n"
    "lock = open(sys.argv[1] + '.lock', 'a+')\n"
    "try:\n"
    "    fcntl.flock(lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)\n"
    "except OSError:\n"
    "    print('busy', flush=True); sys.exit(2)\n"
    "print('locked', flush=True)\n"
    "sys.stdin.readline()  # the run goes on until the test ends it\n"
)


def old_version_run(state: Path) -> subprocess.Popen:
    run = subprocess.Popen(
        [sys.executable, "-c", OLD_VERSION_RUN, str(state)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert run.stdout is not None
    return run


def test_an_older_versions_run_makes_a_new_send_fail_or_wait(tmp_path, receiver):
    state = tmp_path / "state.sqlite"
    log = log_of(tmp_path / "a.log", 20)
    old = old_version_run(state)
    try:
        assert old.stdout.readline().strip() == "locked"
        refused = cli_send(tmp_path, log, receiver.endpoint, "a.example", state)
        _, err = refused.communicate(timeout=120)
        assert refused.returncode == 2 and len(receiver.events) == 0, err
        assert "an older version of plausible-import is using it (it holds state.sqlite.lock)" in err
        assert "--wait SECONDS" in err
        queued = cli_send(tmp_path, log, receiver.endpoint, "a.example", state, "--wait", "60")
        time.sleep(1.5)
        assert queued.poll() is None and len(receiver.events) == 0  # waiting, nothing sent
    finally:
        old.communicate("done\n", timeout=30)
    _, err = queued.communicate(timeout=120)
    assert queued.returncode == 0 and len(receiver.events) == 20, err


def test_a_new_run_makes_an_older_versions_run_fail_and_new_runs_of_other_sites_go_on(tmp_path):
    state = tmp_path / "state.sqlite"
    first = StateStore(state, scope="http://h/api/event a.example")
    try:
        old = old_version_run(state)
        out, _ = old.communicate(timeout=30)
        assert (old.returncode, out.strip()) == (2, "busy")
        StateStore(state, scope="http://h/api/event b.example").close()  # another site: side by side
    finally:
        first.close()
    old = old_version_run(state)  # nothing holds it now
    try:
        assert old.stdout.readline().strip() == "locked"
        with pytest.raises(StateBusy, match=r"older version .* after waiting 0.3 s \(--wait\)"):
            StateStore(state, scope="http://h/api/event b.example", wait_s=0.3)
    finally:
        old.communicate("done\n", timeout=30)


class _Stdin:
    def __init__(self, data: bytes):
        self.buffer = io.BytesIO(data)


def _send_stdin(tmp_path: Path, lines: list[str], endpoint: str, key: str | None, monkeypatch) -> tuple[Report, Resume]:
    monkeypatch.setattr(sys, "stdin", _Stdin(("\n".join(lines) + "\n").encode()))
    store = StateStore(tmp_path / "state.sqlite", scope=f"{endpoint} example.com")
    resume = Resume(store, stream_key=key)
    report = Report()
    rejects = RejectsFile(None)
    try:
        sources = resume.plan([Source(name="<stdin>")])
        mapper = Mapper(mapping_mod.load("web"), "example.com")
        events = read_events(sources, mapper, report, rejects, read=ReadOptions(), resume=resume)
        HttpSender(
            SendOptions(endpoint=endpoint, rate=0), report, rejects, ledger=resume.ledger, handle_signals=False
        ).run(events)
    finally:
        store.close()
    return report, resume


def test_stdin_under_a_state_key_resumes_where_the_stream_stopped(tmp_path, receiver, monkeypatch):
    lines = [combined_line(ip=f"198.51.100.{i}", target=f"/s{i}") for i in range(30)]
    first, resume = _send_stdin(tmp_path, lines[:20], receiver.endpoint, "nightly-pipe", monkeypatch)
    assert first.accepted == 20 and not resume.notices
    # The same stream again, grown by 10 lines: lines are counted from its start, only the new ones go.
    second, _ = _send_stdin(tmp_path, lines, receiver.endpoint, "nightly-pipe", monkeypatch)
    assert second.accepted == 10 and second.rows_read == 10
    assert sorted(e["url"] for e in receiver.events) == sorted(f"https://example.com/s{i}" for i in range(30))
    # Another key is another stream.
    other, _ = _send_stdin(tmp_path, lines[:5], receiver.endpoint, "other", monkeypatch)
    assert other.accepted == 5


def test_stdin_without_a_key_says_it_has_no_checkpoint(tmp_path, receiver, monkeypatch):
    lines = [combined_line(target=f"/s{i}") for i in range(3)]
    report, resume = _send_stdin(tmp_path, lines, receiver.endpoint, None, monkeypatch)
    assert report.accepted == 3
    (notice,) = resume.notices
    assert "no checkpoint" in notice and "cannot be resumed" in notice and "--state-key" in notice
    again, _ = _send_stdin(tmp_path, lines, receiver.endpoint, None, monkeypatch)
    assert again.accepted == 3  # sent again, as the notice says
