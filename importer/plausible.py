"""Plausible's own facts, in one place: what ``POST /api/event`` accepts and what its CSV
import and export do with event names and props.

Everything here is read off Plausible's code (``lib/plausible/ingestion/request.ex``,
``lib/plausible/props.ex``, ``lib/plausible/event/system_events.ex``,
``lib/plausible/exports.ex``); the project's notes on them are in
``docs/design.md``. The mapping, the local receiver and the backfill all use these names, so
a limit is written once.
"""

from __future__ import annotations

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
