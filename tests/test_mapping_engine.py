"""The mapping engine's own promises: one Mapper from several threads, any number of rules,
and every user pattern on RE2 (linear time, whatever the pattern)."""

from __future__ import annotations

import datetime as dt
import json
import random
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pyarrow as pa
import pytest
from conftest import BROWSER

from importer import mapping, schema
from importer.mapping import Mapper

TEN_RULES = Path(__file__).parent / "fixtures" / "ten-rules.toml"  # also read by bench/mapping.py
T0 = dt.datetime(2024, 3, 14, 8, 0, tzinfo=dt.UTC)
PATHS = [
    "/",
    "/pricing",
    "/signup/done",
    "/login",
    "/search",
    "/healthz",
    "/status/db",
    "/about",
    "/docs/a/b",
    "/blog/post-1",
    "/blog/post-2",
    "/shop/shoes/SKU-1",
    "/shop/hats/SKU-22",
    "/files/r.pdf",
    "/img/x.webp",
]
QUERIES = [None, None, "utm_source=news", "q=shoes", "plan=pro", ""]
REFERRERS = [None, "https://www.google.com/", "https://example.org/"]


def frame(rows: list[dict], first_line: int = 1) -> pa.Table:
    columns = {}
    for name in schema.COLUMNS:
        values = [row.get(name) for row in rows]
        if name == "timestamp":
            values = [v or T0 for v in values]
        if name == "source_line":
            values = list(range(first_line, first_line + len(rows)))
        if name == "source_file":
            values = ["test.log"] * len(rows)
        columns[name] = pa.array(values, type=schema.CANONICAL_SCHEMA.field(name).type)
    return schema.conform(columns, len(rows))


def page(**overrides) -> dict:
    row = {
        "ip": "203.0.113.5",
        "user_agent": BROWSER,
        "method": "GET",
        "host": "example.com",
        "path": "/",
        "status": 200,
    }
    row.update(overrides)
    return row


def random_rows(rng: random.Random, n: int) -> list[dict]:
    return [
        page(
            path=rng.choice(PATHS),
            query=rng.choice(QUERIES),
            referrer=rng.choice(REFERRERS),
            method=rng.choice(["GET", "GET", "POST"]),
            status=rng.choice([200, 200, 304, 404]),
            host=rng.choice(["example.com", "www.example.com", "other.org"]),
        )
        for _ in range(n)
    ]


def load_text(tmp_path: Path, text: str) -> mapping.Mapping:
    path = tmp_path / "m.toml"
    path.write_text(text, encoding="utf-8")
    return mapping.load(str(path))


def test_the_ten_rule_mapping_names_its_events():
    mapped = Mapper(mapping.load(str(TEN_RULES)), "example.com").apply(
        frame(
            [
                page(path="/shop/shoes/SKU-1"),
                page(path="/healthz"),
                page(path="/files/a.PDF"),
                page(path="/docs/x", referrer="https://www.google.com/"),
                page(path="/docs/x"),
                page(path="/search", query="q=ab"),
            ]
        )
    )
    events = mapped.events.to_pylist()
    assert [e["name"] for e in events] == ["Product: SKU-1", "File Download", "Docs", "pageview", "Search"]
    assert json.loads(events[0]["props"]) == {"sku": "SKU-1", "category": "shoes"}
    assert json.loads(events[2]["props"]) == {"page": "/docs/x"}
    assert json.loads(events[4]["props"]) == {"term": "ab"}
    assert mapped.filtered == {"rule:health": 1}


def test_one_mapper_applied_from_two_threads_at_once_gives_the_serial_events():
    m = mapping.load(str(TEN_RULES))
    rng = random.Random(11)
    batches = [
        frame(random_rows(rng, size), first_line=1000 * i) for i, size in enumerate([3000, 50, 4000, 7, 2500] * 4)
    ]
    serial_mapper = Mapper(m, "example.com")
    serial = [serial_mapper.apply(b) for b in batches]
    shared = Mapper(m, "example.com")
    with ThreadPoolExecutor(max_workers=2) as pool:
        threaded = list(pool.map(shared.apply, batches))
    for one, other in zip(serial, threaded, strict=False):
        assert one.events.equals(other.events)
        assert (one.filtered, one.rules) == (other.filtered, other.rules)
    assert sum(mapped.events.num_rows for mapped in serial) > 10_000
    assert shared.notices() == serial_mapper.notices()


def test_two_hundred_rules_each_match_their_own_rows(tmp_path):
    rules = "".join(f'[[rules]]\nname = "Page {i}"\nwhen.path = "/p{i}"\n\n' for i in range(199))
    rules += "[[rules]]\nname = \"Last {section}\"\nwhen.path_regex = '^/last/(?P<section>[a-z]+)$'\n"
    m = load_text(tmp_path, 'extends = "web"\n' + rules)
    assert len(m.rules) == 200
    paths = ["/p0", "/p63", "/p64", "/p198", "/last/end", "/p199", "/p150"]
    mapped = Mapper(m, "example.com").apply(frame([page(path=p) for p in paths]))
    assert mapped.events.column("name").to_pylist() == [
        "Page 0",
        "Page 63",
        "Page 64",
        "Page 198",
        "Last end",
        "pageview",
        "Page 150",
    ]
    assert mapped.rules["Page 198"] == 1 and mapped.rules["default (pageview)"] == 1


# Patterns that make a backtracking engine (Python's re) take exponential or high polynomial
# time on a short text they do not match; RE2 takes linear time.
WORDS = r"\w*" * 20
NESTED = "^/" + WORDS + "!$"
LONG = "/" + "a" * 40
GLOB = "/**" + "a**" * 12 + "b"


@pytest.mark.timeout(30)
@pytest.mark.parametrize(
    ("where", "text"),
    [
        ("path_regex", f"[[rules]]\nname = \"Hit\"\nwhen.path_regex = '{NESTED}'\n"),
        ("path_regex with groups", f"[[rules]]\nname = \"Hit {{w}}\"\nwhen.path_regex = '^/(?P<w>{WORDS})!$'\n"),
        ("path glob", f'[[rules]]\nname = "Hit"\nwhen.path = "{GLOB}"\n'),
        ("column regex", f"[[rules]]\nname = \"Hit\"\nwhen.columns.query = {{ regex = '{NESTED}' }}\n"),
        ("filters.exclude_path_regex", f"[filters]\nexclude_path_regex = '{NESTED}'\n"),
        ("filters.exclude_paths", f'[filters]\nexclude_paths = ["{GLOB}"]\n'),
    ],
)
def test_adversarial_patterns_run_in_linear_time(tmp_path, where, text):
    m = load_text(tmp_path, 'extends = "web"\n' + text)
    rows = [page(path=LONG + "a" * i, query=LONG) for i in range(20)] + [page(path="/kept")]
    mapped = Mapper(m, "example.com").apply(frame(rows))
    # none of the patterns matches: every row is a pageview, none filtered
    assert mapped.events.column("name").to_pylist() == ["pageview"] * len(rows), where
    assert mapped.filtered == {}


def test_rules_reading_a_rewritten_column_match_on_its_rewritten_values(tmp_path):
    """With an [event] referrer template, the rules' referrer conditions read the rendered
    referrer (rules are matched on the events' columns): an identity template gives the same
    events as none."""
    plain = mapping.load(str(TEN_RULES))
    text = TEN_RULES.read_text(encoding="utf-8").replace(
        'extends = "web"', 'extends = "web"\n[event]\nreferrer = "{referrer}"'
    )
    templated = load_text(tmp_path, text.replace('"./', '"'))
    assert templated.referrer is not None
    rows = random_rows(random.Random(5), 3000)
    one, other = (Mapper(m, "example.com").apply(frame(rows)) for m in (plain, templated))
    assert one.events.equals(other.events) and (one.filtered, one.rules) == (other.filtered, other.rules)
    assert one.rules["Docs"] > 0 and one.filtered["rule:health"] > 0
