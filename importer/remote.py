"""Inputs that live in object stores and on web servers: ``s3://``, ``gs://``, ``az://``, ``https://``.

Read through fsspec and its back ends (s3fs, gcsfs, adlfs; aiohttp for https), installed with
the ``cloud`` extra. Credentials come from where each back end usually finds them (environment,
profile, instance or workload role); nothing is stored by us and nothing is written to local
disk: objects are read as streams and decompressed on the way (:func:`importer.sources.open_source`).

A URL with ``*``, ``?`` or ``[`` is a glob; any other bucket URL names an object, or else a
folder, meaning every object under it (at any depth: load-balancer logs sit under year/month/day
folders). :func:`importer.sources.expand` puts them oldest first by the date in their key
(:func:`date_in`), which is how CloudFront, ALB/ELB, S3 server access logs and Google Cloud
logging exports name them.
"""

from __future__ import annotations

import os
import re
import ssl
import urllib.error
import urllib.request
import xml.etree.ElementTree as ET
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, BinaryIO
from urllib.parse import unquote_plus

INSTALL_HINT = "pip install 'plausible-importer[cloud]'"
READ_BLOCK_BYTES = 8 << 20  # one ranged GET per 8 MiB: few round trips, bounded memory
BUCKET_SCHEMES = ("s3", "gs", "gcs", "az", "abfs", "abfss")
WEB_SCHEMES = ("http", "https")
_SCHEME = re.compile(r"^([a-z][a-z0-9+.-]*)://", re.IGNORECASE)
# A date in a key: 2024-03-14, 2024/03/14, 20240314, with an optional time after it
# (CloudFront 2024-03-14-09, ALB 20240314T0925Z, S3 access logs 2024-03-14-09-26-53).
_DATE = re.compile(
    r"(?<!\d)(20\d\d)[-/_.]?(0[1-9]|1[0-2])[-/_.]?(0[1-9]|[12]\d|3[01])"
    r"(?:[-T/_ ]?([01]\d|2[0-3])(?:[-:]?([0-5]\d)(?:[-:]?([0-5]\d))?)?)?(?!\d)"
)
_MAGIC = re.compile(r"[*?\[]")


class RemoteError(Exception):
    """A remote input that cannot be listed or read. A listing's error names the URL; an
    object's says only why, since it is reported under the object's name."""


def scheme_of(spec: str) -> str | None:
    """The scheme of a remote input (``s3``, ``https``...), None for a local path or ``-``."""
    m = _SCHEME.match(spec)
    if m is None:
        return None
    scheme = m.group(1).lower()
    return scheme if scheme in BUCKET_SCHEMES + WEB_SCHEMES else None


@dataclass(frozen=True, slots=True)  # slots: a listing may hold 100,000 of them
class RemoteObject:
    """One object: its URL, size in bytes (None when the server does not say) and file system."""

    url: str
    size: int | None
    fs: Any = field(compare=False, repr=False)

    def open(self) -> BinaryIO:
        try:
            raw = self.fs.open(self.url, "rb", block_size=READ_BLOCK_BYTES, cache_type="readahead")
        except Exception as exc:
            raise RemoteError(_explain(exc, "open")) from None
        return _RemoteFile(raw)  # type: ignore[return-value]


class _RemoteFile:
    """An open object whose read errors say what went wrong (the object was
    deleted, access was refused, the connection failed) instead of surfacing as a back end's
    own exception, which readers would take for damaged data."""

    def __init__(self, raw: Any):
        self._raw = raw

    def read(self, n: int = -1) -> bytes:
        try:
            return self._raw.read(n)
        except Exception as exc:
            raise RemoteError(_explain(exc, "read")) from None

    def readinto(self, b: Any) -> int:
        data = self.read(len(b))
        b[: len(data)] = data
        return len(data)

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = 0) -> int:
        return self._raw.seek(offset, whence)

    def tell(self) -> int:
        return self._raw.tell()

    def close(self) -> None:
        self._raw.close()

    @property
    def closed(self) -> bool:
        return self._raw.closed


def _explain(exc: BaseException, action: str) -> str:
    """Why ``action`` (``list``, ``open``, ``read``) failed, in one line (the caller names the URL)."""
    status = getattr(exc, "status_code", None)  # Azure refuses with its own error type, carrying the HTTP status
    if isinstance(exc, FileNotFoundError):
        return {
            "list": "no such bucket, object or prefix",
            "open": "no such object (deleted after it was listed?)",
            "read": "the object disappeared while it was being read",
        }[action]
    if isinstance(exc, PermissionError) or status in (401, 403):
        return (
            f"access denied ({_first_line(exc)}); check the credentials the storage client finds "
            "(environment variables, profile, instance role)"
        )
    return f"cannot {action} it: {type(exc).__name__}: {_first_line(exc)}"


def _first_line(exc: BaseException) -> str:
    """An error's first line: Azure's and Google's clients append the server's whole answer."""
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else ""


def filesystem(spec: str) -> Any:
    """The fsspec file system for a remote URL, or a RemoteError saying what to install."""
    scheme = scheme_of(spec)
    try:
        import fsspec
    except ImportError:
        raise RemoteError(f"{spec}: reading {scheme}:// inputs needs the cloud extra: {INSTALL_HINT}") from None
    options: dict[str, Any] = {}
    if scheme == "s3":  # signed listing URLs (_s3_listing) in Signature V4, which every region takes
        configured = fsspec.config.conf.get("s3", {}).get("config_kwargs", {})
        options["config_kwargs"] = {**configured, "signature_version": "s3v4"}
    try:
        if scheme in ("gs", "gcs"):
            return _gcs_filesystem(fsspec)
        return fsspec.filesystem(scheme, **options)
    except ImportError as exc:
        raise RemoteError(f"{spec}: reading {scheme}:// inputs needs the cloud extra: {INSTALL_HINT} ({exc})") from None


def _gcs_filesystem(fsspec: Any) -> Any:
    """gcsfs's file system. For an emulator (``STORAGE_EMULATOR_HOST``) or a private endpoint
    (``FSSPEC_GS_ENDPOINT_URL``) it is gcsfs's JSON API client: the one gcsfs picks by default
    first asks each bucket's layout over gRPC, which such an endpoint does not serve, and waits
    60 s for that answer on every call. An emulator is asked without credentials, as Google's
    own client libraries do (looking for them would probe the cloud's metadata server)."""
    from gcsfs.core import GCSFileSystem

    configured = {**fsspec.config.conf.get("gcs", {}), **fsspec.config.conf.get("gs", {})}
    emulator = os.environ.get("STORAGE_EMULATOR_HOST", "") not in ("", "default")
    if not emulator and "endpoint_url" not in configured:
        return fsspec.filesystem("gs")
    return GCSFileSystem(**({"token": "anon"} if emulator and "token" not in configured else {}))


def list_objects(spec: str) -> list[RemoteObject]:
    """The objects a URL names (one object, a prefix or a glob), in no particular order."""
    fs = filesystem(spec)
    scheme = scheme_of(spec)
    try:
        if scheme in WEB_SCHEMES:  # a web server has no listing: the URL is one file
            entries: Iterable[tuple[str, int | None]] = [(spec, fs.info(spec).get("size"))]
        elif scheme == "s3":
            entries = _s3_entries(fs, spec)
        elif _MAGIC.search(spec):
            entries = _entries(fs.glob(spec, detail=True))
        else:
            entries = _entries(_find(fs, spec))
    except Exception as exc:
        raise RemoteError(f"{spec}: {_explain(exc, 'list')}") from None
    finally:
        fs.invalidate_cache()  # the listing is copied into compact tuples: do not keep it twice
    found = list(entries)
    if not found:
        raise RemoteError(f"{spec}: {_why_nothing(fs, spec)}")
    if scheme in WEB_SCHEMES:
        return [RemoteObject(url=name, size=size, fs=fs) for name, size in found]
    return [RemoteObject(url=name if "://" in name else f"{scheme}://{name}", size=size, fs=fs) for name, size in found]


def _why_nothing(fs: Any, spec: str) -> str:
    """Why a listing came back empty: adlfs lists a missing container as an empty one."""
    bucket = fs._strip_protocol(spec).split("/", 1)[0]
    try:
        bucket_exists = fs.exists(bucket)
    except Exception:  # the listing worked: this question is only to name the reason better
        bucket_exists = True
    if not bucket_exists:
        return "no such bucket or container"
    return "no object matches this " + ("pattern" if _MAGIC.search(spec) else "prefix")


def _s3_entries(fs: Any, spec: str) -> list[tuple[str, int | None]]:
    """What an s3:// URL names: the object itself, else every key under it as a folder, or the
    keys a glob matches (listed from the glob's literal start)."""
    from fsspec.utils import glob_translate

    path = fs._strip_protocol(spec)
    bucket, key, _ = fs.split_path(path)
    magic = _MAGIC.search(key)
    if magic:
        pattern = re.compile(glob_translate(path))
        return [(name, size) for name, size in _s3_listing(fs, bucket, key[: magic.start()]) if pattern.match(name)]
    listed = _s3_listing(fs, bucket, key)
    exact = [(name, size) for name, size in listed if name == path]
    if exact:
        return exact
    folder = f"{bucket}/{key.rstrip('/')}/" if key else f"{bucket}/"
    return [(name, size) for name, size in listed if name.startswith(folder)]


_S3_XML = "{http://s3.amazonaws.com/doc/2006-03-01/}"


def _s3_listing(fs: Any, bucket: str, prefix: str) -> list[tuple[str, int | None]]:
    """Every key under ``prefix`` with its size, a page of 1,000 at a time, through requests
    signed by the back end's own client (its credentials, endpoint and the bucket's region) and
    parsed here: botocore's XML parser takes ~150 ms of CPU per 1,000-key page (15 s for 100,000
    keys), ElementTree ~5 ms (bench/remote.py prints the listing time). An answer other than a
    listing, a refusal or "no such bucket" (a redirect, a server error) falls back to the client's
    own listing, which retries and explains."""
    from fsspec.asyn import sync

    client = sync(fs.loop, _bucket_client, fs, bucket)
    tls = None  # made once: loading the trusted certificates costs more than parsing a page
    if client.meta.endpoint_url.startswith("https"):
        tls = ssl.create_default_context(cafile=os.environ.get("AWS_CA_BUNDLE") or None)
    entries: list[tuple[str, int | None]] = []
    params: dict[str, Any] = {"Bucket": bucket, "Prefix": prefix, "MaxKeys": 1000}
    while True:
        url = sync(fs.loop, client.generate_presigned_url, "list_objects_v2", Params=params, ExpiresIn=900)
        try:
            page = ET.fromstring(_fetch(url, tls))
        except (FileNotFoundError, PermissionError):
            raise
        except (OSError, ET.ParseError):  # an answer this reader does not expect: the client's own listing
            folder, _, start = prefix.rpartition("/")
            return _entries(fs.find(f"{bucket}/{folder}", prefix=start, detail=True))
        encoded = page.findtext(f"{_S3_XML}EncodingType") == "url"  # as botocore asks, and decodes
        for item in page.iterfind(f"{_S3_XML}Contents"):
            key = item.findtext(f"{_S3_XML}Key") or ""
            entries.append(
                (f"{bucket}/{unquote_plus(key) if encoded else key}", int(item.findtext(f"{_S3_XML}Size") or 0))
            )
        token = page.findtext(f"{_S3_XML}NextContinuationToken")
        if page.findtext(f"{_S3_XML}IsTruncated") != "true" or not token:
            return entries
        params["ContinuationToken"] = token


async def _bucket_client(fs: Any, bucket: str) -> Any:
    await fs.set_session()
    return await fs.get_s3(bucket)


def _fetch(url: str, tls: ssl.SSLContext | None) -> bytes:
    """One listing page, or the error S3 answered, as the exception fsspec back ends raise."""
    try:
        with urllib.request.urlopen(url, timeout=60, context=tls) as answer:
            return answer.read()
    except urllib.error.HTTPError as exc:
        try:
            error = ET.fromstring(exc.read())
            code, message = error.findtext("Code") or "", error.findtext("Message") or ""
        except ET.ParseError:
            code, message = "", ""
        reason = f"{code or exc.code}: {message or exc.reason}"
        if exc.code == 404:
            raise FileNotFoundError(reason) from None
        if exc.code == 403:
            raise PermissionError(reason) from None
        raise OSError(f"HTTP {exc.code} {reason}") from None


def _find(fs: Any, spec: str) -> dict[str, dict]:
    """The objects under a URL, or the object it names, with their details."""
    found = fs.find(spec, detail=True)
    if isinstance(found, list):  # adlfs names an object itself without its details
        return {name: fs.info(name) for name in found}
    return found


def _entries(listing: dict[str, dict]) -> list[tuple[str, int | None]]:
    return [(name, info.get("size")) for name, info in listing.items() if info.get("type") != "directory"]


def date_in(key: str) -> tuple[int, ...]:
    """The date (and time) an object's key carries, as numbers: in its name, else in its folders
    (Google's exports: ``2024/03/14/09:00:00_09:59:59_S0.json``); empty when it has none."""
    name = key.rsplit("/", 1)[-1]
    for text in (name, key):
        m = _DATE.search(text)
        if m:
            return tuple(int(g) for g in m.groups() if g is not None)
    return ()
