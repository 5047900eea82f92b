"""The options on the command line: config file, profiles and environment; secret headers; the
renamed time-zone options; history refused before anything is sent, with and without a
terminal; unwritable outputs. What needs a process of its own (a terminal, the receiver) runs
as a user runs it, in a subprocess; the rest goes through the command line in this process."""

from __future__ import annotations

import datetime as dt
import json
import os
import pty
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest
import typer
from conftest import combined_line, write_log
from typer.testing import CliRunner

from importer.cli import app

SECRET = "t0p-s3cret-token"
CONFIG = f"""
endpoint = "https://user:pw-in-url@plausible.example.org/api/event"
rate = 20
header = ["X-Proxy-Token: {SECRET}"]
no_progress = true

[profiles.blog]
domain = "blog.example.org"
log-timezone = "Europe/Berlin"
rate = 5

[profiles.shop]
domain = "shop.example.org"
mapping = "web-goals"
site-timezone = "Europe/Paris"
"""


def run_cli(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "importer", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
        cwd=cwd,
    )


def invoke(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """The command line in this process (the current directory is the test's own: see ``here``)."""
    result = CliRunner().invoke(app, list(args), env=env)
    return subprocess.CompletedProcess(args, result.exit_code, result.stdout, result.stderr)


@pytest.fixture
def here(tmp_path, monkeypatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


def settings(output: str) -> dict[str, tuple[str, str]]:
    """`config`'s lines as key -> (value, origin)."""
    found = {}
    for line in output.splitlines():
        if " = " in line and not line.startswith("#"):
            key, rest = line.split(" = ", 1)
            value, origin = rest.split("  # ", 1)
            found[key] = (value, origin)
    return found


def test_config_shows_each_value_and_where_it_came_from(here):
    config = here / "config.toml"
    config.write_text(CONFIG, encoding="utf-8")
    blog = invoke("config", "--config", str(config), "--profile", "blog", env={"PLAUSIBLE_IMPORT_RATE": "7"})
    assert blog.returncode == 0, blog.stderr
    found = settings(blog.stdout)
    assert found["domain"] == ("blog.example.org", f"profile blog in {config}")
    assert found["log-timezone"] == ("Europe/Berlin", f"profile blog in {config}")
    assert found["rate"] == ("7", "environment PLAUSIBLE_IMPORT_RATE")  # environment > profile > file
    assert found["endpoint"] == ("https://user:***@plausible.example.org/api/event", str(config))
    assert found["header"] == ("X-Proxy-Token: ***", str(config))
    assert found["concurrency"] == ("8", "default")
    assert SECRET not in blog.stdout + blog.stderr and "pw-in-url" not in blog.stdout
    shop = invoke("config", "--config", str(config), "--profile", "shop", "--command", "backfill")
    found = settings(shop.stdout)
    assert found["domain"] == ("shop.example.org", f"profile shop in {config}")
    assert found["site-timezone"] == ("Europe/Paris", f"profile shop in {config}")
    assert found["mapping"] == ("web-goals", f"profile shop in {config}")
    assert "rate" not in found  # not a backfill option


def test_the_default_config_file_and_the_environment_reach_a_run(here):
    config_dir = here / "xdg" / "plausible-import"
    config_dir.mkdir(parents=True)
    (config_dir / "config.toml").write_text(CONFIG, encoding="utf-8")
    log = write_log(here / "access.log", [combined_line(target="/a")])
    out = here / "events.jsonl"
    env = {"XDG_CONFIG_HOME": str(here / "xdg"), "PLAUSIBLE_IMPORT_PROFILE": "blog"}

    def domain_sent(*extra: str, **more_env: str) -> str:
        done = invoke("send", str(log), "--dry-run", "--output", str(out), *extra, env={**env, **more_env})
        assert done.returncode == 0, done.stderr
        return json.loads(out.read_text())["domain"]

    assert domain_sent() == "blog.example.org"  # profile
    assert domain_sent(PLAUSIBLE_IMPORT_DOMAIN="env.example.org") == "env.example.org"  # environment > profile
    assert domain_sent("--domain", "cli.example.org", PLAUSIBLE_IMPORT_DOMAIN="env.example.org") == "cli.example.org"
    assert domain_sent("--profile", "shop") == "shop.example.org"


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("bogus = 1\n", "'bogus'"),
        ('[profiles.blog]\ndomain = "x.org"\nrat = 5\n', "[profiles.blog]"),
        ("endpoint = \n", "not valid TOML"),
    ],
)
def test_a_bad_config_file_is_one_line_naming_the_file_and_key(here, text, named):
    config = here / "config.toml"
    config.write_text(text, encoding="utf-8")
    log = write_log(here / "access.log", [combined_line()])
    done = invoke("send", str(log), "--config", str(config), "--profile", "blog", "--dry-run")
    assert done.returncode == 2 and str(config) in done.stderr and named in done.stderr
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("text", "env", "message"),
    [
        (
            'max_unanswered = "many"\n[profiles.blog]\ndomain = "example.com"\n',
            {},
            'config file {config}: max_unanswered = "many": expected a whole number',
        ),
        (
            '[profiles.blog]\ndomain = "example.com"\nconcurrency = true\n',
            {},
            "config file {config}, [profiles.blog]: concurrency = true: expected a whole number",
        ),
        (
            "rate = 1.5\n[profiles.blog]\nno-progress = 1\n",
            {},
            "[profiles.blog]: no-progress = 1: expected true or false",
        ),
        ('header = [1]\n[profiles.blog]\ndomain = "x.org"\n', {}, "{config}: header = [1]: expected a list of strings"),
        ('rate = "20"\n[profiles.blog]\ndomain = "example.com"\n', {}, '{config}: rate = "20": expected a number'),
        ("[profiles.blog]\ndomain = 7\n", {}, "[profiles.blog]: domain = 7: expected a string"),
        (
            '[profiles.blog]\ndomain = "example.com"\n',
            {"PLAUSIBLE_IMPORT_RATE": "fast"},
            'environment variable PLAUSIBLE_IMPORT_RATE = "fast": expected a number',
        ),
        (
            '[profiles.blog]\ndomain = "example.com"\n',
            {"PLAUSIBLE_IMPORT_DRY_RUN": "maybe"},
            'environment variable PLAUSIBLE_IMPORT_DRY_RUN = "maybe": expected true or false',
        ),
    ],
)
def test_a_value_of_the_wrong_type_is_one_line_naming_where_it_is_set_before_anything_runs(here, text, env, message):
    config = here / "config.toml"
    config.write_text(text, encoding="utf-8")
    log = write_log(here / "access.log", [combined_line()])
    for command in (["send", str(log)], ["config"]):
        done = invoke(*command, "--config", str(config), "--profile", "blog", env=env)
        assert done.returncode == 2, done.stdout
        assert message.format(config=config) in done.stderr and len(done.stderr.strip().splitlines()) == 1
    # nothing was read, written or sent: no rejects, no state, no report
    assert sorted(p.name for p in here.iterdir()) == ["access.log", "config.toml"]


def test_every_option_a_config_file_can_set_has_a_type_the_check_knows():
    from importer.cli.common import commands, setting_keys
    from importer.cli.settings import EXPECTED

    ctx = typer.main.get_command(app).make_context("plausible-import", ["config"])
    for command in commands(ctx).values():
        params = {p.name: p for p in command.params}
        for name in setting_keys(command).values():
            param = params[name]
            assert param.multiple or param.type_descriptor.annotation in EXPECTED, (command.name, name)


def test_values_of_the_right_type_reach_the_run(here):
    """The check refuses only what the option cannot take: a number option takes an integer, a
    flag from the environment takes yes, a header a single string."""
    config = here / "config.toml"
    config.write_text('rate = 3\nheader = "X-A: 1"\n[profiles.blog]\ndomain = "example.com"\n', encoding="utf-8")
    log = write_log(here / "access.log", [combined_line()])
    env = {"PLAUSIBLE_IMPORT_DRY_RUN": "yes"}
    done = invoke("send", str(log), "--config", str(config), "--profile", "blog", "--no-progress", env=env)
    assert done.returncode == 0, done.stderr
    assert "(dry run)" in done.stdout + done.stderr


def test_an_unknown_profile_or_a_missing_named_file_is_an_error(here):
    config = here / "config.toml"
    config.write_text(CONFIG, encoding="utf-8")
    log = write_log(here / "access.log", [combined_line()])
    done = invoke("send", str(log), "--config", str(config), "--profile", "nope", "--dry-run")
    assert done.returncode == 2 and "'nope'" in done.stderr and "blog, shop" in done.stderr
    done = invoke("send", str(log), "-d", "example.com", "--config", str(here / "missing.toml"), "--dry-run")
    assert done.returncode == 2 and "missing.toml" in done.stderr


def test_a_secret_header_appears_in_no_output_file_or_stream(tmp_path, receiver):
    log = write_log(tmp_path / "access.log", [combined_line(target="/a"), "not a log line"])
    endpoint = receiver.endpoint.replace("http://", "http://user:pw-in-url@").replace("/api/event", "/api/missing")
    both = run_cli(
        "send",
        str(log),
        "-d",
        "example.com",
        "--endpoint",
        endpoint,
        "--replay-history",
        "--header",
        f"Authorization: Bearer {SECRET}",
        cwd=tmp_path,
    )
    assert both.returncode == 2 and "not both" in both.stderr and SECRET not in both.stderr + both.stdout
    done = run_cli(
        "send",
        str(log),
        "-d",
        "example.com",
        "--endpoint",
        endpoint,
        "--rate",
        "0",
        "--replay-history",
        "--header",
        f"X-Proxy-Token: {SECRET}",
        "--header",
        f"Proxy-Authorization: Bearer {SECRET}",
        "--max-attempts",
        "1",
        "--report",
        "report.json",
        "--state",
        "state.sqlite",
        cwd=tmp_path,
    )
    assert done.returncode == 1, done.stderr  # the 404 makes the event fail: its error is written
    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    names = {p.name for p in written}
    assert {"report.json", "plausible-import.failed.jsonl", "plausible-import.rejects.jsonl"} <= names
    for text in [done.stdout, done.stderr] + [p.read_bytes().decode("utf-8", "replace") for p in written]:
        assert SECRET not in text and "pw-in-url" not in text


def test_the_old_timezone_names_say_what_they_became(here):
    log = write_log(here / "access.log", [combined_line()])
    for command, old, new in [
        ("send", "--timezone", "--log-timezone"),
        ("preview", "--timezone", "--log-timezone"),
        ("backfill", "--timezone", "--site-timezone"),
        ("backfill", "--tz", "--site-timezone"),
    ]:
        extra = ["-d", "example.com"] if command != "preview" else []
        done = invoke(command, str(log), *extra, old, "Europe/Berlin")
        assert done.returncode == 2 and f"use {new}" in done.stderr, (command, old, done.stderr)


def old_and_recent_logs(tmp_path: Path) -> tuple[Path, Path]:
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    old = write_log(tmp_path / "old.log", [combined_line(target="/old")])  # 2024
    recent = write_log(tmp_path / "recent.log", [combined_line(target="/new", when=now - dt.timedelta(hours=2))])
    return old, recent


def test_history_is_refused_without_a_terminal_before_anything_is_sent(tmp_path, receiver):
    old, recent = old_and_recent_logs(tmp_path)
    base = ["-d", "example.com", "--endpoint", receiver.endpoint, "--rate", "0", "--no-progress", "--no-state"]
    refused = run_cli("send", str(old), *base, cwd=tmp_path)
    assert refused.returncode == 2 and "backfill" in refused.stderr and "--replay-history" in refused.stderr
    assert receiver.stats.accepted == 0
    fresh = run_cli("send", str(recent), *base, cwd=tmp_path)
    assert fresh.returncode == 0 and receiver.stats.accepted == 1, fresh.stderr
    replayed = run_cli("send", str(old), *base, "--replay-history", cwd=tmp_path)
    assert replayed.returncode == 0 and receiver.stats.accepted == 2, replayed.stderr


def run_on_terminal(args: list[str], answer: bytes, cwd: Path) -> tuple[int, str]:
    """Run the command with a pty as its terminal, answer its question, return (status, screen)."""
    leader, follower = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "importer", *args],
        stdin=follower,
        stdout=follower,
        stderr=follower,
        cwd=cwd,
        close_fds=True,
    )
    os.close(follower)
    screen, answered, deadline = b"", False, time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([leader], [], [], 0.2)
            if ready:
                try:
                    chunk = os.read(leader, 4096)
                except OSError:  # the command ended and closed the terminal
                    break
                if not chunk:
                    break
                screen += chunk
            if not answered and b"anyway? [y/N]" in screen:
                os.write(leader, answer)
                answered = True
            if process.poll() is not None and not ready:
                break
        return process.wait(timeout=30), screen.decode("utf-8", "replace")
    finally:
        if process.poll() is None:
            process.kill()
        os.close(leader)


def test_on_a_terminal_history_is_sent_only_when_the_user_says_yes(tmp_path, receiver):
    old, _ = old_and_recent_logs(tmp_path)
    args = [
        "send",
        str(old),
        "-d",
        "example.com",
        "--endpoint",
        receiver.endpoint,
        "--rate",
        "0",
        "--no-progress",
        "--no-state",
    ]
    status, screen = run_on_terminal(args, b"\n", tmp_path)  # Enter: the default, no
    assert status == 2 and "more than a day ago" in screen and "nothing sent" in screen, screen
    assert receiver.stats.accepted == 0
    status, screen = run_on_terminal(args, b"y\n", tmp_path)
    assert status == 0 and receiver.stats.accepted == 1, screen


def test_unwritable_outputs_stop_the_run_before_anything_is_sent(here, receiver):
    log = write_log(here / "access.log", [combined_line()])
    send = ["send", str(log), "-d", "example.com", "--endpoint", receiver.endpoint, "--replay-history", "--no-state"]
    backfill = ["backfill", str(log), "-d", "example.com", "--site-timezone", "UTC"]
    cases = [
        ([*send, "--rejects", "/proc/x"], "--rejects /proc/x"),
        ([*send, "--failed", "/proc/x/failed.jsonl"], "--failed"),
        ([*send, "--report", str(here)], "is a directory"),
        ([*send, "--dry-run", "--output", str(here)], "--output"),
        ([*backfill, "--out", "/proc/x"], "--out /proc/x"),
        ([*backfill, "--out", str(log)], "not a directory"),
    ]
    for args, expected in cases:
        done = invoke(*args, "--no-progress")
        assert done.returncode == 2 and expected in done.stderr, (args, done.stderr)
        assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert receiver.stats.accepted == 0 and receiver.stats.requests == 0


def test_a_dash_writes_events_and_the_report_to_standard_output(here):
    log = write_log(here / "access.log", [combined_line(target="/a"), combined_line(target="/b")])
    events = invoke("send", str(log), "-d", "example.com", "--dry-run", "--output", "-", "--no-progress")
    assert events.returncode == 0, events.stderr
    assert [json.loads(line)["url"] for line in events.stdout.splitlines()] == [
        "https://example.com/a",
        "https://example.com/b",
    ]
    report = invoke("send", str(log), "-d", "example.com", "--dry-run", "--report", "-", "--no-progress")
    assert report.returncode == 0 and json.loads(report.stdout)["events"] == 2
    assert not (here / "-").exists()
