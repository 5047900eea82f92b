"""plausible-importer: move web traffic you already have into Plausible Analytics.

The pipeline is ``sources -> reader -> canonical frame -> mapping -> events -> sink``::

    from importer import DeliveryOptions, OutputOptions, ReadOptions, send
    report = send(["access.log.gz"], "example.com", read=ReadOptions(log_timezone="Europe/Berlin"),
                  delivery=DeliveryOptions(endpoint="https://plausible.example.org/api/event"))

These modules import nothing heavy (pyarrow and the rest load when a run starts), so
``import importer`` and ``plausible-import --help`` stay quick.
"""

from __future__ import annotations

__version__ = "0.1.0"

from .options import BackfillOptions, ConfigError, DeliveryOptions, OutputOptions, ReadOptions
from .pipeline import HistoryRefused, send
from .report import Report

__all__ = [
    "BackfillOptions",
    "ConfigError",
    "DeliveryOptions",
    "HistoryRefused",
    "OutputOptions",
    "ReadOptions",
    "Report",
    "__version__",
    "send",
]
