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
    "remote_addr": "ip",
    "realip_remote_addr": "ip",
    "time_local": "time_clf",
    "time_iso8601": "time_iso",
    "msec": "time_epoch",
    "request": "request",
    "request_method": "method",
    "request_uri": "uri",
    "uri": "path",
    "document_uri": "path",
    "args": "query",
    "query_string": "query",
    "status": "status",
    "body_bytes_sent": "bytes",
    "bytes_sent": "bytes",
    "http_referer": "referrer",
    "http_user_agent": "user_agent",
    "http_x_forwarded_for": "xff",
    "host": "host",
    "http_host": "host",
    "server_name": "host",
}

# Apache directive letter (and {header} for %i) -> normalise field
APACHE_LETTERS = {
    "h": "ip",
    "a": "ip",
    "r": "request",
    "s": "status",
    "b": "bytes",
    "B": "bytes",
    "O": "bytes",
    "v": "host",
    "V": "host",
    "m": "method",
    "U": "path",
    "q": "query",
}
APACHE_HEADERS = {"referer": "referrer", "user-agent": "user_agent", "x-forwarded-for": "xff", "host": "host"}

# strftime directive -> what it writes (Apache's %{...}t, --time-format)
_STRFTIME = {
    "Y": r"\d{4}",
    "y": r"\d{2}",
    "m": r"\d{1,2}",
    "d": r"\d{1,2}",
    "e": r" ?\d{1,2}",
    "j": r"\d{3}",
    "H": r"\d{1,2}",
    "I": r"\d{1,2}",
    "M": r"\d{2}",
    "S": r"\d{2}",
    "p": r"[AaPp][Mm]",
    "b": r"[A-Za-z]{3}",
    "h": r"[A-Za-z]{3}",
    "B": r"[A-Za-z]+",
    "a": r"[A-Za-z]{3}",
    "A": r"[A-Za-z]+",
    "z": r"[+-]\d{2}:?\d{2}|Z",
    "Z": r"[A-Za-z]+",
    "T": r"\d{2}:\d{2}:\d{2}",
    "F": r"\d{4}-\d{2}-\d{2}",
    "D": r"\d{2}/\d{2}/\d{2}",
    "R": r"\d{2}:\d{2}",
    "%": "%",
}


def strftime_pattern(time_format: str) -> str:
    """The RE2 pattern of the text a strftime format writes; FormatError for a directive it
    does not know."""
    parts = []
    pos = 0
    for m in re.finditer(r"%(.)", time_format):
        parts.append(re.escape(time_format[pos : m.start()]))
        if m.group(1) not in _STRFTIME:
            raise FormatError(
                f"time format {time_format!r}: %{m.group(1)} is not supported; "
                f"use {' '.join('%' + k for k in _STRFTIME)}"
            )
        parts.append(f"(?:{_STRFTIME[m.group(1)]})")
        pos = m.end()
    parts.append(re.escape(time_format[pos:]))
    return "".join(parts).replace("\\ ", " ")


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
    if text.startswith(("LogFormat", "CustomLog")):
        m = re.search(r'"((?:[^"\\]|\\.)*)"', text)
        if m:
            text = m.group(1)
    return text.replace('\\"', '"')


class _Builder:
    def __init__(self, time_format: str | None = None) -> None:
        self.parts: list[str] = []
        self.used: set[str] = set()
        self.quotes = 0
        self.time_format = time_format  # of the time_strftime field

    def literal(self, text: str) -> None:
        self.quotes += text.count('"')
        self.parts.append(re.escape(text).replace("\\ ", " ").replace('\\"', '"'))

    def value(self, target: str | None, next_char: str) -> None:
        inside = self.quotes % 2 == 1
        if target == "time_strftime" and self.time_format is not None:
            body = strftime_pattern(self.time_format)
        elif target in _VALUE_RE and not inside:
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
    keys: dict[str, tuple[tuple[str | int, ...], ...]] = {}
    for key, var in re.findall(r'"([^"]+)"\s*:\s*"?\$\{?(\w+)\}?', text):
        target = NGINX_VARS.get(var)
        if target is None:
            continue
        if target.startswith("time_"):
            target = "time_any"
        keys[target] = (*keys.get(target, ()), (key,))
    if "time_any" not in keys:
        raise FormatError("the JSON log_format has no time variable ($time_iso8601, $time_local or $msec)")
    return keymap_format(keys, name="custom", description="custom JSON log_format")


def compile_nginx(text: str, time_format: str | None = None) -> LineFormat | JsonFormat:
    """An nginx log_format; with ``time_format``, a variable named ``time...`` that is not one of
    nginx's own time variables (one made with ``map``, say) holds the time, in that format."""
    text = _unwrap_nginx(text)
    if text.lstrip().startswith("{"):
        return _json_keymap(text)
    builder = _Builder(time_format)
    pos = 0
    for m in re.finditer(r"\$(?:\{(\w+)\}|(\w+))", text):
        builder.literal(text[pos : m.start()])
        var = m.group(1) or m.group(2)
        nxt = text[m.end() : m.end() + 1]
        target = NGINX_VARS.get(var)
        if target is None and time_format is not None and var.startswith("time"):
            target = "time_strftime"
        builder.value(target, nxt)
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
            _apache_time(builder, arg, nxt)
            continue
        if letter == "i":
            builder.value(APACHE_HEADERS.get((arg or "").lower()), nxt)
            continue
        builder.value(APACHE_LETTERS.get(letter), nxt)
    builder.literal(text[pos:])
    return _finish(builder, text, "Apache LogFormat")


def _apache_time(builder: _Builder, arg: str | None, next_char: str) -> None:
    """``%t`` (``[14/Mar/2024:09:26:53 +0100]``), ``%{sec}t``/``%{msec}t``/``%{usec}t`` (since 1970)
    or ``%{strftime format}t``, maybe with a ``begin:``/``end:`` prefix."""
    if arg is None:
        builder.literal("[")
        builder.value("time_clf", "]")
        builder.literal("]")
        return
    arg = arg.removeprefix("begin:").removeprefix("end:")
    if arg in ("sec", "msec", "usec"):
        builder.value("time_epoch", next_char)
    elif arg in ("msec_frac", "usec_frac"):
        builder.value(None, next_char)
    elif "time_strftime" in builder.used or "time_clf" in builder.used or "time_epoch" in builder.used:
        builder.value(None, next_char)  # a second time field (e.g. %{end:...}t): the first one counts
    else:
        builder.time_format = arg
        builder.value("time_strftime", next_char)


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
    time_format = builder.time_format if "time_strftime" in builder.used else None
    return LineFormat(
        name="custom",
        description=f"custom {kind}: {text}",
        example="",
        pattern=pattern,
        style=TextStyle(backslash=True),
        family="custom",
        time_format=time_format,
    )


def compile_format(text: str, time_format: str | None = None) -> LineFormat | JsonFormat:
    """An nginx log_format (``$var``) or Apache LogFormat (``%x``) string -> a format.

    ``time_format`` (strftime) is the format of an nginx time variable of the user's own;
    Apache's ``%{...}t`` carries its format itself."""
    stripped = text.strip()
    if not stripped:
        raise FormatError("--log-format is empty")
    if time_format is not None:
        strftime_pattern(time_format)  # an unsupported directive is an error now, not every line later
    if "$" in stripped and re.search(r"\$\{?\w", stripped):
        return compile_nginx(stripped, time_format)
    if _APACHE.search(stripped):
        return compile_apache(stripped)
    raise FormatError("--log-format: give an nginx log_format ($remote_addr ...) or an Apache LogFormat (%h ...)")
