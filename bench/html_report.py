"""Size and build time of the backfill's HTML report for long ranges (target: under ~1 MB a year).

    python bench/html_report.py [--files DIR ...]

Without arguments it writes the ten files for one year and for ten years of daily rows (two
visitors and a page or two a day; the top lists show ten rows whatever the data, so the page
grows with the number of days) and prints each report's size. ``--files DIR`` measures the
report of ten files a backfill wrote into DIR instead.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from importer.backfill import TABLES, BackfillReport
from importer.html import backfill_page


def synthetic(out: Path, start: dt.date, days: int) -> BackfillReport:
    end = start + dt.timedelta(days=days - 1)
    out.mkdir(parents=True, exist_ok=True)
    files = {}
    for table, columns in TABLES.items():
        path = out / f"{table}_{start:%Y%m%d}_{end:%Y%m%d}.csv"
        with open(path, "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle, quoting=csv.QUOTE_NONNUMERIC)
            writer.writerow([name for name, _ in columns])
            for i in range(days):
                day = str(start + dt.timedelta(days=i))
                for n in range(2):
                    writer.writerow(
                        [
                            day if name == "date" else f"/page-{(i + n) % 500}" if kind == "String" else 1
                            for name, kind in columns
                        ]
                    )
        files[table] = str(path)
    return BackfillReport(out_dir=str(out), start=start, end=end, files=files)


def from_dir(out: Path) -> BackfillReport:
    files = {table: str(next(out.glob(f"{table}_*.csv"))) for table in TABLES}
    stamp = Path(files["imported_visitors"]).stem.split("_")
    start, end = (dt.datetime.strptime(part, "%Y%m%d").date() for part in stamp[-2:])
    return BackfillReport(out_dir=str(out), start=start, end=end, files=files)


def measure(label: str, report: BackfillReport) -> None:
    started = time.perf_counter()
    html = backfill_page(report)
    seconds = time.perf_counter() - started
    print(f"{label:<28} {report.days:>5} days  {len(html.encode()):>10,} bytes  built in {seconds:.2f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=Path, nargs="*", default=[])
    options = parser.parse_args()
    for directory in options.files:
        measure(str(directory), from_dir(directory))
    if options.files:
        return
    with tempfile.TemporaryDirectory() as tmp:
        measure("synthetic, one year", synthetic(Path(tmp) / "year", dt.date(2023, 1, 1), 365))
        measure("synthetic, ten years", synthetic(Path(tmp) / "ten", dt.date(2015, 1, 1), 3653))


if __name__ == "__main__":
    main()
