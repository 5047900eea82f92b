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


class GeoLookup:
    """Country code per distinct IP address, cached for the run."""

    def __init__(self) -> None:
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
        self._cache[ip] = code
        return code

    def location(self, ip: str | None) -> tuple[str, str, int]:
        """(country, region, city) for the import's locations file."""
        return self.country(ip), "", 0
