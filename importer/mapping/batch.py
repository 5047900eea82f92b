"""One batch on its way through the mapper: its columns, each encoded once per distinct value,
and the tally of what became of its rows.

Paths, user agents, referrers, queries and hosts repeat: a busy hour holds a few thousand
distinct paths among 65,536 rows. So conditions and templates are worked out on a column's
distinct values (:meth:`Columns.distinct`, one ``dictionary_encode`` per column and batch) and
mapped back to the rows with one NumPy take. That is the mapping's one speed-up; everything
else is a plain Arrow or NumPy operation on whole columns.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .arrow import chunk, np_bool, positions

Encoding = tuple[pa.Array, np.ndarray]  # (distinct values, a null among them; each row's position there)


def encode(values: pa.Array) -> Encoding:
    """A column's distinct values (a null one too, when there are nulls) and each row's position."""
    encoded = pc.dictionary_encode(values, null_encoding="encode")
    return encoded.dictionary, positions(encoded.indices)


@dataclass
class Tally:
    """What became of a batch's rows: the counts the run's report adds up."""

    filtered: Counter[str] = field(default_factory=Counter)  # reason -> rows dropped
    rules: dict[str, int] = field(default_factory=dict)  # rule label -> rows it matched
    truncated: Counter[str] = field(default_factory=Counter)  # what -> events cut to Plausible's limit
    unmatched_hosts: Counter[str] = field(default_factory=Counter)
    extra_events: int = 0  # events beyond one per row: the pageviews of ``also_pageview`` rules


class Columns:
    """The columns of a batch's rows (one array each), with their encodings made on first use.

    Each ``apply`` makes its own, so a Mapper can map batches from several threads at once.
    """

    def __init__(self, values: dict[str, pa.Array], n: int, encodings: dict[str, Encoding] | None = None):
        self.values = values
        self.n = n
        self._encodings: dict[str, Encoding] = dict(encodings or {})

    @classmethod
    def of_table(cls, table: pa.Table) -> Columns:
        return cls({name: chunk(table.column(name)) for name in table.column_names}, table.num_rows)

    def __getitem__(self, column: str) -> pa.Array:
        return self.values[column]

    def distinct(self, column: str) -> Encoding:
        """The column's distinct values (null among them) and each row's position there."""
        if column not in self._encodings:
            self._encodings[column] = encode(self.values[column])
        return self._encodings[column]

    def distinct_at(self, column: str, rows: np.ndarray) -> Encoding:
        """The distinct values of some rows of a column, and each of those rows' position there:
        from the batch's encoding when it is no larger than the rows, else from theirs alone."""
        encoding = self._encodings.get(column)
        if encoding is not None and len(encoding[0]) <= len(rows):
            return encoding[0], encoding[1][rows]
        return encode(self.values[column].take(pa.array(rows)))

    def per_row(
        self, column: str, fn: Callable[[pa.Array], pa.Array | np.ndarray], rows: np.ndarray | None = None
    ) -> np.ndarray:
        """A boolean function of the column's values, evaluated once per distinct value
        (null counts as false), for every row or for ``rows`` (then on their values alone,
        unless the column is encoded already: a rule's candidate rows are often few)."""
        dictionary, at = self.distinct(column) if rows is None else self.distinct_at(column, rows)
        return np_bool(fn(dictionary))[at]

    def kept(self, keep: np.ndarray, carry: tuple[str, ...] = ("path",)) -> Columns:
        """These columns at the rows ``keep`` marks; the encodings of ``carry`` come along."""
        if keep.all():
            return Columns(self.values, self.n, {c: self._encodings[c] for c in carry if c in self._encodings})
        mask = pa.array(keep)
        values = {name: value.filter(mask) for name, value in self.values.items()}
        encodings = {c: (self._encodings[c][0], self._encodings[c][1][keep]) for c in carry if c in self._encodings}
        return Columns(values, int(np.count_nonzero(keep)), encodings)
