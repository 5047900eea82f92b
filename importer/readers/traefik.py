"""Traefik access logs: the default ``common`` (CLF plus request count, router, server URL and
duration), and ``json`` (see :mod:`importer.readers.jsonlogs`).

Traefik wraps values in quotes without escaping quotes inside them, so the user agent is taken
greedily up to the Traefik-specific tail.
"""

from __future__ import annotations

from .fields import TextStyle
from .lines import LineFormat

TRAEFIK = LineFormat(
    name="traefik",
    description="Traefik 'common' access log: combined plus request count, router, server URL and duration",
    example='203.0.113.42 - - [14/Mar/2024:08:26:53 +0000] "GET /pricing?plan=pro HTTP/2.0" 200 8312 '
    '"https://www.example.org/" "Mozilla/5.0 (X11; Linux x86_64; rv:123.0) Gecko/20100101 Firefox/123.0" '
    '1734 "web@docker" "http://10.0.3.5:80" 15ms',
    pattern=(
        r'^(?P<ip>\S+) \S+ \S+ \[(?P<time_clf>[^\]]+)\] "(?P<request>[^"]*)" (?P<status>\d{3}|-) (?P<bytes>\d+|-) '
        r'"(?P<referrer>.*)" "(?P<user_agent>.*)" \d+ "[^"]*" "[^"]*" \d+ms$'
    ),
    fast_pattern=(
        r'^(?P<ip>\S+) \S+ \S+ \[(?P<time_clf>[^\]]+)\] "(?P<request>[^"]*)" (?P<status>\d{3}|-) (?P<bytes>\d+|-) '
        r'"(?P<referrer>[^"]*)" "(?P<user_agent>[^"]*)" \d'
    ),
    style=TextStyle(backslash=False),
    family="proxy",
)

FORMATS = (TRAEFIK,)
