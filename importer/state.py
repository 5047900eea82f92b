"""Checkpoint and resume: which lines of which input are settled, kept in a SQLite file.

A source file is known by what it holds, not by its name: its identity is a hash of its first
(up to) 4 KiB *after decompression*, so ``access.log`` renamed to ``access.log.1`` and later
compressed to ``access.log.2.gz`` is still the same file, while a file truncated in place and
written anew is a new one. Identities are kept per *scope* (endpoint and domain): the same log
sent to another site or another Plausible is another job.

For each file the state holds

* ``settled_line``: every row up to this line has its fate decided (accepted, dropped,
  rejected, or written to the failed file and listed as pending);
* ``pending``: lines at or below ``settled_line`` whose events must be sent again by the next
  run (retries exhausted, or never sent because the run was interrupted);
* ``complete_size``: the raw size of the file when it was last read to its end with every row
  settled, so an unchanged file is skipped without being opened.

The sender advances the state strictly in input order (:class:`Ledger`): an entry leaves the
ledger only when it and everything before it are decided, and the sender may hold at most
``window`` undecided events. After ``kill -9`` a re-run therefore sends again at most that
window. Nothing here holds an IP address: only hashes of file heads, file names and line
numbers.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import os
import sqlite3
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import pyarrow as pa
import pyarrow.compute as pc

from .ledger import Ledger, Mark
from .remote import RemoteError
from .sources import Source, open_source

HEAD_BYTES = 4096
STATE_ENV = "PLAUSIBLE_IMPORT_STATE"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS files (
    id INTEGER PRIMARY KEY,
    scope TEXT NOT NULL,
    head_len INTEGER NOT NULL,
    head_hash TEXT NOT NULL,
    name TEXT NOT NULL,
    settled_line INTEGER NOT NULL DEFAULT 0,
    complete_size INTEGER,
    updated_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS files_head ON files (scope, head_len, head_hash);
CREATE TABLE IF NOT EXISTS pending (
    file_id INTEGER NOT NULL REFERENCES files (id),
    line INTEGER NOT NULL,
    PRIMARY KEY (file_id, line)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS done (
    file_id INTEGER NOT NULL REFERENCES files (id),
    line INTEGER NOT NULL,
    PRIMARY KEY (file_id, line)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS rejected (
    file_id INTEGER NOT NULL REFERENCES files (id),
    line INTEGER NOT NULL,
    PRIMARY KEY (file_id, line)
) WITHOUT ROWID;
"""


def default_state_path() -> Path:
    """``$PLAUSIBLE_IMPORT_STATE``, else ``$XDG_STATE_HOME/plausible-import/state.sqlite``
    (``~/.local/state/plausible-import/state.sqlite`` when XDG_STATE_HOME is unset)."""
    explicit = os.environ.get(STATE_ENV)
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "plausible-import" / "state.sqlite"


def read_head(source: Source, limit: int = HEAD_BYTES) -> bytes:
    """The first ``limit`` decompressed bytes of a file (fewer if it is shorter or damaged)."""
    opened = open_source(source)
    try:
        chunks: list[bytes] = []
        size = 0
        while size < limit:
            try:
                chunk = opened.stream.read(limit - size)
            except Exception:
                break
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        return b"".join(chunks)[:limit]
    finally:
        opened.raw.close()


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass
class FileState:
    """What the state knows about one input file, and what to skip when reading it again."""

    file_id: int
    name: str
    settled_line: int = 0
    pending: set[int] = field(default_factory=set)
    done: set[int] = field(default_factory=set)  # decided lines above settled_line
    rejected: set[int] = field(default_factory=set)  # invalid lines above settled_line already in the rejects file
    complete_size: int | None = None
    size: int | None = None  # raw size now, measured before reading

    @property
    def unchanged_and_done(self) -> bool:
        return self.complete_size is not None and self.complete_size == self.size and not self.pending


class StateError(Exception):
    """The state file cannot be used: one line naming the file and the reason."""


class StateBusy(StateError):
    """The state file is in use by another run."""


_SQLITE_REASONS = {
    "SQLITE_FULL": f"{os.strerror(errno.ENOSPC)} (ENOSPC)",
    "SQLITE_READONLY": "the file or its directory is read-only",
    "SQLITE_CORRUPT": "the file is corrupt",
    "SQLITE_NOTADB": "the file is corrupt (not an SQLite database)",
    "SQLITE_CANTOPEN": "cannot open the file",
}
_START_AFRESH = "move it away to start afresh (the next run then sends everything again)"


def _reason(exc: BaseException) -> str:
    """What went wrong, in words, with the OS or SQLite error it came from."""
    if isinstance(exc, OSError):
        code = errno.errorcode.get(exc.errno or 0, "")
        return f"{exc.strerror or exc} ({code})" if code else str(exc)
    name = getattr(exc, "sqlite_errorname", "") or ""
    for prefix, reason in _SQLITE_REASONS.items():
        if name.startswith(prefix):
            return f"{reason}; SQLite said: {exc}"
    return f"{exc} ({name})" if name else str(exc)


def _identity(path: Path) -> tuple[int, int]:
    st = os.stat(path)
    return st.st_dev, st.st_ino


def _create_private(path: Path) -> bool:
    """Create ``path`` 0600 if it does not exist; True when it did not. Tighten an existing one."""
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        return True
    except FileExistsError:
        if os.stat(path).st_mode & 0o077:
            os.chmod(path, 0o600)  # written 0644 by an older version: it held the endpoint's password
        return False


def _create_whole(path: Path) -> None:
    """Create the state file with its tables if it does not exist, all at once: the jobs of
    other sites share the file and may start at the same moment, and one of them must never see
    another's file before SQLite has written it (an empty file is refused as a damaged state)."""
    if path.exists():
        return
    fd, draft = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".new", dir=path.parent)  # 0600
    os.close(fd)
    try:
        db = sqlite3.connect(draft, isolation_level=None)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.executescript(_SCHEMA)
        finally:
            db.close()
        os.link(draft, path)  # fails, leaving the other job's file as it is, if one came first
    except FileExistsError:
        pass
    except OSError as exc:
        if exc.errno not in (errno.EPERM, errno.EOPNOTSUPP):
            raise
        # A file system without hard links (FAT, some network shares): an empty file that SQLite
        # fills, as before; two jobs starting on it in the same instant may see it empty.
        _create_private(path)
    finally:
        os.unlink(draft)


def _flock(path: Path, mode: int, deadline: float) -> IO[str] | None:
    """``path`` (created 0600) open and ``flock``-ed in ``mode`` (shared or exclusive), trying
    until ``deadline`` (``time.monotonic()``); None when it stayed locked by another."""
    _create_private(path)
    lock_file = open(path, "a+")  # held until released
    while True:
        try:
            fcntl.flock(lock_file.fileno(), mode | fcntl.LOCK_NB)
            return lock_file
        except BlockingIOError:
            if time.monotonic() >= deadline:
                break
        time.sleep(min(0.2, max(0.0, deadline - time.monotonic())))
    lock_file.close()
    return None


def _release(lock_files: Sequence[IO[str]]) -> None:
    for lock_file in reversed(lock_files):
        lock_file.close()


class StateStore:
    """The SQLite state file. One writer at a time; WAL so that a crash never corrupts it.

    ``scope`` keys what this run reads; rows kept under ``old_scope`` (the same job keyed the
    way an older version did, with the endpoint's password) are re-keyed to ``scope``. Every
    failure to open, read or save raises :class:`StateError`.
    """

    def __init__(self, path: Path, scope: str, old_scope: str | None = None, wait_s: float = 0.0):
        self.path = Path(path)
        self.scope = scope
        # A symlink and its target are one state file: lock and open what it points to.
        self._real = self.path.resolve()
        try:
            self._real.parent.mkdir(parents=True, exist_ok=True)
            self._lock_files = self._take_locks(wait_s)
        except OSError as exc:
            raise StateError(f"state file {self.path}: cannot lock it: {_reason(exc)}") from None
        try:
            self._db = self._open(old_scope)
        except (sqlite3.Error, OSError) as exc:
            _release(self._lock_files)
            raise StateError(f"state file {self.path}: cannot open it: {_reason(exc)}; {_START_AFRESH}") from None
        except StateError:
            _release(self._lock_files)
            raise
        self._lock = threading.Lock()

    @property
    def lock_path(self) -> Path:
        """One lock per scope: two overlapping runs of one job would both send the same new lines,
        while the jobs of other sites (or endpoints) sharing the file go on side by side."""
        tag = hashlib.sha256(self.scope.encode("utf-8")).hexdigest()[:16]
        return self._real.with_name(f"{self._real.name}.lock-{tag}")

    @property
    def whole_file_lock_path(self) -> Path:
        """``STATE.lock``: versions before the per-scope locks took it exclusively (``flock``,
        ``LOCK_EX | LOCK_NB``) for their whole run. This version holds it shared, so that an
        older version and this one never run on one state file at once, while this version's
        jobs of different sites still do."""
        return self._real.with_name(f"{self._real.name}.lock")

    def _take_locks(self, wait_s: float) -> tuple[IO[str], IO[str]]:
        """(the whole file's lock, shared; this scope's lock, exclusive), waiting up to ``wait_s``
        for both together."""
        deadline = time.monotonic() + max(0.0, wait_s)
        waited = f" after waiting {wait_s:g} s (--wait)" if wait_s > 0 else " (--wait SECONDS queues for it)"
        whole = _flock(self.whole_file_lock_path, fcntl.LOCK_SH, deadline)
        if whole is None:
            raise StateBusy(
                f"state file {self.path}: a run of an older version of plausible-import is using it "
                f"(it holds {self.whole_file_lock_path.name}){waited}"
            )
        scope = _flock(self.lock_path, fcntl.LOCK_EX, deadline)
        if scope is None:
            whole.close()
            raise StateBusy(
                f"state file {self.path}: another run is using it for the same endpoint and domain "
                f"(its lock is held){waited}"
            )
        return whole, scope

    def _open(self, old_scope: str | None) -> sqlite3.Connection:
        _create_whole(self._real)
        # SQLite creates the -wal and -shm files with the mode of the database file.
        _create_private(self._real)
        if os.stat(self._real).st_size == 0:
            raise StateError(f"state file {self.path}: it is empty (0 bytes), not a state file; {_START_AFRESH}")
        for suffix in ("-wal", "-shm"):
            side = self._real.with_name(self._real.name + suffix)
            if side.exists():
                _create_private(side)
        self._identity = _identity(self._real)
        db = sqlite3.connect(str(self._real), timeout=30, isolation_level=None, check_same_thread=False)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.execute("PRAGMA secure_delete=ON")  # a re-keyed scope leaves no password behind
            problems = [row[0] for row in db.execute("PRAGMA quick_check")]
            if problems != ["ok"]:
                first = " ".join(problems[0].replace("*** in database main ***", "").split())[:200]
                raise StateError(f"state file {self.path}: the file is corrupt ({first}); {_START_AFRESH}")
            db.executescript(_SCHEMA)
            if old_scope is not None and old_scope != self.scope:
                db.execute("UPDATE files SET scope = ? WHERE scope = ?", (self.scope, old_scope))
        except BaseException:
            db.close()
            raise
        return db

    def close(self) -> None:
        with self._lock:
            self._db.close()
        _release(self._lock_files)

    @contextmanager
    def _failing(self, action: str) -> Iterator[None]:
        try:
            yield
        except sqlite3.Error as exc:
            raise StateError(f"state file {self.path}: cannot {action}: {_reason(exc)}") from None

    def _check_still_there(self) -> None:
        """A state file deleted or replaced during the run would silently lose what is saved."""
        try:
            same = _identity(self._real) == self._identity
        except FileNotFoundError:
            same = False
        if not same:
            raise StateError(
                f"state file {self.path}: it was deleted or replaced during the run; progress can no longer be saved"
            )

    def file_state(self, source: Source, stream_key: str | None = None) -> FileState | None:
        """Find (or register) the state of a file by its content, or of stdin by ``stream_key``;
        None for stdin without a key or an empty file."""
        if source.stdin:
            return self._stream_state(source, stream_key) if stream_key else None
        try:
            head = read_head(source)
        except (OSError, RemoteError):
            return None
        if not head:
            return None
        with self._lock, self._failing("record the file in it"):
            lengths = [
                row[0]
                for row in self._db.execute(
                    "SELECT DISTINCT head_len FROM files WHERE scope = ? AND head_len BETWEEN 1 AND ? "
                    "ORDER BY head_len DESC",
                    (self.scope, len(head)),
                )
            ]
            found = None
            for length in lengths:
                found = self._db.execute(
                    "SELECT id, settled_line, complete_size, head_len FROM files "
                    "WHERE scope = ? AND head_len = ? AND head_hash = ? ORDER BY id LIMIT 1",
                    (self.scope, length, _digest(head[:length])),
                ).fetchone()
                if found:
                    break
            now = time.time()
            if found is None:
                cursor = self._db.execute(
                    "INSERT INTO files (scope, head_len, head_hash, name, updated_at) VALUES (?, ?, ?, ?, ?)",
                    (self.scope, len(head), _digest(head), source.name, now),
                )
                return FileState(file_id=int(cursor.lastrowid or 0), name=source.name, size=source.size)
            file_id, settled, complete, head_len = found
            if head_len < len(head):  # the file has grown past its old head: identify it more surely
                self._db.execute(
                    "UPDATE files SET head_len = ?, head_hash = ? WHERE id = ?", (len(head), _digest(head), file_id)
                )
            self._db.execute("UPDATE files SET name = ?, updated_at = ? WHERE id = ?", (source.name, now, file_id))
            pending, done, rejected = self._known_lines(file_id, settled)
        return FileState(
            file_id=file_id,
            name=source.name,
            settled_line=settled,
            pending=pending,
            done=done,
            rejected=rejected,
            complete_size=complete,
            size=source.size,
        )

    def _stream_state(self, source: Source, key: str) -> FileState:
        """A named stream (stdin under ``--state-key``): its lines count from the stream's start."""
        name = f"{source.name} ({key})"
        tag = _digest(f"stream:{key}".encode())
        with self._lock, self._failing("record the stream in it"):
            found = self._db.execute(
                "SELECT id, settled_line FROM files WHERE scope = ? AND head_len = -1 AND head_hash = ?",
                (self.scope, tag),
            ).fetchone()
            if found is None:
                cursor = self._db.execute(
                    "INSERT INTO files (scope, head_len, head_hash, name, updated_at) VALUES (?, -1, ?, ?, ?)",
                    (self.scope, tag, name, time.time()),
                )
                return FileState(file_id=int(cursor.lastrowid or 0), name=name)
            file_id, settled = found
            pending, done, rejected = self._known_lines(file_id, settled)
        return FileState(
            file_id=file_id, name=name, settled_line=settled, pending=pending, done=done, rejected=rejected
        )

    def _known_lines(self, file_id: int, settled: int) -> tuple[set[int], set[int], set[int]]:
        """A file's lines to send again, and its lines above the settled one already decided or
        already written to the rejects file."""
        pending = {row[0] for row in self._db.execute("SELECT line FROM pending WHERE file_id = ?", (file_id,))}
        return pending, self._lines_above("done", file_id, settled), self._lines_above("rejected", file_id, settled)

    def _lines_above(self, table: str, file_id: int, settled: int) -> set[int]:
        return {
            row[0]
            for row in self._db.execute(f"SELECT line FROM {table} WHERE file_id = ? AND line > ?", (file_id, settled))
        }

    def remember_rejected(self, file_id: int, lines: list[int]) -> None:
        """These invalid lines are in the rejects file now: a re-read after a crash skips them."""
        if not lines:
            return
        with self._lock, self._failing("save the checkpoint"):
            self._db.executemany(
                "INSERT OR IGNORE INTO rejected (file_id, line) VALUES (?, ?)", [(file_id, line) for line in lines]
            )

    def save(
        self,
        settled: dict[int, int],
        complete: dict[int, int | None],
        pending_add: list[tuple[int, int]],
        pending_done: list[tuple[int, int]],
        done_add: Sequence[tuple[int, int]] = (),
    ) -> None:
        """Record progress in one transaction: new settled lines, completed files, pending lines,
        and lines decided above the settled line."""
        if not (settled or complete or pending_add or pending_done or done_add):
            return
        now = time.time()
        with self._lock, self._failing("save the checkpoint"):
            self._check_still_there()
            db = self._db
            db.execute("BEGIN IMMEDIATE")
            try:
                for file_id, line in settled.items():
                    db.execute(
                        "UPDATE files SET settled_line = MAX(settled_line, ?), updated_at = ? WHERE id = ?",
                        (line, now, file_id),
                    )
                    db.execute("DELETE FROM done WHERE file_id = ? AND line <= ?", (file_id, line))
                    db.execute("DELETE FROM rejected WHERE file_id = ? AND line <= ?", (file_id, line))
                if done_add:
                    db.executemany("INSERT OR IGNORE INTO done (file_id, line) VALUES (?, ?)", done_add)
                for file_id, size in complete.items():
                    db.execute("UPDATE files SET complete_size = ? WHERE id = ?", (size, file_id))
                if pending_done:
                    db.executemany("DELETE FROM pending WHERE file_id = ? AND line = ?", pending_done)
                if pending_add:
                    db.executemany("INSERT OR IGNORE INTO pending (file_id, line) VALUES (?, ?)", pending_add)
                db.execute("COMMIT")
            except BaseException:
                if db.in_transaction:  # SQLite has already rolled back after a full disk
                    db.execute("ROLLBACK")
                raise

    def invalidate(self, file_id: int) -> None:
        """A file that is being read again is not complete until this read settles it."""
        with self._lock, self._failing("save the checkpoint"):
            self._db.execute("UPDATE files SET complete_size = NULL WHERE id = ?", (file_id,))


class Resume:
    """What a run with a state file skips and records, per source (by name)."""

    def __init__(self, store: StateStore, stream_key: str | None = None):
        self.store = store
        self.stream_key = stream_key  # checkpoints stdin under this name (--state-key)
        self.notices: list[str] = []  # for the summary
        self.files: dict[str, FileState] = {}
        self.ledger = Ledger(store, self.files)
        self.rows_skipped = 0
        self.files_skipped: list[str] = []
        self.copies: list[str] = []  # inputs not read because another input holds the same file
        self._by_id: dict[int, str] = {}

    def plan(self, sources: list[Source], follow: bool = False) -> list[Source]:
        """Look every source up; return those that still need reading.

        An unchanged file whose every row is settled is not opened again (unless it is the
        last one and ``follow`` is set: it is then tailed); a second source with the same
        content as one already planned (a copy) is skipped, since it would send the same
        events twice.
        """
        todo = []
        for index, source in enumerate(sources):
            state = self.store.file_state(source, self.stream_key)
            if state is None:
                if source.stdin:
                    self.notices.append(
                        f"{source.name}: piped input has no checkpoint and cannot be resumed: a "
                        "re-run sends all of it again (--state-key NAME checkpoints a named stream)"
                    )
                todo.append(source)
                continue
            if state.file_id in self._by_id:
                skipped = f"{source.name} (same content as {self._by_id[state.file_id]})"
                self.files_skipped.append(skipped)
                self.copies.append(skipped)
                continue
            self._by_id[state.file_id] = source.name
            if state.unchanged_and_done and not (follow and index == len(sources) - 1):
                self.files_skipped.append(f"{source.name} (already sent)")
                continue
            if state.complete_size is not None:
                self.store.invalidate(state.file_id)
            self.files[source.name] = state
            todo.append(source)
        return todo

    def batches(self, source: Source, batches: Iterator) -> Iterator:
        """Wrap a reader's batches: drop rows already settled, post read positions to the ledger.

        Rows at or below ``settled_line`` are dropped (unless pending) before they are counted,
        so the report counts only what this run reads anew. After each batch has been consumed
        (its events handed to the sender), a :class:`Mark` for its last line is posted; after
        the last batch, an end mark.
        """
        state = self.files.get(source.name)
        if state is None:
            yield from batches
            return
        ledger = self.ledger
        last = 0
        pending = pa.array(sorted(state.pending), pa.int64())
        done = pa.array(sorted(state.done), pa.int64())
        for batch in batches:
            table = batch.table
            lines = table.column("source_line") if table.num_rows else None
            top = max([r.line or 0 for r in batch.rejected], default=0)
            if lines is not None:
                top = max(top, pc.max(lines).as_py() or 0)
            if state.settled_line or state.pending or state.done or state.rejected:
                kept_rejected = [
                    r
                    for r in batch.rejected
                    if r.line is None
                    or r.line in state.pending
                    or (r.line > state.settled_line and r.line not in state.done and r.line not in state.rejected)
                ]
                skipped = len(batch.rejected) - len(kept_rejected)
                if lines is not None:
                    keep = pc.greater(lines, state.settled_line)
                    if len(done):
                        keep = pc.and_(keep, pc.invert(pc.is_in(lines, value_set=done)))
                    if len(pending):
                        keep = pc.or_(keep, pc.is_in(lines, value_set=pending))
                    filtered = table.filter(keep)
                    skipped += table.num_rows - filtered.num_rows
                    batch.table = filtered
                batch.rejected = kept_rejected
                batch.rows_read -= skipped
                self.rows_skipped += skipped
            # Remembered before the caller writes them: a crash in between loses at most these records,
            # where remembering after would write every one again after a crash.
            fresh = [r.line for r in batch.rejected if r.line is not None]
            self.store.remember_rejected(state.file_id, fresh)
            state.rejected.update(fresh)
            yield batch
            last = max(last, top)
            if last:
                ledger.post_mark(Mark(source.name, last, state=state))
        ledger.post_mark(Mark(source.name, last, end=True, size=state.size, state=state))
