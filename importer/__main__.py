"""``python -m importer`` is the same as the ``plausible-import`` command."""

from .cli import run

run()
