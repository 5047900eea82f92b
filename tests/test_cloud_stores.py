"""The same scenarios against the three object stores, each a real storage API server on
loopback: S3 (moto's server), Google Cloud Storage (gcp-storage-emulator, in this process) and
Azure Blob Storage (Azurite, Microsoft's emulator, a Node.js subprocess). Objects are listed and
read oldest first by the date in their keys, gzip is decompressed while streamed in ranged
reads, a --state re-run over a bucket that grew sends only the new lines, an object deleted after
it was listed is named as such, and a missing bucket or a refused credential is one clear line
naming the URL."""

from __future__ import annotations

import fcntl
import gzip
import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from test_cloud import S3Server, log_lines, pages, send
from test_sender_faults import pages_of

from importer import sources as sources_mod
from importer.remote import RemoteError
from importer.sources import expand, open_source

AZURITE_VERSION = "3.37.0"
# In memory, on a port of its choosing, not reporting to Microsoft (no network here), accepting
# the API version of whichever azure-storage-blob is installed.
AZURITE_OPTIONS = (
    *("--blobHost", "127.0.0.1", "--blobPort", "0", "--inMemoryPersistence", "--extentMemoryLimit", "64"),
    *("--disableTelemetry", "--skipApiVersionCheck", "--silent"),
)
AZURITE_DIR = Path.home() / ".cache" / "plausible-importer" / "azurite"
# Azurite's development account: a fixed, published key that works only against the emulator.
AZURITE_ACCOUNT = "devstoreaccount1"
AZURITE_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
# Credentials a developer's shell may hold, which would take precedence over the emulators'.
FOREIGN_SETTINGS = (
    "AWS_PROFILE",
    "AWS_SESSION_TOKEN",
    "AWS_ENDPOINT_URL_S3",
    "GOOGLE_APPLICATION_CREDENTIALS",
    "AZURE_STORAGE_ACCOUNT_NAME",
    "AZURE_STORAGE_ACCOUNT_KEY",
    "AZURE_STORAGE_SAS_TOKEN",
)


def test_keys_are_listed_and_read_oldest_first_by_their_date(tmp_path, store, receiver):
    store.put("logs/z/access-2024-03-14.log.gz", gzip.compress(log_lines(0, 40)))  # key order: z, a, m
    store.put("logs/a/access-2024-03-16.log.gz", gzip.compress(log_lines(80, 40)))
    store.put("logs/m/access-2024-03-15.log", log_lines(40, 40))
    names = [s.name.removeprefix(store.url("logs/")) for s in expand([store.url("logs/")])]
    assert names == ["z/access-2024-03-14.log.gz", "m/access-2024-03-15.log", "a/access-2024-03-16.log.gz"]

    result = send(tmp_path, receiver, store.url("logs/"))
    assert result.returncode == 0, result.stderr
    assert "credentials" not in result.stderr  # no back end's warnings about looking for them
    assert pages_of(receiver) == pages(0, 120)
    order = [int(e["url"].rsplit("/p", 1)[1]) for e in receiver.events]
    assert max(order[:40]) < min(order[80:])  # the oldest object's events left before the newest's


def test_a_gzip_object_is_decompressed_while_streamed_in_ranged_reads(store, monkeypatch):
    monkeypatch.setattr(sources_mod, "BLOCK_BYTES", 64 << 10)
    monkeypatch.setattr("importer.remote.READ_BLOCK_BYTES", 64 << 10)  # many ranged reads of one object
    text = b"".join(  # random paths: the compressed object stays larger than several read blocks
        line.replace(b"/p", f"/{secrets.token_hex(64)}/p".encode(), 1) + b"\n"
        for line in log_lines(0, 5000).splitlines()
    )
    body = gzip.compress(text)
    assert len(body) > 4 * (64 << 10)
    url = store.put("logs/2024-03-14-access", body)  # compressed, with no telling suffix
    (source,) = expand([url])
    assert source.size == len(body)
    opened = open_source(source)
    assert opened.compression == "gzip"
    assert opened.stream.read() == text


def test_a_state_rerun_over_a_grown_bucket_sends_only_the_new_lines(tmp_path, store, receiver):
    state = ("--state", str(tmp_path / "state.sqlite"))
    store.put("cf/E1.2024-03-14-09.a.gz", gzip.compress(log_lines(0, 40)))
    store.put("cf/E1.2024-03-14-10.b.gz", gzip.compress(log_lines(40, 40)))
    first = send(tmp_path, receiver, store.url("cf/"), extra=state)
    assert first.returncode == 0, first.stderr
    assert pages_of(receiver) == pages(0, 80)

    store.put("cf/E1.2024-03-14-11.c.gz", gzip.compress(log_lines(80, 30)))
    store.put("cf/E1.2024-03-14-12.d.gz", gzip.compress(log_lines(110, 30)))
    second = send(tmp_path, receiver, store.url("cf/"), extra=state)
    assert second.returncode == 0, second.stderr
    assert pages_of(receiver) == pages(0, 140)  # each page once: nothing sent twice
    assert json.loads((tmp_path / "report.json").read_text())["accepted"] == 60


def test_a_missing_bucket_is_one_clear_line(tmp_path, store, receiver):
    url = f"{store.scheme}://no-such-bucket-{uuid.uuid4().hex[:8]}/logs/"
    result = send(tmp_path, receiver, url)
    assert result.returncode == 2, result.stderr
    (line,) = [line for line in result.stderr.splitlines() if url in line]
    assert f"{url}: no such bucket" in line
    assert "Traceback" not in result.stderr and receiver.events == []


def test_an_object_deleted_after_listing_is_named_as_such(store):
    store.put("logs/2024-03-14.log.gz", gzip.compress(log_lines(0, 5)))
    (source,) = expand([store.url("logs/")])
    store.delete_object("logs/2024-03-14.log.gz")
    with pytest.raises(RemoteError) as raised:
        open_source(source).stream.read()
    assert str(raised.value) in (
        "no such object (deleted after it was listed?)",
        "the object disappeared while it was being read",
    )


@pytest.mark.parametrize("store", ["s3", "az"], indirect=True)  # gcp-storage-emulator checks no credential
def test_a_refused_credential_is_one_clear_line(tmp_path, store, receiver, monkeypatch):
    store.put("logs/2024-03-14.log.gz", gzip.compress(log_lines(0, 5)))
    assert store.refuse_credentials is not None
    store.refuse_credentials(monkeypatch)
    result = send(tmp_path, receiver, store.url("logs/"))
    assert result.returncode == 2, result.stderr
    (line,) = [line for line in result.stderr.splitlines() if store.url("logs/") in line]
    assert f"{store.url('logs/')}: access denied (" in line and "check the credentials" in line
    assert "Traceback" not in result.stderr and receiver.events == []


@pytest.mark.parametrize("store", ["gs"], indirect=True)
def test_a_cloud_storage_endpoint_set_through_fsspec_is_read_through_the_json_api(
    tmp_path, store, receiver, monkeypatch
):
    """A private endpoint named by fsspec's setting rather than STORAGE_EMULATOR_HOST: gcsfs's
    default client would ask the bucket's layout over gRPC first and wait 60 s for each answer."""
    store.put("logs/2024-03-14.log.gz", gzip.compress(log_lines(0, 30)))
    monkeypatch.setenv("FSSPEC_GS_ENDPOINT_URL", os.environ["STORAGE_EMULATOR_HOST"])
    monkeypatch.delenv("STORAGE_EMULATOR_HOST")
    monkeypatch.setenv("FSSPEC_GS_TOKEN", "anon")  # this endpoint takes no credential
    result = send(tmp_path, receiver, store.url("logs/"))
    assert result.returncode == 0, result.stderr
    assert pages_of(receiver) == pages(0, 30)


# ---------------------------------------------------------------- the stores


@dataclass
class Store:
    """A fresh bucket (or container) in one of the servers, and how to write to it."""

    scheme: str
    bucket: str
    put_object: Callable[[str, bytes], None]
    delete_object: Callable[[str], object]
    refuse_credentials: Callable[[pytest.MonkeyPatch], None] | None  # None: the server checks none

    def url(self, key: str = "") -> str:
        return f"{self.scheme}://{self.bucket}/{key}"

    def put(self, key: str, body: bytes) -> str:
        self.put_object(key, body)
        return self.url(key)


def s3_store(server: S3Server) -> Store:
    import boto3

    client = boto3.client("s3", endpoint_url=server.endpoint)
    bucket = f"logs-{uuid.uuid4().hex[:12]}"
    client.create_bucket(Bucket=bucket)

    def refuse(monkeypatch: pytest.MonkeyPatch) -> None:
        from moto import settings

        monkeypatch.setattr(settings, "INITIAL_NO_AUTH_ACTION_COUNT", 0)  # the server now checks keys
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAWRONGWRONGWRONG1")

    return Store(
        "s3",
        bucket,
        lambda key, body: client.put_object(Bucket=bucket, Key=key, Body=body),
        lambda key: client.delete_object(Bucket=bucket, Key=key),
        refuse,
    )


class GcsServer:
    """Google Cloud Storage's JSON API (gcp-storage-emulator) on 127.0.0.1 and a free port."""

    def __init__(self) -> None:
        from gcp_storage_emulator.server import create_server

        self.endpoint = f"http://127.0.0.1:{_free_port()}"
        self._server = create_server("127.0.0.1", int(self.endpoint.rsplit(":", 1)[1]), in_memory=True)
        self._server.start()

    def env(self) -> dict[str, str]:
        # NO_GCE_CHECK: never look for Google's metadata server, should credentials be sought.
        return {"STORAGE_EMULATOR_HOST": self.endpoint, "NO_GCE_CHECK": "true"}

    def new_bucket(self) -> Store:
        from gcsfs.core import GCSFileSystem

        fs = GCSFileSystem(endpoint_url=self.endpoint, token="anon", skip_instance_cache=True)
        bucket = f"logs-{uuid.uuid4().hex[:12]}"
        fs.mkdir(bucket)

        return Store(
            "gs",
            bucket,
            lambda key, body: fs.pipe(f"{bucket}/{key}", body),
            lambda key: fs.rm(f"{bucket}/{key}"),
            refuse_credentials=None,
        )

    def stop(self) -> None:
        self._server.stop()


class AzuriteServer:
    """Azure Blob Storage (Azurite's blob service) on 127.0.0.1 and a free port, in memory."""

    def __init__(self, program: str, workdir: Path) -> None:
        output = workdir / "azurite.out"  # a file, not a pipe: nobody reads it once started
        with output.open("wb") as sink:
            self._process = subprocess.Popen([program, *AZURITE_OPTIONS], stdout=sink, stderr=sink, cwd=workdir)
        deadline = time.monotonic() + 60
        while self._process.poll() is None and time.monotonic() < deadline:
            found = re.search(r"listens on (http://127\.0\.0\.1:\d+)", output.read_text())
            if found:  # it prints the port it took, then nothing more (--silent)
                self.endpoint = found.group(1)
                return
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"Azurite did not start: {output.read_text()}")

    def connection_string(self, key: str = AZURITE_KEY) -> str:
        return (
            f"DefaultEndpointsProtocol=http;AccountName={AZURITE_ACCOUNT};AccountKey={key};"
            f"BlobEndpoint={self.endpoint}/{AZURITE_ACCOUNT};"
        )

    def env(self) -> dict[str, str]:
        return {"AZURE_STORAGE_CONNECTION_STRING": self.connection_string()}

    def new_bucket(self) -> Store:
        from azure.storage.blob import BlobServiceClient

        container = BlobServiceClient.from_connection_string(self.connection_string()).create_container(
            f"logs-{uuid.uuid4().hex[:12]}"
        )

        def refuse(monkeypatch: pytest.MonkeyPatch) -> None:
            other_key = AZURITE_KEY.replace("Eby8", "Xby8")  # well formed, not the account's
            monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", self.connection_string(other_key))

        return Store(
            "az",
            container.container_name,
            lambda key, body: container.upload_blob(key, body, overwrite=True),
            container.delete_blob,
            refuse,
        )

    def stop(self) -> None:
        self._process.terminate()
        self._process.wait(timeout=10)


def azurite_program() -> str:
    """Azurite's blob service, installed with npm into a cache under the home directory the first
    time (or one on the PATH); skips without Node.js and npm."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.skip("Node.js and npm are not installed: Azurite, the Azure Storage emulator, runs on them")
    installed = AZURITE_DIR / "node_modules" / ".bin" / "azurite-blob"
    if not installed.exists() and shutil.which("azurite-blob") is None:
        _install_azurite()
    return str(installed) if installed.exists() else str(shutil.which("azurite-blob"))


def _install_azurite() -> None:
    AZURITE_DIR.mkdir(parents=True, exist_ok=True)
    with open(AZURITE_DIR / "install.lock", "w") as lock:  # both test workers may get here at once
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (AZURITE_DIR / "node_modules" / ".bin" / "azurite-blob").exists():
            return
        command = ["npm", "install", "--prefix", str(AZURITE_DIR), "--no-audit", "--no-fund", "--silent"]
        done = subprocess.run(
            [*command, f"azurite@{AZURITE_VERSION}"], capture_output=True, text=True, timeout=600, check=False
        )
        if done.returncode != 0:
            pytest.fail(f"could not install Azurite with npm ({done.returncode}): {done.stderr.strip()[-2000:]}")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _forget_file_systems() -> None:
    """fsspec keeps one file system per set of arguments, whatever the environment it was made
    in: one made for another test module's server would be reused for this one's."""
    import fsspec
    from gcsfs.core import GCSFileSystem

    for cls in (*(fsspec.get_filesystem_class(scheme) for scheme in ("s3", "gs", "az")), GCSFileSystem):
        cls.clear_instance_cache()


@pytest.fixture(scope="module")
def s3_emulator() -> Iterator[S3Server]:
    server = S3Server()
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def gs_emulator() -> Iterator[GcsServer]:
    server = GcsServer()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def az_emulator(tmp_path_factory) -> Iterator[AzuriteServer]:
    server = AzuriteServer(azurite_program(), tmp_path_factory.mktemp("azurite"))
    yield server
    server.stop()


@pytest.fixture(params=["s3", "gs", "az"])
def store(request, monkeypatch) -> Iterator[Store]:
    """A fresh bucket in one of the three servers, with this process's environment (and so the
    command's, run as a subprocess) pointing at that server and nowhere else."""
    server = request.getfixturevalue(f"{request.param}_emulator")
    for name in FOREIGN_SETTINGS:
        monkeypatch.delenv(name, raising=False)
    for name, value in server.env().items():
        monkeypatch.setenv(name, value)
    _forget_file_systems()
    yield s3_store(server) if request.param == "s3" else server.new_bucket()
    _forget_file_systems()
