"""Country (and, where a database has them, region and city) of an IP address, offline.

We use ``geoip2fast``: MIT-licensed pure Python that ships its own database files in the
wheel, so nothing is downloaded at run time. Its data is MaxMind's GeoLite2 Country (IPv4
and IPv6; the snapshot in geoip2fast 1.2.2 is dated 2024-06-18), which MaxMind publishes
under the GeoLite2 End User License Agreement: attribution required ("This product includes
GeoLite2 data created by MaxMind"). Country-level accuracy of GeoLite2 is high (MaxMind
states about 99 %); the snapshot ages, and addresses that moved country since then are
placed where they used to be.

The shipped files hold countries only, so every row gets region ``""`` and city ``0``
(GeoNames id unknown), which Plausible shows as "(not set)" in the region and city reports.
Private, reserved, documentation and unknown addresses get country ``""``.
"""

from __future__ import annotations

import time

# Answers kept at most (about 10 MB). Sessions of one visitor come close together in time, so
# a cache that starts afresh when full keeps nearly all its hits, and memory stays flat however
# many distinct addresses a log has (a cache of every address grew with the log).
CACHE_LIMIT = 65_536


class GeoLookup:
    """Country code per IP address, the most recent answers cached (at most ``cache_limit``)."""

    def __init__(self, cache_limit: int = CACHE_LIMIT) -> None:
        from geoip2fast import GeoIP2Fast

        try:
            self._db = GeoIP2Fast(geoip2fast_data_file="geoip2fast-ipv6.dat.gz", verbose=False)
        except Exception:  # an install without the IPv6 file: IPv4 only
            self._db = GeoIP2Fast(verbose=False)
        try:
            self.source_info = str(self._db.get_database_info().get("source_info", ""))
        except Exception:  # pragma: no cover - informational only
            self.source_info = ""
        self._cache: dict[str, str] = {}
        self.cache_limit = cache_limit
        self.lookups = 0
        self.seconds = 0.0

    def country(self, ip: str | None) -> str:
        if not ip:
            return ""
        hit = self._cache.get(ip)
        if hit is not None:
            return hit
        started = time.perf_counter()
        try:
            code = self._db.lookup(ip.strip()).country_code or ""
        except Exception:
            code = ""
        if len(code) != 2 or not code.isalpha():
            code = ""  # "--" for private/reserved/not found
        self.seconds += time.perf_counter() - started
        self.lookups += 1
        if len(self._cache) >= self.cache_limit:
            self._cache.clear()
        self._cache[ip] = code
        return code

    @property
    def cached(self) -> int:
        """Answers held in memory now (never more than ``cache_limit``)."""
        return len(self._cache)

    def location(self, ip: str | None) -> tuple[str, str, int]:
        """(country, region, city) for the import's locations file."""
        return self.country(ip), "", 0
