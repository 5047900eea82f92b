"""plausible-importer: move web traffic you already have into Plausible Analytics.

The pipeline is ``sources -> reader -> canonical frame -> mapping -> events -> sink``; see
:func:`importer.pipeline.send` for the library entry point.
"""

from .mapping import Mapping, MappingError
from .mapping import load as load_mapping
from .pipeline import ConfigError, send
from .report import Report

__all__ = ["send", "load_mapping", "Mapping", "MappingError", "ConfigError", "Report"]
__version__ = "0.1.0"
