"""Device, browser and operating system from the user agent, the way Plausible stores them.

Plausible parses user agents with UAInspector, an Elixir port of Matomo's device-detector,
and keeps three things:

* ``screen_size`` (the ``device`` column of the import): ``Mobile``, ``Tablet`` or ``Desktop``
  from device-detector's device type;
* the browser name, with a few names folded together (``Mobile Safari`` is ``Safari``,
  ``Chrome Mobile`` is ``Chrome``, any mobile app is ``Mobile App``) and its ``major.minor``
  version;
* the operating system name and its ``major.minor`` version.

We use the ``device-detector`` package: a Python port that ships Matomo's own regex database,
so names and versions match what Plausible would have stored. One agent at a time it is slow
(10-60 ms each, mostly compiling and trying regexes that do not match), so the distinct agents
of a run are resolved together (:mod:`.uadb`: each regex evaluated once over all of them) and
the answers are kept in memory for the run and, when a cache file is given, on disk for the
next run. Rows get their answers by dictionary lookup, never by parsing.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

from ..plausible import browser_from_client, major_minor
from . import uadb

# device-detector's device types -> the screen sizes Plausible stores for them.
SCREEN_SIZES = {
    "smartphone": "Mobile",
    "feature phone": "Mobile",
    "phablet": "Mobile",
    "wearable": "Mobile",
    "camera": "Mobile",
    "portable media player": "Mobile",
    "tablet": "Tablet",
    "car browser": "Tablet",
    "desktop": "Desktop",
    "tv": "Desktop",
    "console": "Desktop",
}

CACHE_VERSION = 2  # 2: webviews keep their version (plausible.browser_from_client)


@dataclass(frozen=True)
class DeviceInfo:
    device: str = ""
    browser: str = ""
    browser_version: str = ""
    os: str = ""
    os_version: str = ""
    bot: bool = False  # device-detector's own verdict (informational; the mapping filters)

    def as_list(self) -> list:
        return [self.device, self.browser, self.browser_version, self.os, self.os_version, self.bot]


UNKNOWN = DeviceInfo()


def _default_cache_path() -> Path | None:
    value = os.environ.get("PLAUSIBLE_IMPORT_UA_CACHE")
    if value is not None:
        return Path(value) if value else None
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "plausible-importer" / "user-agents.json"


class DeviceParser:
    """Parses each distinct user agent once with device-detector; keeps answers in memory and,
    optionally, in a JSON cache file keyed by the device-detector version."""

    def __init__(self, cache_path: Path | str | None = "default"):
        from device_detector import DeviceDetector  # imported lazily: it loads slowly

        try:
            from importlib.metadata import version

            self.library_version = version("device_detector")
        except Exception:  # pragma: no cover - metadata missing in odd installs
            self.library_version = "unknown"
        self._detector = DeviceDetector
        self._cache: dict[str, DeviceInfo] = {}
        self.cache_path = (
            _default_cache_path() if cache_path == "default" else (Path(cache_path) if cache_path else None)
        )
        self.parsed = 0  # agents parsed by device-detector in this run
        self.from_cache = 0  # agents answered by the cache file
        self.parse_seconds = 0.0
        self._dirty = False
        self._load_cache()

    def _load_cache(self) -> None:
        if self.cache_path is None or not self.cache_path.is_file():
            return
        try:
            data = json.loads(self.cache_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return
        if data.get("version") != CACHE_VERSION or data.get("device_detector") != self.library_version:
            return
        for ua, values in data.get("agents", {}).items():
            if isinstance(values, list) and len(values) == 6:
                self._cache[ua] = DeviceInfo(*values)
        self._persisted = set(self._cache)

    def save(self) -> None:
        """Write the cache file (when there is one and something new was parsed)."""
        if self.cache_path is None or not self._dirty:
            return
        try:
            self.cache_path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.cache_path.with_suffix(".tmp")
            payload = {
                "version": CACHE_VERSION,
                "device_detector": self.library_version,
                "agents": {ua: info.as_list() for ua, info in self._cache.items()},
            }
            tmp.write_text(json.dumps(payload), encoding="utf-8")
            tmp.replace(self.cache_path)
            self._dirty = False
        except OSError:
            pass  # a cache that cannot be written only costs time next run

    def unknown(self, user_agents: list[str]) -> int:
        """How many of these agents are in neither the run's memory nor the cache file."""
        return sum(1 for ua in set(user_agents) if ua and ua not in self._cache)

    def parse_many(self, user_agents: list[str]) -> None:
        """Parse every agent not known yet, all at once: device-detector's regexes are each
        evaluated once over all of them (:mod:`.uadb`), on every core."""
        new = [ua for ua in dict.fromkeys(user_agents) if ua and ua not in self._cache]
        if not new:
            return
        started = time.perf_counter()
        answers = uadb.resolve(new, self._convert)
        self.parse_seconds += time.perf_counter() - started
        self.parsed += len(new)
        for ua, info in zip(new, answers, strict=True):
            self._cache[ua] = info or UNKNOWN
        self._dirty = True

    def parse(self, user_agent: str | None) -> DeviceInfo:
        if not user_agent:
            return UNKNOWN
        hit = self._cache.get(user_agent)
        if hit is not None:
            if user_agent in getattr(self, "_persisted", ()):
                self.from_cache += 1
                self._persisted.discard(user_agent)
            return hit
        started = time.perf_counter()
        try:
            result = self._detector(user_agent).parse()
            info = self._convert(result)
        except Exception:  # a user agent the library chokes on is just unknown
            info = UNKNOWN
        self.parse_seconds += time.perf_counter() - started
        self.parsed += 1
        self._cache[user_agent] = info
        self._dirty = True
        return info

    @staticmethod
    def _convert(result) -> DeviceInfo:
        if result.is_bot():
            return DeviceInfo(bot=True)
        browser, browser_version = browser_from_client(
            result.client_name() or "", result.client_type() or "", result.client_version()
        )
        os_name = result.os_name() or ""
        return DeviceInfo(
            device=SCREEN_SIZES.get(result.device_type() or "", ""),
            browser=browser,
            browser_version=browser_version,
            os=os_name,
            os_version=major_minor(result.os_version()) if os_name else "",
        )
