"""The run's accounting: counters, the rejects file, and the end-of-run summary.

Two invariants hold for every run and are checked by the tests:

* ``rows_read = rows_invalid + sum(rows_filtered) + events``
* when events were sent: ``events = accepted + dropped + rejected + failed``
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import os
import re
import secrets
import threading
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    import pyarrow as pa

REPORT_KEYS = (
    "lines_skipped",
    "rows_read",
    "rows_invalid",
    "inputs_damaged",
    "rows_filtered",
    "events",
    "events_by_name",
    "sent",
    "accepted",
    "dropped",
    "rejected",
    "failed",
    "retries",
    "timeouts",
    "maybe_duplicated",
    "duration_s",
)

INVALID_SAMPLES = 5


@dataclass
class Report:
    lines_skipped: int = 0  # input lines that hold no row (blank lines, comments, W3C directives)
    rows_read: int = 0
    rows_invalid: int = 0
    inputs_damaged: int = 0  # inputs read only in part (a damaged compressed stream or Parquet row group)
    rows_filtered: Counter = field(default_factory=Counter)
    events: int = 0
    events_by_name: Counter = field(default_factory=Counter)
    events_by_day: Counter = field(default_factory=Counter)  # (UTC date, event name) -> events, for --html
    sent: int = 0
    accepted: int = 0
    dropped: int = 0
    rejected: int = 0
    failed: int = 0
    retries: int = 0
    timeouts: int = 0  # tries that got no answer within --timeout (the server may have recorded them)
    maybe_duplicated: int = 0  # events tried again after a timeout: they may have arrived twice
    duration_s: float = 0.0
    # Context for the printed summary; not part of the JSON report.
    dry_run: bool = False
    sources: list[tuple[str, str]] = field(default_factory=list)  # (file, format)
    invalid_samples: list[str] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)
    skipped_sources: list[str] = field(default_factory=list)
    rejects_path: str | None = None
    oldest: Any = None
    newest: Any = None
    # Sending: the failed file, the state file, what resume skipped, how the run ended.
    failed_path: str | None = None
    state_path: str | None = None
    window: int | None = None  # the most events undecided at once (re-sent at most after a crash)
    rows_skipped: int = 0
    files_skipped: list[str] = field(default_factory=list)
    interrupted: int | None = None  # signal number
    state_error: str | None = None  # the state file failed mid-run: sending stopped

    def as_dict(self) -> dict:
        return {
            "lines_skipped": self.lines_skipped,
            "rows_read": self.rows_read,
            "rows_invalid": self.rows_invalid,
            "inputs_damaged": self.inputs_damaged,
            "rows_filtered": dict(sorted(self.rows_filtered.items())),
            "events": self.events,
            "events_by_name": dict(sorted(self.events_by_name.items())),
            "sent": self.sent,
            "accepted": self.accepted,
            "dropped": self.dropped,
            "rejected": self.rejected,
            "failed": self.failed,
            "retries": self.retries,
            "timeouts": self.timeouts,
            "maybe_duplicated": self.maybe_duplicated,
            "duration_s": round(self.duration_s, 3),
        }

    def write_json(self, path: Path) -> None:
        path.write_text(json.dumps(self.as_dict(), indent=2) + "\n", encoding="utf-8")

    def count_events(self, events: "pa.Table") -> None:
        """Add an event batch to the counts: events, by name, by UTC day and name, time span."""
        import pyarrow as pa
        import pyarrow.compute as pc

        if not events.num_rows:
            return
        self.events += events.num_rows
        days = pa.table({"day": pc.cast(events.column("timestamp"), pa.date32()), "name": events.column("name")})
        for row in days.group_by(["day", "name"]).aggregate([([], "count_all")]).to_pylist():
            self.events_by_name[row["name"]] += row["count_all"]
            self.events_by_day[(row["day"], row["name"])] += row["count_all"]
        span = pc.min_max(events.column("timestamp"))
        lo, hi = span["min"].as_py(), span["max"].as_py()
        if lo is not None:
            self.oldest = lo if self.oldest is None else min(self.oldest, lo)
            self.newest = hi if self.newest is None else max(self.newest, hi)

    @property
    def settled(self) -> int:
        return self.accepted + self.dropped + self.rejected + self.failed

    def add_reading(self, table: "SummaryTable") -> None:
        """The reading half of a summary (sources, rows, filters, events), shared by every command."""
        for source, fmt in self.sources:
            table.add(f"source ({fmt})", source)
        if self.lines_skipped:
            table.add("lines skipped (blank, comments)", self.lines_skipped)
        table.add("rows read", self.rows_read)
        table.add("rows invalid", self.rows_invalid)
        if self.inputs_damaged:
            table.add("inputs damaged (read in part)", self.inputs_damaged)
        for reason, count in sorted(self.rows_filtered.items(), key=lambda kv: -kv[1]):
            table.add(f"filtered: {reason}", count)
        table.add("events", self.events)
        for name, count in sorted(self.events_by_name.items(), key=lambda kv: -kv[1]):
            table.add(f"  {name}", count)

    def reading_trailer(self) -> list[str]:
        """Lines under the table: bad lines quoted, notices, inputs skipped."""
        return ([f"invalid: {sample}" for sample in self.invalid_samples]
                + [f"note: {notice}" for notice in self.notices]
                + [f"skipped: {skipped}" for skipped in self.skipped_sources])

    def summary(self) -> str:
        """A plain-text table for the end of a run."""
        table = SummaryTable()
        add = table.add
        self.add_reading(table)
        if self.oldest is not None:
            add("time span (UTC)", f"{self.oldest:%Y-%m-%d %H:%M:%S} .. {self.newest:%Y-%m-%d %H:%M:%S}")
        if self.dry_run:
            add("sent", "0 (dry run)")
        else:
            add("sent", self.sent)
            add("  accepted", self.accepted)
            add("  dropped by Plausible", self.dropped)
            add("  rejected (400)", self.rejected)
            add("  failed", self.failed)
            add("retries", self.retries)
            if self.timeouts:
                add("no answer in time", f"{self.timeouts:,} tries (--timeout); "
                                         f"{self.maybe_duplicated:,} events may have arrived twice")
        add("duration", f"{self.duration_s:.1f} s")
        if self.rejects_path:
            add("rejects file", self.rejects_path)
        if self.failed_path:
            add("failed file", self.failed_path)
        if self.state_path:
            add("state file", self.state_path)
            add("rows skipped (sent before)", self.rows_skipped)
            add("files skipped", len(self.files_skipped))
        if self.window is not None:
            add("in-flight window", f"{self.window:,} events (a crash re-sends at most these)")
        if self.interrupted is not None:
            add("interrupted", f"by signal {self.interrupted}; state saved, in-flight events drained")
        return table.render(self.reading_trailer())


class SummaryTable:
    """Label/value rows printed as an aligned table between two rules, then trailer lines."""

    def __init__(self) -> None:
        self.rows: list[tuple[str, str]] = []

    def add(self, label: str, value: Any) -> None:
        self.rows.append((label, f"{value:,}" if isinstance(value, int) else str(value)))

    def render(self, trailer: list[str]) -> str:
        width = max(len(label) for label, _ in self.rows)
        lines = [f"{label.ljust(width)}  {value}" for label, value in self.rows]
        rule = "-" * max(len(line) for line in lines)
        return "\n".join([rule, *lines, rule, *trailer])


# Candidates are found loosely (an address glued to letters or underscores, ``x_203.0.113.10``,
# still counts) and kept only when they parse; a digit, dot or colon next to them would make
# them another token.
_IP_CANDIDATE = re.compile(
    r"(?<![0-9A-Fa-f:])[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){2,7}(?:\.\d{1,3}){0,3}(?:%[\w.-]+)?(?![0-9A-Fa-f:])"
    r"|(?<!\d)(?<!\d\.)\d{1,3}(?:\.\d{1,3}){3}(?!\d)(?!\.\d)"
)
_URL_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/\s?#]*@")
_RUN_KEY = secrets.token_bytes(16)


def _parse_ip(token: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    if ":" not in token:  # a dotted quad; zero-padded octets (011.022.033.044) as logs write them
        octets = [int(part) for part in token.split(".")]
        return ipaddress.IPv4Address(bytes(octets)) if max(octets) <= 255 else None
    try:
        return ipaddress.ip_address(token)
    except ValueError:
        return None


def redact_ips(text: str) -> str:
    """Replace IP addresses in free text by a keyed hash, ``ip:1a2b3c4d``.

    Rejected input lines are quoted to help people fix their data, but files and summaries
    that cron mails around must not carry visitors' addresses. The key is random per run, so
    one address reads the same throughout a run's output and cannot be looked up later.
    """

    def replace(match: re.Match) -> str:
        address = _parse_ip(match.group(0))
        if address is None:
            return match.group(0)
        digest = hashlib.blake2b(address.packed, key=_RUN_KEY, digest_size=4).hexdigest()
        return f"ip:{digest}"

    return _IP_CANDIDATE.sub(replace, text) if text else text


def redact_url(text: str) -> str:
    """Hide the password of every URL in ``text``: ``http://user:***@host/``.

    ``--endpoint http://user:pass@host/api/event`` is printed in summaries and stored with
    failed events; the password must stay on the command line.
    """
    def replace(match: re.Match) -> str:
        user = match.group(0)[len(match.group(1)):-1].split(":", 1)[0]
        return f"{match.group(1)}{user}:***@"

    return _URL_USERINFO.sub(replace, text) if text else text


def without_userinfo(url: str) -> str:
    """``url`` without its ``user:password@`` part: how the state file keys an endpoint."""
    return _URL_USERINFO.sub(r"\1", url)


def open_private(path: Path, mode: str = "a") -> IO[str]:
    """Open a file the tool writes for its user only (0600): it may quote input lines."""
    path.parent.mkdir(parents=True, exist_ok=True)
    flags = os.O_WRONLY | os.O_CREAT | (os.O_APPEND if mode == "a" else os.O_TRUNC)
    fd = os.open(path, flags, 0o600)
    os.fchmod(fd, 0o600)  # a file an older version created 0644
    return os.fdopen(fd, mode, encoding="utf-8")


class RejectsFile:
    """Append-only JSON-lines file of everything that could not be used, with the reason.

    Opened on first write, so a clean run leaves no empty file behind. Safe to call from the
    reader thread and the sender's event loop at once.
    """

    def __init__(self, path: Path | None):
        self.path = path
        self._file: IO[str] | None = None
        self._lock = threading.Lock()
        self.count = 0

    def write(self, record: dict) -> None:
        if self.path is None:
            return
        if record.get("stage") == "read":
            record = {**record, "text": redact_ips(record.get("text") or ""),
                      "reason": redact_ips(record.get("reason") or "")}
        elif "reason" in record:  # an error message may quote an address or the endpoint
            record = {**record, "reason": redact_url(redact_ips(str(record["reason"])))}
        line = json.dumps(record, ensure_ascii=False, default=str) + "\n"
        with self._lock:
            if self._file is None:
                self._file = open_private(self.path)
            self._file.write(line)
            self.count += 1

    def close(self) -> None:
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None
