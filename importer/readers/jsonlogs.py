"""JSON-lines access logs: Caddy, Traefik JSON, Google Cloud load balancer, Cloudflare Logpush
``http_requests``, and nginx ``escape=json`` (or any JSON lines) through a key map.

Each format is a list of candidate key paths per field; the first present wins. A line is
decoded with :func:`json.loads` (nginx's pre-``escape=json`` ``\\xHH`` escapes are rewritten to
``\\u00HH`` when plain decoding fails); a ``name  | `` prefix from docker compose is skipped.
The fields then go through the same vectorised conversion as every other format.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pajson

from ..sources import LineBlock
from .base import Batch, Rejected, too_long_only, valid_utf8
from .fields import TextStyle
from .lines import Sample, block_lines, finish

Path = tuple[str | int, ...]  # keys (and list indexes) from the top of a JSON object
Obj = dict[str, Any]


def decode_line(line: str) -> object | None:
    start = line.find("{")
    if start < 0:
        return None
    text = line[start:]
    try:
        value: object = json.loads(text)
        return value
    except ValueError:
        pass
    if "\\x" in text:
        try:
            unescaped: object = json.loads(re.sub(r"\\x([0-9A-Fa-f]{2})", r"\\u00\1", text))
            return unescaped
        except ValueError:
            return None
    return None


def lookup(obj: Obj, path: Path) -> str | None:
    value: Any = obj
    for key in path:
        if isinstance(value, dict):
            value = value.get(key)
        elif isinstance(value, list) and isinstance(key, int):
            value = value[key] if len(value) > key else None
        else:
            return None
        if value is None:
            return None
    if isinstance(value, list):
        value = value[0] if value else None
    if value is None or isinstance(value, (dict, list, bool)):
        return None
    return str(value)


@dataclass(frozen=True)
class JsonFormat:
    name: str
    description: str
    example: str
    keys: dict[str, tuple[Path, ...]]
    signature: Callable[[Obj], bool] = field(compare=False)
    family: str = "JSON access log"
    style: TextStyle = TextStyle()
    zone_less: bool = False
    non_rows_skipped: bool = False  # lines of other kinds (runtime messages) are not rows

    def required(self, fields: dict[str, pa.Array]) -> pa.Array:
        """Rows that are requests of this format at all (the columnar twin of ``signature``):
        a time and a request target."""
        time = next((fields[k] for k in fields if k.startswith("time")), None)
        where = [fields[k] for k in ("request", "uri", "url", "path") if k in fields]
        ok = pc.is_valid(time) if time is not None else None
        if where:
            some = pc.is_valid(where[0])
            for w in where[1:]:
                some = pc.or_(some, pc.is_valid(w))
            ok = some if ok is None else pc.and_(ok, some)
        return pc.fill_null(ok, False)

    def score(self, sample: Sample) -> float:
        rows = sample.rows
        if not rows:
            return 0.0
        hits = 0
        for line in rows:
            obj = decode_line(line)
            if isinstance(obj, dict) and self.signature(obj):
                hits += 1
        return hits / len(rows)

    def parser(self, timezone: str) -> JsonParser:
        return JsonParser(self, timezone)


class JsonParser:
    def __init__(self, fmt: JsonFormat, timezone: str):
        self.fmt = fmt
        self.timezone = timezone
        self.zone_assumed = False

    def parse(self, block: LineBlock, source_name: str) -> Batch:
        if not block.data:
            return too_long_only(block, source_name)
        lines, _indexes = block_lines(block.data)
        fast = self._parse_columnar(block, lines, source_name)
        if fast is not None:
            return fast
        return self._parse_lines(block, lines, source_name)

    def _parse_columnar(self, block: LineBlock, lines: pa.Array, source_name: str) -> Batch | None:
        """The whole block through ``pyarrow.json`` (C++, threaded); None when it cannot be
        used for this block (an empty or prefixed line, invalid JSON, a key whose type changes
        between lines, ...), and the caller falls back to decoding line by line."""
        n = len(lines)
        if n == 0 or not pc.all(pc.fill_null(pc.starts_with(lines, "{"), False)).as_py():
            return None
        data = valid_utf8(block.data)
        read_options = pajson.ReadOptions(use_threads=True, block_size=1 << 20)  # lines are < 64 KiB
        # Time keys are read as text: inferred as timestamps, a zone-less time could no longer
        # be told from one with an offset. Numeric times (epoch) make this fail; then infer.
        time_keys = sorted(
            {p[0] for k, paths in self.fmt.keys.items() if k.startswith("time") for p in paths if len(p) == 1}
        )
        as_text = pajson.ParseOptions(
            explicit_schema=pa.schema([(k, pa.string()) for k in time_keys]), unexpected_field_behavior="infer"
        )
        try:
            table = pajson.read_json(pa.BufferReader(data), read_options=read_options, parse_options=as_text)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            try:
                table = pajson.read_json(pa.BufferReader(data), read_options=read_options)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                return None
            if any(k in table.column_names and pa.types.is_timestamp(table.schema.field(k).type) for k in time_keys):
                return None
        if table.num_rows != n:
            return None
        table = table.combine_chunks()
        fields: dict[str, pa.Array] = {}
        for name, paths in self.fmt.keys.items():
            value = None
            for path in paths:
                column = _column_at(table, path, numeric_time=name.startswith("time"))
                if column is not None:
                    value = column if value is None else pc.coalesce(value, column)
            fields[name] = value if value is not None else pa.nulls(n, pa.string())
        wanted = self.fmt.required(fields)
        indexes = np.arange(n, dtype=np.int64)
        rejected: list[Rejected] = []
        skipped = 0
        if not pc.all(wanted).as_py():
            missing = np.flatnonzero(~wanted.to_numpy(zero_copy_only=False))
            if self.fmt.non_rows_skipped:
                skipped = len(missing)
            else:
                rejected = [
                    Rejected(
                        source_name,
                        block.first_line + int(i),
                        f"JSON without the keys of the {self.fmt.name} format",
                        lines[int(i)].as_py(),
                    )
                    for i in missing
                ]
            keep = wanted
            fields = {k: v.filter(keep) for k, v in fields.items()}
            indexes = indexes[keep.to_numpy(zero_copy_only=False)]
            lines = lines.filter(keep)
        return self._batch(block, source_name, lines, indexes, fields, rejected, skipped, n)

    def _parse_lines(self, block: LineBlock, lines: pa.Array, source_name: str) -> Batch:
        texts = lines.to_pylist()
        keys = self.fmt.keys
        columns: dict[str, list[str | None]] = {name: [] for name in keys}
        kept: list[int] = []
        rejected: list[Rejected] = []
        skipped = 0
        for i, text in enumerate(texts):
            if not text or not text.strip() or text.startswith("#"):  # blank lines and comments: no row
                continue
            obj = decode_line(text)
            if not isinstance(obj, dict):
                rejected.append(Rejected(source_name, block.first_line + i, "not a JSON object (invalid JSON?)", text))
                continue
            if not self.fmt.signature(obj):
                if self.fmt.non_rows_skipped:
                    skipped += 1
                    continue
                rejected.append(
                    Rejected(
                        source_name, block.first_line + i, f"JSON without the keys of the {self.fmt.name} format", text
                    )
                )
                continue
            kept.append(i)
            for name, paths in keys.items():
                value = None
                for path in paths:
                    value = lookup(obj, path)
                    if value is not None:
                        break
                columns[name].append(value)
        idx = np.array(kept, dtype=np.int64)
        fields = {name: pa.array(values, pa.string()) for name, values in columns.items()}
        kept_lines = lines.take(pa.array(idx, pa.int64()))
        return self._batch(block, source_name, kept_lines, idx, fields, rejected, skipped, len(texts))

    def _batch(
        self,
        block: LineBlock,
        source_name: str,
        lines: pa.Array,
        indexes: np.ndarray,
        fields: dict[str, pa.Array],
        rejected: list[Rejected],
        skipped: int,
        line_count: int,
    ) -> Batch:
        """The block's batch from the kept lines' fields, either parser's, with a notice of the
        runtime messages skipped (placed after the block's ``line_count`` lines)."""
        batch, assumed = finish(
            block,
            source_name,
            lines,
            indexes,
            fields,
            None,
            style=self.fmt.style,
            timezone=self.timezone,
            format_name=self.fmt.name,
            rejected=rejected,
        )
        self.zone_assumed = self.zone_assumed or assumed
        if skipped:
            notice = f"{skipped} non-request lines (runtime messages) skipped"
            batch.notices.append(Rejected(source_name, block.first_line + line_count, notice, ""))
        return batch


def _column_at(table: pa.Table, path: Path, numeric_time: bool = False) -> pa.Array | None:
    """The values at a key path as strings (first element of lists); None when absent."""
    if path[0] not in table.column_names:
        return None
    column = (
        table.column(path[0]).combine_chunks()
        if table.column(path[0]).num_chunks != 1
        else table.column(path[0]).chunk(0)
    )
    for key in path[1:]:
        if not pa.types.is_struct(column.type) or column.type.get_field_index(key) < 0:
            return None
        column = pc.struct_field(column, key)
    if pa.types.is_list(column.type) or pa.types.is_large_list(column.type):
        has = pc.fill_null(pc.greater(pc.list_value_length(column), 0), False)
        firsts = pc.list_element(pc.if_else(has, column, pa.scalar([None], column.type)), 0)
        column = firsts
    t = column.type
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return column.cast(pa.string())
    if pa.types.is_integer(t):
        return column.cast(pa.string())
    if pa.types.is_floating(t):
        if numeric_time:  # epoch seconds (or ms) with a fraction -> integer microseconds (or ns) as text
            return pc.multiply(column, 1_000_000.0).cast(pa.int64(), safe=False).cast(pa.string())
        return pc.floor(column).cast(pa.int64(), safe=False).cast(pa.string())
    if pa.types.is_null(t):
        return pa.nulls(len(column), pa.string())
    return None


def _p(*parts: str | int) -> Path:
    return tuple(parts)


CADDY = JsonFormat(
    name="caddy",
    description="Caddy v2 JSON access log (ts in Unix seconds; client_ip preferred; runtime lines skipped)",
    example='{"level":"info","ts":1710404813.5240512,"logger":"http.log.access.log0","msg":"handled request",'
    '"request":{"remote_ip":"203.0.113.42","remote_port":"51544","client_ip":"203.0.113.42","proto":"HTTP/2.0",'
    '"method":"GET","host":"www.example.com","uri":"/pricing?plan=pro","headers":{"User-Agent":["Mozilla/5.0 '
    '(X11; Linux x86_64; rv:123.0) Gecko/20100101 Firefox/123.0"],"Referer":["https://www.example.org/"]}},'
    '"bytes_read":0,"user_id":"","duration":0.00154,"size":8312,"status":200,"resp_headers":{}}',
    keys={
        "time_any": (_p("ts"),),
        "ip": (_p("request", "client_ip"), _p("request", "remote_ip")),
        "method": (_p("request", "method"),),
        "host": (_p("request", "host"),),
        "uri": (_p("request", "uri"),),
        "status": (_p("status"),),
        "bytes": (_p("size"),),
        "user_agent": (_p("request", "headers", "User-Agent"),),
        "referrer": (_p("request", "headers", "Referer"),),
    },
    signature=lambda o: (
        isinstance(o.get("request"), dict)
        and "uri" in o["request"]
        and ("resp_headers" in o or str(o.get("logger", "")).startswith("http.log.access"))
    ),
    non_rows_skipped=True,
)

TRAEFIK_JSON = JsonFormat(
    name="traefik_json",
    description="Traefik JSON access log (no user agent or referrer unless header fields are kept)",
    example='{"ClientAddr":"203.0.113.42:51544","ClientHost":"203.0.113.42","DownstreamContentSize":8312,'
    '"DownstreamStatus":200,"Duration":15234567,"RequestHost":"www.example.com","RequestMethod":"GET",'
    '"RequestPath":"/pricing?plan=pro","RequestProtocol":"HTTP/2.0","RouterName":"web@docker",'
    '"StartUTC":"2024-03-14T08:26:53.512345678Z","request_Referer":"https://www.example.org/",'
    '"request_User-Agent":"Mozilla/5.0 (X11; Linux x86_64; rv:123.0) Gecko/20100101 Firefox/123.0",'
    '"level":"info","msg":"","time":"2024-03-14T09:26:53+01:00"}',
    keys={
        "time_iso": (_p("StartUTC"), _p("StartLocal")),
        "ip": (_p("ClientHost"), _p("ClientAddr")),
        "xff": (_p("request_X-Forwarded-For"),),
        "method": (_p("RequestMethod"),),
        "host": (_p("RequestHost"),),
        "uri": (_p("RequestPath"),),
        "status": (_p("DownstreamStatus"), _p("OriginStatus")),
        "bytes": (_p("DownstreamContentSize"), _p("OriginContentSize")),
        "user_agent": (_p("request_User-Agent"),),
        "referrer": (_p("request_Referer"),),
    },
    signature=lambda o: "RequestPath" in o and ("StartUTC" in o or "StartLocal" in o),
)

GCP_LB = JsonFormat(
    name="gcp_lb",
    description="Google Cloud external HTTP(S) load balancer / Cloud CDN log entries (JSON; may be sampled)",
    example='{"insertId":"1a2b3c4d5e6f7","httpRequest":{"requestMethod":"GET","requestUrl":'
    '"https://www.example.com/pricing?plan=pro","requestSize":"412","status":200,"responseSize":"8631",'
    '"userAgent":"Mozilla/5.0 (X11; Linux x86_64; rv:123.0) Gecko/20100101 Firefox/123.0","remoteIp":'
    '"203.0.113.42","serverIp":"10.128.0.7","referer":"https://www.example.org/","latency":"0.014231s",'
    '"protocol":"HTTP/2.0"},"resource":{"type":"http_load_balancer"},"timestamp":"2024-03-14T08:26:53.512345Z",'
    '"severity":"INFO"}',
    keys={
        "time_iso": (_p("timestamp"),),
        "ip": (_p("httpRequest", "remoteIp"),),
        "method": (_p("httpRequest", "requestMethod"),),
        "url": (_p("httpRequest", "requestUrl"),),
        "status": (_p("httpRequest", "status"),),
        "bytes": (_p("httpRequest", "responseSize"),),
        "user_agent": (_p("httpRequest", "userAgent"),),
        "referrer": (_p("httpRequest", "referer"),),
    },
    signature=lambda o: isinstance(o.get("httpRequest"), dict) and "requestUrl" in o["httpRequest"],
    family="load balancer",
)

CLOUDFLARE = JsonFormat(
    name="cloudflare",
    description="Cloudflare Logpush http_requests NDJSON (EdgeStartTimestamp in ns, s or RFC 3339)",
    example='{"ClientIP":"203.0.113.42","ClientRequestHost":"www.example.com","ClientRequestMethod":"GET",'
    '"ClientRequestURI":"/pricing?plan=pro","ClientRequestProtocol":"HTTP/2","ClientRequestReferer":'
    '"https://www.example.org/","ClientRequestUserAgent":"Mozilla/5.0 (X11; Linux x86_64; rv:123.0) '
    'Gecko/20100101 Firefox/123.0","EdgeResponseStatus":200,"EdgeResponseBytes":8931,'
    '"EdgeStartTimestamp":1710404813512000000,"RayID":"86a1b2c3d4e5f6a7"}',
    keys={
        "time_any": (_p("EdgeStartTimestamp"), _p("EdgeEndTimestamp")),
        "ip": (_p("ClientIP"),),
        "method": (_p("ClientRequestMethod"),),
        "host": (_p("ClientRequestHost"),),
        "uri": (_p("ClientRequestURI"), _p("ClientRequestPath")),
        "status": (_p("EdgeResponseStatus"),),
        "bytes": (_p("EdgeResponseBytes"),),
        "user_agent": (_p("ClientRequestUserAgent"),),
        "referrer": (_p("ClientRequestReferer"),),
    },
    signature=lambda o: "ClientRequestURI" in o or ("ClientRequestPath" in o and "EdgeStartTimestamp" in o),
    family="CDN",
)

# nginx escape=json and other hand-made JSON lines: the usual variable names.
NGINX_KEYS: dict[str, tuple[Path, ...]] = {
    "time_any": tuple(
        _p(k) for k in ("time_iso8601", "@timestamp", "timestamp", "time", "time_local", "msec", "date", "ts")
    ),
    "ip": tuple(_p(k) for k in ("remote_addr", "client_ip", "ip", "remote_ip", "clientip")),
    "xff": tuple(_p(k) for k in ("http_x_forwarded_for", "x_forwarded_for", "xff")),
    "host": tuple(_p(k) for k in ("host", "http_host", "server_name", "vhost")),
    "method": tuple(_p(k) for k in ("request_method", "method")),
    "request": (_p("request"),),
    "uri": tuple(_p(k) for k in ("request_uri", "url")),
    "path": tuple(_p(k) for k in ("uri", "path")),
    "query": tuple(_p(k) for k in ("args", "query_string")),
    "status": tuple(_p(k) for k in ("status", "status_code", "response_status")),
    "bytes": tuple(_p(k) for k in ("body_bytes_sent", "bytes_sent", "size", "length", "bytes")),
    "referrer": tuple(_p(k) for k in ("http_referer", "http_referrer", "referrer", "referer")),
    "user_agent": tuple(_p(k) for k in ("http_user_agent", "user_agent", "agent")),
}


def keymap_signature(keys: dict[str, tuple[Path, ...]]) -> Callable[[Obj], bool]:
    time_keys = {p[0] for name, paths in keys.items() if name.startswith("time") for p in paths}
    where_keys = {p[0] for name in ("request", "uri", "path", "url") for p in keys.get(name, ())}

    def signature(obj: Obj) -> bool:
        return any(k in obj for k in time_keys) and any(k in obj for k in where_keys)

    return signature


def keymap_format(keys: dict[str, tuple[Path, ...]], name: str = "json", description: str = "") -> JsonFormat:
    return JsonFormat(
        name=name,
        description=description or "JSON lines through a key map (custom log_format)",
        example="",
        keys=keys,
        signature=keymap_signature(keys),
    )


NGINX_JSON = JsonFormat(
    name="nginx_json",
    description="JSON lines with the usual nginx variable names as keys (log_format escape=json); any other "
    "key names: give the log_format with --log-format",
    example='{"time_iso8601":"2024-03-14T09:26:53+01:00","remote_addr":"203.0.113.42","host":"www.example.com",'
    '"request_method":"GET","request_uri":"/pricing?plan=pro","status":"200","body_bytes_sent":"8312",'
    '"http_referer":"https://www.example.org/","http_user_agent":"Mozilla/5.0 (X11; Linux x86_64; rv:123.0) '
    'Gecko/20100101 Firefox/123.0","http_x_forwarded_for":""}',
    keys=NGINX_KEYS,
    signature=keymap_signature(NGINX_KEYS),
    style=TextStyle(backslash=True),
)

FORMATS = (CADDY, TRAEFIK_JSON, GCP_LB, CLOUDFLARE, NGINX_JSON)
