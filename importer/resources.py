"""Files that ship with the tool: built-in mappings and the sample data.

In a source checkout (or an editable install) they are the repository's ``mappings/`` and
``sample_data/``; an installed wheel carries them as ``importer/_mappings`` and
``importer/_sample_data`` (see ``pyproject.toml``), so ``--mapping web`` and ``demo`` work
wherever the tool is installed.
"""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def _shipped(folder: str) -> Path:
    installed = _PACKAGE / f"_{folder}"
    if installed.is_dir():
        return installed
    return _PACKAGE.parent / folder


def mappings_dir() -> Path:
    return _shipped("mappings")


def sample_data_dir() -> Path:
    return _shipped("sample_data")
