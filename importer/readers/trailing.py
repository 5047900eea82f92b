"""A known CLF-family format with extra fields at the end: the most common custom layout.

nginx ``combined`` plus ``$request_time $upstream_response_time``, Apache ``combined`` plus
``%D`` or ``%T``: the known fields are read as usual and whatever follows them is ignored.
These variants are tried at detection only when no exact format reads most of the sample (a
``common`` line with two trailing fields looks like a ``combined`` one); they run on the regex
path of :mod:`importer.readers.lines` (the CSV fast path of
:mod:`importer.readers.clf` needs a fixed number of columns, and ``$upstream_response_time``
may be ``0.004, 0.002``).
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import replace

from .clf import LAYOUTS, ClfLayout
from .fields import TextStyle
from .lines import QUOTED, LineFormat, Sample

_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|\S+')


def _pattern(layout: ClfLayout) -> str:
    host = r"(?P<host>\S+) " if "host" in layout.fields else ""
    core = (
        rf'(?P<ip>\S+) \S+ \S+ \[(?P<time_clf>[^\]]+)\] "(?P<request>{QUOTED})" '
        r"(?P<status>\d{3}) (?P<bytes>\d+|-)"
    )
    ref_ua = rf' "(?P<referrer>{QUOTED})" "(?P<user_agent>{QUOTED})"' if "user_agent" in layout.fields else ""
    xff = rf' "(?P<xff>{QUOTED})"' if "xff" in layout.fields else ""
    # At least one field beyond the layout's own (else the exact format matches). Without a
    # referrer and user agent, the first one is not quoted: "common" plus a quoted field would
    # read a combined line (its referrer and user agent lost as trailing fields). x_ groups are
    # not fields of the frame; this one is read only to count the fields at detection.
    first = r"\S" if ref_ua else r'[^"\s]'
    return f"^{host}{core}{ref_ua}{xff}(?P<x_trailing> {first}.*)$"


def variant(layout: ClfLayout) -> LineFormat:
    return LineFormat(
        name=f"{layout.name} with trailing fields",
        description=f"{layout.description}, then more fields (ignored)",
        example="",
        pattern=_pattern(layout),
        style=TextStyle(backslash=True),
    )


VARIANTS: tuple[LineFormat, ...] = tuple(variant(layout) for layout in LAYOUTS)


def counted(fmt: LineFormat, sample: Sample) -> LineFormat:
    """``fmt`` named with the usual number of trailing fields on the sample's lines it matches
    (``combined with 2 trailing fields``), for the summary and ``preview``."""
    pattern = re.compile(fmt.pattern)
    counts: Counter[int] = Counter()
    for line in sample.rows:
        m = pattern.match(line.replace('\\"', "\\x22"))
        if m:
            counts[len(_TOKEN.findall(m.group("x_trailing")))] += 1
    if not counts:
        return fmt
    n = counts.most_common(1)[0][0]
    layout = fmt.name.removesuffix(" with trailing fields")
    return replace(fmt, name=f"{layout} with {n} trailing field{'s' if n != 1 else ''}")
