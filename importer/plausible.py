"""Plausible's own facts, in one place: what ``POST /api/event`` accepts and what its CSV
import and export do with event names and props.

Everything here is read off Plausible's code (``lib/plausible/ingestion/request.ex``,
``lib/plausible/props.ex``, ``lib/plausible/event/system_events.ex``,
``lib/plausible/exports.ex``); the project's notes on them are in
``docs/design.md``. The mapping, the local receiver and the backfill all use these names, so
a limit is written once.
"""

from __future__ import annotations

# Where events go when no --endpoint is given: Plausible's hosted service.
DEFAULT_ENDPOINT = "https://plausible.io/api/event"

# Payload limits of POST /api/event.
MAX_NAME_CHARS = 120  # event name: at most 120 characters
MAX_URL_BYTES = 2000  # the whole URL, scheme, host and query included
MAX_REFERRER_CHARS = 2000  # longer referrers are cut, not refused
MAX_PROPS = 30  # pairs kept; more are dropped silently
MAX_PROP_KEY_BYTES = 300
MAX_PROP_VALUE_BYTES = 2000
PROPS_TOO_LONG = "keys should have at most 300 bytes and values 2000 bytes"

# Query parameters Plausible reads from a page URL: the source and UTM tags, and the
# advertising click ids; it discards the rest.
SOURCE_PARAMS = ("utm_source", "utm_medium", "utm_campaign", "utm_content", "utm_term", "ref", "source")
CLICK_ID_PARAMS = ("gclid", "gbraid", "wbraid", "msclkid", "fbclid", "twclid")
READ_PARAMS = SOURCE_PARAMS + CLICK_ID_PARAMS

# System goals whose imported and exported rows carry one property: ``link_url`` (the
# event's ``url`` prop) or ``path`` (the ``path`` prop, which Plausible fills with the
# pathname when it is missing).
LINK_URL_EVENTS = frozenset({"Outbound Link: Click", "Cloaked Link: Click", "File Download"})
PATH_EVENTS = frozenset({"404", "WP Form Completions", "Form: Submission"})
# Events Plausible treats as interactive whatever the ``interactive`` field says.
SYSTEM_EVENTS = frozenset({"pageview", "engagement"}) | LINK_URL_EVENTS | PATH_EVENTS

# Country codes the exporter leaves out of imported_locations: unknown ("\0\0" in ClickHouse,
# "" here) and "ZZ" (lib/plausible/exports.ex).
UNKNOWN_COUNTRIES = frozenset({"", "\0\0", "ZZ"})

# Browser names as Plausible stores them: device-detector client name -> stored name
# (browser_name in lib/plausible/ingestion/event.ex). Any client of type "mobile app" is
# "Mobile App" without a version; "Chrome Webview" is "Mobile App" with its major.minor version.
BROWSER_NAMES = {
    "Mobile Safari": "Safari",
    "Chrome Mobile": "Chrome",
    "Chrome Mobile iOS": "Chrome",
    "Firefox Mobile": "Firefox",
    "Firefox Mobile iOS": "Firefox",
    "Firefox iOS": "Firefox",
    "Opera Mobile": "Opera",
    "Opera Mini": "Opera",
    "Opera Mini iOS": "Opera",
    "Yandex Browser Lite": "Yandex Browser",
    "Chrome Webview": "Mobile App",
}


def major_minor(version: str | None) -> str:
    """``122.0.6261.94`` -> ``122.0``; ``10`` -> ``10``; nothing -> ``""``."""
    return ".".join(str(version).split(".")[:2]) if version else ""


def browser_from_client(name: str, client_type: str, version: str | None) -> tuple[str, str]:
    """(browser, browser_version) as Plausible stores a device-detector client."""
    if not name:
        return "", ""
    if client_type == "mobile app":
        return "Mobile App", ""
    return BROWSER_NAMES.get(name, name), major_minor(version)


def plausible_browser(browser: str, version: str) -> tuple[str, str]:
    """Fold a browser name that is not yet Plausible's (e.g. "Opera Mini") into Plausible's."""
    return BROWSER_NAMES.get(browser, browser), version
