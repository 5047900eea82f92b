"""plausible-importer: move web traffic you already have into Plausible Analytics.

The pipeline is ``sources -> reader -> canonical frame -> mapping -> events -> sink``; see
:func:`importer.pipeline.send` for the library entry point.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from .mapping import Mapping, MappingError
    from .mapping import load as load_mapping
    from .pipeline import ConfigError, send
    from .report import Report

__all__ = ["send", "load_mapping", "Mapping", "MappingError", "ConfigError", "Report"]
__version__ = "0.1.0"

# The public names are imported on first use, so that ``plausible-import --help`` (and any
# command that needs little) does not pay for pyarrow, pandas and the mapping engine.
_LAZY = {
    "send": ("pipeline", "send"),
    "ConfigError": ("pipeline", "ConfigError"),
    "load_mapping": ("mapping", "load"),
    "Mapping": ("mapping", "Mapping"),
    "MappingError": ("mapping", "MappingError"),
    "Report": ("report", "Report"),
}


def __getattr__(name: str):
    try:
        module, attr = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
    value = getattr(importlib.import_module(f".{module}", __name__), attr)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
