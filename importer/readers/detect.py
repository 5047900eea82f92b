"""Every log format the importer knows, detection by scoring, and the reader that uses them.

Detection reads the first 1,000 non-empty lines of a file, scores every format on them (the
share of lines that format parses) and takes the best; among equal scores the more specific
format (earlier in :data:`FORMATS`) wins. When no format matches at least half the sample, the
error names the two closest formats and quotes a line that the closest one does not parse.
Detection runs per file, so a directory may mix formats.
"""

from __future__ import annotations

import queue
import re
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol, TypeVar, cast

import pyarrow as pa

from .. import sources as sources_mod
from ..sources import LineBlock, Source, line_blocks, open_source
from . import aws, cdn, haproxy, jsonlogs, traefik, trailing, w3c
from .base import Batch, FormatError, Rejected, too_long_only, transcoded
from .clf import LAYOUTS, LAYOUTS_BY_NAME, ClfLayout, parse_block
from .lines import Sample

SAMPLE_LINES = 1000
MIN_SHARE = 0.5


class Parser(Protocol):
    zone_assumed: bool

    def parse(self, block: LineBlock, source_name: str) -> Batch: ...


class LogFormat(Protocol):
    @property
    def name(self) -> str: ...
    @property
    def description(self) -> str: ...
    @property
    def example(self) -> str: ...
    @property
    def family(self) -> str: ...
    @property
    def zone_less(self) -> bool: ...

    def score(self, sample: Sample) -> float: ...

    def parser(self, timezone: str) -> Parser: ...


@dataclass(frozen=True)
class ClfFormat:
    """The CLF family on the fast CSV path of :mod:`importer.readers.clf`.

    The parser reads lines with extra fields after the layout's own (see
    :mod:`importer.readers.trailing`) whatever the format's name; ``pattern`` is what detection
    scores with: the exact layout, or (:meth:`with_trailing`) the layout plus trailing fields."""

    layout: ClfLayout
    name: str
    description: str
    example: str
    pattern: re.Pattern[str]
    family: str = "access log"
    zone_less: bool = False

    @classmethod
    def exact(cls, layout: ClfLayout) -> ClfFormat:
        return cls(layout, layout.name, layout.description, layout.example, layout.pattern)

    @classmethod
    def with_trailing(cls, layout: ClfLayout, count: int | None = None) -> ClfFormat:
        """``combined with trailing fields``, or with ``count`` of them (``combined with 2 trailing fields``)."""
        fields = "trailing fields" if count is None else f"{count} trailing field{'s' if count != 1 else ''}"
        return cls(
            layout,
            f"{layout.name} with {fields}",
            f"{layout.description}, then more fields (ignored)",
            "",
            re.compile(layout.trailing_pattern),
        )

    def score(self, sample: Sample) -> float:
        rows = sample.rows
        return sum(1 for ln in rows if self.pattern.match(ln)) / len(rows) if rows else 0.0

    def parser(self, timezone: str) -> ClfParser:
        return ClfParser(self.layout)


class ClfParser:
    zone_assumed = False

    def __init__(self, layout: ClfLayout):
        self.layout = layout

    def parse(self, block: LineBlock, source_name: str) -> Batch:
        return parse_block(block, self.layout, source_name)()

    def parse_deferred(self, block: LineBlock, source_name: str) -> Callable[[], Batch]:
        """Split the lines into fields now; the returned function converts them (on another thread)."""
        return parse_block(block, self.layout, source_name)


# Order matters only for ties: more specific formats first.
FORMATS: tuple[LogFormat, ...] = (
    ClfFormat.exact(LAYOUTS_BY_NAME["combined"]),
    ClfFormat.exact(LAYOUTS_BY_NAME["main"]),
    ClfFormat.exact(LAYOUTS_BY_NAME["vhost_combined"]),
    ClfFormat.exact(LAYOUTS_BY_NAME["common"]),
    ClfFormat.exact(LAYOUTS_BY_NAME["vhost_common"]),
    traefik.TRAEFIK,
    haproxy.HAPROXY,
    *aws.FORMATS,
    *w3c.FORMATS,
    cdn.BUNNY,
    *jsonlogs.FORMATS,
)
FORMATS_BY_NAME: dict[str, LogFormat] = {f.name: f for f in FORMATS}
# Tried at detection only when no format above reads most of the sample.
TRAILING_VARIANTS: tuple[ClfFormat, ...] = tuple(ClfFormat.with_trailing(layout) for layout in LAYOUTS)
ALIASES = {
    "iis": "w3c",
    "nginx": "combined",
    "apache": "combined",
    "clf": "common",
    "ncsa": "combined",
    "traefik_clf": "traefik",
    "json": "nginx_json",
    "cloudflare_logpush": "cloudflare",
    "gcp": "gcp_lb",
}


def format_named(name: str) -> LogFormat:
    key = ALIASES.get(name.lower(), name.lower())
    if key not in FORMATS_BY_NAME:
        raise FormatError(
            f"unknown log format {name!r}; known: {', '.join(FORMATS_BY_NAME)} "
            "(or give your server's log_format / LogFormat string with --log-format)"
        )
    return FORMATS_BY_NAME[key]


@dataclass(frozen=True)
class Detection:
    format: LogFormat
    share: float
    scores: tuple[tuple[str, float], ...]


def sample_of(data: bytes) -> Sample:
    text = data[: 4 << 20].decode("utf-8", "replace")
    lines = []
    end = 0
    for number, line in enumerate(text.split("\n"), start=1):
        line = line.rstrip("\r")
        if line.strip():
            lines.append(line)
            end = number
            if len(lines) >= SAMPLE_LINES:
                break
    return Sample(lines, end)


def detect(sample: Sample) -> Detection:
    """Score every format on the sample and choose; FormatError when nothing fits most of it."""
    if not sample.lines:
        raise FormatError("no non-empty lines to detect the format from")
    if not sample.rows:
        # Only directive lines so far (a W3C file that has just been started): its #Fields say which.
        fields = [w3c.parse_fields(line) for line in sample.lines]
        layouts = [f for f in fields if f is not None]
        if layouts:
            header_only = w3c.CLOUDFRONT if layouts[-1].cloudfront else w3c.W3C
            return Detection(format=header_only, share=1.0, scores=((header_only.name, 1.0),))
    scored = _ranked(FORMATS, sample)
    if scored[0][0] < MIN_SHARE:
        # Only then a known format with trailing fields: "common" plus two fields also reads
        # every combined line, and must not win over a combined log with a few bad lines.
        scored = sorted(scored + _ranked(TRAILING_VARIANTS, sample), key=lambda s: s[0], reverse=True)
    best_share, best = scored[0]
    scores = tuple((fmt.name, share) for share, fmt in scored)
    if best_share < MIN_SHARE:
        failing = _failing_line(best, sample)
        closest = ", ".join(f"{name} ({share:.0%} of lines)" for name, share in scores[:2])
        raise FormatError(
            f"cannot recognise the log format from the first {len(sample.lines)} non-empty lines: "
            f"closest are {closest}; a line that {best.name} does not parse: {failing[:300]!r}. "
            "Name the format with --format, or give the format line from your server's configuration "
            'with --log-format, e.g. --log-format \'$remote_addr - $remote_user [$time_local] "$request" $status '
            '$body_bytes_sent "$http_referer" "$http_user_agent" $request_time\' (nginx\'s log_format) or '
            '--log-format \'%h %l %u %t "%r" %>s %b "%{Referer}i" "%{User-Agent}i" %D\' (Apache\'s LogFormat)'
        )
    if isinstance(best, ClfFormat) and best in TRAILING_VARIANTS:
        best = ClfFormat.with_trailing(best.layout, trailing.count(best.layout.trailing_pattern, sample))
    return Detection(format=best, share=best_share, scores=scores)


def _ranked(formats: Sequence[LogFormat], sample: Sample) -> list[tuple[float, LogFormat]]:
    """(share of the sample parsed, format), best first; among equal shares, in ``formats``' order."""
    scored = []
    for fmt in formats:
        try:
            share = fmt.score(sample)
        except Exception:  # a format that cannot even score this sample does not match it
            share = 0.0
        scored.append((share, fmt))
    return sorted(scored, key=lambda s: s[0], reverse=True)  # (a stable sort: ties keep their order)


def _failing_line(fmt: LogFormat, sample: Sample) -> str:
    rows = sample.rows or sample.lines
    for line in rows[:200]:
        try:
            if fmt.score(Sample([line])) == 0:
                return line
        except Exception:
            return line
    return rows[0]


class LogReader:
    """Reads one access log: the format is given, or detected from the file's first lines."""

    def __init__(
        self,
        fmt: LogFormat | None = None,
        timezone: str = "UTC",
        fields: w3c.Layout | None = None,
        encoding: str = "utf-8",
    ):
        """``fields``: W3C columns carried from the previous file, for a file that starts without
        a ``#Fields:`` line (IIS starts a new file at rotation mid-stream). ``encoding``: the
        file's text encoding (see :func:`importer.readers.base.check_encoding`)."""
        self.fmt = fmt
        self.timezone = timezone
        self.fields = fields
        self.encoding = encoding
        # the detection sample: where it ends (line number), its rows, how many were rejected
        self.sample_end = 0
        self.sample_rows = 0
        self.sample_rejected = 0
        self.detection: Detection | None = None
        self.parser: Parser | None = None
        self.name = fmt.name if fmt else "log (auto)"

    def _sample_share(self, detection: Detection) -> float:
        """The share of the sample's rows that the format matched and that were then parsed
        (a line can match the format's shape and still be rejected, for an impossible time)."""
        if not self.sample_rows:
            return detection.share
        return min(detection.share, max(0.0, 1 - self.sample_rejected / self.sample_rows))

    def describe(self) -> str:
        fmt = self.detection.format if self.detection else self.fmt
        if fmt is None:
            return "no rows"
        text = fmt.name
        if self.detection is not None:
            text += f", detected, {self._sample_share(self.detection):.0%} of sample"
        if self.parser is not None and self.parser.zone_assumed:
            text += f", times without zone read as {self.timezone}"
        return text

    def read(self, source: Source) -> Iterator[Batch]:
        """Batches of the source, parsed one block ahead in a background thread.

        Parsing (decompression, the CSV parser, Arrow kernels) and the consumer's work on the
        previous batch (mapping, sending) then overlap on a multi-core machine; at most
        :data:`PREFETCH` parsed batches wait, so memory stays bounded.
        """
        pool = pa.default_memory_pool()
        for finish in prefetch(self._read(source), PREFETCH):
            yield finish()
            # mimalloc (pyarrow's default pool) keeps freed pages per thread; handing them back
            # after each batch costs ~0.1 ms and lowers peak RSS by ~30 MB (bench/parse.py)
            pool.release_unused()

    def _read(self, source: Source) -> Iterator[Callable[[], Batch]]:
        """Per block, a function that completes its batch: parsers that can split their work
        leave the last step (converting columns) to the consumer's thread, which balances the
        two threads (reading and splitting lines is the heavier half)."""
        opened = open_source(source)
        try:
            for block in line_blocks(opened, block_bytes=sources_mod.BLOCK_BYTES):
                block = transcoded(block, self.encoding)
                if self.parser is None:
                    sample = sample_of(block.data)
                    if sample.lines:
                        self.parser = self._parser_for(sample)
                        self.sample_end = block.first_line + sample.end - 1
                        self.sample_rows = len(sample.rows)
                if self.parser is None:
                    work = _ready(too_long_only(block, source.name))
                elif isinstance(self.parser, ClfParser):
                    work = self.parser.parse_deferred(block, source.name)
                else:
                    work = _ready(self.parser.parse(block, source.name))
                yield self._completer(work, block, source.name, opened.position.consumed)
        finally:
            if not source.stdin:
                opened.raw.close()

    def _parser_for(self, sample: Sample) -> Parser:
        carried = self.fields if self.fields and not any(w3c.parse_fields(ln) for ln in sample.lines) else None
        fmt = self.fmt
        if fmt is None:
            self.detection = detect(Sample([carried.directive, *sample.lines]) if carried else sample)
            fmt = self.detection.format
        if isinstance(fmt, w3c.W3cFormat):
            return fmt.parser(self.timezone, carried)
        return fmt.parser(self.timezone)

    def carried_fields(self) -> w3c.Layout | None:
        """The W3C columns in force at the end of what was read, for the next file."""
        return self.parser.layout if isinstance(self.parser, w3c.W3cParser) else self.fields

    def _completer(
        self, work: Callable[[], Batch], block: LineBlock, source_name: str, position: int
    ) -> Callable[[], Batch]:
        def complete() -> Batch:
            batch = work()
            self.sample_rejected += sum(1 for r in batch.rejected if r.line is not None and r.line <= self.sample_end)
            self.name = self.describe()
            if block.truncated:
                batch.notices.append(Rejected(source_name, block.first_line + block.line_count, block.truncated, ""))
                batch.damaged = True
            batch.position = position
            # every line of the block is a row (read or rejected) or a line without one
            batch.skipped = max(0, block.line_count - batch.rows_read)
            return batch

        return complete


def _ready(batch: Batch) -> Callable[[], Batch]:
    return lambda: batch


PREFETCH = 1
_DONE = object()
T = TypeVar("T")


def prefetch(batches: Iterator[T], depth: int) -> Iterator[T]:
    """Run ``batches`` in a worker thread, ``depth`` items ahead; errors are re-raised here."""
    slots: queue.Queue[object] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def work() -> None:
        try:
            for item in batches:
                _put_unless_stopped(slots, stop, item)
                if stop.is_set():
                    break
        except BaseException as exc:  # handed to the consumer, which re-raises it
            _put_unless_stopped(slots, stop, exc)
            return
        finally:
            closer = getattr(batches, "close", None)
            if stop.is_set() and closer is not None:
                closer()
        _put_unless_stopped(slots, stop, _DONE)

    worker = threading.Thread(target=work, name="log-reader", daemon=True)
    worker.start()
    try:
        while True:
            item = slots.get()
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield cast(T, item)
    finally:
        stop.set()
        worker.join()


def _put_unless_stopped(slots: queue.Queue[object], stop: threading.Event, item: object) -> None:
    while not stop.is_set():
        try:
            slots.put(item, timeout=0.1)
            return
        except queue.Full:
            continue
