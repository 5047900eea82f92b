"""``python -m importer`` is the same as the ``plausible-import`` command."""

import sys


def main() -> None:
    """The command; a Ctrl-C while it starts (its imports take a few tenths of a second) ends
    it like one later on: a line saying so and exit status 130, no traceback."""
    try:
        from .cli import run

        run()
    except KeyboardInterrupt:
        print("plausible-import: interrupted", file=sys.stderr)
        sys.exit(130)


if __name__ == "__main__":
    main()
