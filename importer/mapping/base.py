"""The columns every event of a batch shares whatever rule it matched: domain, URL, referrer,
and, for exports without IPs or user agents, a synthetic visitor."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..arrowutil import repeat_string
from ..plausible import READ_PARAMS as PLAUSIBLE_PARAMS
from ..useragents import synthetic_ip, synthetic_user_agent
from .arrow import chunk, join, on_distinct
from .model import Mapping


@dataclass
class VisitorCache:
    """Synthetic visitors made so far in the run (the same id always gets the same address)."""

    ips: dict[str, str] = field(default_factory=dict)
    agents: dict[str, str] = field(default_factory=dict)


def event_base(
    m: Mapping, values: dict[str, pa.Array], n: int, domain: str, visitors: VisitorCache
) -> dict[str, pa.Array]:
    """The rows' columns, plus ``domain`` and ``url``, with ``referrer`` rendered and visitors
    synthesised as the mapping says."""
    values = dict(values)
    site_domain = repeat_string(domain, n)
    if m.site_hosts:
        keys = pa.array(sorted(m.site_hosts), pa.string())
        index = pc.index_in(values["host"], value_set=keys)
        mapped = pc.take(pa.array([m.site_hosts[k] for k in keys.to_pylist()], pa.string()), index)
        site_domain = pc.coalesce(mapped, site_domain)
    values["domain"] = site_domain
    host = chunk(m.url_host.render(values, n) if m.url_host else values["host"])
    if host.null_count:
        host = pc.coalesce(host, site_domain)
    path = chunk(m.url_path.render(values, n) if m.url_path else values["path"])
    if path.null_count:
        path = pc.fill_null(path, "/")
    query = chunk(_filter_query(m, m.url_query.render(values, n) if m.url_query else values["query"]))
    if query.null_count == len(query):
        values["url"] = join(f"{m.scheme}://", host, path, "")
    else:
        # "?query" where there is a query; nothing where it is null or empty.
        query_part = pc.if_else(pc.equal(query, ""), pa.scalar(None, pa.string()), join("?", query, ""))
        values["url"] = join(f"{m.scheme}://", host, path, query_part, "", null_handling="replace", null_replacement="")
    if m.referrer is not None:
        values["referrer"] = chunk(m.referrer.render(values, n))
    if m.visitor:
        _synthesise_visitor(m.visitor, values, visitors)
    return values


def _filter_query(m: Mapping, query: pa.Array) -> pa.Array:
    if m.query_params == "all":
        return query
    if m.query_params == "none":
        return pa.nulls(len(query), pa.string())
    keep = set(PLAUSIBLE_PARAMS) | set(m.keep_params)
    pattern = "^(?:" + "|".join(re.escape(k) for k in sorted(keep)) + ")(?:=|$)"

    def strip(distinct: pa.Array) -> pa.Array:
        parts = pc.split_pattern(distinct, "&")
        flat = pc.list_flatten(parts)
        parent = pc.list_parent_indices(parts).to_numpy(zero_copy_only=False)
        hit = pc.fill_null(pc.match_substring_regex(flat, pattern), False)
        offsets = np.zeros(len(distinct) + 1, np.int32)
        np.cumsum(np.bincount(parent[hit.to_numpy(zero_copy_only=False)], minlength=len(distinct)), out=offsets[1:])
        joined = pc.binary_join(pa.ListArray.from_arrays(pa.array(offsets), flat.filter(hit)), "&")
        return pc.if_else(pc.equal(joined, ""), pa.scalar(None, pa.string()), joined)

    return on_distinct(query, strip)


def _synthesise_visitor(v: dict[str, str], values: dict[str, pa.Array], cache: VisitorCache) -> None:
    """Exports without IPs or user agents: a stable address and a built UA per visitor."""
    if "id" in v:

        def addresses(distinct: pa.Array) -> pa.Array:
            out = []
            for value in distinct.to_pylist():
                if value is not None and value not in cache.ips:
                    cache.ips[value] = synthetic_ip(value)
                out.append(None if value is None else cache.ips[value])
            return pa.array(out, pa.string())

        synthetic = on_distinct(values[v["id"]], addresses)
        values["ip"] = chunk(synthetic if v.get("replace_ip") == "always" else pc.coalesce(values["ip"], synthetic))
    parts = [k for k in ("device", "browser", "browser_version", "os", "os_version") if k in v]
    if not pc.any(pc.is_null(values["user_agent"])).as_py():
        return
    if not parts:
        values["user_agent"] = chunk(pc.coalesce(values["user_agent"], pa.scalar(synthetic_user_agent())))
        return
    combo = join(*[pc.fill_null(values[v[k]], "\x00") for k in parts], "\x01")

    def agents(distinct: pa.Array) -> pa.Array:
        out = []
        for value in distinct.to_pylist():
            if value not in cache.agents:
                items = [None if x == "\x00" else x for x in value.split("\x01")]
                cache.agents[value] = synthetic_user_agent(**dict(zip(parts, items, strict=False)))
            out.append(cache.agents[value])
        return pa.array(out, pa.string())

    values["user_agent"] = chunk(pc.coalesce(values["user_agent"], on_distinct(combo, agents)))
