"""The state file fails loudly: every trouble with it is one line naming the file and exit 2,
never a traceback, never a silent fresh start, and never more duplicates than the window."""

from __future__ import annotations

import errno
import multiprocessing
import os
import subprocess
import time
import uuid
from pathlib import Path

import pytest
from conftest import accounted, finish, start_send, wait_for
from test_sender_faults import make_log, pages_of

from importer.receiver import Faults

CONCURRENCY = 8
WINDOW = CONCURRENCY * 33  # SendOptions.window: concurrency x (queue per worker + 1)


def start(tmp_path: Path, log: Path, endpoint: str, tag: str, state: Path, rate: str = "0") -> subprocess.Popen:
    return start_send(
        tmp_path,
        endpoint,
        tag,
        str(log),
        "--rate",
        rate,
        "--concurrency",
        str(CONCURRENCY),
        "--state",
        str(state),
        "--backoff",
        "0.01",
        "--drain-timeout",
        "5",
        "--timeout",
        "120",  # answers held by Receiver.hold wait while the test acts, however long that takes
    )


def run(tmp_path: Path, log: Path, endpoint: str, tag: str, state: Path) -> tuple[int, str]:
    return finish(start(tmp_path, log, endpoint, tag, state))


def one_error_line(err: str, state: Path, *words: str) -> str:
    """The run's last line says what is wrong with which file; no traceback anywhere."""
    assert "Traceback" not in err, err
    last = err.strip().splitlines()[-1]
    assert last.startswith("error: ") and str(state) in last, err
    for word in words:
        assert word in last, (word, last)
    return last


@pytest.fixture
def tmpfs(tmp_path):
    """A small filesystem of our own, to fill up or make read-only."""
    mount = tmp_path / "fs"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=16m", f"importer-{uuid.uuid4().hex[:8]}", str(mount)],
        check=False,
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {done.stderr.strip()}")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


def test_empty_state_file_is_refused_not_taken_as_fresh(tmp_path, receiver):
    log = tmp_path / "access.log"
    make_log(log, 20)
    state = tmp_path / "state.sqlite"
    state.touch()
    code, err = run(tmp_path, log, receiver.endpoint, "a", state)
    assert code == 2 and not receiver.events, err
    one_error_line(err, state, "empty (0 bytes)")


def test_corrupt_state_file_is_one_line_and_exit_2(tmp_path, receiver):
    log = tmp_path / "access.log"
    make_log(log, 200)
    state = tmp_path / "state.sqlite"
    assert run(tmp_path, log, receiver.endpoint, "a", state)[0] == 0
    data = bytearray(state.read_bytes())
    assert len(data) >= 3 * 4096
    data[4096 + 100 : 2 * 4096] = os.urandom(4096 - 100)  # a damaged page, the header intact
    state.write_bytes(bytes(data))
    log.write_text(log.read_text() + log.read_text().replace("/p", "/q"))
    code, err = run(tmp_path, log, receiver.endpoint, "b", state)
    assert code == 2 and len(receiver.events) == 200, err
    one_error_line(err, state, "corrupt")


@pytest.fixture
def read_only(tmp_path):
    """Make one file read-only, even for root: bind-mount it over itself, read-only."""
    mounted: list[Path] = []

    def make(path: Path) -> None:
        done = subprocess.run(["mount", "--bind", str(path), str(path)], capture_output=True, text=True, check=False)
        if done.returncode != 0:
            pytest.skip(f"cannot bind-mount here (needs root): {done.stderr.strip()}")
        mounted.append(path)
        subprocess.run(["mount", "-o", "remount,ro,bind", str(path)], check=True)

    yield make
    for path in mounted:
        subprocess.run(["umount", "-l", str(path)], check=False)


def test_read_only_state_file_is_one_line_and_exit_2(tmp_path, receiver, read_only):
    log = tmp_path / "access.log"
    make_log(log, 20)
    state = tmp_path / "state.sqlite"
    assert run(tmp_path, log, receiver.endpoint, "a", state)[0] == 0
    read_only(state)
    make_log(log, 20, first=20)
    code, err = run(tmp_path, log, receiver.endpoint, "b", state)
    assert code == 2 and len(receiver.events) == 20, err
    one_error_line(err, state, "read-only")


def test_read_only_filesystem_is_one_line_and_exit_2(tmp_path, receiver, tmpfs):
    log = tmp_path / "access.log"
    make_log(log, 20)
    state = tmpfs / "state.sqlite"
    assert run(tmp_path, log, receiver.endpoint, "a", state)[0] == 0
    subprocess.run(["mount", "-o", "remount,ro", str(tmpfs)], check=True)
    make_log(log, 20, first=20)
    code, err = run(tmp_path, log, receiver.endpoint, "b", state)
    assert code == 2 and len(receiver.events) == 20, err
    one_error_line(err, state, "Read-only file system")


def test_state_file_deleted_mid_run_stops_the_run_with_exit_2(tmp_path, make_receiver):
    log = tmp_path / "access.log"
    make_log(log, 3000)
    receiver = make_receiver(Faults(delay_s=0.002))
    state = tmp_path / "state.sqlite"
    receiver.hold(after=300)  # the run cannot end before the file is gone
    process = start(tmp_path, log, receiver.endpoint, "a", state, rate="1000")
    wait_for(lambda: receiver.stats.accepted >= 300 or process.poll() is not None)
    assert process.poll() is None, "the run ended before the state file could be deleted"
    for path in tmp_path.glob("state.sqlite*"):
        if ".lock" not in path.name:
            path.unlink()
    receiver.release()
    code, err = finish(process)
    assert code == 2, err
    one_error_line(err, state, "deleted or replaced")
    report = accounted(tmp_path, "a")
    assert report["accepted"] < 3000 and report["failed"] > 0  # it stopped instead of sending on


def test_state_through_a_symlink_is_the_same_locked_state(tmp_path, make_receiver):
    log = tmp_path / "access.log"
    make_log(log, 2000)
    receiver = make_receiver(Faults(delay_s=0.002))
    state = tmp_path / "a.sqlite"
    link = tmp_path / "link.sqlite"
    link.symlink_to(state)
    receiver.hold(after=100)  # the first run holds the lock for as long as the second one takes to start
    first = start(tmp_path, log, receiver.endpoint, "a", state, rate="1000")
    wait_for(lambda: receiver.stats.accepted >= 100 or first.poll() is not None)
    assert first.poll() is None
    code, err = run(tmp_path, log, receiver.endpoint, "b", link)
    receiver.release()
    assert code == 2, err
    one_error_line(err, link, "another run is using it")
    assert finish(first)[0] == 0
    assert max(pages_of(receiver).values()) == 1 and len(receiver.events) == 2000  # nothing sent twice


def fill(directory: Path) -> None:
    """Write until the filesystem is full (ENOSPC); unbuffered, so that closing cannot fail."""
    fd = os.open(directory / "filler", os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        while True:
            os.write(fd, bytes(65536))
    except OSError as exc:
        if exc.errno != errno.ENOSPC:
            raise
    finally:
        os.close(fd)


def test_full_disk_mid_run_stops_accounts_everything_and_keeps_the_duplicate_bound(tmp_path, make_receiver, tmpfs):
    log = tmp_path / "access.log"
    pages = make_log(log, 4000)
    receiver = make_receiver(Faults(delay_s=0.002))
    state = tmpfs / "state.sqlite"
    receiver.hold(after=500)  # the run cannot end before the disk is full
    process = start(tmp_path, log, receiver.endpoint, "a", state, rate="1000")
    wait_for(lambda: receiver.stats.accepted >= 500 or process.poll() is not None)
    assert process.poll() is None, "the run ended before the disk could be filled"
    fill(tmpfs)
    receiver.release()
    code, err = finish(process)
    assert code == 2, err
    one_error_line(err, state, "No space left on device", "ENOSPC", "stopped sending")
    report = accounted(tmp_path, "a")
    assert report["accepted"] < 4000 and report["failed"] > 0

    (tmpfs / "filler").unlink()
    code, err = run(tmp_path, log, receiver.endpoint, "b", state)
    assert code == 0, err
    accounted(tmp_path, "b")
    got = pages_of(receiver)
    assert set(got) == set(pages)  # nothing lost
    duplicates = sum(count - 1 for count in got.values())
    print(f"duplicates after a full disk: {duplicates} (bound {WINDOW})")
    assert duplicates <= WINDOW, duplicates


def _open_store_at_once(path: str, scope: str, start_at: float) -> str:
    from importer.state import StateError, StateStore

    time.sleep(max(0.0, start_at - time.time()))
    try:
        StateStore(Path(path), scope=scope).close()
    except StateError as exc:
        return str(exc)
    return "ok"


def test_jobs_of_several_sites_creating_one_state_file_at_once_all_open_it(tmp_path):
    """A new state file is never seen empty: a job starting while another job of another site
    creates the file must open it, not refuse it as an empty (damaged) state file."""
    context = multiprocessing.get_context("spawn")
    with context.Pool(6) as pool:
        pool.map(abs, range(6))  # the workers are up before the race starts
        for attempt in range(15):
            path = str(tmp_path / f"state-{attempt}.sqlite")
            start_at = time.time() + 0.3
            jobs = [(path, f"http://h/api/event site{n}.example", start_at) for n in range(6)]
            assert pool.starmap(_open_store_at_once, jobs) == ["ok"] * 6
