"""HTML reports: one self-contained file a person opens in a browser to check a run.

* :func:`backfill_page`: what Plausible's dashboard will show once the ten CSV files of a
  ``backfill`` are imported (top figures, daily chart, top lists), and how the run went.
* :func:`run_page`: what a ``send`` or ``preview`` read and would send (dry run) or sent, per day.
* :func:`write_page`: write either to a file.
"""

from __future__ import annotations

from pathlib import Path

from .backfill import backfill_page
from .run import run_page

__all__ = ["backfill_page", "run_page", "write_page"]


def write_page(path: str | Path, html: str) -> Path:
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(html, encoding="utf-8")
    return target
