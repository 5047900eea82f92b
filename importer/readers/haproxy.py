"""HAProxy ``option httplog`` lines, with or without the syslog prefix and header captures.

The time (``%tr``) has no zone: it is read in ``--timezone``. Captured request headers
(``{v1|v2|...}``) come in the order of the site's ``capture request header`` lines, which the
log does not say, so each captured value is classified by its shape (a URL is the referrer, a
host name the host, anything else with a slash or space the user agent); one Python call per
distinct capture block.
"""

from __future__ import annotations

import re

import pyarrow as pa
import pyarrow.compute as pc

from .fields import TextStyle, unhash
from .lines import SYSLOG, LineFormat

_HOST = re.compile(r"^[A-Za-z0-9.-]+(?::\d+)?$")


def _classify(block: str | None) -> tuple[str | None, str | None, str | None]:
    host = ua = ref = None
    if not block:
        return host, ua, ref
    for value in block.split("|"):
        value = unhash(value).strip()
        if not value or value == "-":
            continue
        if re.match(r"^[a-z][a-z0-9+.-]*://", value, re.I):
            ref = ref or value
        elif _HOST.match(value) and "." in value and host is None:
            host = value
        elif ua is None and ("/" in value or " " in value):
            ua = value
    return host, ua, ref


def _captures(fields: dict[str, pa.Array]) -> dict[str, pa.Array]:
    captures = fields.pop("captures", None)
    if captures is None:
        return fields
    encoded = pc.dictionary_encode(captures)
    parsed = [_classify(v) for v in encoded.dictionary.to_pylist()]
    for i, name in enumerate(("host", "user_agent", "referrer")):
        column = pa.array([p[i] for p in parsed], pa.string())
        fields[name] = pc.take(column, encoded.indices)
    return fields


HAPROXY = LineFormat(
    name="haproxy",
    description="HAProxy 'option httplog' (syslog prefix optional; UA/referrer/host only when captured; "
    "local time without zone: --timezone)",
    example="Mar 14 09:26:53 lb1 haproxy[2211]: 203.0.113.42:51544 [14/Mar/2024:09:26:53.512] fe_https~ "
    "be_web/web1 0/0/1/14/15 200 8421 - - ---- 12/12/3/1/0 0/0 {www.example.com|Mozilla/5.0 (X11; Linux x86_64; "
    'rv:123.0) Gecko/20100101 Firefox/123.0|https://www.example.org/} "GET /pricing?plan=pro HTTP/1.1"',
    pattern=(
        rf"^{SYSLOG}(?P<client>\S+) \[(?P<time_clf_local>\d\d/[A-Za-z]{{3}}/\d{{4}}:\d\d:\d\d:\d\d(?:\.\d+)?)\] "
        r"\S+ \S+/\S+ [-+\d]+/[-+\d]+/[-+\d]+/[-+\d]+/[-+\d]+ (?P<status>-?\d+) (?P<bytes>\+?\d+) \S+ \S+ \S{4} "
        r'\d+/\d+/\d+/\d+/\+?\d+ \d+/\d+ (?:\{(?P<captures>[^}]*)\} )?(?:\{[^}]*\} )?"(?P<request>[^"]*)"$'
    ),
    style=TextStyle(hash_hex=True),
    family="load balancer",
    zone_less=True,
    post=_captures,
)

FORMATS = (HAPROXY,)
