"""The ``plausible-import`` command: a thin shell over the library API.

Exit codes: 0 every event settled as accepted or dropped (or a clean dry run); 1 some events
were rejected or failed, or an input was skipped; 2 a usage or configuration error; 130 / 143
interrupted by SIGINT / SIGTERM (state saved, in-flight requests drained).
"""

from __future__ import annotations

import asyncio
import gc
import sys
from pathlib import Path
from typing import Optional

import typer

from . import __version__, resources
from .pipeline import DEFAULT_FAILED, DEFAULT_REJECTS
from .sinks.http import DEFAULT_ENDPOINT

# Only what the command line's definition needs is imported here: each command imports the
# rest (pyarrow, the mapping engine, the receiver, aiohttp...) when it runs, so that `--help`
# and a dry run do not pay for what they do not use.

app = typer.Typer(
    help="Move web traffic you already have (access logs, analytics exports) into Plausible Analytics.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _fail(message: str) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2)


def _exit_code(report) -> int:
    if report.state_error:
        return 2
    if report.interrupted is not None:
        return 128 + int(report.interrupted)
    if report.rejected or report.failed or report.skipped_sources or report.inputs_damaged:
        return 1
    return 0


def _version(value: bool) -> None:
    if value:
        typer.echo(f"plausible-import {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version."),
) -> None:
    pass


@app.command("send")
def send_command(
    sources: list[str] = typer.Argument(..., help="Log files, exports, directories, globs, or - for stdin."),
    domain: str = typer.Option(..., "--domain", "-d", help="The site's domain as set in Plausible."),
    endpoint: str = typer.Option(DEFAULT_ENDPOINT, help="Plausible's event endpoint."),
    mapping: str = typer.Option("web", "--mapping", "-m", help="A built-in mapping name or a TOML file."),
    rate: float = typer.Option(50.0, help="Events per second at most (0: unlimited)."),
    concurrency: int = typer.Option(8, help="Requests in flight at once."),
    report: Optional[Path] = typer.Option(None, "--report", help="Write the run's report as JSON here."),
    rejects: Path = typer.Option(DEFAULT_REJECTS, "--rejects", help="JSON lines of bad input and refused events."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Send nothing."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="With --dry-run: write events as JSON lines."),
    no_progress: bool = typer.Option(False, "--no-progress", help="No progress bars or progress lines."),
    log_format: Optional[str] = typer.Option(
        None, "--format", help="Log format instead of detecting it (the names: plausible-import formats)."
    ),
    custom_format: Optional[str] = typer.Option(
        None, "--log-format", help="Your server's nginx log_format or Apache LogFormat string, compiled into a parser."
    ),
    timezone: str = typer.Option("UTC", "--timezone", help="IANA zone for log times written without one."),
    encoding: str = typer.Option("utf-8", "--encoding", help="The logs' text encoding (latin-1, cp1252, big5...)."),
    time_format: Optional[str] = typer.Option(
        None, "--time-format", help="strftime format of the time in your --log-format (e.g. '%d.%m.%Y %H:%M:%S')."
    ),
    timeout: float = typer.Option(10.0, help="Seconds to wait to connect, then for each answer (no answer in time "
                                  "is retried and counted as a possible duplicate)."),
    max_attempts: int = typer.Option(5, help="Tries per event on errors worth retrying."),
    state: Optional[Path] = typer.Option(
        None, "--state", help="Checkpoint file (SQLite) for resume. Default: $PLAUSIBLE_IMPORT_STATE, else "
        "$XDG_STATE_HOME/plausible-import/state.sqlite (~/.local/state/plausible-import/state.sqlite)."),
    no_state: bool = typer.Option(False, "--no-state", help="Keep no checkpoint: send everything given."),
    failed: Path = typer.Option(DEFAULT_FAILED, "--failed", help="JSON lines of events that failed, with the last error."),
    retry_dropped: int = typer.Option(0, "--retry-dropped", help="Send an event answered as dropped up to N more times."),
    max_retry_time: float = typer.Option(300.0, "--max-retry-time", help="Seconds to keep retrying one event."),
    pace: str = typer.Option("asap", "--pace", help="asap, realtime (original gaps), or a speed-up factor such as 10."),
    drain_timeout: float = typer.Option(10.0, "--drain-timeout", help="On Ctrl-C/SIGTERM, seconds to let in-flight requests finish."),
    backoff: float = typer.Option(0.5, "--backoff", help="Base of the exponential retry backoff, in seconds."),
    follow: bool = typer.Option(False, "--follow", "-f", help="Keep reading the last input as it grows, across rotations."),
    since: Optional[str] = typer.Option(None, "--since", help="Only rows at or after this date/time (UTC unless given)."),
    until: Optional[str] = typer.Option(None, "--until", help="Only rows before this time; a date includes that whole day."),
    ca_bundle: Optional[Path] = typer.Option(
        None, "--ca-bundle", help="PEM file of the CA(s) to trust for an https endpoint instead of the system's "
        "(for a private CA; SSL_CERT_FILE also works)."),
    html: Optional[Path] = typer.Option(None, "--html", help="Also write an HTML report of the run here."),
) -> None:
    """Read logs or exports, map rows to events, and replay them to /api/event."""
    from .mapping import MappingError
    from .pipeline import ConfigError, send

    if no_state or dry_run:
        state_path = None
    else:
        from .state import default_state_path

        state_path = state or default_state_path()
    try:
        result = send(
            sources,
            domain=domain,
            mapping=mapping,
            endpoint=endpoint,
            rate=rate,
            concurrency=concurrency,
            dry_run=dry_run,
            output=output,
            report_path=report,
            rejects_path=rejects,
            progress=not no_progress,
            log_format=log_format,
            timeout_s=timeout,
            max_attempts=max_attempts,
            failed_path=failed,
            state=state_path,
            retry_dropped=retry_dropped,
            max_retry_s=max_retry_time,
            pace=pace,
            drain_s=drain_timeout,
            backoff_s=backoff,
            follow=follow,
            timezone=timezone,
            custom_format=custom_format,
            encoding=encoding,
            time_format=time_format,
            since=since,
            until=until,
            ca_bundle=ca_bundle,
        )
    except (ConfigError, MappingError) as exc:
        _fail(str(exc))
        return
    except KeyboardInterrupt:
        # Ctrl-C before sending began (while sending, the sender drains, saves and exits 130 itself)
        typer.echo("plausible-import: interrupted", err=True)
        raise typer.Exit(130) from None
    typer.echo(result.summary(), err=True)
    if html is not None:
        _write_run_html(html, result, "plausible-import send" + (" --dry-run" if dry_run else ""))
    if result.state_error:
        typer.echo(f"error: {result.state_error}", err=True)
    raise typer.Exit(_exit_code(result))


def _write_run_html(path: Path, report, title: str) -> None:
    from .html import run_page, write_page
    from .pipeline import time_note

    note = time_note(report.oldest)
    typer.echo(f"report: {write_page(path, run_page(report, title, note.removeprefix('note: ') if note else None))}",
               err=True)


@app.command("receiver")
def receiver_command(
    port: int = typer.Option(8000, help="Port to listen on (0: any free port)."),
    host: str = typer.Option("127.0.0.1", help="Address to listen on."),
    record: Optional[Path] = typer.Option(None, "--record", help="Append accepted events here as JSON lines."),
    fail_share: float = typer.Option(0.0, help="Share of requests answered 503 (with Retry-After)."),
    fail_first: int = typer.Option(0, help="Answer the first N requests with 503."),
    burst_every: int = typer.Option(0, help="With --burst-length M: of every N requests, the first M get 503."),
    burst_length: int = typer.Option(0, help="Length of each burst of 503s."),
    retry_after: str = typer.Option("0", help="Retry-After value sent with 503s."),
    reset_share: float = typer.Option(0.0, help="Share of requests whose connection is dropped unanswered."),
    delay: float = typer.Option(0.0, help="Seconds to wait before each answer."),
    drop_share: float = typer.Option(0.0, help="Share of good events answered 202 with x-plausible-dropped."),
    slow_first: int = typer.Option(0, help="With --delay: only the first N requests are slow."),
    answer_status: int = typer.Option(0, help="Answer every event with this status (e.g. 302, 200, 400), recording "
                                      "nothing: what a misconfigured endpoint does."),
    location: Optional[str] = typer.Option(None, help="With --answer-status 3xx: the Location header."),
    body_bytes: int = typer.Option(0, help="Pad every answer's body to this many bytes."),
    tls_cert: Optional[Path] = typer.Option(None, help="Serve https with this certificate (PEM; with --tls-key)."),
    tls_key: Optional[Path] = typer.Option(None, help="The private key of --tls-cert (PEM)."),
    seed: Optional[int] = typer.Option(None, help="Seed for the fault shares, for repeatable runs."),
) -> None:
    """Run a local Plausible-compatible /api/event that validates and records events."""
    import ssl

    from .receiver import Faults, Receiver

    faults = Faults(fail_share=fail_share, fail_first=fail_first, burst_every=burst_every, burst_length=burst_length,
                    retry_after=retry_after or None,
                    reset_share=reset_share, delay_s=delay, drop_share=drop_share, seed=seed, slow_first=slow_first,
                    answer_status=answer_status, location=location, body_bytes=body_bytes)
    tls = None
    if tls_cert is not None:
        tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        try:
            tls.load_cert_chain(tls_cert, tls_key)
        except (OSError, ssl.SSLError) as exc:
            _fail(f"--tls-cert {tls_cert} / --tls-key {tls_key}: {exc}")
    receiver = Receiver(host=host, port=port, record=record, faults=faults, keep_events=False, tls=tls)

    async def serve() -> None:
        await receiver.start()
        typer.echo(f"receiving on {receiver.endpoint}" + (f", recording to {record}" if record else ""), err=True)
        try:
            await asyncio.Event().wait()
        finally:
            await receiver.stop()

    try:
        asyncio.run(serve())
    except KeyboardInterrupt:
        typer.echo(f"stopped: {receiver.stats.as_dict()}", err=True)
    except OSError as exc:
        _fail(f"cannot listen on {host}:{port}: {exc}")


@app.command("demo")
def demo_command(
    rate: float = typer.Option(400.0, help="Events per second."),
    record: Path = typer.Option(Path("demo-events.jsonl"), help="Where the local receiver records events."),
    no_progress: bool = typer.Option(False, "--no-progress", help="No progress bars."),
) -> None:
    """Replay the bundled sample log to a local receiver: no Plausible account needed."""
    from .pipeline import send
    from .receiver import Receiver

    sample = resources.sample_data_dir() / "access.log"
    if not sample.is_file():
        _fail(f"the sample log is missing ({sample})")
    if record.exists():
        record.unlink()
    receiver = Receiver(record=record, keep_events=False)
    with receiver.running():
        typer.echo(f"demo: a local Plausible-compatible receiver listens on {receiver.endpoint}", err=True)
        typer.echo(f"demo: plausible-import send {sample} --domain example.com --endpoint {receiver.endpoint}",
                   err=True)
        result = send([sample], domain="example.com", endpoint=receiver.endpoint, rate=rate, concurrency=8,
                      progress=not no_progress, rejects_path=Path("demo-rejects.jsonl"))
    typer.echo(result.summary(), err=True)
    typer.echo(f"demo: the receiver recorded {receiver.stats.accepted:,} events in {record}; "
               "point --endpoint at your Plausible to send your own logs.", err=True)
    raise typer.Exit(_exit_code(result))


# Commands that live in their own modules register themselves on ``app`` when imported.
# Add one import per module here (modules named importer/cli_<topic>.py).
from . import cli_backfill  # noqa: E402,F401  (backfill)
from . import cli_formats  # noqa: E402,F401  (formats, preview)
from . import cli_mappings  # noqa: E402,F401  (mappings)


def run() -> None:  # pragma: no cover - console script entry point
    try:
        app()
    finally:
        # At exit the interpreter's last garbage collection walks every object pyarrow and
        # pandas created at import (~60 ms here); what is left is freed by reference counting
        # either way, so freeze those objects out of that walk.
        gc.freeze()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
