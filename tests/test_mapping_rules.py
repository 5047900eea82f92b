"""Mapping files: validation, filters, event rules, props, revenue and Plausible's limits."""

from __future__ import annotations

import datetime as dt
import json
import textwrap

import pyarrow as pa
import pytest
from conftest import BROWSER, IPHONE, combined_line, write_log
from typer.testing import CliRunner

from importer import mapping, plausible, schema
from importer.cli import app
from importer.mapping import Mapper, MappingError
from importer.options import DeliveryOptions, OutputOptions, ReadOptions
from importer.useragents import classify, synthetic_ip, synthetic_user_agent

WHEN = dt.datetime(2024, 3, 14, 9, 0, tzinfo=dt.UTC)


def row(**kw) -> dict:
    base = dict(
        timestamp=WHEN,
        ip="203.0.113.5",
        user_agent=BROWSER,
        method="GET",
        host="example.com",
        path="/",
        query=None,
        status=200,
        bytes=100,
        referrer=None,
    )
    base.update(kw)
    return base


def frame(rows: list[dict], extra: dict[str, list] | None = None) -> pa.Table:
    columns = {
        name: pa.array([r[name] for r in rows], type=schema.CANONICAL_SCHEMA.field(name).type)
        for name in rows[0]
        if name in schema.COLUMNS
    }
    columns["source_file"] = pa.array(["t"] * len(rows))
    columns["source_line"] = pa.array(range(1, len(rows) + 1), pa.int64())
    extras = {k: pa.array(v, pa.string()) for k, v in (extra or {}).items()}
    return schema.conform(columns, len(rows), extra=extras)


def load_text(tmp_path, text: str, name: str = "m.toml") -> mapping.Mapping:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return mapping.load(str(path))


def apply(m, rows, extra=None, domain="example.com", **kw):
    return Mapper(m, domain, **kw).apply(frame(rows, extra))


# --- validation: one clear error naming file and key ----------------------------------------


@pytest.mark.parametrize(
    ("text", "key", "why"),
    [
        ("[filters]\nbogus = 1\n", "filters.bogus", "unknown key"),
        (
            '[[rules]]\nname = "x"\nwhen.path_regex = "("\n',
            "rules[0].when.path_regex",
            "not a valid regular expression",
        ),
        ('[[rules]]\nname = "{nope}"\n', "rules[0].name", "{nope}"),
        ('[[rules]]\nwhen.path = "/x"\n', "rules[0]", "needs a 'name'"),
        ('[[rules]]\nname = "x"\nwhen.columns.nope = "a"\n', "rules[0].when.columns.nope", "no column named"),
        ('[[rules]]\nname = "x"\nrevenue = { amount = "{path}" }\n', "rules[0].revenue", "needs both"),
        ('[[rules]]\ndrop = true\nname = "x"\n', "rules[0]", "drops rows"),
        ('[filters]\nexclude_ips = ["10.0.0.300/8"]\n', "filters.exclude_ips[0]", "not an IP address"),
        ('[limits]\npolicy = "maybe"\n', "limits.policy", "must be one of"),
        ('[url]\nquery_params = "some"\n', "url.query_params", "must be one of"),
        ('[site.hosts]\n"www.example.com" = "https://example.com/"\n', "site.hosts.www.example.com", "site domain"),
        ('[event]\ndefault = "' + "x" * 121 + '"\n', "event.default", "1 to 120"),
        ('[input.columns]\ntimestamp = "t"\n[input.extra]\npath = "p"\n', "input", "canonical names"),
        (
            '[[rules]]\nname = "x"\nwhen.columns.method = { like = "G" }\n',
            "rules[0].when.columns.method.like",
            "unknown key",
        ),
        ("name = [1]\n", "name", "must be a string"),
        ('[[rules]]\nname = "x"\nprops_from = "path"\n', "rules[0].props_from", "parameter bag"),
        ("[[rules]]\nname = \"x\"\nwhen.path_regex = '(?=a)'\n", "rules[0].when.path_regex", "RE2"),
        ('rules = "x"\n', "rules", "must be a list"),
        ('[visitor]\nid = "nope"\n', "visitor.id", "no column named"),
        ("[[rules]\nname = 1\n", "", "not valid TOML"),
    ],
)
def test_malformed_mapping_names_file_key_and_reason(tmp_path, text, key, why):
    path = tmp_path / "bad.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(MappingError) as info:
        mapping.load(str(path))
    message = str(info.value)
    assert message.startswith(str(path))
    assert key in message and why in message


def test_malformed_mapping_on_the_command_line_is_one_line_and_exit_2(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text('[[rules]]\nname = "{event}"\n', encoding="utf-8")
    log = write_log(tmp_path / "a.log", [combined_line()])
    result = CliRunner().invoke(
        app, ["send", str(log), "-d", "example.com", "-m", str(path), "--dry-run", "--no-progress"]
    )
    assert result.exit_code == 2
    err = result.stderr if hasattr(result, "stderr") else result.output
    assert "Traceback" not in result.output
    assert err.strip().count("\n") == 0 and "rules[0].name" in err and "{event}" in err


def test_every_builtin_mapping_loads_and_is_listed():
    runner = CliRunner()
    result = runner.invoke(app, ["mappings"])
    assert result.exit_code == 0
    lines = [line for line in result.stdout.splitlines() if line.strip()]
    names = [line.split()[0] for line in lines]
    for preset in (
        "web",
        "web-goals",
        "ga4-bigquery",
        "umami",
        "matomo",
        "simple-analytics",
        "posthog",
        "snowplow",
        "segment",
    ):
        assert preset in names
        mapping.load(preset)  # raises if a built-in were invalid
    assert all(len(line.split(None, 1)) == 2 for line in lines)  # one line each: name and description


# --- filters --------------------------------------------------------------------------------


def test_host_path_ip_and_status_filters_each_count_under_their_reason(tmp_path):
    m = load_text(
        tmp_path,
        """
        extends = "web"
        [filters]
        statuses = ["2xx"]
        exclude_statuses = [204]
        exclude_hosts = ["staging.*"]
        exclude_paths = ["/admin/**"]
        exclude_path_regex = '^/wp-'
        exclude_ips = ["192.0.2.0/24", "2001:db8::1"]
    """,
    )
    rows = [
        row(host="staging.example.com"),
        row(path="/admin/users/1"),
        row(path="/wp-login.php"),
        row(ip="192.0.2.77"),
        row(ip="2001:db8::1"),
        row(status=204),
        row(status=301),
        row(path="/kept"),
        row(path="/admin"),  # "/admin/**" needs something below /admin/
    ]
    mapped = apply(m, rows)
    assert mapped.filtered == {"host": 1, "path": 2, "ip": 2, "status": 2}
    assert [e["url"] for e in mapped.events.to_pylist()] == ["https://example.com/kept", "https://example.com/admin"]


def test_include_lists_keep_only_matching_hosts_and_paths(tmp_path):
    m = load_text(
        tmp_path,
        """
        [filters]
        non_human = false
        hosts = ["example.com", "*.example.com"]
        paths = ["/blog/*"]
    """,
    )
    rows = [
        row(host="example.com", path="/blog/a"),
        row(host="shop.example.com", path="/blog/b"),
        row(host="other.org", path="/blog/c"),
        row(path="/blog/a/b"),
        row(path="/"),
    ]
    mapped = apply(m, rows)
    assert mapped.filtered == {"host": 1, "path": 2}
    assert mapped.events.num_rows == 2


def test_non_human_opt_out_and_crawler_list():
    # Our own lists first, then the maintained CrawlerDetect list for what looks like a browser.
    assert classify("curl/8.5.0") == "http_client"
    assert classify("Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)") == "bot"
    # Matched by nothing in our own patterns, only by the CrawlerDetect list:
    google_preview = (
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/120.0.0.0 Safari/537.36 Google Web Preview"
    )
    from importer.useragents import _CATEGORIES

    assert not any(pattern.search(google_preview) for _, pattern in _CATEGORIES)
    assert classify(google_preview) == "bot"
    assert classify(BROWSER) is None and classify(IPHONE) is None


def test_non_human_false_keeps_bots(tmp_path):
    m = load_text(tmp_path, 'extends = "web"\n[filters]\nnon_human = false\n')
    mapped = apply(m, [row(user_agent="curl/8.5.0"), row(user_agent=None)])
    assert mapped.filtered == {} and mapped.events.num_rows == 2


def test_date_window_since_inclusive_until_exclusive():
    m = mapping.load("web")
    rows = [row(timestamp=WHEN.replace(day=d)) for d in (1, 2, 3, 4)]
    since = mapping.date_bound("2024-03-02")
    until = mapping.date_bound("2024-03-03", end=True)  # a date includes that whole day
    mapped = apply(m, rows, since=since, until=until)
    assert mapped.filtered == {"date_window": 2}
    assert [e["timestamp"].day for e in mapped.events.to_pylist()] == [2, 3]
    assert mapping.date_bound("2024-03-02T10:00:00+02:00") == dt.datetime(2024, 3, 2, 8, tzinfo=dt.UTC)
    with pytest.raises(ValueError, match="--since"):
        mapping.date_bound("yesterday")


def test_send_since_until_on_the_command_line(tmp_path):
    lines = [combined_line(when=dt.datetime(2024, 3, d, 12, tzinfo=dt.UTC), target=f"/d{d}") for d in (1, 2, 3)]
    log = write_log(tmp_path / "a.log", lines)
    out = tmp_path / "out.jsonl"
    report = tmp_path / "r.json"
    result = CliRunner().invoke(
        app,
        [
            "send",
            str(log),
            "-d",
            "example.com",
            "--dry-run",
            "-o",
            str(out),
            "--no-progress",
            "--since",
            "2024-03-02",
            "--until",
            "2024-03-02",
            "--report",
            str(report),
        ],
    )
    assert result.exit_code == 0, result.output
    assert [json.loads(x)["url"] for x in out.read_text().splitlines()] == ["https://example.com/d2"]
    data = json.loads(report.read_text())
    assert data["rows_filtered"] == {"date_window": 2}
    assert data["rows_read"] == data["rows_invalid"] + sum(data["rows_filtered"].values()) + data["events"]
    bad = CliRunner().invoke(app, ["send", str(log), "-d", "example.com", "--dry-run", "--since", "soon"])
    assert bad.exit_code == 2 and "--since" in bad.output


# --- site domain and URLs --------------------------------------------------------------------


def test_host_table_sets_the_domain_and_lists_unmatched_hosts(tmp_path):
    m = load_text(
        tmp_path,
        """
        extends = "web"
        [site.hosts]
        "www.example.com" = "example.com"
        "example.com" = "example.com"
        "blog.example.net" = "example.net"
    """,
    )
    rows = [
        row(host="www.example.com"),
        row(host="blog.example.net"),
        row(host="cdn.example.org"),
        row(host="cdn.example.org"),
        row(host=None),
    ]
    mapper = Mapper(m, "fallback.test")
    mapped = mapper.apply(frame(rows))
    assert [e["domain"] for e in mapped.events.to_pylist()] == ["example.com", "example.net"]
    assert mapped.filtered == {"unmatched_host": 3}
    note = " ".join(mapper.notices())
    assert "cdn.example.org (2)" in note and "(no host) (1)" in note


def test_unmatched_hosts_can_go_to_the_fixed_domain(tmp_path):
    m = load_text(
        tmp_path,
        """
        extends = "web"
        [site]
        unmatched = "domain"
        [site.hosts]
        "www.example.com" = "example.com"
    """,
    )
    mapper = Mapper(m, "fallback.test")
    mapped = mapper.apply(frame([row(host="www.example.com"), row(host="other.test")]))
    assert [e["domain"] for e in mapped.events.to_pylist()] == ["example.com", "fallback.test"]
    assert "other.test (1)" in " ".join(mapper.notices())


def test_query_keeps_what_plausible_reads_and_url_templates(tmp_path):
    m = load_text(
        tmp_path,
        """
        extends = "web"
        [url]
        scheme = "http"
        host = "{host}"
        path = "/site{path}"
        query_params = "plausible"
        keep_params = ["page"]
    """,
    )
    rows = [
        row(query="utm_source=news&session=abc&gclid=XYZ&page=2&utm_medium=email"),
        row(query="session=abc"),
        row(query=None, host=None),
    ]
    urls = [e["url"] for e in apply(m, rows).events.to_pylist()]
    assert urls == [
        "http://example.com/site/?utm_source=news&gclid=XYZ&page=2&utm_medium=email",
        "http://example.com/site/",
        "http://example.com/site/",
    ]
    none = load_text(tmp_path, 'extends = "web"\n[url]\nquery_params = "none"\n', "n.toml")
    assert apply(none, [row(query="utm_source=x")]).events.column("url").to_pylist() == ["https://example.com/"]


# --- event rules ----------------------------------------------------------------------------

RULES = """
    extends = "web"
    [input.columns]
    timestamp = "t"
    [input.extra]
    plan = "plan"
    kind = "kind"
    amount = "amount"
    currency = "currency"

    [filters]
    statuses = ["2xx", "3xx", "404"]
    methods = []

    [[rules]]
    label = "signup"
    name = "Signup"
    when.path = "/signup/done"
    when.method = ["POST"]
    when.status = ["3xx"]
    props = { plan = "{plan}", source = "form", first = true }

    [[rules]]
    label = "product"
    name = "Product: {sku}"
    when.path_regex = '^/p/(?P<sku>[A-Z0-9-]+)$'
    props = { sku = "{sku}", ua_kind = "{kind}" }
    interactive = false

    [[rules]]
    label = "order"
    name = "Purchase"
    when.columns.kind = { regex = '^order-(?P<tier>\\w+)$' }
    props = { tier = "{tier}" }
    revenue = { amount = "{amount}", currency = "{currency}" }

    [[rules]]
    label = "health"
    drop = true
    when.path = ["/up", "/status/**"]

    [[rules]]
    name = "Not Found"
    when.status = [404]
    when.columns.kind = ["a", "b"]
"""


def test_rules_first_match_wins_with_groups_columns_props_revenue_and_interactive(tmp_path):
    m = load_text(tmp_path, RULES)
    rows = [
        row(path="/signup/done", method="POST", status=302),  # Signup
        row(path="/signup/done", method="GET", status=200),  # method differs -> pageview
        row(path="/p/AB-12", status=200),  # Product: AB-12 (non-interactive)
        row(path="/checkout", status=200),  # order-gold -> Purchase with revenue
        row(path="/up"),  # dropped by rule
        row(path="/status/db/ping"),  # dropped by rule
        row(path="/missing", status=404),  # kind a -> Not Found
        row(path="/missing2", status=404),  # kind c -> pageview (default)
        row(path="/p/AB-12", status=200),  # first match wins over order rule below
    ]
    extra = {
        "plan": ["pro", None, None, None, None, None, None, None, None],
        "kind": [None, None, None, "order-gold", None, None, "a", "c", "order-silver"],
        "amount": [None, None, None, "19.90", None, None, None, None, "5"],
        "currency": [None, None, None, "eur", None, None, None, None, "EUR"],
    }
    mapped = apply(m, rows, extra)
    events = mapped.events.to_pylist()
    assert [e["name"] for e in events] == [
        "Signup",
        "pageview",
        "Product: AB-12",
        "Purchase",
        "Not Found",
        "pageview",
        "Product: AB-12",
    ]
    assert json.loads(events[0]["props"]) == {"plan": "pro", "source": "form", "first": "true"}
    assert events[1]["props"] is None
    # The prop from a null column is left out rather than sent empty.
    assert json.loads(events[2]["props"]) == {"sku": "AB-12"} and events[2]["interactive"] is False
    assert events[0]["interactive"] is None
    assert json.loads(events[3]["props"]) == {"tier": "gold"}
    assert (events[3]["revenue_amount"], events[3]["revenue_currency"]) == ("19.90", "EUR")
    assert events[6]["revenue_amount"] is None
    assert mapped.filtered == {"rule:health": 2}
    assert mapped.rules == {"signup": 1, "product": 2, "order": 1, "health": 2, "Not Found": 1, "default (pageview)": 2}
    assert sum(mapped.rules.values()) == len(rows)


def test_default_drop_counts_unmatched_rows(tmp_path):
    m = load_text(
        tmp_path,
        """
        extends = "web"
        [event]
        name = "pageview"
    """,
    )
    assert m.default_drop is False
    m = load_text(
        tmp_path,
        """
        [event]
        default = "drop"
        [[rules]]
        name = "Docs"
        when.path = "/docs/**"
    """,
        "d.toml",
    )
    mapped = apply(m, [row(path="/docs/a/b"), row(path="/blog")])
    assert mapped.filtered == {"no_rule": 1}
    assert mapped.rules == {"Docs": 1, "default (drop)": 1}


def test_web_goals_404_and_file_downloads():
    m = mapping.load("web-goals")
    rows = [
        row(path="/nope", status=404),
        row(path="/nope", status=404, method="HEAD"),
        row(path="/files/Guide.PDF", query="utm_source=x"),
        row(path="/app.dmg"),
        row(path="/pricing"),
        row(path="/style.css"),
        row(path="/gone", status=410),
    ]
    mapped = apply(m, rows)
    events = mapped.events.to_pylist()
    assert [(e["name"], json.loads(e["props"]) if e["props"] else None) for e in events] == [
        ("pageview", None),  # a live site sends the 404 page's pageview, then the goal
        ("404", {"path": "/nope"}),
        ("File Download", {"url": "https://example.com/files/Guide.PDF?utm_source=x"}),
        ("File Download", {"url": "https://example.com/app.dmg"}),
        ("pageview", None),
    ]
    assert mapped.filtered == {"method": 1, "static_asset": 1, "status": 1}


EXTENDING_WEB_GOALS = """
    extends = "web-goals"
    {placement}
    [[rules]]
    name = "Docs: {{page}}"
    when.path_regex = '^/docs/(?P<page>[^/]+)$'
    [[rules]]
    label = "private"
    drop = true
    when.path = "/private/**"
"""


@pytest.mark.parametrize(
    ("placement", "expected", "filtered"),
    [
        # By default the parent's rules come after this file's: both apply, this file's first.
        ("", ["Docs: guide.pdf", "pageview", "404", "File Download"], {"rule:private": 1}),
        ('parent_rules = "after"', ["Docs: guide.pdf", "pageview", "404", "File Download"], {"rule:private": 1}),
        # The parent's first: its download rule ([downloads]) takes the PDFs before this file's rules see them.
        ('parent_rules = "before"', ["File Download", "pageview", "404", "File Download", "File Download"], {}),
        # Without the parent's rules, its [downloads] table does not count either: web's not_a_page
        # takes the files before any rule.
        ('parent_rules = "none"', ["pageview"], {"not_a_page": 3}),
    ],
)
def test_an_extending_file_s_rules_and_the_parent_s(tmp_path, placement, expected, filtered):
    m = load_text(tmp_path, EXTENDING_WEB_GOALS.format(placement=placement))
    rows = [
        row(path="/docs/guide.pdf"),
        row(path="/nope", status=404),
        row(path="/files/a.zip"),
        row(path="/private/report.pdf"),
    ]
    mapped = apply(m, rows)
    assert [e["name"] for e in mapped.events.to_pylist()] == expected
    assert mapped.filtered == filtered


def test_an_error_in_an_extending_file_s_rule_names_its_own_position(tmp_path):
    load_text(tmp_path, 'extends = "web-goals"\n', name="base.toml")
    text = 'extends = "base.toml"\nparent_rules = "before"\n[[rules]]\nname = "ok"\n[[rules]]\nname = "{nope}"\n'
    with pytest.raises(MappingError) as error:
        load_text(tmp_path, text)
    assert "m.toml: 'rules[1].name' refers to {nope}" in str(error.value)
    with pytest.raises(MappingError, match=r"parent_rules.*no 'extends'"):
        load_text(tmp_path, 'parent_rules = "after"\n', name="alone.toml")
    with pytest.raises(MappingError, match="'parent_rules' must be one of"):
        load_text(tmp_path, 'extends = "web"\nparent_rules = "first"\n', name="bad.toml")


# --- Plausible's limits ---------------------------------------------------------------------

LIMITS = """
    [filters]
    non_human = false
    [limits]
    policy = "{policy}"
    [[rules]]
    name = "{{long_name}}"
    when.columns.long_name = {{ present = true }}
    props = {{ note = "{{value}}" }}
    props_from = "bag"
"""


LIMITS_INPUT = (
    '[input.columns]\ntimestamp = "t"\n[input.extra]\nlong_name = "a"\nvalue = "b"\n'
    '[input.params]\ncolumn = "c"\nbag = "bag"\n'
)


def _limits_frame() -> pa.Table:
    from importer.mapping.columnmap import BAG_TYPE

    rows = [row(path="/a"), row(path="/b"), row(path="/c"), row(path="/d" + "x" * 2100)]
    table = frame(rows, {"long_name": ["N" * 130, "ok", "ok", "ok"], "value": ["v", "é" * 1500, "v", "v"]})
    bag = [[{"key": f"k{i}", "value": "x"} for i in range(35)] if r == 2 else [] for r in range(4)]
    return table.append_column("bag", pa.array(bag, BAG_TYPE))


def test_limits_truncate_policy_cuts_and_counts(tmp_path):
    m = load_text(tmp_path, LIMITS_INPUT + textwrap.dedent(LIMITS.format(policy="truncate")), "t.toml")
    mapper = Mapper(m, "example.com")
    mapped = mapper.apply(_limits_frame())
    events = mapped.events.to_pylist()
    assert len(events[0]["name"]) == 120
    assert len(json.loads(events[1]["props"])["note"].encode()) <= 2000
    assert len(json.loads(events[2]["props"])) == 30
    assert mapped.filtered == {"url_too_long": 1}  # a cut URL would point elsewhere: always left out
    notes = " ".join(mapper.notices())
    assert (
        "event names cut to 120 characters: 1" in notes and "prop values cut" in notes and "more than 30 props" in notes
    )


def test_limits_reject_policy_drops_and_counts(tmp_path):
    m = load_text(tmp_path, LIMITS_INPUT + textwrap.dedent(LIMITS.format(policy="reject")), "r.toml")
    mapped = Mapper(m, "example.com").apply(_limits_frame())
    assert mapped.events.num_rows == 0
    assert mapped.filtered == {"limit:props": 2, "limit:name": 1, "url_too_long": 1}


def test_props_are_valid_json_whatever_the_characters(tmp_path):
    m = load_text(
        tmp_path,
        """
        [filters]
        non_human = false
        [[rules]]
        name = "x"
        props = { q = "{query}" }
    """,
    )
    tricky = 'a"b\\c\nd\te\x01 ü €'
    mapped = apply(m, [row(query=tricky)])
    assert json.loads(mapped.events.column("props")[0].as_py()) == {"q": tricky}


# --- synthetic visitors ---------------------------------------------------------------------


def test_synthetic_visitors_are_stable_distinct_and_in_the_documentation_range():
    import ipaddress

    a, b = synthetic_ip("visitor-1"), synthetic_ip("visitor-2")
    assert a == synthetic_ip("visitor-1") and a != b
    assert all(ipaddress.ip_address(x) in ipaddress.ip_network("2001:db8::/32") for x in (a, b))
    # written as RFC 5952 has it (no leading zeros, "::" for zero runs), as Plausible logs it
    ids = [f"visitor-{i}" for i in range(300)]
    assert all(str(ipaddress.ip_address(synthetic_ip(v))) == synthetic_ip(v) for v in ids)
    assert "iPhone" in synthetic_user_agent("mobile", "Safari", "17.3", "iOS", "17.3")
    assert "iPad" in synthetic_user_agent("tablet", None, None, "iOS", None)
    assert "Firefox/123.0" in synthetic_user_agent("desktop", "FF", "123.0", "LIN", None)
    assert "Edg/" in synthetic_user_agent("laptop", "edge-chromium", None, "Windows 10", None)
    for ua in (synthetic_user_agent(), synthetic_user_agent("mobile", "Chrome", None, "Android", "14")):
        assert classify(ua) is None  # never filtered as a bot


def test_revenue_and_non_interactive_events_reach_the_receiver(tmp_path, receiver):
    from importer.pipeline import send

    m = tmp_path / "m.toml"
    m.write_text(
        textwrap.dedent("""
        extends = "web"
        [[rules]]
        name = "Video: {id}"
        when.path_regex = '^/video/(?P<id>\\d+)$'
        interactive = false
        [[rules]]
        name = "Order"
        when.path_regex = '^/thanks/(?P<cents>\\d+)\\.(?P<frac>\\d\\d)$'
        revenue = { amount = "{cents}.{frac}", currency = "eur" }
    """),
        encoding="utf-8",
    )
    log = write_log(
        tmp_path / "a.log",
        [combined_line(target="/video/7"), combined_line(target="/thanks/12.50"), combined_line(target="/")],
    )
    report = send(
        [log],
        domain="example.com",
        read=ReadOptions(mapping=str(m)),
        delivery=DeliveryOptions(endpoint=receiver.endpoint, rate=0, replay_history=True),
        outputs=OutputOptions(rejects=tmp_path / "rejects.jsonl", failed=None),
    )
    assert report.accepted == 3
    got = {e["name"]: e for e in receiver.events}
    assert got["Video: 7"]["interactive"] is False and "revenue" not in got["Video: 7"]
    assert got["Order"]["revenue"] == {"amount": "12.50", "currency": "EUR"} and "interactive" not in got["Order"]
    assert "interactive" not in got["pageview"] and "revenue" not in got["pageview"]


def test_mappings_command_shows_one_mapping_rules():
    result = CliRunner().invoke(app, ["mappings", "web-goals"])
    assert result.exit_code == 0
    assert '1. file download: the [downloads] table -> \'File Download\'; props {"url": "{url}"}' in result.stdout
    assert (
        '2. 404 page: when method ["GET"], status ["404"] -> \'404\'; props {"path": "{path}"}; '
        "also the pageview, first"
    ) in result.stdout
    assert "otherwise: 'pageview'" in result.stdout


# --- regressions from the mapping optimisations ----------------------------------------------


def test_template_over_a_column_another_rule_encoded_keeps_constant_props_on_null_rows(tmp_path):
    # The first rule's regex groups encode the referrer column for the batch; the second
    # rule's props then render per distinct referrer. Rows whose referrer is null (or empty)
    # must still carry the constant prop (a reference to null renders as nothing).
    m = load_text(
        tmp_path,
        """
        [[rules]]
        name = "From {site}"
        when.columns.referrer = { regex = '^https://(?P<site>[a-z0-9.]+)/' }

        [[rules]]
        name = "Other"
        props = { ref = "{referrer}", kind = "page" }
    """,
    )
    rows = [row(path=f"/a{i}", referrer=f"https://s{i % 3}.example/") for i in range(12)] + [
        row(path="/b", referrer=None),
        row(path="/c", referrer=""),
        row(path="/d", referrer="ftp://x/"),
    ]
    out = apply(m, rows)
    events = list(zip(out.events.column("name").to_pylist(), out.events.column("props").to_pylist(), strict=False))
    assert events[0] == ("From s0.example", None)
    assert [json.loads(p) for _, p in events[12:]] == [
        {"kind": "page"},
        {"kind": "page"},
        {"ref": "ftp://x/", "kind": "page"},
    ]
    assert out.rules == {"From {site}": 12, "Other": 3}


@pytest.mark.parametrize("column", ["referrer", "path"])
def test_one_prop_value_over_the_limit_spares_the_rule_s_other_rows(tmp_path, column):
    # One value over 2,000 bytes among the batch's distinct values (per distinct referrer, or
    # per distinct path through the run's path memo). README, "Plausible's limits": with
    # "reject" that row's event is left out and counted as limit:props; with "truncate" that
    # value is cut on a character boundary. Either way every other row keeps all its props.
    template = "{referrer}" if column == "referrer" else "{path}{path}"
    long_value = "é" * 1200  # 2,400 bytes

    def rows_():
        if column == "referrer":
            return (
                [row(path="/docs/a", referrer=f"r{i % 5}") for i in range(20)]
                + [row(path="/docs/a", referrer=long_value)]
                + [row(path="/docs/a", referrer=f"r{i}") for i in range(10)]
            )
        return (
            [row(path=f"/docs/p{i % 5}") for i in range(20)]
            + [row(path="/docs/" + long_value[:600])]
            + [row(path=f"/docs/p{i}") for i in range(10)]
        )

    def expected_value(i):
        return f"r{i % 5}" if column == "referrer" else f"/docs/p{i % 5}" * 2

    for policy in ("reject", "truncate"):
        m = load_text(
            tmp_path,
            f"""
            [limits]
            policy = "{policy}"

            [[rules]]
            name = "Doc"
            when.path = "/docs/**"
            props = {{ value = "{template}", kind = "doc" }}
        """,
            name=f"{policy}-{column}.toml",
        )
        mapper = Mapper(m, "example.com")
        out = mapper.apply(frame(rows_()))
        props = [json.loads(p) for p in out.events.column("props").to_pylist()]
        assert props[:20] == [{"value": expected_value(i), "kind": "doc"} for i in range(20)]
        rest = [{"value": f"r{i}" if column == "referrer" else f"/docs/p{i}" * 2, "kind": "doc"} for i in range(10)]
        if policy == "reject":
            assert out.filtered == {"limit:props": 1}
            assert props[20:] == rest
        else:
            assert out.filtered == {}
            cut = props[20]["value"]
            full = long_value if column == "referrer" else ("/docs/" + long_value[:600]) * 2
            assert (
                full.startswith(cut)
                and plausible.MAX_PROP_VALUE_BYTES - 1 <= len(cut.encode()) <= plausible.MAX_PROP_VALUE_BYTES
            )
            assert props[20]["kind"] == "doc"
            assert props[21:] == rest
            assert mapper.truncated["prop_value"] == 1
