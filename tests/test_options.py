"""The option objects: each checks itself once and names the command-line option at fault; the
log time zone also reads export times; the package imports nothing heavy and has no import circle."""

from __future__ import annotations

import ast
import dataclasses
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from importer import ConfigError, DeliveryOptions, OutputOptions, ReadOptions, send
from importer.options import BackfillOptions

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize(
    ("make", "option"),
    [
        (lambda: ReadOptions(log_timezone="Mars/Olympus"), "--log-timezone"),
        (lambda: ReadOptions(log_format="combined", custom_format="%h"), "--log-format"),
        (lambda: ReadOptions(since="2024-03-02", until="2024-03-01"), "--since"),
        (lambda: ReadOptions(since="soon"), "--since"),
        (lambda: DeliveryOptions(rate=-1), "--rate"),
        (lambda: DeliveryOptions(concurrency=0), "--concurrency"),
        (lambda: DeliveryOptions(max_attempts=0), "--max-attempts"),
        (lambda: DeliveryOptions(retry_dropped=-1), "--retry-dropped"),
        (lambda: DeliveryOptions(timeout_s=float("nan")), "--timeout"),
        (lambda: DeliveryOptions(pace="fast"), "--pace"),
        (lambda: DeliveryOptions(pace="-2"), "--pace"),
        (lambda: DeliveryOptions(pace=float("nan")), "--pace"),
        (lambda: DeliveryOptions(headers=("no colon here",)), "--header"),
        (lambda: DeliveryOptions(headers=("Bad Name: x",)), "--header"),
        (lambda: BackfillOptions(site_timezone="Nowhere/Land", out_dir="x"), "--site-timezone"),
    ],
)
def test_a_bad_value_is_a_config_error_naming_its_option(make, option):
    with pytest.raises(ConfigError) as error:
        make()
    assert option in str(error.value)


@pytest.mark.parametrize(
    ("pace", "factor"),
    [("asap", 0.0), ("", 0.0), (" Realtime ", 1.0), ("10", 10.0), ("2.5x", 2.5), (4, 4.0), (0.5, 0.5)],
)
def test_pace_reads_asap_realtime_and_a_speed_up_factor(pace, factor):
    assert DeliveryOptions(pace=pace).pace_factor == factor


def test_a_header_error_does_not_quote_the_value():
    with pytest.raises(ConfigError) as error:
        DeliveryOptions(headers=("X-Token: secret\nInjected: 1",))
    assert "secret" not in str(error.value)


def test_secrets_stay_out_of_the_options_repr():
    delivery = DeliveryOptions(endpoint="https://user:pw-in-url@example.org/api/event", headers=("X-Token: abc123",))
    assert "pw-in-url" not in repr(delivery) and "abc123" not in repr(delivery)


def test_options_are_frozen_and_normalised():
    read = ReadOptions(log_timezone="utc")
    assert read.log_timezone == "UTC"
    with pytest.raises(dataclasses.FrozenInstanceError):
        read.log_timezone = "Europe/Berlin"  # type: ignore[misc]
    delivery = DeliveryOptions(headers=("X-Token:  abc ", ("X-Other", "1")), pace="realtime")
    assert delivery.header_pairs == [("X-Token", "abc"), ("X-Other", "1")] and delivery.pace_factor == 1.0


EXPORT_MAPPING = """
    name = "csv-test"
    [input]
    format = "csv"
    {zone}
    [input.columns]
    timestamp = "time"
    url = "url"
    ip = "ip"
    user_agent = "ua"
"""
UA = "Mozilla/5.0 (X11; Linux x86_64; rv:123.0) Gecko/20100101 Firefox/123.0"


def export_timestamp(tmp_path: Path, zone_line: str, log_timezone: str) -> str:
    mapping = tmp_path / "m.toml"
    mapping.write_text(textwrap.dedent(EXPORT_MAPPING.format(zone=zone_line)), encoding="utf-8")
    export = tmp_path / "export.csv"
    export.write_text(f'time,url,ip,ua\n2024-03-01 10:00:00,https://example.com/,203.0.113.9,"{UA}"\n')
    out = tmp_path / "events.jsonl"
    send(
        [export],
        "example.com",
        dry_run=True,
        read=ReadOptions(mapping=str(mapping), log_timezone=log_timezone),
        outputs=OutputOptions(events=out, rejects=None, failed=None),
    )
    return json.loads(out.read_text().splitlines()[0])["timestamp"]


def test_the_log_timezone_reads_export_times_without_an_offset(tmp_path):
    assert export_timestamp(tmp_path, "", "UTC") == "2024-03-01T10:00:00Z"
    assert export_timestamp(tmp_path, "", "Europe/Berlin") == "2024-03-01T09:00:00Z"
    # the mapping's own input.timezone wins for its exports
    assert export_timestamp(tmp_path, 'timezone = "America/New_York"', "Europe/Berlin") == "2024-03-01T15:00:00Z"


def test_importing_the_package_and_the_command_line_loads_nothing_heavy():
    code = (
        "import sys, importer, importer.cli; "
        "print(sorted(m for m in ('pyarrow', 'pandas', 'numpy', 'aiohttp', 'rich', 'importer.mapping') "
        "if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert done.stdout.strip() == "[]"


def test_the_command_modules_do_not_import_the_package_that_imports_them():
    for path in sorted((ROOT / "importer" / "cli").glob("*.py")):
        if path.name == "__init__.py":
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                # `from . import x` and `from importer.cli import x` run importer/cli/__init__.py
                assert not (node.level == 1 and node.module is None), f"{path.name}: from . import ..."
                assert node.module != "importer.cli", f"{path.name}: imports importer.cli"
