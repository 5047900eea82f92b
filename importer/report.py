"""The run's accounting: counters, the rejects file, and the end-of-run summary.

Two invariants hold for every run and are checked by the tests:

* ``rows_read = rows_invalid + sum(rows_filtered) + events - extra_events`` (``extra_events``:
  events beyond one per row, such as the pageview a ``also_pageview`` rule adds before its event)
* when events were sent: ``events = accepted + dropped + rejected + failed``
"""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
import json
import os
import re
import secrets
import sys
import threading
from collections import Counter
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    import pyarrow as pa

INVALID_SAMPLES = 5
# ``extra_events`` in the printed summary and the HTML report: what makes the rows add up
EXTRA_EVENTS_LABEL = "extra events (second event of a row)"


def new_run_id() -> str:
    """An id for one run's records in the side files: its start time (UTC) and a random tag."""
    return f"{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"


@dataclass
class Report:
    lines_skipped: int = 0  # input lines that hold no row (blank lines, comments, W3C directives)
    rows_read: int = 0
    rows_invalid: int = 0
    inputs_damaged: int = 0  # inputs read only in part (a damaged compressed stream or Parquet row group)
    rows_filtered: Counter = field(default_factory=Counter)
    events: int = 0
    extra_events: int = 0  # events beyond one per row (rules with also_pageview)
    events_by_name: Counter = field(default_factory=Counter)
    events_by_day: Counter = field(default_factory=Counter)  # (UTC date, event name) -> events, for --html
    outcomes_by_day: Counter = field(default_factory=Counter)  # (UTC date, outcome) -> events sent, for --html
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
    endpoint_error: str | None = None  # the endpoint was unusable (unreachable, 5xx, wrong URL): stopped early
    # A run is "mostly dropped" (exit 3) when more than this share of the answered events was
    # dropped by Plausible; 1.0: only when every one was.
    max_dropped_share: float = 1.0
    # After an interrupt: events whose answer came while draining, events cut off (not sent, or
    # cut mid-request), and events the next run sends again (from the state file).
    drained: int = 0
    cut_off: int = 0
    resend: int = 0
    run_id: str = field(default_factory=new_run_id)  # for the side files' records (RejectsFile's run_id)
    failed_resolved: int = 0  # records of earlier runs taken out of the failed file: sent again now

    def as_dict(self) -> dict:
        return {
            "lines_skipped": self.lines_skipped,
            "rows_read": self.rows_read,
            "rows_invalid": self.rows_invalid,
            "inputs_damaged": self.inputs_damaged,
            "rows_filtered": dict(sorted(self.rows_filtered.items())),
            "events": self.events,
            "extra_events": self.extra_events,
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

    def count_events(self, events: pa.Table) -> None:
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

    @property
    def mostly_dropped(self) -> bool:
        """Plausible dropped every answered event (or more than ``max_dropped_share`` of them)."""
        answered = self.accepted + self.dropped
        return bool(self.dropped) and (self.dropped == answered or self.dropped / answered > self.max_dropped_share)

    def exit_code(self) -> int:
        """2: the state file failed; 128+N: stopped by signal N; 3: Plausible dropped (nearly) every
        event; 1: events rejected or failed, an input skipped or damaged, or the endpoint unusable; else 0."""
        if self.state_error:
            return 2
        if self.interrupted is not None:
            return 128 + int(self.interrupted)
        if self.mostly_dropped:
            return 3
        if self.rejected or self.failed or self.skipped_sources or self.endpoint_error or self.inputs_damaged:
            return 1
        return 0

    def warnings(self) -> list[str]:
        """Lines under the summary for what needs a person's attention."""
        lines = []
        if self.mostly_dropped:
            share = "every event" if not self.accepted else f"{self.dropped / (self.accepted + self.dropped):.0%}"
            lines.append(
                f"warning: Plausible dropped {share} it answered ({self.dropped:,} events, "
                "202 with x-plausible-dropped): most often --domain is not a site on that Plausible "
                "instance; else it took the visitors for bots (user agents, data-center IPs) or "
                "throttled the site"
            )
        return lines

    def add_reading(self, table: SummaryTable) -> None:
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
        if self.extra_events:
            table.add(EXTRA_EVENTS_LABEL, self.extra_events)

    def reading_trailer(self) -> list[str]:
        """Lines under the table: bad lines quoted, notices, inputs skipped."""
        return (
            [f"invalid: {sample}" for sample in self.invalid_samples]
            + [f"note: {notice}" for notice in self.notices]
            + [f"skipped: {skipped}" for skipped in self.skipped_sources]
        )

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
                add(
                    "no answer in time",
                    f"{self.timeouts:,} tries (--timeout); {self.maybe_duplicated:,} events may have arrived twice",
                )
        add("duration", f"{self.duration_s:.1f} s")
        if self.rejects_path:
            add("rejects file", self.rejects_path)
        if self.failed_path:
            add("failed file", self.failed_path)
        if self.failed_resolved:
            add("  sent again", f"{self.failed_resolved:,} records of earlier runs removed from the failed file")
        if self.state_path:
            add("state file", self.state_path)
            add("rows skipped (sent before)", self.rows_skipped)
            add("files skipped", len(self.files_skipped))
        if self.window is not None:
            add("in-flight window", f"{self.window:,} events (a crash re-sends at most these)")
        if self.interrupted is not None:
            add(
                "interrupted",
                f"by signal {self.interrupted}: {self.drained:,} in-flight events drained, "
                f"{self.cut_off:,} cut off (not sent or cut mid-request)",
            )
            if self.state_path and not self.state_error:
                add("  next run", f"state saved: sends again {self.resend:,} events (listed in the failed file)")
            elif self.state_path:
                add(
                    "  next run",
                    "the state file could not be saved (see above): it may send again what this run delivered",
                )
            else:
                add(
                    "  next run",
                    "no state file: nothing records what was sent; the failed file lists the events cut off",
                )
        return table.render(self.reading_trailer() + self.warnings())


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
# ASCII digits only: a Unicode digit next to an address must not make it look like a longer number.
_IP_CANDIDATE = re.compile(
    r"(?<![0-9A-Fa-f:])[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){2,7}(?:\.[0-9]{1,3}){0,3}(?:%[\w.-]+)?(?![0-9A-Fa-f:])"
    r"|(?<![0-9])(?<![0-9]\.)[0-9]{1,3}(?:\.[0-9]{1,3}){3}(?![0-9])(?!\.[0-9])"
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
        user = match.group(0)[len(match.group(1)) : -1].split(":", 1)[0]
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


def write_json_report(data: dict, path: str | Path) -> None:
    """A run's report as JSON in ``path``; ``-`` is standard output."""
    text = json.dumps(data, indent=2) + "\n"
    if str(path) == "-":
        sys.stdout.write(text)
        sys.stdout.flush()
    else:
        Path(path).write_text(text, encoding="utf-8")


class RejectsFile:
    """Append-only JSON-lines file of everything that could not be used, with the reason.

    Every record carries the ``run`` id and the ``time`` it was written. Opened on first write,
    so a clean run leaves no empty file behind; written line by line, so that a crash loses no
    record the state file says was written. Safe to call from the reader thread and the sender's
    event loop at once.
    """

    def __init__(self, path: Path | None, run_id: str | None = None):
        self.path = path
        self.run_id = run_id or new_run_id()  # give the rejects and the failed file of a run one id
        self._file: IO[str] | None = None
        self._earlier_bytes: int | None = None  # the file's size before this run appended to it
        self._lock = threading.Lock()
        self.count = 0

    def write(self, record: dict) -> None:
        if self.path is None:
            return
        if record.get("stage") == "read":
            record = {
                **record,
                "text": redact_ips(record.get("text") or ""),
                "reason": redact_ips(record.get("reason") or ""),
            }
        elif "reason" in record:  # an error message may quote an address or the endpoint
            record = {**record, "reason": redact_url(redact_ips(str(record["reason"])))}
        stamp = {"run": self.run_id, "time": f"{dt.datetime.now(dt.UTC):%Y-%m-%dT%H:%M:%S.%fZ}"}
        line = json.dumps({**stamp, **record}, ensure_ascii=False, default=str) + "\n"
        with self._lock:
            if self._file is None:
                self._file = open_private(self.path)
                if self._earlier_bytes is None:
                    self._earlier_bytes = self._file.tell()
            self._file.write(line)
            self._file.flush()
            self.count += 1

    def prune(self, settled: Collection[tuple[int, int]]) -> int:
        """Remove the failed-event records of earlier runs whose event this run settled.

        ``settled`` holds (state file id, line) pairs; a record names them as ``file_id`` and
        ``line``. Records this run appended, rejects and read errors stay. Returns how many went.
        """
        if not settled or self.path is None or not self.path.exists():
            return 0
        removed = 0
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None
            earlier = self.path.stat().st_size if self._earlier_bytes is None else self._earlier_bytes
            temporary = self.path.with_name(f".{self.path.name}.{secrets.token_hex(4)}")
            try:
                with open(self.path, "rb") as old, open_private(temporary, "w") as new:
                    for raw in iter(old.readline, b""):
                        line = raw.decode("utf-8", "replace")
                        if old.tell() <= earlier and self._settled_earlier(line, settled):
                            removed += 1
                        else:
                            new.write(line)
                if removed:
                    os.replace(temporary, self.path)
            finally:
                temporary.unlink(missing_ok=True)
        return removed

    @staticmethod
    def _settled_earlier(line: str, settled: Collection[tuple[int, int]]) -> bool:
        try:
            record = json.loads(line)
        except ValueError:
            return False
        return (
            isinstance(record, dict)
            and record.get("stage") == "send"
            and (record.get("file_id"), record.get("line")) in settled
        )

    def close(self) -> None:
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None
