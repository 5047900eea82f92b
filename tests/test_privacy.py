"""Nothing leaks: no endpoint password and no visitor address in what the tool prints or writes,
and every file that may quote input is its user's alone (0600)."""

from __future__ import annotations

import ipaddress
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path

from conftest import combined_line, write_log
from hypothesis import given, settings
from hypothesis import strategies as st
from test_sender_faults import make_log

from importer.report import redact_ips, redact_url, without_userinfo

SECRET = "s3cr3t-pw"


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "importer", *args],
        capture_output=True,
        text=True,
        check=False,
        cwd=tmp_path,
        timeout=120,
    )


def send(tmp_path: Path, log: Path, endpoint: str, tag: str, *extra: str) -> subprocess.CompletedProcess:
    return cli(
        tmp_path,
        "send",
        str(log),
        "--domain",
        "example.com",
        "--endpoint",
        endpoint,
        "--rate",
        "0",
        "--replay-history",
        "--state",
        str(tmp_path / "state.sqlite"),
        "--no-progress",
        "--backoff",
        "0.01",
        "--failed",
        str(tmp_path / f"failed-{tag}.jsonl"),
        "--rejects",
        str(tmp_path / f"rejects-{tag}.jsonl"),
        *extra,
    )


def with_password(endpoint: str, path: str = "/api/event") -> str:
    return endpoint.replace("http://", f"http://importer:{SECRET}@").replace("/api/event", path)


def state_bytes(tmp_path: Path) -> bytes:
    return b"".join(p.read_bytes() for p in tmp_path.glob("state.sqlite*"))


# -- the endpoint's password -------------------------------------------------------------------


def test_redact_url_hides_the_password_but_keeps_the_user_and_host():
    assert redact_url("http://u:p@h:8/api/event") == "http://u:***@h:8/api/event"
    assert redact_url("endpoint https://u:p@ss@h/x answered") == "endpoint https://u:***@h/x answered"
    assert redact_url("http://h/api/event") == "http://h/api/event"
    assert without_userinfo("https://u:p@h/x") == "https://h/x"


def test_password_in_endpoint_reaches_no_summary_failed_file_or_state_file(tmp_path, receiver):
    log = tmp_path / "access.log"
    make_log(log, 40)
    # A wrong path: the receiver answers 404, the run stops and every event lands in the failed file.
    result = send(tmp_path, log, with_password(receiver.endpoint, "/wrong"), "a")
    assert result.returncode == 1, result.stderr
    failed = tmp_path / "failed-a.jsonl"
    assert failed.stat().st_size and "importer:***@" in result.stderr + failed.read_text()
    assert SECRET not in result.stderr + failed.read_text()
    assert SECRET.encode() not in state_bytes(tmp_path)
    (lock,) = tmp_path.glob("state.sqlite.lock-*")  # one lock per endpoint and domain
    for path in (failed, tmp_path / "state.sqlite", lock):
        assert mode(path) == 0o600, path


def test_state_is_keyed_without_the_password_and_finds_a_state_keyed_with_it(tmp_path, receiver):
    log = tmp_path / "access.log"
    make_log(log, 30)
    first = send(tmp_path, log, with_password(receiver.endpoint), "a")
    assert first.returncode == 0, first.stderr
    assert len(receiver.events) == 30
    # Another password, same endpoint: the same job, nothing sent again.
    again = send(tmp_path, log, with_password(receiver.endpoint).replace(SECRET, "rotated"), "b")
    assert again.returncode == 0 and len(receiver.events) == 30, again.stderr
    # A state file written by an older version held the password in its scope: still found,
    # and re-keyed so that the password leaves the file.
    db = sqlite3.connect(tmp_path / "state.sqlite")
    db.execute("UPDATE files SET scope = ?", (f"{with_password(receiver.endpoint)} example.com",))
    db.commit()
    db.close()
    assert SECRET.encode() in state_bytes(tmp_path)
    old = send(tmp_path, log, with_password(receiver.endpoint), "c")
    assert old.returncode == 0 and len(receiver.events) == 30, old.stderr
    assert SECRET.encode() not in state_bytes(tmp_path)


def test_files_created_by_an_older_version_are_tightened_to_0600(tmp_path, receiver):
    first, second = tmp_path / "first.log", tmp_path / "second.log"
    make_log(first, 5)
    write_log(second, [combined_line(target="/second"), "garbage line"])
    assert send(tmp_path, first, receiver.endpoint, "a").returncode == 0
    (tmp_path / "rejects-a.jsonl").write_text("")
    (lock,) = tmp_path.glob("state.sqlite.lock-*")
    for name in ("state.sqlite", lock.name, "rejects-a.jsonl"):
        (tmp_path / name).chmod(0o644)
    result = send(tmp_path, second, receiver.endpoint, "a")
    assert result.returncode == 0 and len(receiver.events) == 6, result.stderr
    assert "garbage line" in (tmp_path / "rejects-a.jsonl").read_text()
    for name in ("state.sqlite", lock.name, "rejects-a.jsonl"):
        assert mode(tmp_path / name) == 0o600, name
    result = send(tmp_path, first, receiver.endpoint, "b", "--dry-run", "--output", str(tmp_path / "events.jsonl"))
    assert result.returncode == 0, result.stderr
    assert mode(tmp_path / "events.jsonl") == 0o600  # dry-run events carry visitors' addresses


# -- visitors' addresses -----------------------------------------------------------------------

GLUED = [
    "x_203.0.113.10",
    "ip203.0.113.13",
    "011.022.033.044",
    "client=2001:db8::7",
    "ipfe80::1%eth0",
    "[2001:DB8:0:0:0:0:0:9]:443",
    "::ffff:198.51.100.3",
    "at 192.0.2.1.",
]


def test_addresses_glued_to_letters_zero_padded_or_in_ipv6_forms_are_redacted():
    for text in GLUED:
        redacted = redact_ips(text)
        assert "ip:" in redacted and not any(ch.isdigit() for ch in redacted.split("ip:")[0][-1:]), redacted
    assert redact_ips("011.022.033.044") == redact_ips("11.22.33.44")  # the same address, one hash
    assert redact_ips("Chrome/120.0.6099.109 v1.2") == "Chrome/120.0.6099.109 v1.2"  # not addresses


# Text around an address: anything but what would make it part of a longer token (a digit, a
# dot or colon, or for IPv6 a hex digit).
_NOT_V4 = st.characters(blacklist_characters="0123456789.:", blacklist_categories=("Cs",))
_NOT_V6 = st.characters(blacklist_characters="0123456789abcdefABCDEF.:%", blacklist_categories=("Cs",))


def _forms(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> list[str]:
    if address.version == 4:
        return [str(address), ".".join(f"{octet:03d}" for octet in address.packed)]
    return [str(address), address.exploded, address.exploded.upper()]


@settings(max_examples=300, deadline=None)
@given(st.data(), st.ip_addresses())
def test_no_address_survives_redaction_whatever_the_text_around_it(data, address):
    around = _NOT_V4 if address.version == 4 else _NOT_V6
    form = data.draw(st.sampled_from(_forms(address)))
    before = data.draw(st.text(alphabet=around, max_size=12))
    after = data.draw(st.text(alphabet=around, max_size=12))
    text = f"{before}{form}{after} and again {form}"
    redacted = redact_ips(text)
    for shown in _forms(address):
        assert shown not in redacted, (text, redacted)


def test_an_address_followed_by_a_non_ascii_digit_is_redacted():
    assert "000.000.000.000" not in redact_ips("000.000.000.000\u1810 and again")


def test_rejects_file_and_preview_show_no_address_from_rejected_lines(tmp_path, receiver):
    log = tmp_path / "access.log"
    good = combined_line(ip="198.51.100.1", target="/ok")
    write_log(log, [good] + [f"{text} is not a log line" for text in GLUED] + [good.replace("/ok", "/ok2")])
    result = send(tmp_path, log, receiver.endpoint, "a", "--format", "combined")
    rejects = tmp_path / "rejects-a.jsonl"
    assert result.returncode == 0 and len(receiver.events) == 2, result.stderr
    assert rejects.read_text().count("\n") == len(GLUED) and mode(rejects) == 0o600
    preview = cli(tmp_path, "preview", str(log), "--format", "combined")
    assert preview.returncode == 0 and "rejected lines" in preview.stdout, preview.stderr
    for output in (rejects.read_text(), result.stderr, preview.stdout):
        for address in (
            "203.0.113.10",
            "203.0.113.13",
            "011.022.033.044",
            "2001:db8::7",
            "fe80::1",
            "2001:DB8:0:0:0:0:0:9",
            "198.51.100.3",
            "192.0.2.1",
        ):
            assert address not in output, (address, output)
