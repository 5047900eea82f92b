"""The vectorised rule engine against a plain row-by-row reading of the same rules.

``Mapper`` takes many shortcuts for speed: per-path memos kept across batches, literal paths
matched by one lookup, conditions evaluated on candidate rows only, per distinct value, or in
Python when rows are few. This test runs a mapping that uses every kind of condition and
template over seeded random rows in batches of very different sizes (new paths keep arriving,
rule candidates overlap) and checks every event against what the rules say, row by row.
"""

from __future__ import annotations

import datetime as dt
import json
import random
import re
import textwrap

import pyarrow as pa
import pytest

from importer import mapping, schema
from importer.mapping import Mapper

RULES = r"""
    name = "reference"
    [filters]
    non_human = false

    [[rules]]
    label = "health"
    drop = true
    when.path = ["/healthz", "/status/**"]

    [[rules]]
    name = "Campaign"
    when.path = "/"
    when.columns.query = { regex = 'utm_source=(?P<source>[^&]+)' }
    props = { source = "{source}" }

    [[rules]]
    name = "Search"
    when.path = ["/search", "/find"]
    when.columns.query = { regex = 'q=(?P<term>[^&]*)' }
    props = { term = "{term}" }

    [[rules]]
    name = "Product: {sku}"
    when.path_regex = '^/shop/(?P<category>[a-z]+)/(?P<sku>[A-Z0-9-]+)$'
    props = { sku = "{sku}", category = "{category}", page = "{path}" }

    [[rules]]
    name = "Docs from Google"
    when.path = "/docs/**"
    when.columns.referrer = { regex = '^https://(www\.)?google\.' }
    props = { page = "{path}" }

    [[rules]]
    name = "Docs referred"
    when.path = "/docs/**"
    when.columns.referrer = { present = true }
    props = { ref = "{referrer}", kind = "referred" }

    [[rules]]
    name = "Blog post"
    when.path = "/blog/*"
    when.columns.host = ["example.com", "www.example.com"]

    [[rules]]
    name = "Blog elsewhere"
    when.path = "/blog/*"
    props = { host = "{host}" }

    [[rules]]
    name = "Pricing"
    when.path = "/pricing"
    when.status = ["2xx"]
    interactive = false

    [[rules]]
    name = "Login"
    when.path = "/login"
    when.columns.method = "GET"

    [[rules]]
    name = "Missing {path}"
    when.path = "/missing/*"
    when.columns.status = { equals = "404" }

    [[rules]]
    name = "File Download"
    when.path_regex = '(?i)\.(pdf|zip)$'
    props = { url = "{url}" }

    [[rules]]
    name = "Odd {method}"
    when.columns.method = { not_in = ["GET", "POST", "HEAD"] }
    props = { status = "{status}" }
"""

# A drop rule with a condition beyond the path: rows must then be matched before they are
# filtered (otherwise the engine may match them later, on the kept rows).
PROBE = r"""
    [[rules]]
    label = "probe"
    drop = true
    when.path = "/docs/**"
    when.columns.query = { equals = "x=1" }
"""

QUERIES = [
    None,
    None,
    "",
    "utm_source=news",
    "utm_source=",
    "q=shoes&page=2",
    "q=",
    "q=caf%C3%A9",
    "utm_source=a&q=b",
    "x=1",
    'q=say "hi"',
]
REFERRERS = [
    None,
    None,
    "",
    "https://www.google.com/",
    "https://google.de/x",
    "http://www.google.com/",
    "https://example.com/",
    "https://news.example/a\\b",
]
HOSTS = ["example.com", "www.example.com", "other.org"]
METHODS = ["GET", "GET", "POST", "HEAD", "PUT", None]
STATUSES = [200, 204, 301, 404, 500]
FIXED_PATHS = [
    "/",
    "/search",
    "/find",
    "/pricing",
    "/login",
    "/healthz",
    "/status/db",
    "/status/",
    "/blog/a",
    "/blog/a/b",
    "/blog/",
    "/docs/",
    "/shop/Shoes/SKU-1",
    "/shop/hats/sku-1",
    "/files/a.PDF",
    "/files/b.zip",
    "/x.pdf.html",
    "/é/ü",
    '/q"uote',
    "/back\\slash",
    "/tab\there",
    "relative",
    None,
    "/missing/x",
    "/missing/x/y",
    "/docs/x\ny",
    "/blog/new\nline",
    "/status/\n",
]


# --- the rules, read row by row -------------------------------------------------------------

GOOGLE = re.compile(r"^https://(www\.)?google\.")
PRODUCT = re.compile(r"^/shop/(?P<category>[a-z]+)/(?P<sku>[A-Z0-9-]+)$")
DOWNLOAD = re.compile(r"(?i)\.(pdf|zip)$")


def under(path: str, prefix: str) -> bool:
    return path.startswith(prefix)


def one_segment_under(path: str, prefix: str) -> bool:
    return path.startswith(prefix) and "/" not in path[len(prefix) :]


def props(*pairs) -> list | None:
    kept = [(k, v) for k, v in pairs if v is not None and v.strip() != ""]
    return kept or None


# Rules that make a path wait on two rules with conditions (the "Odd" rule on every path):
# without them, each candidate row waits on one rule and the engine groups them by one sort.
OVERLAPPING = [
    r"""
    [[rules]]
    name = "Docs referred"
    when.path = "/docs/**"
    when.columns.referrer = { present = true }
    props = { ref = "{referrer}", kind = "referred" }
""",
    r"""
    [[rules]]
    name = "Odd {method}"
    when.columns.method = { not_in = ["GET", "POST", "HEAD"] }
    props = { status = "{status}" }
""",
]


def expected(r: dict, probe: bool = False, overlap: bool = True):
    """(rule label, name, props as a list of pairs, interactive) for a row, or None when a
    filter or a drop rule takes it. Without ``overlap``, the mapping lacks the OVERLAPPING rules."""
    path, query, ref, host, method, status = (r[k] for k in ("path", "query", "referrer", "host", "method", "status"))
    if path is None or not path.startswith("/"):
        return None  # bad_request
    url = f"https://{host}{path}" + (f"?{query}" if query else "")
    if path == "/healthz" or under(path, "/status/"):
        return None
    if probe and under(path, "/docs/") and query == "x=1":
        return None
    if path == "/" and query is not None and (m := re.search(r"utm_source=(?P<source>[^&]+)", query)):
        return "Campaign", "Campaign", props(("source", m["source"])), None
    if path in ("/search", "/find") and query is not None and (m := re.search(r"q=(?P<term>[^&]*)", query)):
        return "Search", "Search", props(("term", m["term"])), None
    if m := PRODUCT.search(path):
        return (
            "Product: {sku}",
            f"Product: {m['sku']}",
            props(("sku", m["sku"]), ("category", m["category"]), ("page", path)),
            None,
        )
    if under(path, "/docs/") and ref is not None and GOOGLE.search(ref):
        return "Docs from Google", "Docs from Google", props(("page", path)), None
    if overlap and under(path, "/docs/") and ref:
        return "Docs referred", "Docs referred", props(("ref", ref), ("kind", "referred")), None
    if one_segment_under(path, "/blog/") and host in ("example.com", "www.example.com"):
        return "Blog post", "Blog post", None, None
    if one_segment_under(path, "/blog/"):
        return "Blog elsewhere", "Blog elsewhere", props(("host", host)), None
    if path == "/pricing" and 200 <= status < 300:
        return "Pricing", "Pricing", None, False
    if path == "/login" and method == "GET":
        return "Login", "Login", None, None
    if one_segment_under(path, "/missing/") and str(status) == "404":
        return "Missing {path}", f"Missing {path}", None, None
    if DOWNLOAD.search(path):
        return "File Download", "File Download", props(("url", url)), None
    if overlap and method not in ("GET", "POST", "HEAD"):
        # A template whose every reference is null renders as null: the rule matches, but an
        # event without a name is not sent (counted under limit:empty_name).
        return "Odd {method}", None if method is None else f"Odd {method}", props(("status", str(status))), None
    return "default (pageview)", "pageview", None, None


# --- data -----------------------------------------------------------------------------------


def make_rows(rng: random.Random, n: int, first_new: int, new: int) -> list[dict]:
    """Rows over the fixed paths and over generated ones; ``new`` generated paths per family
    start at ``first_new``, so each batch brings paths the earlier ones did not have."""
    rows = []
    for _ in range(n):
        pick = rng.random()
        i = first_new + rng.randrange(new)
        if pick < 0.35:
            path = rng.choice(FIXED_PATHS)
        elif pick < 0.55:
            path = f"/shop/{rng.choice(['shoes', 'bags', 'hats'])}/SKU-{i}"
        elif pick < 0.75:
            path = f"/docs/s{i % 7}/p{i}"
        elif pick < 0.9:
            path = f"/blog/post-{i}"
        else:
            path = f"/files/report-{i}.{rng.choice(['pdf', 'zip', 'txt'])}"
        rows.append(
            dict(
                timestamp=dt.datetime(2024, 3, 14, tzinfo=dt.UTC),
                ip="203.0.113.9",
                user_agent="Mozilla/5.0",
                method=rng.choice(METHODS),
                host=rng.choice(HOSTS),
                path=path,
                query=rng.choice(QUERIES),
                status=rng.choice(STATUSES),
                bytes=1,
                referrer=rng.choice(REFERRERS),
            )
        )
    return rows


def frame(rows: list[dict], first_line: int) -> pa.Table:
    columns = {
        name: pa.array([r[name] for r in rows], type=schema.CANONICAL_SCHEMA.field(name).type) for name in rows[0]
    }
    columns["source_file"] = pa.array(["t"] * len(rows))
    columns["source_line"] = pa.array(range(first_line, first_line + len(rows)), pa.int64())
    return schema.conform(columns, len(rows))


@pytest.mark.parametrize(
    ("seed", "sizes", "probe", "overlap"),
    [
        (1, [3, 40, 700, 5000, 12, 20000, 300], False, True),  # tiny, small and large batches; many new paths at once
        (2, [1, 1, 2, 64, 65, 257, 1000], False, True),  # around the few-rows and few-values thresholds
        (3, [5, 300, 8000, 30], True, True),  # a rule that drops rows on a condition
        # no path waits on two rules with conditions: candidate rows are grouped by one sort
        (4, [3, 40, 700, 5000, 12, 20000, 300], False, False),
        (5, [5, 300, 8000, 30], True, False),
    ],
)
def test_mapper_agrees_with_the_rules_read_row_by_row(tmp_path, seed, sizes, probe, overlap):
    path = tmp_path / "reference.toml"
    rules = textwrap.dedent(RULES)
    if not overlap:
        for rule in OVERLAPPING:
            rules = rules.replace(textwrap.dedent(rule).lstrip("\n"), "")
        assert "Docs referred" not in rules and "Odd" not in rules
    if probe:  # right after the health rule
        head, tail = rules.split('[[rules]]\nname = "Campaign"', 1)
        rules = head + textwrap.dedent(PROBE).lstrip("\n") + '\n[[rules]]\nname = "Campaign"' + tail
    path.write_text(rules, encoding="utf-8")
    m = mapping.load(str(path))
    mapper = Mapper(m, "example.com")
    rng = random.Random(seed)
    line = 1
    totals: dict[str, int] = {}
    for number, size in enumerate(sizes):
        rows = make_rows(rng, size, first_new=number * 400, new=max(1, min(size, 600)))
        mapped = mapper.apply(frame(rows, line))
        matched = [(line + i, e) for i, r in enumerate(rows) if (e := expected(r, probe, overlap)) is not None]
        want = [(n, e) for n, e in matched if e[1] is not None]
        events = mapped.events.to_pylist()
        assert [e["source_line"] for e in events] == [n for n, _ in want], f"batch {number}: rows kept"
        for event, (n, (label, name, pairs, interactive)) in zip(events, want, strict=False):
            got_props = None if event["props"] is None else json.loads(event["props"], object_pairs_hook=list)
            assert (event["name"], got_props, event["interactive"]) == (name, pairs, interactive), (
                f"batch {number}, line {n} ({label}): {rows[n - line]}"
            )
            if name == "File Download":  # the url prop is the event's URL
                assert got_props == [("url", event["url"])]
        for _, (label, *_rest) in matched:
            totals[label] = totals.get(label, 0) + 1
        for label, count in mapped.rules.items():
            if label not in ("health", "probe"):
                totals[label] = totals.get(label, 0) - count
        probed = sum(
            1 for r in rows if probe and expected(r, False, overlap) is not None and expected(r, probe, overlap) is None
        )
        assert mapped.filtered.get("rule:probe", 0) == probed
        assert mapped.filtered.get("limit:empty_name", 0) == len(matched) - len(want)
        line += size
    assert all(v == 0 for v in totals.values()), totals
