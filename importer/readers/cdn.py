"""Bunny CDN logs: ``|``-separated, time in Unix milliseconds (UTC), full URL per request."""

from __future__ import annotations

import pyarrow as pa

from ..arrowutil import repeat_string
from .lines import LineFormat


def _get(fields: dict[str, pa.Array]) -> dict[str, pa.Array]:
    # Bunny logs no method; a CDN log line is a served GET (documented in the README).
    fields["method"] = repeat_string("GET", len(fields["url"]))
    return fields


BUNNY = LineFormat(
    name="bunny",
    description="Bunny CDN log (pipe-separated; epoch milliseconds; full URL; no method logged: GET assumed)",
    example="HIT|200|1710404813512|8312|123456|203.0.113.42|https://www.example.org/|"
    "https://www.example.com/pricing?plan=pro|DE|Mozilla/5.0 (X11; Linux x86_64; rv:123.0) Gecko/20100101 "
    "Firefox/123.0|0123456789abcdef0123456789abcdef|DE",
    pattern=(
        r"^[A-Z_]+\|(?P<status>\d{3})\|(?P<time_epoch>\d{10,13})\|(?P<bytes>\d+|-)\|\d+\|(?P<ip>[^|]*)\|"
        r"(?P<referrer>[^|]*)\|(?P<url>[a-z][a-z0-9+.-]*://[^|]*)\|[^|]*\|(?P<user_agent>.*?)\|[0-9A-Fa-f-]*\|"
        r"(?:[A-Za-z]{2}|-)?(?:\|.*)?$"
    ),
    fast_pattern=(
        r"^[A-Z_]+\|(?P<status>\d{3})\|(?P<time_epoch>\d{10,13})\|(?P<bytes>\d+|-)\|\d+\|(?P<ip>[^|]*)\|"
        r"(?P<referrer>[^|]*)\|(?P<url>[^|]*)\|[^|]*\|(?P<user_agent>[^|]*)\|[0-9A-Fa-f-]*\|(?:[A-Za-z]{2}|-)?(?:\||$)"
    ),
    family="CDN",
    post=_get,
)

FORMATS = (BUNNY,)
