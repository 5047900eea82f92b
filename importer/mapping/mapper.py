"""Applying a mapping to canonical batches: filters, then rules, then events.

``Mapper.apply`` keeps everything it learns of a batch in that batch's own objects
(:class:`.batch.Columns`, :class:`.batch.Tally`), passed from step to step; the Mapper itself
only keeps run-wide caches of pure functions (user agents, IPs, synthetic visitors) and the
run's notes for the summary, added under a lock. So one Mapper can map batches from several
threads at once.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections import Counter
from dataclasses import dataclass, field

import pyarrow as pa

from .. import events as ev
from ..plausible import (
    MAX_NAME_CHARS,
    MAX_PROP_KEY_BYTES,
    MAX_PROP_VALUE_BYTES,
    MAX_PROPS,
    MAX_URL_BYTES,
)
from ..useragents import Classifier
from .arrow import np_bool
from .base import VisitorCache, event_base
from .batch import Columns, Tally
from .downloads import DownloadMemory, fold_downloads
from .events import build_events
from .filters import is_site_host, keep_rows, note_hosts
from .model import Mapping


@dataclass
class Mapped:
    """The events a batch of rows became, and how many rows each filter dropped."""

    events: pa.Table
    filtered: dict[str, int]
    rules: dict[str, int] = field(default_factory=dict)  # event rule -> rows it matched
    extra_events: int = 0  # events beyond one per row (a rule's ``also_pageview``)


class Mapper:
    """Applies one mapping to canonical batches; holds per-run caches and notes for the summary."""

    def __init__(
        self, mapping: Mapping, domain: str, *, since: dt.datetime | None = None, until: dt.datetime | None = None
    ):
        self.mapping = mapping
        self.domain = domain
        self.since = since
        self.until = until
        self.classifier = Classifier()
        self.unmatched_hosts: Counter[str] = Counter()
        self.truncated: Counter[str] = Counter()  # what -> events whose value was cut to Plausible's limit
        self._ip_cache: dict[str | None, bool] = {}
        self._visitors = VisitorCache()
        self._downloads = DownloadMemory()
        self._notes_lock = threading.Lock()

    def apply(self, table: pa.Table) -> Mapped:
        m = self.mapping
        if table.num_rows == 0:
            return Mapped(ev.empty_events(), {}, {})
        tally = Tally()
        batch = Columns.of_table(table)
        keep = keep_rows(m, batch, (self.since, self.until), self.classifier, self._ip_cache, tally)
        if m.downloads is not None:
            keep = fold_downloads(m.downloads, batch, keep, self._downloads, tally)
        if m.site_hosts and m.unmatched == "domain":
            # the hosts that go to --domain: every row the filters kept (rule drops included)
            hosts = batch["host"] if keep.all() else batch["host"].filter(pa.array(keep))
            unmatched = ~np_bool(is_site_host(m, hosts))
            if unmatched.any():
                note_hosts(hosts.filter(pa.array(unmatched)), tally)
        kept = batch.kept(keep)
        values = event_base(m, kept.values, kept.n, self.domain, self._visitors)
        # the path is never rewritten: its encoding comes along (templates may rewrite the others)
        columns = Columns(values, kept.n, {"path": kept.distinct("path")})
        events = build_events(m, columns, tally)
        with self._notes_lock:
            self.truncated.update(tally.truncated)
            self.unmatched_hosts.update(tally.unmatched_hosts)
        return Mapped(events, dict(tally.filtered), tally.rules, tally.extra_events)

    def notices(self) -> list[str]:
        """Notes for the printed summary: unmatched hosts, values cut to Plausible's limits."""
        out = []
        if self.unmatched_hosts:
            hosts = ", ".join(f"{h} ({c:,})" for h, c in self.unmatched_hosts.most_common(20))
            more = len(self.unmatched_hosts) - 20
            out.append(
                f"hosts not in the mapping's [site.hosts] table: {hosts}" + (f" and {more} more" if more > 0 else "")
            )
        labels = {
            "name": f"event names cut to {MAX_NAME_CHARS} characters",
            "url": f"URLs cut to {MAX_URL_BYTES:,} bytes",
            "props_count": f"events with more than {MAX_PROPS} props (extra props left out)",
            "prop_key": f"prop keys cut to {MAX_PROP_KEY_BYTES} bytes",
            "prop_value": f"prop values cut to {MAX_PROP_VALUE_BYTES:,} bytes",
        }
        for what, count in sorted(self.truncated.items()):
            out.append(f"{labels.get(what, what)}: {count:,}")
        return out
