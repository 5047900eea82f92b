"""A session's location as ``imported_locations`` takes it: ISO country, ISO 3166-2 region,
GeoNames city id.

Exports that carry the visitor's geography (a mapping's ``[visitor] country``, ``region`` and
``city``: see :mod:`importer.events`) keep it: a two-letter code or an English country name
(GA4 writes "Germany") becomes the ISO 3166-1 code, a region that is an ISO 3166-2 code or a
subdivision name ISO lists for that country becomes the code, and a city that is a number is
taken as its GeoNames id. What cannot be read so is left unknown (country ``""``, region
``""``, city ``0``). Events without an export country get the country of their IP address.
"""

from __future__ import annotations

import functools
import re

import pandas as pd
import pyarrow as pa

from ..events import LOCATION_FIELDS
from .geo import GeoLookup

# English names analytics tools write that ISO 3166 spells otherwise.
COUNTRY_ALIASES = {
    "russia": "RU",
    "turkey": "TR",
    "syria": "SY",
    "bolivia": "BO",
    "venezuela": "VE",
    "tanzania": "TZ",
    "moldova": "MD",
    "laos": "LA",
    "brunei": "BN",
    "iran": "IR",
    "north korea": "KP",
    "south korea": "KR",
    "vietnam": "VN",
    "czech republic": "CZ",
    "macedonia": "MK",
    "ivory coast": "CI",
    "côte d’ivoire": "CI",  # noqa: RUF001 - the apostrophe exports write in this name
    "cape verde": "CV",
    "palestine": "PS",
    "micronesia": "FM",
    "kosovo": "XK",
    "swaziland": "SZ",
    "myanmar (burma)": "MM",
    "congo - kinshasa": "CD",
    "congo - brazzaville": "CG",
    "hong kong": "HK",
    "macao": "MO",
    "macau": "MO",
}
_REGION_CODE = re.compile(r"^[A-Za-z]{2}-[A-Za-z0-9]{1,3}$")


@functools.cache
def country_code(value: str) -> str:
    """ISO 3166-1 alpha-2 code of an export's country value, ``""`` when unknown."""
    text = value.strip()
    if len(text) == 2 and text.isalpha():
        return text.upper()
    if not text or text.startswith("("):  # GA4's "(not set)"
        return ""
    alias = COUNTRY_ALIASES.get(text.lower())
    if alias:
        return alias
    import pycountry

    try:
        return pycountry.countries.lookup(text).alpha_2
    except LookupError:
        return ""


@functools.cache
def region_code(country: str, value: str) -> str:
    """ISO 3166-2 code of an export's region value within ``country``, ``""`` when unknown."""
    text = value.strip()
    if _REGION_CODE.match(text):
        return text.upper() if text[:2].upper() == country else ""
    if not text or not country:
        return ""
    import pycountry

    wanted = text.casefold()
    for subdivision in pycountry.subdivisions.get(country_code=country) or ():
        if subdivision.name.casefold() == wanted:
            return subdivision.code
    return ""


def city_id(value: str) -> int:
    text = value.strip()
    return int(text) if text.isdigit() else 0


class Locations:
    """(country, region, city) of sessions from their first events."""

    def __init__(self, geo: GeoLookup):
        self.geo = geo

    def of_events(self, firsts: pa.Table) -> pd.DataFrame:
        ips = firsts.column("ip").to_pylist()
        given = {
            f: firsts.column(f).to_pylist() if f in firsts.column_names else [None] * len(ips) for f in LOCATION_FIELDS
        }
        rows = []
        for ip, country, region, city in zip(ips, given["country"], given["region"], given["city"], strict=True):
            if country:
                code = country_code(str(country))
                rows.append((code, region_code(code, str(region or "")), city_id(str(city or ""))))
            else:
                rows.append((self.geo.country(ip), "", 0))
        return pd.DataFrame(rows, columns=list(LOCATION_FIELDS))
