"""Inputs read straight from object stores: s3:// against moto's real S3 API server on loopback
(listing order, --state over a prefix that grew, a key deleted mid-run, slow answers), an
https:// file from a loopback web server, and the message a user gets when the cloud extra is
not installed. tests/test_cloud_stores.py runs the scenarios common to S3, Cloud Storage and
Azure (streaming decompression, refused credentials...) against each store's emulator."""

from __future__ import annotations

import datetime as dt
import functools
import gzip
import http.server
import json
import logging
import os
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from conftest import BROWSER, combined_line
from moto.server import DomainDispatcherApplication, create_backend_app
from test_sender_faults import START, pages_of
from werkzeug.serving import make_server

from importer import pipeline
from importer import sources as sources_mod
from importer.options import DeliveryOptions, OutputOptions, ReadOptions
from importer.remote import date_in
from importer.sources import SourceError, expand, open_source

FAKE_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


def test_keys_sort_by_the_date_they_carry(s3):
    keys = [  # as the services name them, listed out of date order (two CloudFront distributions)
        "cf/EZZZ.2024-03-14-10.b2.gz",
        "cf/EAAA.2024-03-14-11.a1.gz",
        "cf/EZZZ.2024-03-14-09.c3.gz",
        (
            "alb/AWSLogs/123456789012/elasticloadbalancing/us-east-1/2024/03/15/"
            "123456789012_elasticloadbalancing_us-east-1_app.web.50dc6c495c0c9188_20240315T0005Z_10.0.0.1_2et2e1mx.log.gz"
        ),
        (
            "alb/AWSLogs/123456789012/elasticloadbalancing/us-east-1/2024/03/14/"
            "123456789012_elasticloadbalancing_us-east-1_app.web.50dc6c495c0c9188_20240314T2355Z_10.0.0.1_3et2e1mx.log.gz"
        ),
    ]
    for key in keys:
        s3.put(key, gzip.compress(b"x\n"))
    names = [s.name.removeprefix(f"s3://{s3.name}/") for s in expand([f"s3://{s3.name}/cf/", f"s3://{s3.name}/alb/"])]
    assert names == [keys[2], keys[0], keys[1], keys[4], keys[3]]
    assert date_in("logs/access-2024-03-14-09-26-53-5C3F6A1B2C3D4E5F") == (2024, 3, 14, 9, 26, 53)
    assert date_in("requests/2024/03/14/09:00:00_09:59:59_S0.json") == (2024, 3, 14, 9, 0, 0)
    assert date_in("access.log.1") == ()


def test_glob_and_prefix_name_the_matching_objects_only(s3):
    wanted = [s3.put(f"logs/2024-03-1{d}.log.gz", gzip.compress(b"x\n")) for d in range(3)]
    s3.put("logs/2024-03-10.json", b"{}\n")
    s3.put("other/2024-03-10.log.gz", gzip.compress(b"x\n"))
    assert [s.name for s in expand([f"s3://{s3.name}/logs/*.log.gz"])] == wanted
    assert len(expand([f"s3://{s3.name}/logs/"])) == 4
    assert len(expand([f"s3://{s3.name}/logs"])) == 4  # a folder with or without its slash
    assert [s.name for s in expand([wanted[0]])] == [wanted[0]]  # an object: itself, not what it prefixes
    s3.put("logs/2024-03-10.log.gz.1", b"x\n")
    assert [s.name for s in expand([wanted[0]])] == [wanted[0]]
    with pytest.raises(SourceError, match="no object matches this prefix"):  # a prefix is a folder, not a name's start
        expand([f"s3://{s3.name}/log"])
    with pytest.raises(SourceError, match=rf"s3://{s3.name}/nothing/\*: no object matches this pattern"):
        expand([f"s3://{s3.name}/nothing/*"])
    with pytest.raises(SourceError, match=rf"s3://{s3.name}/nothing/: no object matches this prefix"):
        expand([f"s3://{s3.name}/nothing/"])


def test_keys_with_spaces_and_signs_are_listed_and_read_as_they_are(s3):
    url = s3.put("odd/a b+c=d&e 2024-03-14.log", log_lines(0, 3))
    (source,) = expand([f"s3://{s3.name}/odd/"])
    assert source.name == url
    assert open_source(source).stream.read() == log_lines(0, 3)


def test_send_from_a_bucket_delivers_every_event_and_writes_nothing_to_disk(tmp_path, s3, receiver):
    for day in range(3):
        s3.put(f"logs/access.log-2024031{day}.gz", gzip.compress(log_lines(day * 50, 50)))
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    home = tmp_path / "home"
    home.mkdir()
    result = send(
        tmp_path,
        receiver,
        f"s3://{s3.name}/logs/",
        env={"TMPDIR": str(scratch), "HOME": str(home), "XDG_CACHE_HOME": str(home / ".cache")},
    )
    assert result.returncode == 0, result.stderr
    assert pages_of(receiver) == pages(0, 150)
    order = [int(e["url"].rsplit("/p", 1)[1]) for e in receiver.events]
    assert order[:50] != order[100:]  # (sanity) and the files went oldest first:
    assert max(order[:50]) < min(order[100:])
    assert list(scratch.iterdir()) == [] and [p for p in home.rglob("*") if p.is_file()] == []


def test_nightly_run_over_a_grown_prefix_sends_only_the_new_files(tmp_path, s3, receiver):
    state = ["--state", str(tmp_path / "state.sqlite")]
    s3.put("cf/E1.2024-03-14-09.a.gz", gzip.compress(log_lines(0, 40)))
    s3.put("cf/E1.2024-03-14-10.b.gz", gzip.compress(log_lines(40, 40)))
    first = send(tmp_path, receiver, f"s3://{s3.name}/cf/", extra=tuple(state))
    assert first.returncode == 0, first.stderr
    assert pages_of(receiver) == pages(0, 80)
    reads_after_first = len(s3.server.hooks.reads)

    s3.put("cf/E1.2024-03-14-11.c.gz", gzip.compress(log_lines(80, 30)))
    s3.put("cf/E1.2024-03-14-12.d.gz", gzip.compress(log_lines(110, 30)))
    second = send(tmp_path, receiver, f"s3://{s3.name}/cf/", extra=tuple(state))
    assert second.returncode == 0, second.stderr
    assert pages_of(receiver) == pages(0, 140)  # each page once: nothing sent twice
    assert json.loads((tmp_path / "report.json").read_text())["accepted"] == 60
    # The old objects are known by their first bytes and skipped as already sent: one ranged
    # read each to identify them; the new ones are read (identified, then sent).
    old_reads = [p for p in s3.server.hooks.reads[reads_after_first:] if p.endswith((".a.gz", ".b.gz"))]
    assert len(old_reads) == 2


def test_a_key_deleted_after_listing_is_skipped_and_named(tmp_path, s3, receiver):
    first = s3.put("logs/2024-03-14.log.gz", gzip.compress(log_lines(0, 20)))
    gone = s3.put("logs/2024-03-15.log.gz", gzip.compress(log_lines(20, 20)))
    s3.put("logs/2024-03-16.log.gz", gzip.compress(log_lines(40, 20)))

    def delete_the_second(path: str) -> None:
        if path.endswith("2024-03-14.log.gz"):
            s3.delete("logs/2024-03-15.log.gz")

    s3.server.hooks.before_read = delete_the_second
    result = send(tmp_path, receiver, f"s3://{s3.name}/logs/")
    assert result.returncode == 1, result.stderr
    assert pages_of(receiver) == pages(0, 20) + pages(40, 20)
    assert f"skipped: {gone}: no such object (deleted after it was listed?)" in result.stderr
    assert "Traceback" not in result.stderr
    rejects = [json.loads(line) for line in (tmp_path / "rejects.jsonl").read_text().splitlines()]
    assert [(r["stage"], r["file"]) for r in rejects] == [("read", gone)]
    assert first not in result.stderr.split("skipped:", 1)[1]


def test_a_key_that_vanishes_while_read_keeps_the_rows_before_and_resumes_after(tmp_path, s3, receiver, monkeypatch):
    monkeypatch.setattr(sources_mod, "BLOCK_BYTES", 64 << 10)
    monkeypatch.setattr("importer.remote.READ_BLOCK_BYTES", 64 << 10)
    text = log_lines(0, 1200, user_agent=BROWSER + " x" * 900)  # ~2.4 MB plain: several ranged reads of ~1 MiB
    key = "logs/2024-03-14.log"
    url = s3.put(key, text)
    reads: list[str] = []

    def delete_on_third_read(path: str) -> None:  # the state reads the head, the reader a first MiB
        reads.append(path)
        if len(reads) == 3:
            s3.delete(key)

    s3.server.hooks.before_read = delete_on_third_read
    state = tmp_path / "state.sqlite"
    report = pipeline.send([url], "example.com", delivery=_delivery(receiver, state), outputs=_outputs(tmp_path))
    (skipped,) = report.skipped_sources  # named, with the rows read before it
    assert (
        skipped.startswith(f"{url}: the object disappeared while it was being read (") and "rows read before" in skipped
    )
    delivered = pages_of(receiver)
    assert 0 < len(delivered) < 1200 and delivered == pages(0, len(delivered))  # the rows before it, in order

    # Put back, the object is resumed where the run stopped: nothing twice, nothing lost.
    s3.server.hooks.before_read = None
    s3.put(key, text)
    again = pipeline.send([url], "example.com", delivery=_delivery(receiver, state), outputs=_outputs(tmp_path))
    assert again.skipped_sources == []
    assert pages_of(receiver) == pages(0, 1200)


def test_slow_answers_slow_the_run_but_lose_nothing(tmp_path, s3, receiver):
    for hour in range(2):
        s3.put(f"cf/E1.2024-03-14-0{hour}.x.gz", gzip.compress(log_lines(hour * 30, 30)))
    s3.server.hooks.delay_s = 1.0  # before every object read
    started = time.monotonic()
    result = send(tmp_path, receiver, f"s3://{s3.name}/cf/")
    assert result.returncode == 0, result.stderr
    assert time.monotonic() - started >= 2.0  # both reads did wait
    assert pages_of(receiver) == pages(0, 60)


def test_an_https_file_is_read_like_a_local_one(tmp_path, receiver):
    served = tmp_path / "served"
    served.mkdir()
    (served / "access.log.gz").write_bytes(gzip.compress(log_lines(0, 25)))
    handler = functools.partial(_QuietHandler, directory=str(served))
    with http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler) as server:
        threading.Thread(target=server.serve_forever, daemon=True).start()
        try:
            url = f"http://127.0.0.1:{server.server_address[1]}/access.log.gz"
            result = send(tmp_path, receiver, url)
            missing = send(tmp_path, receiver, url.replace("access", "nothing"))
        finally:
            server.shutdown()
    assert result.returncode == 0, result.stderr
    assert pages_of(receiver) == pages(0, 25)
    assert missing.returncode == 2 and "nothing.log.gz: no such bucket, object or prefix" in missing.stderr


@pytest.mark.parametrize(
    ("url", "absent"),
    [
        ("s3://bucket/logs/", "fsspec"),
        ("s3://bucket/logs/", "s3fs"),
        ("gs://bucket/logs/", "gcsfs"),
        ("az://container/logs/", "adlfs"),
    ],
)
def test_without_the_cloud_extra_the_message_says_what_to_install(tmp_path, url, absent):
    program = (
        f"import sys; sys.modules[{absent!r}] = None; sys.argv = ['plausible-import', 'send', "
        f"{url!r}, '--domain', 'example.com', '--dry-run']; "
        "from importer.__main__ import main; main()"
    )
    result = subprocess.run(
        [sys.executable, "-c", program], check=False, capture_output=True, text=True, cwd=tmp_path, timeout=60
    )
    assert result.returncode == 2, result.stderr
    scheme = url.split(":")[0]
    assert (
        f"{url}: reading {scheme}:// inputs needs the cloud extra: pip install 'plausible-importer[cloud]'"
        in result.stderr
    )
    assert "Traceback" not in result.stderr


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


# ---------------------------------------------------------------- the S3 server


@dataclass
class Hooks:
    """How the server misbehaves on object reads (GET of a key, not a listing)."""

    delay_s: float = 0.0
    before_read: Callable[[str], None] | None = None  # called with the request path
    reads: list[str] = field(default_factory=list)


class S3Server:
    """A real S3 API (moto's server application) on 127.0.0.1 and a free port."""

    def __init__(self) -> None:
        self.hooks = Hooks()
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        self._app = DomainDispatcherApplication(create_backend_app)
        self._server = make_server("127.0.0.1", 0, self._wrapped, threaded=True)
        self._thread = threading.Thread(target=self._server.serve_forever, name="moto-s3", daemon=True)

    @property
    def endpoint(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def env(self) -> dict[str, str]:
        """What a client needs to reach this server with fake credentials, and nothing else:
        no profile files, no instance metadata service."""
        return {
            **FAKE_CREDENTIALS,
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_EC2_METADATA_DISABLED": "true",
            "AWS_CONFIG_FILE": "/nonexistent",
            "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent",
        }

    def _wrapped(self, environ: dict, start_response: Any) -> Any:
        is_object_read = (
            environ["REQUEST_METHOD"] == "GET"
            and environ["PATH_INFO"].count("/") >= 2
            and "list-type" not in environ.get("QUERY_STRING", "")
        )
        if is_object_read:
            self.hooks.reads.append(environ["PATH_INFO"])
            if self.hooks.before_read is not None:
                self.hooks.before_read(environ["PATH_INFO"])
            time.sleep(self.hooks.delay_s)
        return self._app(environ, start_response)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._thread.join(timeout=10)


# ---------------------------------------------------------------- fixtures and helpers


@pytest.fixture(scope="module")
def s3_server() -> Iterator[S3Server]:
    server = S3Server()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def s3(s3_server, monkeypatch):
    """The server with a fresh bucket, clean hooks, and this process's environment pointing at it."""
    s3_server.hooks = Hooks()
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL_S3"):
        monkeypatch.delenv(name, raising=False)
    for name, value in s3_server.env().items():
        monkeypatch.setenv(name, value)
    import boto3

    client = boto3.client("s3", endpoint_url=s3_server.endpoint)
    bucket = f"logs-{uuid.uuid4().hex[:12]}"
    client.create_bucket(Bucket=bucket)
    return Bucket(s3_server, client, bucket)


@dataclass
class Bucket:
    server: S3Server
    client: Any
    name: str

    def put(self, key: str, body: bytes) -> str:
        self.client.put_object(Bucket=self.name, Key=key, Body=body)
        return f"s3://{self.name}/{key}"

    def delete(self, key: str) -> None:
        self.client.delete_object(Bucket=self.name, Key=key)


def log_lines(first: int, n: int, user_agent: str = BROWSER) -> bytes:
    return "".join(
        combined_line(
            ip=f"192.0.2.{i % 9}", target=f"/p{i}", when=START + dt.timedelta(seconds=i), user_agent=user_agent
        )
        + "\n"
        for i in range(first, first + n)
    ).encode()


def pages(first: int, n: int) -> Counter:
    return Counter(f"/p{i}" for i in range(first, first + n))


def _delivery(receiver, state: Path | None) -> DeliveryOptions:
    return DeliveryOptions(endpoint=receiver.endpoint, rate=0, state=state, replay_history=True)


def _outputs(tmp_path: Path) -> OutputOptions:
    return OutputOptions(rejects=tmp_path / "rejects.jsonl", failed=tmp_path / "failed.jsonl")


def send(
    tmp_path: Path, receiver, *inputs: str, env: dict[str, str] | None = None, extra: tuple[str, ...] = ()
) -> subprocess.CompletedProcess:
    command = [
        sys.executable,
        "-m",
        "importer",
        "send",
        "--replay-history",
        *inputs,
        "--domain",
        "example.com",
        "--endpoint",
        receiver.endpoint,
        "--rate",
        "0",
        "--no-progress",
        "--failed",
        str(tmp_path / "failed.jsonl"),
        "--rejects",
        str(tmp_path / "rejects.jsonl"),
        "--report",
        str(tmp_path / "report.json"),
        *extra,
    ]
    return subprocess.run(
        command,
        check=False,
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
        env={**os.environ, **(env or {})},
    )


def test_preview_reads_a_bucket_and_names_an_object_it_cannot_read(tmp_path, s3):
    s3.put("logs/2024-03-14.log.gz", gzip.compress(log_lines(0, 5)))
    s3.put("logs/2024-03-15.log.gz", gzip.compress(log_lines(5, 5)))
    s3.server.hooks.before_read = lambda path: s3.delete("logs/2024-03-15.log.gz")
    result = subprocess.run(
        [sys.executable, "-m", "importer", "preview", f"s3://{s3.name}/logs/"],
        check=False,
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
    )
    assert result.returncode == 1, result.stderr
    first, second = result.stdout.split(f"== s3://{s3.name}/logs/2024-03-15.log.gz")
    assert "format: combined" in first
    assert "cannot read: no such object (deleted after it was listed?)" in second


def test_a_parquet_export_in_a_bucket_is_read_like_the_local_file(tmp_path, s3, receiver):
    from importer import resources

    local = resources.sample_data_dir() / "ga4-events.parquet"
    url = s3.put("exports/2024-03-14/ga4-events.parquet", local.read_bytes())
    report = pipeline.send(
        [url],
        "example.com",
        read=ReadOptions(mapping="ga4-bigquery"),
        delivery=_delivery(receiver, None),
        outputs=OutputOptions(rejects=tmp_path / "rejects.jsonl", failed=None),
    )
    assert report.skipped_sources == []
    assert report.accepted == report.events == 9  # as from the local copy (tests/test_presets.py)
