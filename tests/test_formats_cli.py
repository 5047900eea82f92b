"""`formats`, `preview`, and `send` on the non-CLF formats, end to end (real receiver on loopback)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from importer.options import DeliveryOptions, OutputOptions
from importer.pipeline import send
from importer.readers.detect import FORMATS

FIXTURES = Path(__file__).parent / "fixtures" / "formats"


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "importer", *args], capture_output=True, text=True, timeout=120)


def test_formats_lists_every_format_with_its_example():
    result = run_cli("formats")
    assert result.returncode == 0, result.stderr
    for fmt in FORMATS:
        assert f"\n{fmt.name}  (" in "\n" + result.stdout
        assert fmt.example.splitlines()[-1] in result.stdout
    assert "--log-format" in result.stdout


def test_preview_shows_format_share_rows_and_why_lines_failed():
    result = run_cli("preview", str(FIXTURES / "iis.log"), str(FIXTURES / "combined.log"))
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "format: w3c, detected, 75% of sample" in out
    assert "format: combined, detected, 100% of sample" in out
    assert "/blog/café" in out and "2024-03-14 08:26:53" in out
    assert "line 12: does not match the w3c (#Fields: 11 fields) format" in out
    assert "line 7: unbalanced quotes (a truncated line?)" in out


def test_preview_with_a_mapping_shows_events_and_filter_counts():
    result = run_cli("preview", str(FIXTURES / "s3.log"), "--mapping", "web", "--domain", "example.com")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "pageview https://example.com/pricing/" in out
    assert "filtered: method" in out  # the REST.PUT.OBJECT row
    assert "filtered method: 1" in out


def test_preview_of_an_unrecognisable_file_explains_and_fails(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("dear diary\ntoday I wrote a log parser\n")
    result = run_cli("preview", str(path))
    assert result.returncode == 1
    assert "cannot recognise the log format" in result.stdout and "'dear diary'" in result.stdout


def test_send_rejects_a_bad_timezone_or_log_format_as_usage_errors(tmp_path):
    log = FIXTURES / "common.log"
    result = run_cli("send", str(log), "-d", "example.com", "--dry-run", "--log-timezone", "Nowhere/Special")
    assert result.returncode == 2 and "unknown time zone" in result.stderr
    result = run_cli("send", str(log), "-d", "example.com", "--dry-run", "--log-format", "%h %t %>s")
    assert result.returncode == 2 and "no request" in result.stderr


def test_mixed_directory_is_detected_per_file_and_sent(tmp_path, receiver):
    """CloudFront, ALB and Caddy files in one directory: each detected on its own, events delivered."""
    folder = tmp_path / "logs"
    folder.mkdir()
    for name in ("cloudfront.log", "alb.log", "caddy.log"):
        (folder / name).write_bytes((FIXTURES / name).read_bytes())
    report = send(
        [folder],
        domain="example.com",
        delivery=DeliveryOptions(endpoint=receiver.endpoint, rate=0, state=None, replay_history=True),
        outputs=OutputOptions(rejects=tmp_path / "rejects.jsonl", failed=tmp_path / "failed.jsonl"),
    )
    formats = {Path(f).name: fmt.split(",")[0] for f, fmt in report.sources}
    assert formats == {"cloudfront.log": "cloudfront", "alb.log": "alb", "caddy.log": "caddy"}
    # rows: cloudfront 3 (status 000 filtered), alb 3 (a non-HTTP row filtered), caddy 2 (runtime line not a row)
    assert report.rows_read == 8 and report.rows_invalid == 0
    assert report.rows_read == report.rows_invalid + sum(report.rows_filtered.values()) + report.events
    got = sorted((e["url"], e["x_forwarded_for"]) for e in receiver.events)
    assert got == sorted(
        [
            ("https://www.example.com/pricing?plan=pro", "203.0.113.42"),  # cloudfront
            ("https://www.example.com/docs/", "203.0.113.77"),  # cloudfront, original client from x-forwarded-for
            ("https://www.example.com/pricing?plan=pro", "203.0.113.42"),  # alb (port 443 dropped)
            ("https://www.example.com/docs/", "2001:db8::42"),  # alb, IPv6 client
            ("https://www.example.com/pricing?plan=pro", "203.0.113.42"),  # caddy client_ip, not the proxy
            ("https://www.example.com/docs/", "2001:db8::11"),  # caddy
        ]
    )
    assert report.accepted == 6


def test_bad_lines_are_counted_per_file_quoted_and_all_in_the_rejects_file(tmp_path):
    rejects = tmp_path / "rejects.jsonl"
    report = send(
        [FIXTURES / "nginx.json", FIXTURES / "iis.log"],
        domain="example.com",
        dry_run=True,
        outputs=OutputOptions(rejects=rejects),
    )
    assert report.rows_invalid == 2
    sources = dict(report.sources)
    assert sources[str(FIXTURES / "nginx.json")].endswith(", 1 bad line")
    assert any(
        s.startswith(f"{FIXTURES / 'iis.log'}:12: does not match") and "'2024-03-14 09:00:02" in s
        for s in report.invalid_samples
    )
    records = [json.loads(line) for line in rejects.read_text().splitlines()]
    assert sorted((Path(r["file"]).name, r["line"]) for r in records) == [("iis.log", 12), ("nginx.json", 5)]
    assert "w3c, detected, 75% of sample" in report.summary()
