"""``--log-format``: compile the server's own nginx ``log_format`` or Apache ``LogFormat``
string into a parser.

Users paste what their config says, e.g. nginx
``$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent "$http_referer" "$http_user_agent" $request_time``
or Apache ``%v:%p %h %l %u %t "%r" %>s %O "%{Referer}i" "%{User-Agent}i"``. Each variable
becomes a named group of one RE2 pattern (variables we do not use match but are ignored), so
the result runs on the same vectorised path as the built-in line formats. An nginx format whose
text is a JSON object (``escape=json '{"time":"$time_iso8601",...}'``) becomes a JSON key map.
"""

from __future__ import annotations

import re

from .base import FormatError
from .fields import TextStyle
from .jsonlogs import JsonFormat, keymap_format
from .lines import QUOTED, LineFormat

# nginx variable -> normalise field
NGINX_VARS = {
    "remote_addr": "ip", "realip_remote_addr": "ip", "time_local": "time_clf", "time_iso8601": "time_iso",
    "msec": "time_epoch", "request": "request", "request_method": "method", "request_uri": "uri",
    "uri": "path", "document_uri": "path", "args": "query", "query_string": "query", "status": "status",
    "body_bytes_sent": "bytes", "bytes_sent": "bytes", "http_referer": "referrer", "http_user_agent": "user_agent",
    "http_x_forwarded_for": "xff", "host": "host", "http_host": "host", "server_name": "host",
}

# Apache directive letter (and {header} for %i) -> normalise field
APACHE_LETTERS = {"h": "ip", "a": "ip", "r": "request", "s": "status", "b": "bytes", "B": "bytes", "O": "bytes",
                  "v": "host", "V": "host", "m": "method", "U": "path", "q": "query"}
APACHE_HEADERS = {"referer": "referrer", "user-agent": "user_agent", "x-forwarded-for": "xff", "host": "host"}

_VALUE_RE = {
    "time_clf": r"\d{1,2}/[A-Za-z]{3}/\d{4}:\d{2}:\d{2}:\d{2} [+-]\d{4}",
    "time_iso": r"\S+",
    "time_epoch": r"\d+(?:\.\d+)?",
    "status": r"\d{3}|-",
    "bytes": r"\d+|-",
}


def _unwrap_nginx(text: str) -> str:
    text = text.strip()
    if text.startswith("log_format"):
        pieces = re.findall(r"'((?:[^'\\]|\\.)*)'", text)
        if not pieces:
            pieces = re.findall(r'"((?:[^"\\]|\\.)*)"', text)
        text = "".join(pieces)
    return text


def _unwrap_apache(text: str) -> str:
    text = text.strip()
    if text.startswith("LogFormat") or text.startswith("CustomLog"):
        m = re.search(r'"((?:[^"\\]|\\.)*)"', text)
        if m:
            text = m.group(1)
    return text.replace('\\"', '"')


class _Builder:
    def __init__(self):
        self.parts: list[str] = []
        self.used: set[str] = set()
        self.quotes = 0
        self.extra = 0

    def literal(self, text: str) -> None:
        self.quotes += text.count('"')
        self.parts.append(re.escape(text).replace("\\ ", " ").replace('\\"', '"'))

    def value(self, target: str | None, next_char: str) -> None:
        inside = self.quotes % 2 == 1
        if target in _VALUE_RE and not inside:
            body = _VALUE_RE[target]
        elif inside:
            body = QUOTED
        elif next_char == "]":
            body = r"[^\]]*"
        elif next_char:
            body = r"\S*" if next_char == " " else rf"[^{re.escape(next_char)}\s]*"
        else:
            body = r"\S*"
        if target is None or target in self.used:
            self.parts.append(f"(?:{body})")
            return
        self.used.add(target)
        self.parts.append(f"(?P<{target}>{body})")

    def pattern(self) -> str:
        return "^" + "".join(self.parts) + r"\s*$"


def _json_keymap(text: str) -> JsonFormat:
    keys: dict[str, tuple] = {}
    for key, var in re.findall(r'"([^"]+)"\s*:\s*"?\$\{?(\w+)\}?', text):
        target = NGINX_VARS.get(var)
        if target is None:
            continue
        if target.startswith("time_"):
            target = "time_any"
        keys[target] = keys.get(target, ()) + ((key,),)
    if "time_any" not in keys:
        raise FormatError("the JSON log_format has no time variable ($time_iso8601, $time_local or $msec)")
    return keymap_format(keys, name="custom", description="custom JSON log_format")


def compile_nginx(text: str) -> LineFormat | JsonFormat:
    text = _unwrap_nginx(text)
    if text.lstrip().startswith("{"):
        return _json_keymap(text)
    builder = _Builder()
    pos = 0
    for m in re.finditer(r"\$(?:\{(\w+)\}|(\w+))", text):
        builder.literal(text[pos : m.start()])
        var = m.group(1) or m.group(2)
        nxt = text[m.end() : m.end() + 1]
        builder.value(NGINX_VARS.get(var), nxt)
        pos = m.end()
    builder.literal(text[pos:])
    return _finish(builder, text, "nginx log_format")


_APACHE = re.compile(r"%[<>]?(?:!?\d+(?:,\d+)*)?(?:\{([^}]*)\})?([a-zA-Z%])")


def compile_apache(text: str) -> LineFormat:
    text = _unwrap_apache(text)
    builder = _Builder()
    pos = 0
    for m in _APACHE.finditer(text):
        builder.literal(text[pos : m.start()])
        arg, letter = m.group(1), m.group(2)
        nxt = text[m.end() : m.end() + 1]
        pos = m.end()
        if letter == "%":
            builder.literal("%")
            continue
        if letter == "t":
            if arg is None:
                builder.literal("[")
                builder.value("time_clf", "]")
                builder.literal("]")
            elif arg in ("sec", "msec", "usec"):
                builder.value("time_epoch", nxt)
            else:
                raise FormatError(f"%{{{arg}}}t: only %t, %{{sec}}t, %{{msec}}t and %{{usec}}t are supported")
            continue
        if letter == "i":
            builder.value(APACHE_HEADERS.get((arg or "").lower()), nxt)
            continue
        builder.value(APACHE_LETTERS.get(letter), nxt)
    builder.literal(text[pos:])
    return _finish(builder, text, "Apache LogFormat")


def _finish(builder: _Builder, text: str, kind: str) -> LineFormat:
    if not any(t.startswith("time") for t in builder.used):
        raise FormatError(f"the {kind} {text!r} has no time field; the importer needs one")
    if not ({"request", "uri", "path"} & builder.used):
        raise FormatError(f"the {kind} {text!r} has no request, URI or path field")
    pattern = builder.pattern()
    try:
        import pyarrow as pa
        import pyarrow.compute as pc

        pc.match_substring_regex(pa.array([""]), pattern)
    except Exception as exc:  # pragma: no cover - defensive: our builder should emit valid RE2
        raise FormatError(f"cannot compile the {kind}: {exc}") from None
    return LineFormat(name="custom", description=f"custom {kind}: {text}", example="", pattern=pattern,
                      style=TextStyle(backslash=True), family="custom")


def compile_format(text: str) -> LineFormat | JsonFormat:
    """An nginx log_format (``$var``) or Apache LogFormat (``%x``) string -> a format."""
    stripped = text.strip()
    if not stripped:
        raise FormatError("--log-format is empty")
    if "$" in stripped and re.search(r"\$\{?\w", stripped):
        return compile_nginx(stripped)
    if _APACHE.search(stripped):
        return compile_apache(stripped)
    raise FormatError("--log-format: give an nginx log_format ($remote_addr ...) or an Apache LogFormat (%h ...)")
