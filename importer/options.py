"""What the user asked for, as typed objects validated once: shared by the command line and the
Python API.

* :class:`ReadOptions` — how inputs are read and which rows count (both ``send`` and ``backfill``);
* :class:`DeliveryOptions` — how ``send`` delivers events to Plausible;
* :class:`OutputOptions` — the files a run writes besides its events (report, rejects, failed).

Each object checks itself when it is made and raises :class:`ConfigError` naming the
command-line option at fault, so a bad value never gets as far as reading a file. This module
imports nothing heavy: the command line's ``--help`` imports it.
"""

from __future__ import annotations

import datetime as dt
import math
import os
import re
import tempfile
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from .plausible import DEFAULT_ENDPOINT
from .report import redact_url

if TYPE_CHECKING:  # pragma: no cover
    import ssl

    from .mapping import Mapping

DEFAULT_REJECTS = Path("plausible-import.rejects.jsonl")
DEFAULT_FAILED = Path("plausible-import.failed.jsonl")
STDOUT = "-"  # as --output or --report: standard output

PathLike = str | Path
TimeBound = str | dt.date | dt.datetime | None

_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")


class ConfigError(Exception):
    """A problem with what the user asked for (an option, the mapping, the inputs); exit code 2."""


def check_zone(name: str, option: str) -> str:
    """An IANA zone name as given ("utc" as "UTC"), or a ConfigError naming ``option``."""
    from .readers.normalise import check_timezone

    try:
        return check_timezone(name)
    except ValueError as exc:
        raise ConfigError(f"{option}: {exc}") from None


def normalise_domain(domain: str) -> str:
    value = domain.strip().lower()
    if not value or "/" in value or " " in value:
        raise ConfigError(f"--domain {domain!r}: give the site's domain as it is set in Plausible, e.g. example.com")
    return value


def time_bound(value: TimeBound, *, end: bool = False) -> dt.datetime | None:
    """``--since`` / ``--until`` as an aware UTC datetime (None: no bound); see
    :func:`importer.mapping.date_bound` for what a date and a time mean."""
    from .mapping import date_bound

    bound: Callable[..., dt.datetime | None] = date_bound
    try:
        return bound(value, end=end)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


@dataclass(frozen=True)
class ReadOptions:
    """How inputs are read and which rows count; the same for ``send``, ``backfill`` and ``preview``.

    ``log_timezone`` is the zone of times written without an offset: in access logs, and in
    CSV/Parquet/NDJSON exports unless the mapping's ``input.timezone`` names a zone other
    than UTC.
    """

    mapping: str | Path | Mapping = "web"
    log_format: str | None = None  # --format: a format name instead of detection
    custom_format: str | None = None  # --log-format: the server's log_format / LogFormat string
    log_timezone: str = "UTC"
    since: TimeBound = None
    until: TimeBound = None
    encoding: str = "utf-8"  # --encoding: the logs' text encoding
    time_format: str | None = None  # --time-format: strftime of a --log-format's own time field

    def __post_init__(self) -> None:
        object.__setattr__(self, "log_timezone", check_zone(self.log_timezone, "--log-timezone"))
        if self.log_format is not None and self.custom_format is not None:
            raise ConfigError("give either --format (a name) or --log-format (your server's format string), not both")
        since, until = self.window
        if since is not None and until is not None and since >= until:
            raise ConfigError("--since must be before --until")

    @property
    def window(self) -> tuple[dt.datetime | None, dt.datetime | None]:
        """``since`` and ``until`` as aware UTC datetimes."""
        return time_bound(self.since), time_bound(self.until, end=True)

    def check_formats(self) -> None:
        """The named or custom log format exists (this imports the readers, so it is separate)."""
        from .readers import FormatError
        from .readers.base import check_encoding
        from .readers.custom import compile_format
        from .readers.detect import format_named

        if self.time_format is not None and self.custom_format is None:
            raise ConfigError("--time-format reads the time of a --log-format; give that too")
        try:
            check_encoding(self.encoding)
        except (ValueError, FormatError) as exc:
            raise ConfigError(f"--encoding: {exc}") from None
        try:
            if self.log_format is not None:
                format_named(self.log_format)
            if self.custom_format is not None:
                compile_format(self.custom_format, self.time_format)
        except (ValueError, FormatError) as exc:
            flag = "--format" if self.log_format is not None else "--log-format"
            message = str(exc)
            raise ConfigError(message if message.startswith(flag) else f"{flag}: {message}") from None


def parse_header(text: str) -> tuple[str, str]:
    """``'Name: value'`` as (name, value), or a ConfigError that does not quote the value."""
    name, sep, value = text.partition(":")
    name, value = name.strip(), value.strip()
    if not sep or not _HEADER_NAME.fullmatch(name) or "\r" in value or "\n" in value:
        raise ConfigError(f"--header {name[:40]!r}...: give 'Name: value' (a token, a colon, a value on one line)")
    return name, value


def parse_pace(value: str | float) -> float:
    """``asap`` -> 0, ``realtime`` -> 1, a number -> that speed-up factor (> 0)."""
    if isinstance(value, (int, float)):
        factor = float(value)
    else:
        text = value.strip().lower()
        if text in ("", "asap"):
            return 0.0
        if text == "realtime":
            return 1.0
        try:
            factor = float(text.rstrip("x"))
        except ValueError:
            raise ConfigError(f"--pace {value!r}: use asap, realtime or a speed-up factor such as 10") from None
    if factor < 0 or factor != factor:
        raise ConfigError(f"--pace {value!r}: the factor must be positive")
    return factor


EXAMPLE_ENDPOINT = "https://plausible.example.com/api/event"


def check_endpoint(url: str) -> None:
    """Raise ConfigError (one line: exit 2) unless ``url`` is an http(s) URL with a host."""
    # Without a scheme the password is not recognised as one: hide whatever precedes an @.
    shown = redact_url(url) if "://" in url else re.sub(r"^[^/@]*@", "***@", url)
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise ConfigError(f"--endpoint {shown!r}: not a URL ({exc}); give one such as {EXAMPLE_ENDPOINT}") from None
    if parts.scheme not in ("http", "https"):
        raise ConfigError(
            f"--endpoint {shown!r}: the URL needs http:// or https:// in front (Plausible's is {EXAMPLE_ENDPOINT})"
        )
    if not parts.hostname:
        raise ConfigError(f"--endpoint {shown!r}: the URL has no host; give one such as {EXAMPLE_ENDPOINT}")
    if port == 0:
        raise ConfigError(f"--endpoint {shown!r}: port 0 is not a port")


@dataclass(frozen=True)
class DeliveryOptions:
    """How ``send`` delivers events to Plausible's ``/api/event``.

    ``headers`` are sent with every request ('Name: value' strings or (name, value) pairs),
    for an instance behind an authenticating proxy; their values, like the endpoint's
    password, never appear in summaries, reports or messages. ``state`` is the checkpoint
    file (None: none). Data older than a day is refused unless ``replay_history`` is set:
    ``/api/event`` dates every event at its arrival (``backfill`` keeps real dates).
    """

    endpoint: str = field(default=DEFAULT_ENDPOINT, repr=False)  # (its password stays out of reprs)
    rate: float = 50.0  # events per second at most; 0: unlimited
    concurrency: int = 8
    timeout_s: float = 10.0
    max_attempts: int = 5
    retry_dropped: int = 0
    max_retry_s: float = 300.0
    pace: str | float = "asap"
    drain_s: float = 10.0
    backoff_s: float = 0.5
    ca_bundle: PathLike | None = None
    headers: tuple[str | tuple[str, str], ...] = field(default=(), repr=False)
    state: PathLike | None = None
    follow: bool = False
    replay_history: bool = False
    wait_s: float = 0.0  # wait this long for another run of the same job to finish (--wait)
    state_key: str | None = None  # checkpoint standard input under this name (--state-key)
    max_dropped_share: float = 1.0  # exit 3 when Plausible drops more than this share (1.0: only all)
    max_unanswered: int = 20  # stop after this many tries in a row get no answer (0: never)
    check_connection: bool = True  # one test connection to the endpoint before reading

    def __post_init__(self) -> None:
        check_endpoint(self.endpoint)
        for name, value, least in (
            ("--rate", self.rate, 0),
            ("--timeout", self.timeout_s, 0),
            ("--max-retry-time", self.max_retry_s, 0),
            ("--drain-timeout", self.drain_s, 0),
            ("--backoff", self.backoff_s, 0),
            ("--concurrency", self.concurrency, 1),
            ("--max-attempts", self.max_attempts, 1),
            ("--retry-dropped", self.retry_dropped, 0),
            ("--wait", self.wait_s, 0),
            ("--max-unanswered", self.max_unanswered, 0),
        ):
            if math.isnan(value) or value < least:
                raise ConfigError(f"{name} must be {least} or more, not {value}")
        if not 0 <= self.max_dropped_share <= 1:
            raise ConfigError(f"--max-dropped-share must be between 0 and 1, not {self.max_dropped_share}")
        if self.state_key is not None and not self.state_key.strip():
            raise ConfigError("--state-key needs a name")
        parse_pace(self.pace)
        object.__setattr__(self, "headers", tuple(self.header_pairs))
        if "@" in urllib.parse.urlsplit(self.endpoint).netloc and any(
            name.lower() == "authorization" for name, _ in self.header_pairs
        ):
            raise ConfigError(
                "give credentials either in --endpoint (user:password@) or in an Authorization --header, not both"
            )

    def tls(self) -> ssl.SSLContext | bool:
        """The TLS context for an https endpoint (``--ca-bundle``), or a ConfigError."""
        from .sinks.answers import tls_context

        try:
            context: ssl.SSLContext | bool = tls_context(self.ca_bundle)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        return context

    @property
    def header_pairs(self) -> list[tuple[str, str]]:
        return [parse_header(h) if isinstance(h, str) else (h[0], h[1]) for h in self.headers]

    @property
    def pace_factor(self) -> float:
        return parse_pace(self.pace)


@dataclass(frozen=True)
class OutputOptions:
    """The files a run writes besides its events; None writes none. ``report`` and ``events``
    (a dry run's events as JSON lines) may be ``"-"``: standard output. ``progress`` shows
    progress bars on standard error."""

    report: PathLike | None = None
    rejects: PathLike | None = DEFAULT_REJECTS
    failed: PathLike | None = DEFAULT_FAILED
    events: PathLike | None = None
    progress: bool = False

    def check_writable(self) -> None:
        """Every file can be written: one ConfigError naming the option, before anything is sent."""
        for option, path in (
            ("--report", self.report),
            ("--rejects", self.rejects),
            ("--failed", self.failed),
            ("--output", self.events),
        ):
            if path is not None and str(path) != STDOUT:
                check_writable_file(Path(path), option)


def check_writable_file(path: Path, option: str) -> None:
    """``path`` can be written: a file that exists is opened for appending (and left as it is),
    else a file is made and removed again beside it (its folders are made if need be)."""
    if path.is_dir():
        raise ConfigError(f"{option} {path}: is a directory; give a file name")
    if not path.exists():
        check_writable_dir(path.parent, option, shown=path)
        return
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_APPEND))
    except OSError as exc:
        raise ConfigError(f"{option} {path}: cannot be written ({exc.strerror or exc})") from None


def check_writable_dir(path: Path, option: str, shown: Path | None = None) -> None:
    """A folder that exists or can be made, and where a file can be written."""
    if path.exists() and not path.is_dir():
        raise ConfigError(f"{option} {shown or path}: {path} is not a directory")
    try:
        path.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=path, prefix=".plausible-import-probe-")
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise ConfigError(f"{option} {shown or path}: nothing can be written there ({exc.strerror or exc})") from None


def check_send(dry_run: bool, delivery: DeliveryOptions, outputs: OutputOptions) -> None:
    """What only makes sense together: a dry run's events file, following a live log."""
    if outputs.events is not None and not dry_run:
        raise ConfigError("--output writes the events of a dry run; add --dry-run")
    if delivery.follow and dry_run:
        raise ConfigError("--follow forwards lines as they are written; it cannot be a dry run")
    outputs.check_writable()


@dataclass(frozen=True)
class BackfillOptions:
    """Where ``backfill`` writes Plausible's ten CSV files, and the site's time zone in Plausible
    (the dates of those files)."""

    site_timezone: str
    out_dir: PathLike

    def __post_init__(self) -> None:
        try:
            object.__setattr__(self, "site_timezone", check_zone(self.site_timezone, "--site-timezone"))
        except ConfigError:
            raise ConfigError(
                f"--site-timezone {self.site_timezone!r}: give the site's time zone as an IANA "
                "name, e.g. Europe/Berlin or UTC (Site settings > General in Plausible)"
            ) from None

    def check_writable(self) -> None:
        check_writable_dir(Path(self.out_dir), "--out")
