"""``python -m importer`` is the same as the ``plausible-import`` command."""

import sys


def main() -> None:
    """The command; a Ctrl-C while it starts (its imports take a few tenths of a second) ends
    it like one later on: a line saying so and exit status 130, no traceback."""
    try:
        from .cli import run

        run()
    except BaseException as exc:
        if not _interrupted(exc):
            raise
        print("plausible-import: interrupted", file=sys.stderr)
        sys.exit(130)


def _interrupted(exc: BaseException) -> bool:
    """A KeyboardInterrupt, or an error it caused (Python 3.11 wraps one raised while a class
    is being created, in the middle of an import, in a RuntimeError)."""
    seen = 0
    cause: BaseException | None = exc
    while cause is not None and seen < 10:
        if isinstance(cause, KeyboardInterrupt):
            return True
        cause, seen = cause.__cause__ or cause.__context__, seen + 1
    return False


if __name__ == "__main__":
    main()
