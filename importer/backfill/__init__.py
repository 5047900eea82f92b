"""History with its real dates: Plausible's ten CSV import files, built from logs and exports.

::

    from importer.backfill import backfill
    report = backfill(["access.log.gz"], domain="example.com", timezone="Europe/Berlin", out_dir="import/")
    print(report.summary())

The run itself is in :mod:`.run`; the events are sorted into site-local days (:mod:`.spill`),
turned into sessions and daily aggregates (:mod:`.aggregate`, sources by :mod:`.referrers`)
and written as the ten files (:mod:`.writer`).
"""

from .run import BackfillReport, backfill, write_files
from .writer import TABLES

__all__ = ["TABLES", "BackfillReport", "backfill", "write_files"]
