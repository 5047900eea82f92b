"""Files that ship with the tool: built-in mappings and the sample data.

In a source checkout they are the repository's ``mappings/`` and ``sample_data/``; in an
installed wheel they are packaged as ``importer._mappings`` and ``importer._sample_data``
(see ``pyproject.toml``), so ``--mapping web`` and ``demo`` work wherever the tool is installed.
"""

from __future__ import annotations

import importlib.resources
from pathlib import Path

_REPO = Path(__file__).resolve().parent.parent


def _shipped(folder: str, package: str) -> Path:
    in_checkout = _REPO / folder
    if in_checkout.is_dir():
        return in_checkout
    return Path(str(importlib.resources.files(package)))


def mappings_dir() -> Path:
    return _shipped("mappings", "importer._mappings")


def sample_data_dir() -> Path:
    return _shipped("sample_data", "importer._sample_data")
