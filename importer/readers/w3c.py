"""W3C extended log files: IIS, CloudFront standard logs, and anything else with ``#Fields:``.

The column order comes from the latest ``#Fields:`` directive, which may change mid-file (a
service restart writes a new header block), so a block is cut into runs of rows between
directive lines and each run is parsed with a pattern built from the fields in force. Rows are
space-separated (IIS, where spaces inside values are written as ``+``) or tab-separated
(CloudFront, where values are percent-encoded). Directive lines are not rows.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .. import schema
from ..sources import LineBlock
from .base import Batch, Rejected, too_long_only, too_long_rejects
from .fields import TextStyle
from .lines import Sample, block_lines, finish

# W3C field (lower case) -> normalise field; the first present wins for the same target.
FIELD_MAP = (
    ("date", "date"),
    ("time", "time"),
    ("date-local", "date"),
    ("time-local", "time"),
    ("c-ip", "ip"),
    ("x-forwarded-for", "xff"),
    ("cs-method", "method"),
    ("cs-uri-stem", "path"),
    ("cs-uri-query", "query"),
    ("cs-uri", "uri"),
    ("x-host-header", "host"),
    ("cs-host", "host"),
    ("cs(host)", "host"),
    ("sc-status", "status"),
    ("sc-bytes", "bytes"),
    ("cs(user-agent)", "user_agent"),
    ("cs(referer)", "referrer"),
    ("cs(referrer)", "referrer"),
)


@dataclass(frozen=True)
class Layout:
    fields: tuple[str, ...]

    @property
    def directive(self) -> str:
        return "#Fields: " + " ".join(self.fields)

    @property
    def cloudfront(self) -> bool:
        return any(f.startswith("x-edge-") for f in self.fields)

    @property
    def local_time(self) -> bool:
        return "date-local" in self.fields and "date" not in self.fields

    def mapping(self) -> dict[int, str]:
        lowered = [f.lower() for f in self.fields]
        chosen: dict[str, int] = {}
        for w3c, target in FIELD_MAP:
            if w3c in lowered and target not in chosen:
                if w3c == "cs(host)" and "x-host-header" in lowered:
                    continue
                chosen[target] = lowered.index(w3c)
        return {index: target for target, index in chosen.items()}

    def pattern(self, sep: str) -> str:
        mapping = self.mapping()
        value = r'"[^"]*"|[^\t]*' if sep == "\t" else r'"[^"]*"|[^ ]*'
        groups = [f"(?P<{mapping[i]}>{value})" if i in mapping else f"(?:{value})" for i in range(len(self.fields))]
        return "^" + sep.join(groups) + ("[ ]*$" if sep == " " else "$")


def parse_fields(line: str) -> Layout | None:
    m = re.match(r"^#Fields:\s*(.*)$", line.strip())
    if not m:
        return None
    return Layout(tuple(m.group(1).split()))


def _sep(rows: list[str]) -> str:
    return "\t" if rows and sum("\t" in r for r in rows) * 2 >= len(rows) else " "


class W3cFormat:
    """``w3c`` (IIS and others) or ``cloudfront``: same reader, different decoding."""

    family = "W3C extended"
    zone_less = False

    def __init__(self, name: str, description: str, example: str, cloudfront: bool):
        self.name = name
        self.description = description
        self.example = example
        self.cloudfront = cloudfront

    def score(self, sample: Sample) -> float:
        layout = None
        rows = 0
        hits = 0
        for line in sample.lines:
            if line.startswith("#"):
                layout = parse_fields(line) or layout
                continue
            rows += 1
            if layout is None or layout.cloudfront != self.cloudfront:
                continue
            if re.match(layout.pattern(_sep([line])), line):
                hits += 1
        return hits / rows if rows else 0.0

    def parser(self, timezone: str, fields: Layout | None = None) -> W3cParser:
        """``fields``: the columns in force before the file's first ``#Fields:`` line (a rotated
        file goes on with the previous file's)."""
        return W3cParser(self, timezone, fields)


class W3cParser:
    def __init__(self, fmt: W3cFormat, timezone: str, fields: Layout | None = None):
        self.fmt = fmt
        self.timezone = timezone
        self.layout = fields
        self.zone_assumed = False

    def parse(self, block: LineBlock, source_name: str) -> Batch:
        if not block.data:
            return too_long_only(block, source_name)
        lines, indexes = block_lines(block.data)
        directive = pc.fill_null(pc.starts_with(lines, "#"), False).to_numpy(zero_copy_only=False)
        marks = np.flatnonzero(directive).tolist()
        bounds = [-1, *marks, len(lines)]
        tables: list[pa.Table] = []
        rejected: list[Rejected] = too_long_rejects(block, source_name)
        rows_read = 0
        for a, b in zip(bounds[:-1], bounds[1:], strict=False):
            if a >= 0:
                self.layout = parse_fields(lines[a].as_py()) or self.layout
            seg = lines.slice(a + 1, b - a - 1)
            seg_idx = indexes[a + 1 : b]
            keep = pc.greater(pc.binary_length(seg), 0)
            if len(seg) == 0:
                continue
            if not pc.all(keep).as_py():
                seg_idx = seg_idx[keep.to_numpy(zero_copy_only=False)]
                seg = seg.filter(keep)
            if len(seg) == 0:
                continue
            if self.layout is None:
                for i in range(len(seg)):
                    rejected.append(
                        Rejected(
                            source_name,
                            int(seg_idx[i]) + block.first_line,
                            "a row before any #Fields: header",
                            seg[i].as_py(),
                        )
                    )
                rows_read += len(seg)
                continue
            sep = _sep(seg.slice(0, 20).to_pylist())
            parts = pc.extract_regex(seg, self.layout.pattern(sep))
            matched = pc.is_valid(parts)
            fields = {}
            for i in range(parts.type.num_fields):
                name = parts.type.field(i).name
                value = pc.struct_field(parts, name)
                fields[name] = pc.replace_substring_regex(value, r'^"(.*)"$', r"\1")
            style = TextStyle(percent_ua=True) if self.fmt.cloudfront else TextStyle(plus_ua=True)
            batch, assumed = finish(
                LineBlock(b"", block.first_line, 0),
                source_name,
                seg,
                seg_idx,
                fields,
                matched,
                style=style,
                timezone=self.timezone,
                local_time=self.layout.local_time,
                format_name=f"{self.fmt.name} (#Fields: {len(self.layout.fields)} fields)",
            )
            self.zone_assumed = self.zone_assumed or assumed
            tables.append(batch.table)
            rejected.extend(batch.rejected)
            rows_read += batch.rows_read
        rejected.sort(key=lambda r: r.line or 0)
        table = pa.concat_tables(tables) if tables else schema.empty_frame()
        return Batch(table=table, rows_read=rows_read + len(block.too_long), rejected=rejected)


IIS_EXAMPLE = (
    "#Software: Microsoft Internet Information Services 10.0\n#Version: 1.0\n#Date: 2024-03-14 00:00:01\n"
    "#Fields: date time s-ip cs-method cs-uri-stem cs-uri-query s-port cs-username c-ip cs(User-Agent) cs(Referer) "
    "sc-status sc-substatus sc-win32-status time-taken\n"
    "2024-03-14 08:26:53 192.0.2.10 GET /pricing plan=pro 443 - 203.0.113.42 "
    "Mozilla/5.0+(Windows+NT+10.0;+Win64;+x64)+AppleWebKit/537.36+(KHTML,+like+Gecko)+Chrome/122.0.0.0+Safari/537.36 "
    "https://www.example.org/ 200 0 0 15"
)

CLOUDFRONT_FIELDS = (
    "date time x-edge-location sc-bytes c-ip cs-method cs(Host) cs-uri-stem sc-status cs(Referer) cs(User-Agent) "
    "cs-uri-query cs(Cookie) x-edge-result-type x-edge-request-id x-host-header cs-protocol cs-bytes time-taken "
    "x-forwarded-for ssl-protocol ssl-cipher x-edge-response-result-type cs-protocol-version fle-status "
    "fle-encrypted-fields c-port time-to-first-byte x-edge-detailed-result-type sc-content-type sc-content-len "
    "sc-range-start sc-range-end"
)
CLOUDFRONT_EXAMPLE = (
    "#Version: 1.0\n#Fields: "
    + CLOUDFRONT_FIELDS
    + "\n"
    + "\t".join(
        [
            "2024-03-14",
            "08:26:53",
            "FRA56-P1",
            "8917",
            "203.0.113.42",
            "GET",
            "d111111abcdef8.cloudfront.net",
            "/pricing",
            "200",
            "https://www.example.org/",
            "Mozilla/5.0%20(X11;%20Linux%20x86_64;%20rv:123.0)%20Gecko/20100101%20Firefox/123.0",
            "plan=pro",
            "-",
            "Hit",
            "ExAmPlErEqUeStId0123456789abcdefghijklmnopqrstuv==",
            "www.example.com",
            "https",
            "412",
            "0.002",
            "-",
            "TLSv1.3",
            "TLS_AES_128_GCM_SHA256",
            "Hit",
            "HTTP/2.0",
            "-",
            "-",
            "51544",
            "0.002",
            "Hit",
            "text/html",
            "8312",
            "-",
            "-",
        ]
    )
)

W3C = W3cFormat(
    "w3c",
    "W3C extended log (IIS and others), columns from #Fields: headers; times in UTC "
    "(date-local/time-local: --timezone)",
    IIS_EXAMPLE,
    cloudfront=False,
)
CLOUDFRONT = W3cFormat(
    "cloudfront",
    "Amazon CloudFront standard log (W3C, tab-separated, percent-encoded user agent; host from x-host-header)",
    CLOUDFRONT_EXAMPLE,
    cloudfront=True,
)

FORMATS = (CLOUDFRONT, W3C)
