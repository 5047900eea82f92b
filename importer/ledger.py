"""Which events are undecided, in input order: what the sender may let in and what the state saves.

The sender advances the state strictly in input order: an entry leaves the ledger only when it
and everything before it are decided, and the sender may hold at most ``window`` undecided
events, so that after ``kill -9`` a re-run sends again at most that window (see
:mod:`importer.state` for what is saved).
"""

from __future__ import annotations

import heapq
import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from .state import FileState, StateStore


class Mark:
    """A position in the input: every row of ``file`` up to ``line`` has been handed to the sender.

    ``end`` says the file was read to its end; ``size`` is its raw size measured before reading.
    """

    __slots__ = ("end", "file", "line", "size", "state")

    def __init__(
        self, file: str, line: int, end: bool = False, size: int | None = None, state: FileState | None = None
    ):
        self.file = file
        self.line = line
        self.end = end
        self.size = size
        self.state = state


class Entry:
    """One event in the ledger; ``done`` once its outcome is known, ``resend`` if the next run
    must send it again (not sent, or retries exhausted)."""

    __slots__ = ("done", "file", "line", "resend", "state")

    def __init__(self, file: str, line: int, state: FileState | None = None):
        self.file = file
        self.line = line
        self.done = False
        self.resend = False
        self.state = state


class _FileProgress:
    __slots__ = ("end", "heap", "last", "open", "state", "watermark")

    def __init__(self, state: FileState | None) -> None:
        self.state = state
        self.open: dict[int, int] = {}  # line -> events of that line still undecided
        self.heap: list[int] = []  # undecided lines (lazily cleaned)
        self.last = 0  # highest line handed to the sender (events and marks)
        self.end: Mark | None = None
        self.watermark = 0


class Ledger:
    """Which events are undecided, per input file; decisions are saved in batches.

    The producer adds each event before queueing it; a worker calls :meth:`decide`
    once its outcome is known; :meth:`flush` saves what was decided since the last flush and
    returns how many events that was, so the sender can let as many new events in. Per file,
    the watermark is the highest line below which nothing is undecided; decided lines above
    it (a retrying event holds the watermark back while others go on) are saved one by one,
    so a crash never re-sends them. Only the event loop thread touches the ledger; marks
    posted from the reader thread go through :meth:`post_mark` / :meth:`absorb_marks`.
    """

    def __init__(self, store: StateStore | None = None, files: dict[str, FileState] | None = None):
        self.store = store
        self.files = files if files is not None else {}
        # Keyed by the file's state (its identity), or by name for inputs without state: a
        # followed log and the file that replaces it after rotation share a name.
        self._progress: dict[object, _FileProgress] = {}
        self._decided: list[Entry] = []
        self._touched: set[_FileProgress] = set()  # files whose watermark may have moved
        self._posted: list[Mark] = []
        self._posted_lock = threading.Lock()
        self.undecided = 0
        self.saves = 0
        # (file id, line) of lines that were to be sent again and whose new outcome is saved.
        self.redecided: set[tuple[int, int]] = set()

    def _file(self, name: str, state: FileState | None) -> _FileProgress:
        key = state.file_id if state is not None else name
        progress = self._progress.get(key)
        if progress is None:
            progress = self._progress[key] = _FileProgress(state)
        self._touched.add(progress)
        return progress

    def add(self, file: str, line: int) -> Entry:
        state = self.files.get(file)
        entry = Entry(file, line, state)
        progress = self._file(file, state)
        count = progress.open.get(line, 0)
        if not count:
            heapq.heappush(progress.heap, line)
        progress.open[line] = count + 1
        progress.last = max(progress.last, line)
        self.undecided += 1
        return entry

    def decide(self, entry: Entry, resend: bool = False) -> None:
        entry.resend = resend
        entry.done = True
        self._decided.append(entry)

    def post_mark(self, mark: Mark) -> None:
        with self._posted_lock:
            self._posted.append(mark)

    def absorb_marks(self) -> None:
        with self._posted_lock:
            posted, self._posted = self._posted, []
        for mark in posted:
            progress = self._file(mark.file, mark.state)
            progress.last = max(progress.last, mark.line)
            if mark.end:
                progress.end = mark

    def flush(self) -> int:
        """Save what was decided since the last flush; return how many events that was.

        Raises :class:`StateError` when the save fails; later flushes then only count."""
        decided, self._decided = self._decided, []
        pending_add: list[tuple[int, int]] = []
        pending_done: list[tuple[int, int]] = []
        redecided: list[tuple[int, int]] = []
        finished: list[tuple[_FileProgress, int]] = []
        for entry in decided:
            state = entry.state
            progress = self._file(entry.file, state)
            left = progress.open[entry.line] - 1
            if left:
                progress.open[entry.line] = left
            else:
                del progress.open[entry.line]
            if state is None:
                continue
            key = (state.file_id, entry.line)
            if entry.line in state.pending:
                redecided.append(key)
            if entry.resend:
                pending_add.append(key)
            elif entry.line in state.pending:
                pending_done.append(key)
            if not left:
                finished.append((progress, entry.line))
        self.undecided -= len(decided)
        settled: dict[int, int] = {}
        complete: dict[int, int | None] = {}
        touched, self._touched = self._touched, set()
        for progress in touched:
            heap = progress.heap
            while heap and heap[0] not in progress.open:
                heapq.heappop(heap)
            watermark = heap[0] - 1 if heap else progress.last
            state = progress.state
            if state is not None and watermark > progress.watermark:
                settled[state.file_id] = watermark
            progress.watermark = max(progress.watermark, watermark)
            if state is not None and not heap and progress.end is not None and progress.end.size is not None:
                complete[state.file_id] = progress.end.size
                progress.end = None
        done_add = []
        for progress, line in finished:
            state = progress.state
            if state is not None and line > progress.watermark and line not in state.pending:
                done_add.append((state.file_id, line))
        if self.store is not None and (settled or complete or pending_add or pending_done or done_add):
            for file_id, _ in pending_add:  # a file with lines to send again is not complete
                complete.pop(file_id, None)
            store = self.store
            # After a failed save none is tried again: a later one would record lines whose
            # "send again" mark was lost with the failed one.
            self.store = None
            store.save(settled, complete, pending_add, pending_done, done_add)
            self.store = store
            self.saves += 1
            self.redecided.update(redecided)
        return len(decided)
