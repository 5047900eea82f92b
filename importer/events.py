"""The event frame: what a mapping makes of canonical rows, and what every sink consumes.

One row is one Plausible event. ``name``, ``url``, ``domain``, ``referrer`` and ``props`` are
the body of ``POST /api/event``; ``user_agent`` and ``ip`` travel as the ``User-Agent`` and
``X-Forwarded-For`` headers; ``timestamp``, ``source_file`` and ``source_line`` say where the
event came from (Plausible cannot take a timestamp, but the dry-run output and the CSV
backfill use it). ``revenue_amount`` + ``revenue_currency`` become the body's ``revenue``
object and ``interactive = false`` its ``interactive`` field; both are null for most events.

A frame may carry three more, optional, string columns after these: ``country``, ``region``
and ``city`` (:data:`LOCATION_FIELDS`), the visitor's location as an export wrote it (a
mapping's ``[visitor]`` keys of the same names). Only the backfill reads them, for
``imported_locations``; Plausible's ``/api/event`` takes no location.
"""

from __future__ import annotations

import json

import pyarrow as pa

from . import schema

EVENT_SCHEMA = pa.schema(
    [
        pa.field("name", pa.string()),
        pa.field("url", pa.string()),
        pa.field("domain", pa.string()),
        pa.field("referrer", pa.string()),
        pa.field("props", pa.string()),  # a JSON object, or null
        pa.field("user_agent", pa.string()),
        pa.field("ip", pa.string()),
        pa.field("timestamp", schema.TIMESTAMP_TYPE),
        pa.field("source_file", pa.string()),
        pa.field("source_line", pa.int64()),
        pa.field("revenue_amount", pa.string()),  # a decimal string ("129.90"), or null
        pa.field("revenue_currency", pa.string()),  # ISO 4217 code, null when no revenue
        pa.field("interactive", pa.bool_()),  # false for non-interactive events; null: Plausible's default
    ]
)


LOCATION_FIELDS = ("country", "region", "city")


def empty_events() -> pa.Table:
    return EVENT_SCHEMA.empty_table()


def request_body(event: dict) -> dict:
    """The JSON body of ``POST /api/event`` for one event row (as a dict from the frame)."""
    body = {"name": event["name"], "url": event["url"], "domain": event["domain"]}
    if event.get("referrer"):
        body["referrer"] = event["referrer"]
    if event.get("props"):
        body["props"] = json.loads(event["props"])
    body.update(extra_fields(event))
    return body


def extra_fields(event: dict) -> dict:
    """The optional body fields beyond name/url/domain/referrer/props: revenue, interactive."""
    out: dict = {}
    if event.get("revenue_amount") and event.get("revenue_currency"):
        out["revenue"] = {"amount": event["revenue_amount"], "currency": event["revenue_currency"]}
    if event.get("interactive") is False:
        out["interactive"] = False
    return out


def dry_run_record(event: dict) -> dict:
    """One line of ``send --dry-run --output``: the event plus its headers and original time."""
    timestamp = event["timestamp"]
    return {
        "name": event["name"],
        "url": event["url"],
        "domain": event["domain"],
        "referrer": event["referrer"],
        "props": json.loads(event["props"]) if event["props"] else None,
        "user_agent": event["user_agent"],
        "ip": event["ip"],
        "timestamp": iso_utc(timestamp) if timestamp else None,
        **extra_fields(event),
    }


def iso_utc(timestamp) -> str:
    """ISO 8601 in UTC with a ``Z``; microseconds only when there are some."""
    text = timestamp.strftime("%Y-%m-%dT%H:%M:%S")
    if timestamp.microsecond:
        text += f".{timestamp.microsecond:06d}"
    return text + "Z"
