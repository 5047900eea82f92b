"""Remote-input benchmark: ``python bench/remote.py [--keys 100000] [--files 6] [--repeat 3]``.

Starts moto's S3 API server on loopback in a child process (so that this process's memory is the
importer's alone) and prints:

* the read rate of the same gzip'd access logs from ``s3://`` and from local disk, through the
  importer's reading layer (expand, open, decompress, split into line blocks), alternating the two
  ``--repeat`` times and keeping the fastest of each: the machine is shared, so only the same-run
  ratio means much. Loopback has no network latency: a real bucket adds round trips (one ranged
  GET per 8 MiB of compressed data);
* the time and memory to list a prefix of ``--keys`` objects (and a tenth of it, to show the
  cost per key stays flat): wall time, peak traced Python memory during the listing and what the
  listed sources keep afterwards. The listing pages come from a listing-only endpoint that
  renders them in advance (moto needs seconds per 1,000-key page), so the time is the client's.

Target: a 100,000-key listing in a few seconds of CPU, memory linear in keys at a few hundred
bytes each.
"""

from __future__ import annotations

import argparse
import functools
import gzip
import multiprocessing
import os
import sys
import tempfile
import threading
import time
import tracemalloc
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from importer.sources import expand, line_blocks, open_source

ENV = {
    "AWS_ACCESS_KEY_ID": "bench",
    "AWS_SECRET_ACCESS_KEY": "bench",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_EC2_METADATA_DISABLED": "true",
    "AWS_CONFIG_FILE": "/nonexistent",
    "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent",
}
LINE = (
    '192.0.2.{ip} - - [14/Mar/2024:09:{m:02d}:{s:02d} +0000] "GET /page/{page} HTTP/1.1" 200 {size} '
    '"https://example.org/from/{ref}" "Mozilla/5.0 (X11; Linux x86_64; rv:123.0) Gecko/20100101 Firefox/123.0"\n'
)


def serve(conn, keys: int) -> None:
    """Child process: moto's server on a free loopback port for the objects, and beside it a
    listing-only S3 endpoint whose ListObjectsV2 pages of ``keys`` keys are rendered before the
    clock starts. Moto takes seconds to build each 1,000-key page, which would hide the client's
    own cost (the part this project controls)."""
    os.environ.update(ENV)
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    pages = {prefix: listing_pages(prefix, count) for prefix, count in (("tenth/", keys // 10), ("listing/", keys))}
    lister = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(ListingHandler, pages))
    threading.Thread(target=lister.serve_forever, daemon=True).start()
    conn.send((server.get_host_and_port(), lister.server_address[:2]))
    conn.recv()  # until the parent is done
    lister.shutdown()
    server.stop()


def listing_pages(prefix: str, count: int) -> list[bytes]:
    """ListObjectsV2 answers of 1,000 keys each, named the way CloudFront names its logs."""
    keys = []
    for i in range(count):
        day, hour = divmod(i // 60, 24)
        keys.append(f"{prefix}E2BENCH.2024-{1 + day // 28:02d}-{1 + day % 28:02d}-{hour:02d}.{i:08x}.gz")
    pages = []
    for start in range(0, count, 1000):
        chunk = keys[start : start + 1000]
        more = start + 1000 < count
        contents = "".join(
            f"<Contents><Key>{k}</Key><LastModified>2024-03-14T09:00:00.000Z</LastModified>"
            f"<ETag>&quot;{i:032x}&quot;</ETag><Size>{1000 + i}</Size><StorageClass>STANDARD</StorageClass>"
            "</Contents>"
            for i, k in enumerate(chunk, start)
        )
        pages.append(
            (
                f'<?xml version="1.0" encoding="UTF-8"?><ListBucketResult '
                f'xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>bench</Name><Prefix>{prefix}</Prefix>'
                f"<KeyCount>{len(chunk)}</KeyCount><MaxKeys>1000</MaxKeys><IsTruncated>{str(more).lower()}"
                f"</IsTruncated>{f'<NextContinuationToken>{start // 1000 + 1}</NextContinuationToken>' if more else ''}"
                f"{contents}</ListBucketResult>"
            ).encode()
        )
    return pages


class ListingHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def __init__(self, pages: dict[str, list[bytes]], *args: Any) -> None:
        self.pages = pages
        super().__init__(*args)

    def do_GET(self) -> None:
        query = parse_qs(urlparse(self.path).query)
        wanted = query["prefix"][0]  # s3fs asks for "tenth", the importer for "tenth/"
        (pages,) = [pages for prefix, pages in self.pages.items() if prefix.startswith(wanted)]
        body = pages[int(query.get("continuation-token", ["0"])[0])]
        self.send_response(200)
        self.send_header("Content-Type", "application/xml")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


def make_logs(directory: Path, files: int, lines: int) -> list[Path]:
    paths = []
    for f in range(files):
        text = "".join(
            LINE.format(ip=i % 251, m=i // 60 % 60, s=i % 60, page=(i * 7919) % 5000, size=200 + i % 900, ref=i % 97)
            for i in range(f * lines, (f + 1) * lines)
        )
        path = directory / f"access.log-202403{14 + f:02d}.gz"
        path.write_bytes(gzip.compress(text.encode(), compresslevel=6))
        paths.append(path)
    return paths


def read_all(spec: str) -> tuple[float, int]:
    """Seconds to read every source ``spec`` names to its end, and the decompressed bytes."""
    started = time.perf_counter()
    total = 0
    for source in expand([spec]):
        opened = open_source(source)
        try:
            for block in line_blocks(opened):
                total += len(block.data)
        finally:
            opened.raw.close()
    return time.perf_counter() - started, total


def listing(spec: str) -> dict[str, float]:
    """For one prefix: the back end's own listing (s3fs ``find``) and the importer's
    (``expand``: listing, ordering, sources), each as wall and CPU seconds of this process (the
    endpoint runs in another, so CPU time is the client's own even on a busy machine); then, in
    a traced second listing (tracing slows it), the peak bytes while listing and what the
    sources keep."""
    import fsspec

    fs = fsspec.filesystem("s3")
    figures: dict[str, float] = {}
    for name, run in (("find", lambda: fs.find(spec, detail=True)), ("expand", lambda: expand([spec]))):
        wall, cpu = time.perf_counter(), time.process_time()
        figures["count"] = len(run())
        figures[f"{name}_s"], figures[f"{name}_cpu_s"] = time.perf_counter() - wall, time.process_time() - cpu
        fs.invalidate_cache()
    tracemalloc.start()
    sources = expand([spec])
    figures["kept"], figures["peak"] = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    del sources
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--keys", type=int, default=100_000)
    parser.add_argument("--files", type=int, default=6)
    parser.add_argument("--lines", type=int, default=100_000, help="lines per log file")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    parent, child = multiprocessing.Pipe()
    server = multiprocessing.get_context("spawn").Process(target=serve, args=(child, args.keys), daemon=True)
    server.start()
    (host, port), (list_host, list_port) = parent.recv()
    os.environ.update(ENV, AWS_ENDPOINT_URL=f"http://{host}:{port}")
    import boto3

    client = boto3.client("s3")
    client.create_bucket(Bucket="bench")
    with tempfile.TemporaryDirectory() as tmp:
        logs = make_logs(Path(tmp), args.files, args.lines)
        for path in logs:
            client.upload_file(str(path), "bench", f"logs/{path.name}")
        compressed = sum(p.stat().st_size for p in logs)
        expand(["s3://bench/logs/"])  # warm up: the client's session and service model load on first use
        best = {"local": float("inf"), "s3": float("inf")}
        size = 0
        for _ in range(args.repeat):
            for name, spec in (("local", f"{tmp}/*.gz"), ("s3", "s3://bench/logs/")):
                seconds, size = read_all(spec)
                best[name] = min(best[name], seconds)
        print(
            f"read {args.files} gzip'd logs, {compressed / 1e6:.1f} MB compressed, {size / 1e6:.1f} MB of text "
            f"(fastest of {args.repeat}):"
        )
        for name in ("local", "s3"):
            print(f"  {name:5}  {best[name]:6.2f} s  {size / 1e6 / best[name]:7.1f} MB/s of text")
        print(f"  s3 / local read rate: {best['local'] / best['s3']:.2f}")

    import fsspec

    fsspec.config.conf["s3"] = {"endpoint_url": f"http://{list_host}:{list_port}"}  # the listing endpoint
    fsspec.filesystem("s3").clear_instance_cache()
    for spec in ("s3://bench/tenth/", "s3://bench/listing/"):
        f = listing(spec)
        count = int(f["count"])
        print(
            f"list {count:>7,} keys ({spec}): {f['expand_s']:5.2f} s wall, {f['expand_cpu_s']:5.2f} s CPU; "
            f"s3fs find alone {f['find_s']:5.2f} s wall, {f['find_cpu_s']:5.2f} s CPU "
            f"(CPU ratio {f['expand_cpu_s'] / f['find_cpu_s']:.2f}); peak {f['peak'] / 1e6:5.1f} MB while listing "
            f"({f['peak'] / count:.0f} B/key), kept {f['kept'] / 1e6:5.1f} MB ({f['kept'] / count:.0f} B/key)"
        )
    parent.send("done")
    server.join(timeout=30)


if __name__ == "__main__":
    main()
