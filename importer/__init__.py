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

from .options import BackfillOptions, ConfigError, DeliveryOptions, OutputOptions, ReadOptions  # noqa: E402
from .pipeline import HistoryRefused, send  # noqa: E402
from .report import Report  # noqa: E402

__all__ = ["send", "ReadOptions", "DeliveryOptions", "OutputOptions", "BackfillOptions", "ConfigError",
           "HistoryRefused", "Report", "__version__"]
