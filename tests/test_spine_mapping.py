"""The built-in `web` mapping: which rows are dropped, under which reason, and the events built."""

from __future__ import annotations

import datetime as dt

import pyarrow as pa
import pytest
from conftest import BROWSER, IPHONE

from importer import mapping, schema
from importer.mapping import Mapper, MappingError

T0 = dt.datetime(2024, 3, 14, 8, 0, tzinfo=dt.UTC)


def frame(rows: list[dict]) -> pa.Table:
    columns = {}
    for name in schema.COLUMNS:
        values = [row.get(name) for row in rows]
        if name == "timestamp":
            values = [v or T0 for v in values]
        if name == "source_line":
            values = list(range(1, len(rows) + 1))
        if name == "source_file":
            values = ["test.log"] * len(rows)
        columns[name] = pa.array(values, type=schema.CANONICAL_SCHEMA.field(name).type)
    return schema.conform(columns, len(rows))


def page(**overrides) -> dict:
    row = {"ip": "203.0.113.5", "user_agent": BROWSER, "method": "GET", "path": "/", "status": 200}
    row.update(overrides)
    return row


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        (page(path=None, method=None), "bad_request"),
        (page(user_agent=None), "empty_user_agent"),
        (page(user_agent="Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"), "bot"),
        (page(user_agent="Mozilla/5.0 (compatible; SemrushBot/7~bl; +http://www.semrush.com/bot.html)"), "bot"),
        (
            page(
                user_agent="Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; GPTBot/1.1; +https://openai.com/gptbot)"
            ),
            "bot",
        ),
        (page(user_agent="facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)"), "bot"),
        (page(user_agent="curl/8.5.0"), "http_client"),
        (page(user_agent="Wget/1.21.4"), "http_client"),
        (page(user_agent="python-requests/2.31.0"), "http_client"),
        (page(user_agent="Go-http-client/2.0"), "http_client"),
        (page(user_agent="okhttp/4.12.0"), "http_client"),
        (page(user_agent="Mozilla/5.0+(compatible; UptimeRobot/2.0; http://www.uptimerobot.com/)"), "monitoring"),
        (page(user_agent="Pingdom.com_bot_version_1.4_(http://www.pingdom.com/)"), "monitoring"),
        (page(user_agent="kube-probe/1.29"), "monitoring"),
        (
            page(
                user_agent="Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/122.0.0.0 Safari/537.36"
            ),
            "headless_browser",
        ),
        (page(method="POST"), "method"),
        (page(method="HEAD"), "method"),
        (page(status=404), "status"),
        (page(status=301), "status"),
        (page(status=500), "status"),
        (page(path="/assets/app.css"), "static_asset"),
        (page(path="/assets/app.JS"), "static_asset"),
        (page(path="/bundle.mjs"), "static_asset"),
        (page(path="/app.js.map"), "static_asset"),
        (page(path="/img/x.avif"), "static_asset"),
        (page(path="/img/x.webp"), "static_asset"),
        (page(path="/icons/a.svg"), "static_asset"),
        (page(path="/f/inter.woff2"), "static_asset"),
        (page(path="/robots.txt"), "static_asset"),
        (page(path="/sitemap.xml"), "static_asset"),
        (page(path="/favicon.ico"), "static_asset"),
        (page(path="/" + "x" * 2100), "url_too_long"),
    ],
)
def test_each_drop_is_counted_under_its_reason(row, reason):
    mapped = Mapper(mapping.load("web"), "example.com").apply(frame([row, page(path="/kept")]))
    assert mapped.filtered == {reason: 1}
    assert mapped.events.num_rows == 1
    assert mapped.events.column("url").to_pylist() == ["https://example.com/kept"]


@pytest.mark.parametrize(
    "row",
    [
        page(status=304),
        page(status=204),
        page(path="/docs/install"),
        page(path="/blog/post.html"),
        page(path="/robots.txt.html"),
        page(user_agent=IPHONE),
        page(
            user_agent="Mozilla/5.0 (Linux; Android 10; CUBOT X30) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Mobile Safari/537.36"
        ),
    ],
)
def test_people_viewing_pages_are_kept(row):
    mapped = Mapper(mapping.load("web"), "example.com").apply(frame([row]))
    assert mapped.filtered == {}
    assert mapped.events.num_rows == 1


def test_event_columns_are_built_from_the_row():
    rows = [
        page(path="/pricing", query="plan=pro&utm_source=x", referrer="https://www.example.org/", ip="2001:db8::7"),
        page(path="/docs/", host="docs.example.com", user_agent=IPHONE),
        page(path="/a", query=""),
    ]
    events = Mapper(mapping.load("web"), "example.com").apply(frame(rows)).events.to_pylist()
    assert [e["url"] for e in events] == [
        "https://example.com/pricing?plan=pro&utm_source=x",
        "https://docs.example.com/docs/",
        "https://example.com/a",
    ]
    assert {e["name"] for e in events} == {"pageview"}
    assert {e["domain"] for e in events} == {"example.com"}
    assert [e["referrer"] for e in events] == ["https://www.example.org/", None, None]
    assert [e["ip"] for e in events] == ["2001:db8::7", "203.0.113.5", "203.0.113.5"]
    assert events[1]["user_agent"] == IPHONE
    assert [e["source_line"] for e in events] == [1, 2, 3]
    assert all(e["props"] is None for e in events)


def test_counts_add_up_on_a_mixed_frame():
    rows = [page()] * 5 + [page(method="POST")] * 2 + [page(user_agent="curl/8")] * 3 + [page(path="/x.css")] * 4
    mapped = Mapper(mapping.load("web"), "example.com").apply(frame(rows))
    assert mapped.filtered == {"method": 2, "http_client": 3, "static_asset": 4}
    assert mapped.events.num_rows + sum(mapped.filtered.values()) == len(rows)


def test_bad_mapping_files_give_one_clear_error(tmp_path):
    cases = {
        "unknown.toml": ("[filters]\nmethodz = ['GET']\n", "unknown key 'filters.methodz'"),
        "type.toml": ("[filters]\nmethods = 'GET'\n", "'filters.methods' must be a list of a string"),
        "status.toml": ("[filters]\nstatuses = ['2yy']\n", "'filters.statuses' entry '2yy'"),
        "syntax.toml": ("[filters\n", "not valid TOML"),
        "scheme.toml": ("[event]\nscheme = 'ftp'\n", "'event.scheme'"),
    }
    for name, (text, expected) in cases.items():
        path = tmp_path / name
        path.write_text(text)
        with pytest.raises(MappingError) as err:
            mapping.load(str(path))
        assert str(path) in str(err.value) and expected in str(err.value), str(err.value)
    with pytest.raises(MappingError, match="no built-in mapping named 'nope'"):
        mapping.load("nope")


def test_extends_merges_tables_key_by_key(tmp_path):
    path = tmp_path / "mine.toml"
    path.write_text('name = "mine"\nextends = "web"\n[filters]\nmethods = ["GET", "POST"]\n')
    loaded = mapping.load(str(path))
    assert loaded.methods == ("GET", "POST")
    assert loaded.non_human and "css" in loaded.static_extensions  # inherited from web
    mapped = Mapper(loaded, "example.com").apply(frame([page(method="POST")]))
    assert mapped.events.num_rows == 1
