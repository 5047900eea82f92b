"""A session's source as Plausible resolves it: source name, stored referrer, UTM values.

The rules are those of Plausible's ``lib/plausible/ingestion/source.ex`` (newest version) with
the matcher of ``ref_inspector`` 2.0.0, which Plausible pins, over the data Plausible ships
(both files in ``data/``, with their licences in ``data/README.md``):

1. A tag wins: the first of ``utm_source``, ``source``, ``ref`` present in the page URL's
   query (an empty value counts, giving source ``""``). Its value is stored as ``utm_source``
   and canonicalised (step 4).
2. Otherwise a *valid referral* gives the source: scheme ``http``, ``https`` or
   ``android-app``; a non-empty host that is not ``localhost``; a host that differs from the
   page's host once one leading ``www.`` is removed from both (exact, case-sensitive: a
   subdomain of the site is a source). The referrer's host is looked up, first match wins:
   the lower-cased formatted host as an exact key of the name table; the families
   ``*.officeapps.live.com`` (Microsoft 365) and ``*.wikipedia.org`` (Wikipedia); the referer
   database (``ref_inspector``: a host equal to an entry's host or ending in ``.`` + it, a
   path equal to the entry's path or below it; sections unknown, email, social, search, paid
   in that order, later entries of a section first), its name canonicalised; else the
   formatted host itself.
3. The ``referrer`` column is set whenever the referral is valid, tag or not: the formatted
   host (one leading ``www.`` removed, port dropped, case kept, ``android-app://`` kept) plus
   the path as written (not decoded) without trailing ``/``; query and fragment dropped.
4. The name table: every database name lower-cased to itself, every custom-source key as
   written, every custom-source value lower-cased to itself. A lookup lower-cases the whole
   string and needs an exact match; a miss returns the string unchanged.

Not reproduced: Plausible drops events whose referrer host is on its spam blocklist
(``referrer_blocklist``); that list is not shipped here.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from importlib import resources
from urllib.parse import parse_qsl, urlsplit

from ..plausible import MAX_REFERRER_CHARS

SECTIONS = ("unknown", "email", "social", "search", "paid")  # ref_inspector 2.0.0's scan order
TAG_KEYS = ("utm_source", "source", "ref")
UTM_KEYS = ("utm_medium", "utm_campaign", "utm_content", "utm_term")
SUFFIX_FAMILIES = (("officeapps.live.com", "Microsoft 365"), ("wikipedia.org", "Wikipedia"))
REFERRAL_SCHEMES = ("http", "https", "android-app")
FIELDS = ("source", "referrer", "utm_source", "utm_medium", "utm_campaign", "utm_content", "utm_term")


@dataclass(frozen=True)
class SessionSource:
    source: str = ""
    referrer: str = ""
    utm_source: str = ""
    utm_medium: str = ""
    utm_campaign: str = ""
    utm_content: str = ""
    utm_term: str = ""

    def as_tuple(self) -> tuple[str, ...]:
        return (
            self.source,
            self.referrer,
            self.utm_source,
            self.utm_medium,
            self.utm_campaign,
            self.utm_content,
            self.utm_term,
        )


@dataclass(frozen=True)
class Database:
    """The name table and the referer entries bucketed by their host's last label."""

    names: dict[str, str]
    buckets: dict[str, list[tuple[str, str, str]]]  # last label -> [(host, path, name)] in scan order


def _data_text(name: str) -> str:
    return resources.files(__package__).joinpath("data", name).read_text(encoding="utf-8")


@functools.cache
def database() -> Database:
    import yaml  # only a backfill needs it

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    referers = yaml.load(_data_text("referers.yml"), Loader=loader)
    custom: dict[str, str] = json.loads(_data_text("custom_sources.json"))
    names: dict[str, str] = {}
    buckets: dict[str, list[tuple[str, str, str]]] = {}
    for section in SECTIONS:
        entries = list(referers.get(section, {}).items())
        for name, _ in entries:
            names.setdefault(name.lower(), name)
        for name, entry in reversed(entries):
            for item in entry.get("domains", []):
                parts = urlsplit("http://" + str(item))
                host, path = _raw_host(parts.netloc), parts.path or "/"
                buckets.setdefault(host.rsplit(".", 1)[-1], []).append((host, path, name))
    names.update(custom)
    for value in custom.values():
        names.setdefault(value.lower(), value)
    return Database(names, buckets)


def canonical(name: str) -> str:
    """Plausible's name for a tag or database name (case-insensitive exact lookup)."""
    return database().names.get(name.lower(), name)


def _raw_host(netloc: str) -> str:
    """The host of a URL's authority as written (case kept): no user info, port or brackets."""
    host = netloc.rpartition("@")[2]
    if host.startswith("["):
        return host[1 : host.find("]")] if "]" in host else host[1:]
    return host.partition(":")[0]


def _strip_www(host: str) -> str:
    return host.removeprefix("www.")


def url_host(url: str | None) -> str:
    """The host of a page URL as written (for the self-referral check)."""
    if not url:
        return ""
    try:
        return _raw_host(urlsplit(url.strip()).netloc)
    except ValueError:
        return ""


def _database_name(host: str, path: str) -> str | None:
    """ref_inspector 2.0.0: the first entry whose host and path cover the referrer's."""
    for item_host, item_path, name in database().buckets.get(host.rsplit(".", 1)[-1], ()):
        if (host == item_host or host.endswith("." + item_host)) and (
            item_path == "/" or path == item_path or path.startswith(item_path + "/")
        ):
            return name
    return None


def source_for_referrer(formatted_host: str, raw_host: str, raw_path: str) -> str:
    """The source name of a valid referral."""
    lowered = formatted_host.lower()
    exact = database().names.get(lowered)
    if exact is not None:
        return exact
    for suffix, name in SUFFIX_FAMILIES:
        if lowered == suffix or lowered.endswith("." + suffix):
            return name
    found = _database_name(raw_host, raw_path or "/")
    return canonical(found) if found is not None else formatted_host


def referral(referrer: str, page_host: str) -> tuple[str, str] | None:
    """(source name, stored referrer) of a valid referral, else None."""
    text = referrer[:MAX_REFERRER_CHARS].strip()
    try:
        parts = urlsplit(text)
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    host = _raw_host(parts.netloc).strip()
    if scheme not in REFERRAL_SCHEMES or not host or host == "localhost":
        return None
    formatted = _strip_www(host)
    if formatted == _strip_www(page_host.strip()):
        return None
    if scheme == "android-app":
        formatted = "android-app://" + formatted
    stored = formatted + parts.path.rstrip("/")
    return source_for_referrer(formatted, host, parts.path), stored


def resolve(query: str, referrer: str | None, page_host: str) -> SessionSource:
    """The source fields of a session whose first event has this query, referrer and page host."""
    params = dict(parse_qsl(query, keep_blank_values=True)) if query else {}
    tag_key = next((key for key in TAG_KEYS if key in params), None)
    valid = referral(referrer, page_host) if referrer else None
    if tag_key is not None:
        source = canonical(params[tag_key])
    elif valid:
        source = valid[0]
    else:
        source = ""
    medium = params.get("utm_medium", "")
    if not medium:
        if source == "Google" and "gclid" in params:
            medium = "(gclid)"
        elif source == "Bing" and "msclkid" in params:
            medium = "(msclkid)"
    return SessionSource(
        source,
        valid[1] if valid else "",
        params.get(tag_key, "") if tag_key else "",
        medium,
        params.get("utm_campaign", ""),
        params.get("utm_content", ""),
        params.get("utm_term", ""),
    )
