"""A known CLF-family format with extra fields at the end: the most common custom layout.

nginx ``combined`` plus ``$request_time $upstream_response_time``, Apache ``combined`` plus
``%D`` or ``%T``: the known fields are read as usual and whatever follows them is ignored.
The CLF reader (:mod:`importer.readers.clf`) cuts such lines down to the known fields
(:func:`cut`) before splitting them, so a named format (``--format combined``) and a detected one
read them alike. Detection tries the variants with trailing fields only when no exact format
reads most of the sample (a ``common`` line with two trailing fields looks like a ``combined``
one).
"""

from __future__ import annotations

import re
from collections import Counter

import numpy as np
import pyarrow.compute as pc

from .lines import Sample, block_lines

_QUOTED_FIELD = r'"(?:[^"\\]|\\.)*"'
_TOKEN = re.compile(rf"{_QUOTED_FIELD}|\S+")
_TAIL = "(?P<x_trailing>"


def pattern(exact: str, quoted_first: bool) -> str:
    """A layout's ``exact`` pattern (``^...$``) as group 1, then at least one more field (group
    ``x_trailing``); both Python ``re`` and RE2 syntax.

    A quoted extra field must close its quote (a line cut off inside one is damaged, not a line
    with trailing fields). Without ``quoted_first`` (a layout without referrer and user agent),
    the first extra field is not quoted: "common" plus a quoted field would read a combined
    line, its referrer and user agent lost as trailing fields."""
    unquoted = r'[^"\s]\S*'
    field = rf"(?:{_QUOTED_FIELD}\S*|{unquoted})"
    first = field if quoted_first else unquoted
    known = exact.removeprefix("^").removesuffix("$")
    return rf"^({known}){_TAIL} +{first}(?: +{field})*) *$"


def cut(data: bytes, trailing: str) -> bytes | None:
    """``data`` with each line that matches ``trailing`` (a :func:`pattern`) cut down to its
    group 1, the layout's own fields, every other line as it was; None when no line has
    trailing fields.

    ``trailing`` itself only picks the lines (a plain match, RE2's fast DFA); the cut is made
    with its known part and a bare rest, ``^(known) .*$``, whose capture costs a quarter of
    ``trailing``'s (the known part is the same, and parses only one way)."""
    lines, _ = block_lines(data)
    has = pc.match_substring_regex(lines, trailing)
    if not pc.any(has).as_py():
        return None
    bare = trailing[: trailing.index(_TAIL)] + " .*$"
    known = pc.replace_with_mask(lines, has, pc.replace_substring_regex(lines.filter(has), bare, r"\1"))
    joined = pc.binary_join_element_wise(known, "", "\n")
    offsets = np.frombuffer(joined.buffers()[1], dtype=np.int32, count=len(joined) + 1, offset=joined.offset * 4)
    text: bytes = joined.buffers()[2].to_pybytes()[offsets[0] : offsets[-1]]
    return text if data.endswith(b"\n") else text[:-1]


def count(trailing: str, sample: Sample) -> int | None:
    """The usual number of trailing fields on the sample's lines that have some (None: none do),
    to name the format ``combined with 2 trailing fields`` in the summary and ``preview``."""
    compiled = re.compile(trailing)
    counts: Counter[int] = Counter()
    for line in sample.rows:
        m = compiled.match(line.replace('\\"', "\\x22"))
        if m:
            counts[len(_TOKEN.findall(m.group("x_trailing")))] += 1
    return counts.most_common(1)[0][0] if counts else None
