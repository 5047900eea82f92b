"""``plausible-import receiver`` and ``demo``: a local Plausible-compatible /api/event, and a
replay of the bundled sample log to it."""

from __future__ import annotations

from pathlib import Path

import typer

from .. import resources
from .common import fail


def receiver_command(
    port: int = typer.Option(8000, help="Port to listen on (0: any free port)."),
    host: str = typer.Option("127.0.0.1", help="Address to listen on."),
    record: Path | None = typer.Option(None, "--record", help="Append accepted events here as JSON lines."),
    fail_share: float = typer.Option(0.0, help="Share of requests answered 503 (with Retry-After)."),
    fail_first: int = typer.Option(0, help="Answer the first N requests with 503."),
    burst_every: int = typer.Option(0, help="With --burst-length M: of every N requests, the first M get 503."),
    burst_length: int = typer.Option(0, help="Length of each burst of 503s."),
    retry_after: str = typer.Option("0", help="Retry-After value sent with 503s."),
    reset_share: float = typer.Option(0.0, help="Share of requests whose connection is dropped unanswered."),
    delay: float = typer.Option(0.0, help="Seconds to wait before each answer."),
    drop_share: float = typer.Option(0.0, help="Share of good events answered 202 with x-plausible-dropped."),
    slow_first: int = typer.Option(0, help="With --delay: only the first N requests are slow."),
    answer_status: int = typer.Option(
        0,
        help="Answer every event with this status (e.g. 302, 200, 400), recording "
        "nothing: what a misconfigured endpoint does.",
    ),
    location: str | None = typer.Option(None, help="With --answer-status 3xx: the Location header."),
    body_bytes: int = typer.Option(0, help="Pad every answer's body to this many bytes."),
    tls_cert: Path | None = typer.Option(None, help="Serve https with this certificate (PEM; with --tls-key)."),
    tls_key: Path | None = typer.Option(None, help="The private key of --tls-cert (PEM)."),
    seed: int | None = typer.Option(None, help="Seed for the fault shares, for repeatable runs."),
) -> None:
    """Run a local Plausible-compatible /api/event that validates and records events."""
    import asyncio
    import ssl

    from ..receiver import Faults, Receiver

    faults = Faults(
        fail_share=fail_share,
        fail_first=fail_first,
        burst_every=burst_every,
        burst_length=burst_length,
        retry_after=retry_after or None,
        reset_share=reset_share,
        delay_s=delay,
        drop_share=drop_share,
        seed=seed,
        slow_first=slow_first,
        answer_status=answer_status,
        location=location,
        body_bytes=body_bytes,
    )
    tls = None
    if tls_cert is not None:
        tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        try:
            tls.load_cert_chain(tls_cert, tls_key)
        except (OSError, ssl.SSLError) as exc:
            fail(f"--tls-cert {tls_cert} / --tls-key {tls_key}: {exc}")
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
        fail(f"cannot listen on {host}:{port}: {exc}")


def demo_command(
    rate: float = typer.Option(400.0, help="Events per second."),
    record: Path = typer.Option(Path("demo-events.jsonl"), help="Where the local receiver records events."),
    no_progress: bool = typer.Option(False, "--no-progress", help="No progress bars."),
) -> None:
    """Replay the bundled sample log to a local receiver: no Plausible account needed."""
    from ..options import DeliveryOptions, OutputOptions
    from ..pipeline import send
    from ..receiver import Receiver

    sample = resources.sample_data_dir() / "access.log"
    if not sample.is_file():
        fail(f"the sample log is missing ({sample})")
    if record.exists():
        record.unlink()
    receiver = Receiver(record=record, keep_events=False)
    with receiver.running():
        typer.echo(f"demo: a local Plausible-compatible receiver listens on {receiver.endpoint}", err=True)
        typer.echo(
            f"demo: plausible-import send {sample} --domain example.com --endpoint {receiver.endpoint} "
            "--replay-history",
            err=True,
        )
        # The sample is old on purpose: the demo replays it onto today, as send --replay-history does.
        delivery = DeliveryOptions(endpoint=receiver.endpoint, rate=rate, concurrency=8, replay_history=True)
        result = send(
            [sample],
            "example.com",
            delivery=delivery,
            outputs=OutputOptions(rejects=Path("demo-rejects.jsonl"), progress=not no_progress),
        )
    typer.echo(result.summary(), err=True)
    typer.echo(
        f"demo: the receiver recorded {receiver.stats.accepted:,} events in {record}; "
        "point --endpoint at your Plausible to send your own logs.",
        err=True,
    )
    raise typer.Exit(result.exit_code())
