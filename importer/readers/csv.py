"""CSV and TSV exports, read in blocks by pyarrow's CSV reader; malformed rows are rejected
one by one, and the rows around them kept."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

from .. import schema
from ..mapping.columnmap import ColumnMap
from ..sources import SalvagedText, Source, open_source
from .base import Batch, FormatError, Rejected
from .export import check_columns, to_batch


class CsvReader:
    """Reads a CSV (or TSV) file through a column map."""

    name = "csv"

    def __init__(self, column_map: ColumnMap):
        self.column_map = column_map

    def read(self, source: Source) -> Iterator[Batch]:
        opened = open_source(source)
        cmap = self.column_map
        damage: list[str] = []
        stream = io.BufferedReader(SalvagedText(opened.stream, damage), buffer_size=1 << 20)
        first_row = 1
        try:
            head = stream.peek(1 << 16)
            delimiter = cmap.delimiter or _delimiter(source.name, head)
            malformed: list[pacsv.InvalidRow] = []
            reader = _open_csv(stream, cmap, delimiter, malformed)
            check_columns(
                source,
                cmap,
                _header_names(head, delimiter)
                if head and not cmap.header
                else list(cmap.header) or reader.schema.names,
            )
            for record_batch in reader:
                table = pa.Table.from_batches([record_batch])
                new, malformed[:] = list(malformed), []
                # Row numbers are data rows; line = row + 1 because of the header line. The
                # parser skipped the malformed rows among them (it numbers them by line).
                first_line = first_row + (0 if cmap.header else 1)
                lines = np.setdiff1d(
                    np.arange(first_line, first_line + table.num_rows + len(new)),
                    [row.number for row in new if row.number is not None and row.number > 0],
                )
                batch = to_batch(table, cmap, source.name, lines[: table.num_rows])
                batch.rejected += [
                    Rejected(
                        source.name,
                        row.number,
                        f"expected {row.expected_columns} fields, found {row.actual_columns}",
                        row.text,
                    )
                    for row in new
                ]
                batch.rows_read += len(new)
                first_row += table.num_rows + len(new)
                batch.position = opened.position.consumed
                yield batch
            if damage:
                line = first_row + (0 if cmap.header else 1)
                yield Batch(
                    table=schema.empty_frame(),
                    rows_read=0,
                    position=opened.position.consumed,
                    notices=[Rejected(source.name, line, damage[0], "")],
                    damaged=True,
                )
        except pa.ArrowInvalid as exc:
            lost = f"; rows from {first_row:,} on were not read" if first_row > 1 else ""
            raise FormatError(f"{source.name}: not readable as CSV: {exc}{lost}") from exc
        finally:
            if not source.stdin:
                opened.raw.close()


def _delimiter(name: str, head: bytes) -> str:
    """Tab for ``.tsv`` files and for a header line with more tabs than commas, else comma."""
    first = head.split(b"\n", 1)[0]
    if name.lower().rstrip(".gz").endswith(".tsv") or (head and first.count(b"\t") > first.count(b",")):
        return "\t"
    return ","


def _open_csv(
    stream: io.BufferedReader[SalvagedText], cmap: ColumnMap, delimiter: str, malformed: list[pacsv.InvalidRow]
) -> pacsv.CSVStreamingReader:
    wanted = sorted(cmap.source_columns())

    def on_invalid(row: pacsv.InvalidRow) -> str:
        malformed.append(row)
        return "skip"

    return pacsv.open_csv(
        stream,
        read_options=pacsv.ReadOptions(block_size=4 << 20, use_threads=False, column_names=list(cmap.header) or None),
        parse_options=pacsv.ParseOptions(
            delimiter=delimiter,
            quote_char='"' if cmap.quote else False,
            newlines_in_values=cmap.quote,
            invalid_row_handler=on_invalid,
        ),
        convert_options=pacsv.ConvertOptions(
            column_types={c: pa.string() for c in wanted},
            include_columns=wanted,
            include_missing_columns=True,
            strings_can_be_null=False,
        ),
    )


def _header_names(head: bytes, delimiter: str) -> list[str]:
    """The column names on a CSV file's first line (the reader itself reports every column it
    was asked for, present or not)."""
    first = head.split(b"\n", 1)[0].decode("utf-8", "replace").rstrip("\r").lstrip("\ufeff")
    return next(csv.reader([first], delimiter=delimiter), [])
