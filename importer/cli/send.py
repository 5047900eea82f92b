"""``plausible-import send``: read logs or exports, map rows to events, replay them to /api/event."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from ..options import DEFAULT_FAILED, DEFAULT_REJECTS, ConfigError
from ..plausible import DEFAULT_ENDPOINT
from .common import (
    ConfigOption,
    CustomFormat,
    Domain,
    Encoding,
    FormatName,
    LogTimezone,
    MappingName,
    NoProgress,
    OldTimezoneForLogs,
    ProfileOption,
    RejectsPath,
    ReportPath,
    Since,
    Sources,
    TimeFormat,
    Until,
    fail,
    read_options,
    write_run_html,
)

STATE_HELP = (
    "Checkpoint file (SQLite) for resume. Default: $PLAUSIBLE_IMPORT_STATE, else "
    "$XDG_STATE_HOME/plausible-import/state.sqlite (~/.local/state/plausible-import/state.sqlite)."
)
TIMEOUT_HELP = (
    "Seconds to wait to connect, then for each answer (no answer in time is retried and counted as a "
    "possible duplicate)."
)


# The options only send has (those it shares with other commands are in .common).
Endpoint = Annotated[str, typer.Option("--endpoint", help="Plausible's event endpoint.")]
Rate = Annotated[float, typer.Option("--rate", help="Events per second at most (0: unlimited).")]
Concurrency = Annotated[int, typer.Option("--concurrency", help="Requests in flight at once.")]
DryRun = Annotated[bool, typer.Option("--dry-run", help="Send nothing.")]
Output = Annotated[
    Path | None,
    typer.Option("--output", "-o", help="With --dry-run: write events as JSON lines (-: standard output)."),
]
Timeout = Annotated[float, typer.Option("--timeout", help=TIMEOUT_HELP)]
MaxAttempts = Annotated[int, typer.Option("--max-attempts", help="Tries per event on errors worth retrying.")]
State = Annotated[Path | None, typer.Option("--state", help=STATE_HELP)]
NoState = Annotated[bool, typer.Option("--no-state", help="Keep no checkpoint: send everything given.")]
Failed = Annotated[Path, typer.Option("--failed", help="JSON lines of events that failed, with the last error.")]
RetryDropped = Annotated[
    int, typer.Option("--retry-dropped", help="Send an event answered as dropped up to N more times.")
]
MaxRetryTime = Annotated[float, typer.Option("--max-retry-time", help="Seconds to keep retrying one event.")]
Pace = Annotated[str, typer.Option("--pace", help="asap, realtime (original gaps), or a speed-up factor such as 10.")]
DrainTimeout = Annotated[
    float, typer.Option("--drain-timeout", help="On Ctrl-C/SIGTERM, seconds to let in-flight requests finish.")
]
Backoff = Annotated[float, typer.Option("--backoff", help="Base of the exponential retry backoff, in seconds.")]
Follow = Annotated[
    bool, typer.Option("--follow", "-f", help="Keep reading the last input as it grows, across rotations.")
]
CaBundle = Annotated[
    Path | None,
    typer.Option(
        "--ca-bundle",
        help="PEM file of the CA(s) to trust for an https endpoint instead of the system's "
        "(for a private CA; SSL_CERT_FILE also works).",
    ),
]
Header = Annotated[
    list[str] | None,
    typer.Option(
        "--header",
        help="'Name: value' sent with every request (repeatable), e.g. for an authenticating proxy; "
        "values never appear in output.",
    ),
]
Wait = Annotated[
    float,
    typer.Option(
        "--wait",
        help="Wait up to SECONDS for another run of the same job (state file, endpoint, domain) to finish "
        "instead of exiting 2.",
    ),
]
StateKey = Annotated[
    str | None,
    typer.Option(
        "--state-key",
        help="Checkpoint standard input under NAME: lines are counted from the stream's start, so a "
        "re-run sends only new lines.",
    ),
]
MaxDroppedShare = Annotated[
    float,
    typer.Option(
        "--max-dropped-share",
        help="Exit 3 when Plausible drops more than this share of the answered events (1.0: only when it drops all).",
    ),
]
MaxUnanswered = Annotated[
    int,
    typer.Option(
        "--max-unanswered",
        help="Stop after N tries in a row get no answer (or a 5xx before anything was accepted); 0 never stops.",
    ),
]
NoConnectionCheck = Annotated[
    bool, typer.Option("--no-connection-check", help="Do not open a test connection to the endpoint before reading.")
]
Html = Annotated[Path | None, typer.Option("--html", help="Also write an HTML report of the run here.")]
ReplayHistory = Annotated[
    bool,
    typer.Option(
        "--replay-history",
        help="Send data older than a day as today's traffic (for history with its real dates, use backfill).",
    ),
]


def send_command(
    sources: Sources,
    domain: Domain,
    endpoint: Endpoint = DEFAULT_ENDPOINT,
    mapping: MappingName = "web",
    rate: Rate = 50.0,
    concurrency: Concurrency = 8,
    report: ReportPath = None,
    rejects: RejectsPath = DEFAULT_REJECTS,
    dry_run: DryRun = False,
    output: Output = None,
    no_progress: NoProgress = False,
    log_format: FormatName = None,
    custom_format: CustomFormat = None,
    log_timezone: LogTimezone = "UTC",
    encoding: Encoding = "utf-8",
    time_format: TimeFormat = None,
    timeout: Timeout = 10.0,
    max_attempts: MaxAttempts = 5,
    state: State = None,
    no_state: NoState = False,
    failed: Failed = DEFAULT_FAILED,
    retry_dropped: RetryDropped = 0,
    max_retry_time: MaxRetryTime = 300.0,
    pace: Pace = "asap",
    drain_timeout: DrainTimeout = 10.0,
    backoff: Backoff = 0.5,
    follow: Follow = False,
    since: Since = None,
    until: Until = None,
    ca_bundle: CaBundle = None,
    header: Header = None,
    replay_history: ReplayHistory = False,
    html: Html = None,
    wait: Wait = 0.0,
    state_key: StateKey = None,
    max_dropped_share: MaxDroppedShare = 1.0,
    max_unanswered: MaxUnanswered = 20,
    no_connection_check: NoConnectionCheck = False,
    config: ConfigOption = None,
    profile: ProfileOption = None,
    timezone: OldTimezoneForLogs = None,
) -> None:
    """Read logs or exports, map rows to events, and replay them to /api/event."""
    from ..mapping import MappingError
    from ..options import DeliveryOptions, OutputOptions
    from ..pipeline import HistoryRefused, send

    read = read_options(mapping, log_format, custom_format, log_timezone, since, until, encoding, time_format)
    try:
        delivery = DeliveryOptions(
            endpoint=endpoint,
            rate=rate,
            concurrency=concurrency,
            timeout_s=timeout,
            max_attempts=max_attempts,
            retry_dropped=retry_dropped,
            max_retry_s=max_retry_time,
            pace=pace,
            drain_s=drain_timeout,
            backoff_s=backoff,
            ca_bundle=ca_bundle,
            headers=tuple(header or ()),
            follow=follow,
            state=_state_path(state, no_state or dry_run),
            replay_history=replay_history,
            wait_s=wait,
            state_key=state_key,
            max_dropped_share=max_dropped_share,
            max_unanswered=max_unanswered,
            check_connection=not no_connection_check,
        )
        outputs = OutputOptions(report=report, rejects=rejects, failed=failed, events=output, progress=not no_progress)
        asked: list[bool] = []
        result = send(
            sources,
            domain,
            read=read,
            delivery=delivery,
            outputs=outputs,
            dry_run=dry_run,
            confirm_history=_ask_on_terminal(sources, asked),
        )
    except HistoryRefused as exc:
        fail(
            "nothing sent: you answered no (--replay-history sends it anyway; backfill keeps the real dates)"
            if asked
            else str(exc)
        )
    except (ConfigError, MappingError) as exc:
        fail(str(exc))
    except KeyboardInterrupt:
        # Ctrl-C before sending began (while sending, the sender drains, saves and exits 130 itself)
        typer.echo("plausible-import: interrupted", err=True)
        raise typer.Exit(130) from None
    typer.echo(result.summary(), err=True)
    if html is not None:
        write_run_html(html, result, "plausible-import send" + (" --dry-run" if dry_run else ""))
    if result.state_error:
        typer.echo(f"error: {result.state_error}", err=True)
    raise typer.Exit(result.exit_code())


def _state_path(state: Path | None, none: bool) -> Path | None:
    if none:
        return None
    from ..state import default_state_path

    return state or default_state_path()


def _ask_on_terminal(sources: list[str], asked: list[bool]) -> Callable[[str], bool] | None:
    """On a terminal (and not reading standard input), ask before replaying history onto today;
    without one (a cron job) there is no one to ask: the run is refused."""
    if "-" in sources or not sys.stdin.isatty():
        return None

    def confirm(message: str) -> bool:
        asked.append(True)
        typer.echo(f"warning: {message}", err=True)
        answer: Any = typer.confirm("Send it as today's traffic anyway?", default=False, err=True)
        return bool(answer)

    return confirm
