"""From a mapping file's dict (see :mod:`.spec`) to a validated :class:`.model.Mapping`."""

from __future__ import annotations

import dataclasses
import ipaddress
import zoneinfo
from collections import Counter
from typing import Any

from .. import schema
from ..plausible import MAX_NAME_CHARS, MAX_PROP_KEY_BYTES, MAX_PROPS
from .columnmap import (
    INPUT_FORMATS,
    MAPPABLE,
    TIMESTAMP_FORMATS,
    ColumnMap,
    ParamsSpec,
)
from .model import (
    ColumnCondition,
    Downloads,
    Mapping,
    Rule,
    StatusRule,
    Template,
    check_regex,
    glob_to_regex,
)
from .spec import (
    ADD_SUFFIX,
    DOWNLOADS_RULE,
    RULE_SOURCES,
    MappingError,
    builtin_names,
    one_of,
    read_toml,
    resolve,
)


def load(name_or_path: str) -> Mapping:
    """Load and validate a mapping by built-in name or path."""
    path = resolve(name_or_path)
    origin = str(path)
    data = read_toml(path)
    filters, event, url = data.get("filters", {}), data.get("event", {}), data.get("url", {})
    column_map = _column_map(data["input"], origin) if "input" in data else None
    columns = set(schema.COLUMNS) | (set(column_map.extra_names) if column_map else set())
    if "name" in event and "default" in event:
        raise MappingError(f"{origin}: 'event.name' and 'event.default' say the same thing; keep one")
    default = event.get("default", event.get("name", "pageview"))
    name = "pageview" if default == "drop" else default
    if not name.strip() or len(name) > MAX_NAME_CHARS:
        raise MappingError(f"{origin}: 'event.default' must be 1 to {MAX_NAME_CHARS} characters")
    scheme = url.get("scheme", event.get("scheme", "https"))
    one_of(scheme, ("http", "https"), origin, "url.scheme" if "scheme" in url else "event.scheme")
    known = columns | {"domain"}
    templates = {
        part: Template.parse(url[part], known, origin, f"url.{part}")
        for part in ("host", "path", "query")
        if part in url
    }
    query_params = one_of(url.get("query_params", "all"), ("all", "plausible", "none"), origin, "url.query_params")
    site = data.get("site", {})
    unmatched = one_of(site.get("unmatched", "drop"), ("drop", "domain"), origin, "site.unmatched")
    bags = {column_map.params.bag} if column_map and column_map.params and column_map.params.bag else set()
    # the [downloads] table counts when its rule is among the rules (not left out by parent_rules)
    has_rule = any(DOWNLOADS_RULE in spec for spec in data.get("rules", []))
    downloads = _downloads(data.get("downloads"), origin) if has_rule else None
    policy = one_of(data.get("limits", {}).get("policy", "truncate"), ("truncate", "reject"), origin, "limits.policy")
    return Mapping(
        name=data.get("name", path.stem),
        origin=origin,
        description=data.get("description", ""),
        site_hosts=_site_hosts(site, origin),
        unmatched=unmatched,
        event_name=name,
        default_drop=default == "drop",
        scheme=scheme,
        url_host=templates.get("host"),
        url_path=templates.get("path"),
        url_query=templates.get("query"),
        referrer=Template.parse(event["referrer"], known, origin, "event.referrer") if "referrer" in event else None,
        query_params=query_params,
        keep_params=tuple(url.get("keep_params", [])),
        rules=_rules(data, columns, origin, bags, downloads),
        downloads=downloads,
        visitor=_visitor(data, columns, origin),
        limit_policy=policy,
        column_map=column_map,
        raw=data,
        **_filters(filters, origin),
    )


def describe_builtins() -> list[tuple[str, str]]:
    """(name, description) of every built-in mapping; a broken file says so instead."""
    out = []
    for name in builtin_names():
        try:
            out.append((name, load(name).description))
        except MappingError as exc:
            out.append((name, f"(cannot be loaded: {exc})"))
    return out


def _filters(filters: dict[str, Any], origin: str) -> dict[str, Any]:
    """The Mapping fields the ``[filters]`` table sets."""
    for k in ("path_regex", "exclude_path_regex"):
        if k in filters:
            check_regex(filters[k], origin, f"filters.{k}")
    paths = tuple(glob_to_regex(g) for g in filters.get("paths", [])) + (
        (filters["path_regex"],) if "path_regex" in filters else ()
    )
    exclude_paths = tuple(glob_to_regex(g) for g in filters.get("exclude_paths", [])) + (
        (filters["exclude_path_regex"],) if "exclude_path_regex" in filters else ()
    )
    networks = []
    for i, item in enumerate(filters.get("exclude_ips", [])):
        try:
            networks.append(ipaddress.ip_network(item.strip(), strict=False))
        except ValueError:
            raise MappingError(
                f"{origin}: 'filters.exclude_ips[{i}]' {item!r} is not an IP address or CIDR range"
            ) from None
    return {
        "non_human": filters.get("non_human", True),
        "methods": tuple(m.upper() for m in filters.get("methods", [])),
        "statuses": StatusRule.parse(filters["statuses"], origin) if filters.get("statuses") else None,
        "exclude_statuses": (
            StatusRule.parse(filters["exclude_statuses"], origin, "filters.exclude_statuses")
            if filters.get("exclude_statuses")
            else None
        ),
        "static_extensions": frozenset(e.lower().lstrip(".") for e in filters.get("static_extensions", [])),
        "static_files": frozenset(f.lower() for f in filters.get("static_files", [])),
        "drop_partial_content": filters.get("drop_partial_content", False),
        "not_page_extensions": _extensions(_with_additions(filters, "not_page_extensions")),
        "endpoints": tuple(glob_to_regex(g.lower()) for g in _with_additions(filters, "endpoints")),
        "hosts": tuple(glob_to_regex(h.lower()) for h in filters.get("hosts", [])),
        "exclude_hosts": tuple(glob_to_regex(h.lower()) for h in filters.get("exclude_hosts", [])),
        "paths": paths,
        "exclude_paths": exclude_paths,
        "exclude_networks": tuple(networks),
    }


def _with_additions(table: dict[str, Any], key: str) -> list[Any]:
    """A list key and the additions to it (``key_add``, from this file and those it extends)."""
    return list(table.get(key, [])) + list(table.get(key + ADD_SUFFIX, []))


def _extensions(items: list[str]) -> frozenset[str]:
    return frozenset(e.lower().lstrip(".") for e in items)


def _downloads(spec: dict[str, Any] | None, origin: str) -> Downloads | None:
    if spec is None:
        return None
    extensions = _extensions(_with_additions(spec, "extensions"))
    if not extensions:
        raise MappingError(f"{origin}: 'downloads.extensions' must list at least one file extension (pdf, zip...)")
    bad = sorted(e for e in extensions if not e.isalnum())
    if bad:
        raise MappingError(f"{origin}: 'downloads.extensions' {bad[0]!r} is not a file extension (letters and digits)")
    name = spec.get("name", "File Download")
    if not name.strip() or len(name) > MAX_NAME_CHARS:
        raise MappingError(f"{origin}: 'downloads.name' must be 1 to {MAX_NAME_CHARS} characters")
    minutes = spec.get("session_gap_minutes", 30)
    if minutes < 0:
        raise MappingError(f"{origin}: 'downloads.session_gap_minutes' must be 0 or more, not {minutes}")
    return Downloads(extensions, name, minutes * 60)


def _download_rule(downloads: Downloads, index: int, origin: str) -> Rule:
    """The rule the ``[downloads]`` table stands for, first among its file's rules."""
    pattern = r"(?i)\.(" + "|".join(sorted(downloads.extensions)) + ")$"
    return Rule(
        label="file download",
        index=index,
        name=Template.parse(downloads.name, set(), origin, "downloads.name"),
        path_regex=pattern,
        status=StatusRule(frozenset({2}), frozenset({304})),
        methods=("GET",),
        props=(("url", Template.parse("{url}", {"url"}, origin, "downloads")),),
    )


def _site_hosts(site: dict[str, Any], origin: str) -> dict[str, str]:
    site_hosts = {h.strip().lower(): d.strip().lower() for h, d in site.get("hosts", {}).items()}
    for host, domain in site_hosts.items():
        if not domain or "/" in domain or " " in domain:
            raise MappingError(
                f"{origin}: 'site.hosts.{host}' must be a site domain such as example.com, not {domain!r}"
            )
    return site_hosts


def _visitor(data: dict[str, Any], columns: set[str], origin: str) -> dict[str, str]:
    visitor = dict(data.get("visitor", {}))
    one_of(visitor.get("replace_ip", "missing"), ("missing", "always"), origin, "visitor.replace_ip")
    for k, v in visitor.items():
        if k != "replace_ip" and v not in columns:
            raise MappingError(f"{origin}: 'visitor.{k}': no column named {v!r} (known: {', '.join(sorted(columns))})")
    return visitor


def _column_map(spec: dict[str, Any], origin: str) -> ColumnMap:
    if "columns" not in spec:
        raise MappingError(f"{origin}: 'input' needs an 'input.columns' table")
    fmt = spec.get("timestamp_format", "iso")
    if fmt not in TIMESTAMP_FORMATS and "%" not in fmt:
        raise MappingError(
            f"{origin}: 'input.timestamp_format' is {fmt!r}; use one of {', '.join(TIMESTAMP_FORMATS)} "
            "or a strptime pattern such as '%Y-%m-%d %H:%M:%S'"
        )
    if spec.get("format") not in (None, "auto", *INPUT_FORMATS):
        raise MappingError(
            f"{origin}: 'input.format' must be one of {', '.join(INPUT_FORMATS)}, not {spec['format']!r}"
        )
    delimiter = spec.get("delimiter")
    if delimiter is not None and len(delimiter) != 1:
        raise MappingError(f"{origin}: 'input.delimiter' must be one character, not {delimiter!r}")
    params = None
    if "params" in spec:
        p = spec["params"]
        if "column" not in p:
            raise MappingError(f"{origin}: 'input.params' needs 'column' (the column holding the parameters)")
        params = ParamsSpec(
            column=p["column"],
            keys=tuple(p.get("keys", [])),
            bag=p.get("bag"),
            exclude=frozenset(p.get("exclude", [])),
            exclude_prefixes=tuple(p.get("exclude_prefixes", [])),
        )
    try:
        zoneinfo.ZoneInfo(spec.get("timezone", "UTC"))
    except (KeyError, ValueError, OSError):  # (ZoneInfoNotFoundError is a KeyError)
        raise MappingError(
            f"{origin}: 'input.timezone' {spec.get('timezone')!r} is not an IANA time zone name"
        ) from None
    try:
        return ColumnMap(
            columns=dict(spec["columns"]),
            format=spec.get("format", "auto"),
            timestamp_format=fmt,
            timezone=spec.get("timezone", "UTC"),
            extra=dict(spec.get("extra", {})),
            params=params,
            delimiter=delimiter,
            quote=spec.get("quote", True),
            header=tuple(spec.get("header", [])),
            null_values=tuple(spec.get("null_values", [])),
        )
    except ValueError as exc:
        raise MappingError(f"{origin}: 'input': {exc} (mappable: {', '.join(MAPPABLE)})") from None


def _column_condition(column: str, spec: Any, origin: str, key: str) -> ColumnCondition:
    def text(v: Any) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, (str, int, float)):
            return str(v)
        raise MappingError(f"{origin}: '{key}' values must be strings, numbers or booleans, not {v!r}")

    if isinstance(spec, list):
        return ColumnCondition(column, "in", tuple(text(v) for v in spec))
    if not isinstance(spec, dict):
        return ColumnCondition(column, "equals", (text(spec),))
    if len(spec) != 1:
        raise MappingError(f"{origin}: '{key}' must hold exactly one of equals, in, not_in, regex, present")
    ((op, value),) = spec.items()
    if op == "equals":
        return ColumnCondition(column, "equals", (text(value),))
    if op in ("in", "not_in"):
        if not isinstance(value, list):
            raise MappingError(f"{origin}: '{key}.{op}' must be a list")
        return ColumnCondition(column, op, tuple(text(v) for v in value))
    if op == "regex":
        if not isinstance(value, str):
            raise MappingError(f"{origin}: '{key}.regex' must be a string")
        groups = check_regex(value, origin, f"{key}.regex")
        return ColumnCondition(column, "regex", pattern=value, groups=tuple(groups))
    if op == "present":
        if not isinstance(value, bool):
            raise MappingError(f"{origin}: '{key}.present' must be true or false")
        return ColumnCondition(column, "present", present=value)
    raise MappingError(f"{origin}: unknown key '{key}.{op}' (known keys here: equals, in, not_in, regex, present)")


def _rules(
    data: dict[str, Any], columns: set[str], origin: str, bags: set[str], downloads: Downloads | None
) -> tuple[Rule, ...]:
    rules: list[Rule] = []
    labels: Counter[str] = Counter()
    sources = data.get(RULE_SOURCES)
    for i, spec in enumerate(data.get("rules", [])):
        # errors name the file and the position the rule has there (extended files' too)
        rule_origin, key = sources[i] if sources else (origin, f"rules[{i}]")
        if DOWNLOADS_RULE in spec:
            assert downloads is not None  # (its rule is there, so the table is)
            rule = _download_rule(downloads, i, rule_origin)
        else:
            rule = _rule(spec, i, columns, rule_origin, key, bags)
        labels[rule.label] += 1
        if labels[rule.label] > 1:
            rule = dataclasses.replace(rule, label=f"{rule.label} #{labels[rule.label]}")
        rules.append(rule)
    return tuple(rules)


def _paths(when: dict[str, Any], origin: str, key: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """A rule's ``when.path`` globs: (the literal paths, the regexes of those with wildcards)."""
    literals: list[str] = []
    regexes: list[str] = []
    globs = when["path"] if isinstance(when.get("path"), list) else [when["path"]] if "path" in when else []
    for j, g in enumerate(globs):
        if not isinstance(g, str):
            raise MappingError(f"{origin}: '{key}.when.path[{j}]' must be a string")
        if "*" in g or "?" in g:
            regexes.append(glob_to_regex(g))
        else:
            literals.append(g)
    return tuple(literals), tuple(regexes)


def _rule(spec: dict[str, Any], i: int, columns: set[str], origin: str, key: str, bags: set[str]) -> Rule:
    drop = spec.get("drop", False)
    if drop and any(k in spec for k in ("name", "props", "props_from", "revenue", "interactive", "also_pageview")):
        raise MappingError(
            f"{origin}: '{key}' drops rows, so it may not also set name, props, revenue, interactive or also_pageview"
        )
    if not drop and "name" not in spec:
        raise MappingError(f"{origin}: '{key}' needs a 'name' (the event name) or 'drop = true'")
    when = spec.get("when", {})
    path_literals, path_regexes = _paths(when, origin, key)
    path_regex = when.get("path_regex")
    path_groups = check_regex(path_regex, origin, f"{key}.when.path_regex") if path_regex is not None else []
    groups = list(path_groups)
    conditions = []
    for column, cond in when.get("columns", {}).items():
        ckey = f"{key}.when.columns.{column}"
        if column not in columns:
            raise MappingError(f"{origin}: '{ckey}': no column named {column!r} (known: {', '.join(sorted(columns))})")
        condition = _column_condition(column, cond, origin, ckey)
        groups += condition.groups
        conditions.append(condition)
    known = columns | set(groups) | {"url", "domain"}
    name = Template.parse(spec["name"], known, origin, f"{key}.name") if "name" in spec else None
    if name is not None and name.constant is not None and not (0 < len(name.constant.strip()) <= MAX_NAME_CHARS):
        raise MappingError(f"{origin}: '{key}.name' must be 1 to {MAX_NAME_CHARS} characters")
    props = _props(spec, known, origin, key)
    props_from = spec.get("props_from")
    if props_from is not None and props_from not in bags:
        raise MappingError(
            f"{origin}: '{key}.props_from' must name a parameter bag ([input.params] bag = ...), "
            f"not {props_from!r}" + (f" (bags here: {', '.join(sorted(bags))})" if bags else " (this mapping has none)")
        )
    amount = currency = None
    if "revenue" in spec:
        revenue = spec["revenue"]
        if "amount" not in revenue or "currency" not in revenue:
            raise MappingError(f"{origin}: '{key}.revenue' needs both 'amount' and 'currency'")
        amount = Template.parse(revenue["amount"], known, origin, f"{key}.revenue.amount")
        currency = Template.parse(revenue["currency"], known, origin, f"{key}.revenue.currency")
    return Rule(
        label=spec.get("label") or ("drop" if drop else spec["name"]),
        index=i,
        drop=drop,
        name=name,
        path_literals=path_literals,
        path_regexes=path_regexes,
        path_regex=path_regex,
        path_groups=tuple(path_groups),
        status=StatusRule.parse(when["status"], origin, f"{key}.when.status") if when.get("status") else None,
        methods=tuple(m.upper() for m in when.get("method", [])),
        columns=tuple(conditions),
        props=props,
        props_from=props_from,
        revenue_amount=amount,
        revenue_currency=currency,
        interactive=spec.get("interactive"),
        also_pageview=spec.get("also_pageview", False),
    )


def _props(spec: dict[str, Any], known: set[str], origin: str, key: str) -> tuple[tuple[str, Template], ...]:
    props = []
    for prop, value in spec.get("props", {}).items():
        if not prop.strip() or len(prop.encode()) > MAX_PROP_KEY_BYTES:
            raise MappingError(f"{origin}: '{key}.props' key {prop!r} must be 1 to {MAX_PROP_KEY_BYTES} bytes")
        text = ("true" if value else "false") if isinstance(value, bool) else str(value)
        props.append((prop, Template.parse(text, known, origin, f"{key}.props.{prop}")))
    if len(props) > MAX_PROPS:
        raise MappingError(f"{origin}: '{key}.props' has {len(props)} props; Plausible keeps at most {MAX_PROPS}")
    return tuple(props)
