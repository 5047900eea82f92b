"""A known CLF-family format with extra fields at the end: the most common custom layout.

nginx ``combined`` plus ``$request_time $upstream_response_time``, Apache ``combined`` plus
``%D`` or ``%T``: the known fields are read as usual and whatever follows them is ignored.
The CLF reader (:mod:`importer.readers.clf`) cuts a line that matches its
:func:`~importer.readers.clf.trailing_pattern` down to the known fields before splitting it,
so a named format (``--format combined``) and a detected one read such lines alike. Detection tries these variants only when no exact format reads most
of the sample (a ``common`` line with two trailing fields looks like a ``combined`` one).
"""

from __future__ import annotations

import re
from collections import Counter

from .clf import ClfLayout, trailing_pattern
from .lines import Sample

_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|\S+')


def trailing_count(layout: ClfLayout, sample: Sample) -> int | None:
    """The usual number of trailing fields on the sample's lines that have some (None: none do),
    to name the format ``combined with 2 trailing fields`` in the summary and ``preview``."""
    compiled = re.compile(trailing_pattern(layout))
    counts: Counter[int] = Counter()
    for line in sample.rows:
        m = compiled.match(line.replace('\\"', "\\x22"))
        if m:
            counts[len(_TOKEN.findall(m.group("x_trailing")))] += 1
    return counts.most_common(1)[0][0] if counts else None
