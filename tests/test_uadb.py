"""The batch user-agent path gives device-detector's own answers, and the geo cache stays bounded.

device-detector parses ~40,000 fixture user agents in its test files at 10-80 ms each: too long
for CI. By default a seeded sample is checked against device-detector itself; with
``PLAUSIBLE_IMPORT_SLOW_TESTS=1`` every fixture agent is checked: the batch answer must equal
the fixture's expected values or, where it does not, device-detector's own answer.
"""

from __future__ import annotations

import functools
import glob
import os
import random
from pathlib import Path

import pytest

from importer.backfill import uadb
from importer.backfill.devices import DeviceInfo, DeviceParser
from importer.backfill.geo import GeoLookup

SLOW = os.environ.get("PLAUSIBLE_IMPORT_SLOW_TESTS") == "1"


@functools.cache
def fixture_entries() -> tuple[dict, ...]:
    """device-detector's fixture entries that carry only a user agent (no client hints)."""
    import device_detector
    import yaml_rs

    folder = Path(device_detector.__file__).parent / "tests" / "fixtures" / "upstream"
    entries = []
    for name in sorted(glob.glob(str(folder / "*.yml"))):
        for entry in yaml_rs.loads(Path(name).read_text(encoding="utf-8")) or []:
            if isinstance(entry, dict) and isinstance(entry.get("user_agent"), str) and not entry.get("headers"):
                entries.append(entry)
    return tuple(entries)


class FixtureResult:
    """A fixture's expected values behind the accessors ``DeviceParser._convert`` reads."""

    def __init__(self, entry: dict) -> None:
        self.entry = entry

    def _part(self, name: str) -> dict:
        value = self.entry.get(name)
        return value if isinstance(value, dict) else {}

    def is_bot(self) -> bool:
        return bool(self.entry.get("bot"))

    def client_name(self) -> str:
        return str(self._part("client").get("name") or "")

    def client_type(self) -> str:
        return str(self._part("client").get("type") or "")

    def client_version(self) -> str:
        return str(self._part("client").get("version") or "")

    def os_name(self) -> str:
        return str(self._part("os").get("name") or "")

    def os_version(self) -> str:
        return str(self._part("os").get("version") or "")

    def device_type(self) -> str:
        return str(self._part("device").get("type") or "")


def reference(user_agent: str) -> DeviceInfo:
    from device_detector import DeviceDetector

    return DeviceParser._convert(DeviceDetector(user_agent).parse())


def test_sample_matches_device_detector():
    """A seeded sample of fixture agents (every kind of device, bots, apps) plus agents the
    table does not judge (non-ASCII) resolve exactly as device-detector resolves them."""
    agents = sorted({entry["user_agent"] for entry in fixture_entries()})
    sample = random.Random(20261207).sample(agents, 60)
    sample += [
        "Mozilla/5.0 (Linux; Android 13; Pixel 7 ünïcode) AppleWebKit/537.36 Chrome/120.0.0.0 Mobile",
        "curl/8.5.0",
        "",
    ]
    batch = uadb.resolve(sample, DeviceParser._convert, workers=1)
    assert batch == [reference(ua) for ua in sample]


def test_parallel_workers_keep_the_order():
    agents = sorted({entry["user_agent"] for entry in fixture_entries()})
    sample = random.Random(7).sample(agents, 40)
    one = uadb.resolve(sample, DeviceParser._convert, workers=1)
    original = uadb.PARALLEL_FROM
    uadb.PARALLEL_FROM = 2
    try:
        two = uadb.resolve(sample, DeviceParser._convert, workers=2)
    finally:
        uadb.PARALLEL_FROM = original
    assert two == one and len({info.browser for info in one}) > 3


def test_table_skips_regexes_and_is_removed_afterwards():
    """The table answers most searches without running them, and the patch is undone."""
    from device_detector.lazy_regex import RegexLazy

    before = RegexLazy.__getattribute__
    agents = [
        (
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
            "Chrome/120.0.0.0 Safari/537.36"
        ),
        (
            "Mozilla/5.0 (Linux; Android 14; SM-S911B) AppleWebKit/537.36 (KHTML, like Gecko) "
            "Chrome/121.0.6167.101 Mobile Safari/537.36"
        ),
    ]
    table = uadb.MatchTable(agents, uadb.groups())
    with uadb._searches_through(table):
        from device_detector import DeviceDetector

        answers = [DeviceParser._convert(DeviceDetector(ua).parse()) for ua in agents]
    assert RegexLazy.__getattribute__ is before
    assert table.skipped > 100 * len(agents)
    assert answers == [
        DeviceInfo("Desktop", "Chrome", "120.0", "Windows", "10"),
        DeviceInfo("Mobile", "Chrome", "121.0", "Android", "14"),
    ]


def test_device_parser_parse_many_uses_the_batch(tmp_path):
    parser = DeviceParser(tmp_path / "ua.json")
    agents = [
        (
            "Mozilla/5.0 (iPhone; CPU iPhone OS 17_2 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
            "Version/17.2 Mobile/15E148 Safari/604.1"
        ),
        "Googlebot/2.1 (+http://www.google.com/bot.html)",
        "",
    ]
    parser.parse_many(agents * 2)
    assert parser.parsed == 2
    assert parser.parse(agents[0]) == DeviceInfo("Mobile", "Safari", "17.2", "iOS", "17.2")
    assert parser.parse(agents[1]).bot
    parser.save()
    again = DeviceParser(tmp_path / "ua.json")
    again.parse_many(agents)
    assert again.parsed == 0 and again.from_cache == 0  # answered from the file, counted when read
    assert again.parse(agents[0]).browser == "Safari" and again.from_cache == 1


@pytest.mark.skipif(not SLOW, reason="set PLAUSIBLE_IMPORT_SLOW_TESTS=1: every fixture agent (tens of minutes)")
@pytest.mark.timeout(3 * 3600)
def test_every_fixture_agent():
    entries = {entry["user_agent"]: entry for entry in fixture_entries()}
    agents = sorted(entries)
    batch = uadb.resolve(agents, DeviceParser._convert)
    differ = [
        (ua, got)
        for ua, got in zip(agents, batch, strict=False)
        if got != DeviceParser._convert(FixtureResult(entries[ua]))
    ]
    wrong = [(ua, got, expected) for ua, got in differ if got != (expected := reference(ua))]
    print(
        f"{len(agents)} fixture agents; {len(differ)} differ from the fixture; {len(wrong)} differ from device-detector"
    )
    assert not wrong, wrong[:5]


def test_geo_cache_stays_within_its_bound():
    geo = GeoLookup(cache_limit=100)
    addresses = [f"81.{i // 250}.{i % 250}.7" for i in range(1_000)]
    first = [geo.country(ip) for ip in addresses]
    assert geo.cached <= 100
    assert [geo.country(ip) for ip in addresses] == first  # answers do not depend on the cache
    assert geo.lookups == 2_000 and geo.cached <= 100
    assert geo.country("8.8.8.8") == "US" and geo.country("10.1.2.3") == ""
