"""Only Plausible's own answer counts as delivered (issue 11, "Trust").

Every test runs the real sender against the real loopback receiver, which plays what can stand
in front of a misconfigured endpoint: a login redirect, a proxy answering 400 or 200 HTML, a
certificate the system does not trust, a server that answers late, a huge answer body.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import ssl
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pyarrow as pa
import pytest
from conftest import BROWSER
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from test_sender_faults import START, make_log, pages_of, records, run

from importer.events import EVENT_SCHEMA
from importer.receiver import Faults, Receiver
from importer.report import RejectsFile, Report
from importer.sinks.http import HttpSender, SendOptions

ROOT = Path(__file__).resolve().parents[1]


def _table(n: int, **overrides) -> pa.Table:
    rows = [
        {
            "name": "pageview",
            "url": f"https://example.com/p{i}",
            "domain": "example.com",
            "referrer": None,
            "props": None,
            "user_agent": BROWSER,
            "ip": f"203.0.113.{i % 50}",
            "timestamp": START,
            "source_file": "t.log",
            "source_line": i + 1,
            **overrides,
        }
        for i in range(n)
    ]
    return pa.Table.from_pylist(rows, schema=EVENT_SCHEMA)


def _send_table(endpoint: str, table: pa.Table, tmp_path: Path, **options) -> tuple[Report, HttpSender, list[dict]]:
    report = Report(events=table.num_rows)
    out = RejectsFile(tmp_path / "out.jsonl")
    opts = {"endpoint": endpoint, "rate": 0, "concurrency": 4, "backoff_base_s": 0.01}
    sender = HttpSender(SendOptions(**{**opts, **options}), report, out, seed=1)
    sender.run(iter([table]))
    out.close()
    return report, sender, records(tmp_path / "out.jsonl")


def _cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "importer", *args],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})},
    )


# -- item 4: only 202 is delivered; another 2xx or a 3xx stops the run -------------------------------


@pytest.mark.parametrize(("status", "body"), [(200, b"<html><body>Sign in</body></html>"), (201, b""), (204, b"")])
def test_a_2xx_other_than_202_is_not_delivered_and_stops_the_run(tmp_path, make_receiver, status, body):
    pages = make_log(tmp_path / "access.log", 120)
    wrong = make_receiver(Faults(answer_status=status, answer_body=body))
    report = run(tmp_path / "access.log", wrong, tmp_path)
    assert (report.accepted, report.dropped, report.rejected, report.failed) == (0, 0, 0, 120)
    assert wrong.stats.requests <= 8 + 1  # at most what was in flight when the first answer came
    (notice,) = [n for n in report.notices if f"HTTP {status}" in n]
    assert "not Plausible's 202" in notice and "--endpoint" in notice
    failed = records(tmp_path / "failed.jsonl")
    assert sorted(r["line"] for r in failed) == list(range(1, 121))
    assert all(r["sent_again_by_next_run"] for r in failed)
    healthy = make_receiver()
    again = run(tmp_path / "access.log", healthy, tmp_path)
    assert again.accepted == 120 and pages_of(healthy) == Counter(pages)


@pytest.mark.parametrize("status", [301, 302, 307, 308])
def test_a_redirect_is_never_followed_and_its_target_receives_nothing(tmp_path, make_receiver, status):
    make_log(tmp_path / "access.log", 113)
    target = make_receiver()  # the login page, or the plain-http host an https endpoint points to
    redirector = make_receiver(Faults(answer_status=status, location=target.endpoint))
    report = run(tmp_path / "access.log", redirector, tmp_path)
    assert (target.stats.requests, target.stats.other_requests) == (0, 0)
    assert report.accepted == 0 and report.failed == 113
    (notice,) = [n for n in report.notices if f"HTTP {status}" in n]
    assert f"redirect to {target.endpoint}" in notice


def test_the_cli_exits_1_on_a_login_redirect_and_says_where_it_pointed(tmp_path, make_receiver):
    make_log(tmp_path / "access.log", 113)
    login = make_receiver(Faults(answer_status=200, answer_body=b"<html>login</html>"))
    redirector = make_receiver(Faults(answer_status=302, location=login.endpoint.replace("/api/event", "/login")))
    done = _cli(
        "send",
        str(tmp_path / "access.log"),
        "-d",
        "example.com",
        "--endpoint",
        redirector.endpoint,
        "--replay-history",
        "--no-progress",
        "--rate",
        "0",
        "--state",
        str(tmp_path / "s.sqlite"),
        "--failed",
        str(tmp_path / "failed.jsonl"),
        "--rejects",
        str(tmp_path / "rejects.jsonl"),
    )
    assert done.returncode == 1, done.stderr
    assert "HTTP 302" in done.stderr and "/login" in done.stderr
    assert login.stats.requests == login.stats.other_requests == 0


# -- item 6: a 400 for everything, and TLS certificate failures, stop the run --------------------------


def test_a_proxys_400_for_everything_stops_the_run_and_rejects_nothing_for_good(tmp_path, make_receiver):
    proxy = make_receiver(Faults(answer_status=400, answer_body=b"<html><h1>400 Bad Request</h1>nginx</html>"))
    report, sender, out = _send_table(proxy.endpoint, _table(500), tmp_path)
    assert report.rejected == 0 and report.failed == 500
    assert 10 <= proxy.stats.requests < 50
    assert sender.fatal and "HTTP 400" in sender.fatal and "not Plausible's" in sender.fatal
    assert all(r["sent_again_by_next_run"] for r in out)


def test_plausibles_own_400_for_every_event_stops_the_run_too(tmp_path, receiver):
    too_long = "n" * 121  # Plausible's limit on event names is 120 characters
    report, sender, out = _send_table(receiver.endpoint, _table(500, name=too_long), tmp_path)
    assert report.events == report.accepted + report.dropped + report.rejected + report.failed
    assert report.accepted == 0
    assert 10 <= report.rejected < 50 and report.rejected == receiver.stats.rejected
    assert report.failed == 500 - report.rejected
    assert sender.fatal and "rejected" in sender.fatal and "rejects file" in sender.fatal
    rejected = [r for r in out if r.get("status") == 400]
    assert all(r["error"] == {"errors": {"event_name": ["should be at most 120 character(s)"]}} for r in rejected)


def test_a_400_now_and_then_is_still_a_rejection_of_that_event(tmp_path, receiver):
    table = _table(60)
    names = ["n" * 121 if i % 20 == 0 else "pageview" for i in range(60)]
    table = table.set_column(table.schema.get_field_index("name"), "name", pa.array(names))
    report, sender, _ = _send_table(receiver.endpoint, table, tmp_path)
    assert sender.fatal is None
    assert (report.accepted, report.rejected, report.failed) == (57, 3, 0)


def _self_signed(tmp_path: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "importer test CA")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


@pytest.fixture
def https_receiver(tmp_path):
    cert, key = _self_signed(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    receiver = Receiver(tls=context)
    with receiver.running():
        yield receiver, cert


def test_an_untrusted_certificate_stops_the_run_at_once_and_ca_bundle_delivers(tmp_path, https_receiver, monkeypatch):
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    receiver, cert = https_receiver
    pages = make_log(tmp_path / "access.log", 200)
    report = run(tmp_path / "access.log", receiver, tmp_path, max_attempts=5, concurrency=4)
    assert report.accepted == 0 and report.failed == 200 and receiver.stats.requests == 0
    assert report.retries == 0  # a certificate does not get better by asking again
    (notice,) = [n for n in report.notices if "certificate" in n]
    assert "--ca-bundle" in notice and "SSL_CERT_FILE" in notice and "\n" not in notice
    assert all(r["sent_again_by_next_run"] for r in records(tmp_path / "failed.jsonl"))

    again = run(tmp_path / "access.log", receiver, tmp_path, ca_bundle=cert)
    assert again.accepted == again.events == 200 and pages_of(receiver) == Counter(pages)


def test_the_cli_takes_ca_bundle_and_refuses_a_file_that_is_not_one(tmp_path, https_receiver):
    receiver, cert = https_receiver
    make_log(tmp_path / "access.log", 20)
    common = [
        "send",
        str(tmp_path / "access.log"),
        "-d",
        "example.com",
        "--endpoint",
        receiver.endpoint,
        "--replay-history",
        "--no-progress",
        "--rate",
        "0",
        "--no-state",
        "--failed",
        str(tmp_path / "f.jsonl"),
        "--rejects",
        str(tmp_path / "r.jsonl"),
    ]
    env = {"SSL_CERT_FILE": ""}
    untrusted = _cli(*common, env=env)
    assert untrusted.returncode == 1 and "certificate" in untrusted.stderr and receiver.stats.accepted == 0
    trusted = _cli(*common, "--ca-bundle", str(cert), env=env)
    assert trusted.returncode == 0, trusted.stderr
    assert receiver.stats.accepted == 20
    (tmp_path / "junk.pem").write_text("not a certificate\n")
    junk = _cli(*common, "--ca-bundle", str(tmp_path / "junk.pem"), env=env)
    assert junk.returncode == 2 and "--ca-bundle" in junk.stderr and "junk.pem" in junk.stderr
    missing = _cli(*common, "--ca-bundle", str(tmp_path / "nope.pem"), env=env)
    assert missing.returncode == 2 and "nope.pem" in missing.stderr
    assert receiver.stats.accepted == 20


# -- item 7: a timeout is an unknown outcome ----------------------------------------------------------


def test_a_late_answer_is_retried_in_order_and_counted_as_a_possible_duplicate(tmp_path, make_receiver):
    pages = make_log(tmp_path / "access.log", 60, visitors=6)
    # The first 4 answers come long after the timeout; every other one must come within it even
    # on a busy machine, where a loopback answer can take a second or more.
    slow = make_receiver(Faults(delay_s=120, slow_first=4))
    report = run(tmp_path / "access.log", slow, tmp_path, timeout_s=5, concurrency=4)
    assert (report.accepted, report.failed) == (60, 0)
    assert report.timeouts == 4 and report.maybe_duplicated == 4
    received = pages_of(slow)
    assert set(received) == set(pages) and sorted(received.values()).count(2) == 4  # the server kept both copies
    assert "may have arrived twice" in report.summary()
    assert report.as_dict()["maybe_duplicated"] == 4 and report.as_dict()["timeouts"] == 4
    # The lane held each visitor's later events until the late one settled: order holds, copies included.
    by_visitor: dict[str, list[int]] = {}
    for event in slow.events:
        by_visitor.setdefault(event["x_forwarded_for"], []).append(int(event["url"].rsplit("/p", 1)[1]))
    assert all(seq == sorted(seq) for seq in by_visitor.values())


# -- item 8: answers are read up to a few KiB ----------------------------------------------------------

MEASURE = """
import resource, sys
from pathlib import Path
import aiohttp, importer.pipeline
from importer import DeliveryOptions, OutputOptions, send
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
report = send([sys.argv[1]], "example.com",
              delivery=DeliveryOptions(endpoint=sys.argv[2], rate=0, concurrency=4, replay_history=True),
              outputs=OutputOptions(rejects=None, failed=None))
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(before, after, report.accepted)
"""


def _peak_rss_growth_kib(log: Path, endpoint: str) -> int:
    done = subprocess.run(
        [sys.executable, "-c", MEASURE, str(log), endpoint],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert done.returncode == 0, done.stderr
    before_kib, after_kib, accepted = map(int, done.stdout.split())
    assert accepted == 8
    return after_kib - before_kib


def test_a_huge_answer_body_is_not_read_whole(tmp_path, make_receiver):
    make_log(tmp_path / "access.log", 8)
    baseline = _peak_rss_growth_kib(tmp_path / "access.log", make_receiver().endpoint)
    huge = make_receiver(Faults(body_bytes=128 * 1024 * 1024))
    growth = _peak_rss_growth_kib(tmp_path / "access.log", huge.endpoint)
    # Reading one answer whole would add 128 MiB; a few KiB of each is lost in the noise.
    assert growth - baseline < 32 * 1024, (baseline, growth)
    assert huge.stats.body_bytes_sent < 8 * 48 * 1024 * 1024  # the connection was let go, not drained


def test_the_receiver_command_serves_https_and_plays_a_redirect(tmp_path):
    cert, key = _self_signed(tmp_path)
    make_log(tmp_path / "access.log", 5)
    common = [
        "send",
        str(tmp_path / "access.log"),
        "-d",
        "example.com",
        "--no-progress",
        "--rate",
        "0",
        "--replay-history",
        "--no-state",
        "--failed",
        str(tmp_path / "f.jsonl"),
        "--rejects",
        str(tmp_path / "r.jsonl"),
        "--ca-bundle",
        str(cert),
    ]
    for extra, expected in (([], 0), (["--answer-status", "302", "--location", "http://127.0.0.1:9/x"], 1)):
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "importer",
                "receiver",
                "--port",
                "0",
                "--tls-cert",
                str(cert),
                "--tls-key",
                str(key),
                *extra,
            ],
            cwd=ROOT,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        try:
            assert server.stderr is not None
            endpoint = server.stderr.readline().split("receiving on ", 1)[1].split(",")[0].strip()
            assert endpoint.startswith("https://")
            done = _cli(*common, "--endpoint", endpoint)
            assert done.returncode == expected, done.stderr
            assert ("HTTP 302" in done.stderr) == bool(extra)
        finally:
            server.terminate()
            server.wait(10)


def test_a_connection_that_cannot_be_made_is_not_a_possible_duplicate(tmp_path):
    # A listener whose accept queue is full and never served: further connection attempts hang,
    # like a host behind a firewall that drops packets. Nothing can have arrived.
    import socket

    with socket.socket() as hole:
        hole.bind(("127.0.0.1", 0))
        hole.listen(0)
        port = hole.getsockname()[1]
        fillers = []
        for _ in range(4):
            filler = socket.socket()
            filler.setblocking(False)
            filler.connect_ex(("127.0.0.1", port))
            fillers.append(filler)
        try:
            report, _, out = _send_table(
                f"http://127.0.0.1:{port}/api/event", _table(2), tmp_path, timeout_s=0.3, max_attempts=2, concurrency=1
            )
        finally:
            for filler in fillers:
                filler.close()
    assert report.failed == 2 and report.retries == 2
    assert (report.timeouts, report.maybe_duplicated) == (0, 0)
    assert all("ConnectionTimeoutError" in r["reason"] and "may_have_arrived" not in r for r in out)
