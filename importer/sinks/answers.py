"""What the sender makes of an answer: Plausible's own, or something else in front of it."""

from __future__ import annotations

import json
import ssl
import urllib.parse
from pathlib import Path
from typing import Any, NamedTuple

# Plausible answers "ok" or an error of a few hundred bytes: no more than this is read of any
# answer (a login page or a broken proxy may send hundreds of megabytes).
ANSWER_LIMIT = 8192


class Answer(NamedTuple):
    status: int
    text: str  # the first ANSWER_LIMIT bytes of the body
    dropped: bool  # x-plausible-dropped says Plausible did not record it
    retry_after: str | None
    location: str | None


async def read_at_most(content: Any, limit: int) -> bytes:
    """Up to ``limit`` bytes of a response body, however large the body is."""
    parts: list[bytes] = []
    size = 0
    while size < limit:
        chunk = await content.read(limit - size)
        if not chunk:
            break
        parts.append(chunk)
        size += len(chunk)
    return b"".join(parts)


def plausible_errors(text: str) -> dict[str, Any] | None:
    """Plausible's validation answer, ``{"errors": {field: [message, ...]}}``, or None for any other 400."""
    try:
        data = json.loads(text)
    except ValueError:
        return None
    return data if isinstance(data, dict) and isinstance(data.get("errors"), dict) else None


def certificate_message(endpoint: str, exc: BaseException) -> str:
    host = urllib.parse.urlsplit(endpoint).netloc
    cause = getattr(exc, "certificate_error", exc)
    reason = getattr(cause, "verify_message", None) or str(cause)
    return (
        f"the TLS certificate of {host} is not trusted ({reason}): if a private CA signed it, pass "
        "--ca-bundle FILE (that CA's certificate, PEM) or set SSL_CERT_FILE; if the host name does not "
        "match, check --endpoint"
    )


def tls_context(ca_bundle: str | Path | None) -> ssl.SSLContext | bool:
    """What verifies the endpoint's certificate: True for the system's CAs (or ``SSL_CERT_FILE``'s), else
    a context that trusts the CAs in ``ca_bundle`` only. Raises ValueError for a file that holds none."""
    if ca_bundle is None:
        return True
    try:
        return ssl.create_default_context(cafile=str(ca_bundle))
    except FileNotFoundError:
        raise ValueError(f"--ca-bundle {ca_bundle}: no such file") from None
    except (ssl.SSLError, OSError, ValueError) as exc:
        raise ValueError(f"--ca-bundle {ca_bundle}: not a PEM file of CA certificates ({exc})") from None
