"""Export benchmark: ``python bench/exports.py [--events N]``.

Writes a GA4 BigQuery export as NDJSON (the bundled sample's events, repeated with distinct
visitors; default 280,000 events, ~245 MB) and the same file twice over, then runs
``plausible-import send FILE --mapping ga4-bigquery --dry-run`` on each in a child process.
Prints wall time, events/s and the child's peak RSS: NDJSON is read a block of lines at a
time, so the peak stays flat when the file doubles. Also runs the Parquet form of the smaller
file for comparison.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.parse import peak_rss_mb


def write_export(path: Path, events: int) -> int:
    """The sample's events again and again, each round with its own visitors; returns events written."""
    sample = [json.loads(line) for line in (ROOT / "sample_data" / "ga4-events.jsonl").read_text().splitlines()]
    written = 0
    with open(path, "w", encoding="utf-8") as out:
        round_ = 0
        while written < events:
            lines = []
            for row in sample[: events - written]:
                row = dict(row, user_pseudo_id=f"{round_ % 5000}.{row['user_pseudo_id']}")
                lines.append(json.dumps(row))
            out.write("\n".join(lines) + "\n")
            written += len(lines)
            round_ += 1
    return written


def measure(path: str) -> dict:
    """In a child process: one dry run with the GA4 preset, its time and this process's peak RSS."""
    from importer.options import OutputOptions, ReadOptions
    from importer.pipeline import send

    started = time.perf_counter()
    report = send(
        [path],
        domain="example.com",
        dry_run=True,
        read=ReadOptions(mapping="ga4-bigquery"),
        outputs=OutputOptions(events=None, rejects=None, progress=False),
    )
    return {
        "seconds": time.perf_counter() - started,
        "rows": report.rows_read,
        "events": report.events,
        "invalid": report.rows_invalid,
        "rss_mb": peak_rss_mb(),
    }


def run_child(path: Path) -> dict:
    import subprocess

    out = subprocess.run([sys.executable, __file__, "--measure", str(path)], check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=280_000)
    parser.add_argument("--measure", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(args.measure)))
        return
    with tempfile.TemporaryDirectory() as tmp:
        small = Path(tmp) / "events_small.jsonl"
        n = write_export(small, args.events)
        large = Path(tmp) / "events_large.jsonl"
        with open(large, "wb") as out:
            for _ in range(2):
                out.write(small.read_bytes())
        import pyarrow.json as pajson
        import pyarrow.parquet as pq

        parquet = Path(tmp) / "events_small.parquet"
        pq.write_table(pajson.read_json(small), parquet)
        for label, path, rows in (("NDJSON", small, n), ("NDJSON, twice", large, 2 * n), ("Parquet", parquet, n)):
            result = run_child(path)
            assert result["rows"] == rows, result
            print(
                f"{label:<14} {rows:>9,} events  {path.stat().st_size / 1e6:6.0f} MB  {result['seconds']:5.2f} s  "
                f"{rows / result['seconds']:>9,.0f} rows/s  peak RSS {result['rss_mb']:4.0f} MB  "
                f"events out {result['events']:,}  invalid {result['invalid']:,}"
            )


if __name__ == "__main__":
    main()
