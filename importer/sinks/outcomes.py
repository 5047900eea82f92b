"""How each event's send ends, written down once: the report's counters (in all and per day),
the rejects and failed files, and the ledger that saves progress in input order."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from ..events import request_body
from ..ledger import Entry, Ledger
from ..report import RejectsFile, Report
from .control import RunControl


def request_json(event: dict[str, Any]) -> bytes:
    """The body of the event's ``POST /api/event``."""
    return json.dumps(request_body(event), ensure_ascii=False, separators=(",", ":")).encode("utf-8")


class Outcomes:
    """Settles events as accepted, dropped, rejected or failed.

    ``rejects`` receives 400s; ``failed`` receives events that failed, with the last error.
    Every settled event is decided in the ``ledger`` and reported to ``on_settled``.
    """

    def __init__(
        self,
        report: Report,
        rejects: RejectsFile,
        failed: RejectsFile,
        ledger: Ledger,
        control: RunControl,
        on_settled: Callable[[int], None],
    ):
        self.report = report
        self.rejects = rejects
        self.failed = failed
        self.ledger = ledger
        self.control = control
        self.on_settled = on_settled

    def settle(self, entry: Entry, resend: bool = False) -> None:
        self.ledger.decide(entry, resend)
        self.on_settled(1)

    def count(self, event: dict[str, Any], outcome: str) -> None:
        """One more event with this outcome (accepted, dropped, rejected, failed), in all and on the
        event's own day (UTC), for the run's HTML report."""
        setattr(self.report, outcome, getattr(self.report, outcome) + 1)
        when = event.get("timestamp")
        if when is not None:
            self.report.outcomes_by_day[(when.date(), outcome)] += 1

    def reject(self, event: dict[str, Any], entry: Entry, **extra: Any) -> None:
        """Plausible said the event is invalid: to the rejects file, never sent again."""
        self.count(event, "rejected")
        self.rejects.write(self.record(event, **extra))
        self.settle(entry)

    def fail(self, event: dict[str, Any], entry: Entry, reason: str, resend: bool, **extra: Any) -> None:
        self.count(event, "failed")
        self.report.resend += resend
        self.report.cut_off += self.control.interrupted is not None
        if entry.state is not None:  # which state entry: a later run that settles it removes this record
            extra["file_id"] = entry.state.file_id
        self.failed.write(self.record(event, **extra, reason=reason, sent_again_by_next_run=resend))
        self.settle(entry, resend=resend)

    def not_sent(self, event: dict[str, Any], entry: Entry) -> None:
        reason = self.control.fatal or "the run was interrupted"
        self.fail(event, entry, f"not sent: {reason}", resend=True)

    @staticmethod
    def record(event: dict[str, Any], **extra: Any) -> dict[str, Any]:
        # No IP address here: these files are for people to read.
        return {
            "stage": "send",
            "file": event["source_file"],
            "line": event["source_line"],
            **extra,
            "event": json.loads(request_json(event)),
            "user_agent": event["user_agent"],
        }
