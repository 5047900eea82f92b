"""``send --follow``: tail a live log across rotations, for near-real-time forwarding.

The last input given is followed: once read to its end, new lines are read as they are
written. When the file is rotated (the path now names another file, or the file was truncated
in place, as ``copytruncate`` does), the rest of the old file is read, then the new file is
followed from its first line. Each file is its own source, so the state file knows each by its
content as usual, and a later run without ``--follow`` sends nothing twice.

Only plain (uncompressed) files can be followed; a rotated, compressed copy is read normally
by a later run.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from .sources import Source

POLL_S = 0.25


class TailFile:
    """A file read as it grows; ``read`` waits for data, and returns ``b""`` only when the
    path has been rotated away (after the old file's last bytes) or ``stop`` is set."""

    def __init__(self, path: Path, stop: threading.Event, poll_s: float = POLL_S):
        self.path = path
        self.stop = stop
        self.poll_s = poll_s
        self._file = open(path, "rb")
        st = os.fstat(self._file.fileno())
        self._identity = (st.st_dev, st.st_ino)
        self.rotated = False

    def _rotated(self) -> bool:
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return False  # moved away, the new one not created yet: the old one may still grow
        if (st.st_dev, st.st_ino) != self._identity:
            return True
        return st.st_size < self._file.tell()  # truncated in place

    def _whole_lines(self, n: int) -> bytes:
        """What can be read now, up to the last complete line (a line being written waits)."""
        data = self._file.read(n)
        if not data or data.endswith(b"\n") or (n > 0 and len(data) >= n):
            return data
        cut = data.rfind(b"\n") + 1
        self._file.seek(cut - len(data), os.SEEK_CUR)
        return data[:cut]

    def read(self, n: int = -1) -> bytes:
        while True:
            data = self._whole_lines(n)
            if data:
                return data
            if self.stop.is_set():
                return b""  # a line still being written is left for the next run
            if self._rotated():
                data = self._file.read(n)  # the old file is final: its last line too
                if data:
                    return data
                self.rotated = True
                return b""
            self.stop.wait(self.poll_s)

    def readable(self) -> bool:
        return True

    def close(self) -> None:
        self._file.close()


@dataclass(frozen=True)
class LiveSource(Source):
    """A source read as it grows (see :func:`importer.sources.open_source`)."""

    stop: threading.Event = field(default_factory=threading.Event, compare=False)
    poll_s: float = POLL_S
    live = True

    # Not a full BinaryIO, only the read() that open_source uses: Source.open_raw should promise a protocol.
    def open_raw(self) -> TailFile:  # type: ignore[override]
        assert self.path is not None
        return TailFile(self.path, self.stop, self.poll_s)


def follow_sources(
    sources: list[Source],
    stop: threading.Event,
    plan: Callable[[list[Source]], list[Source]] | None = None,
    poll_s: float = POLL_S,
) -> Iterator[Source]:
    """The sources to read with ``--follow``: all but the last as given, then the last one
    followed, and after each rotation the file that replaced it, until ``stop`` is set.

    ``plan`` (the state's) is called on each new live file once it has its first bytes, so the
    state knows it by its content.
    """
    if not sources:
        return
    *before, last = sources
    yield from before
    if last.path is None:
        yield last  # stdin: read until it ends
        return
    path = last.path
    first = True
    while not stop.is_set():
        # Wait for the file to exist and hold something (just after a rotation it may not).
        while not stop.is_set():
            try:
                if path.stat().st_size > 0 or first:
                    break
            except FileNotFoundError:
                pass
            stop.wait(poll_s)
        if stop.is_set():
            return
        if plan is not None and not first:
            plan([Source(name=last.name, path=path)])  # identify it by its first bytes, as they are now
        live = LiveSource(name=last.name, path=path, stop=stop, poll_s=poll_s)
        first = False
        yield live
