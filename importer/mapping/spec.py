"""The mapping file's TOML: its schema, ``extends`` and the checks that name the file and the key.

A mapping file is read into a plain dict here; :mod:`.load` turns that dict into a
:class:`.model.Mapping`. Every problem is a :class:`MappingError` whose message names the
file and the key, never silently ignored.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from .. import resources

PARENT_RULES = ("after", "before", "none")  # where an extended mapping's rules go
RULE_SOURCES = "\0rule sources"  # in a read mapping's data: (file, key) of each rule
DOWNLOADS_RULE = "\0downloads"  # a rule standing for the [downloads] table, first among its file's rules


class MappingError(Exception):
    """A mapping file that cannot be used; the message names the file and the key."""


_SCALAR = (str, int, float, bool)
_RULE_SPEC: dict[str, Any] = {
    "label": str,
    "name": str,
    "drop": bool,
    "when": {
        "path": (str, list),
        "path_regex": str,
        "status": [(str, int)],
        "method": [str],
        "columns": {"*": (str, int, float, bool, list, dict)},
    },
    "props": {"*": _SCALAR},
    "props_from": str,
    "revenue": {"amount": str, "currency": str},
    "interactive": bool,
    "also_pageview": bool,
}

# The shape of a mapping file: a nested dict of key -> expected type. "*" matches any key.
_SPEC: dict[str, Any] = {
    "name": str,
    "description": str,
    "extends": str,
    "parent_rules": str,
    "input": {
        "format": str,
        "timestamp_format": str,
        "timezone": str,
        "delimiter": str,
        "quote": bool,
        "header": [str],
        "null_values": [str],
        "columns": {"*": str},
        "extra": {"*": str},
        "params": {"column": str, "keys": [str], "bag": str, "exclude": [str], "exclude_prefixes": [str]},
    },
    "filters": {
        "non_human": bool,
        "methods": [str],
        "statuses": [(str, int)],
        "exclude_statuses": [(str, int)],
        "static_extensions": [str],
        "static_files": [str],
        "drop_partial_content": bool,
        "not_page_extensions": [str],
        "not_page_extensions_add": [str],
        "endpoints": [str],
        "endpoints_add": [str],
        "hosts": [str],
        "exclude_hosts": [str],
        "paths": [str],
        "exclude_paths": [str],
        "path_regex": str,
        "exclude_path_regex": str,
        "exclude_ips": [str],
    },
    "site": {"hosts": {"*": str}, "unmatched": str},
    "url": {
        "scheme": str,
        "host": str,
        "path": str,
        "query": str,
        "query_params": str,
        "keep_params": [str],
    },
    "event": {"name": str, "default": str, "scheme": str, "referrer": str},
    "rules": [_RULE_SPEC],
    "visitor": {
        "id": str,
        "device": str,
        "browser": str,
        "browser_version": str,
        "os": str,
        "os_version": str,
        "replace_ip": str,
        "country": str,
        "region": str,
        "city": str,
    },
    "limits": {"policy": str},
    "downloads": {"extensions": [str], "extensions_add": [str], "name": str, "session_gap_minutes": int},
}
ADD_SUFFIX = "_add"  # a list key ending so adds to the list of the same name (and to the file it extends)

_TYPE_NAMES: dict[Any, str] = {
    str: "a string",
    bool: "true or false",
    int: "an integer",
    float: "a number",
    list: "a list",
    dict: "a table",
}


def _type_name(expected: Any) -> str:
    if isinstance(expected, tuple):
        return " or ".join(_type_name(t) for t in expected)
    if isinstance(expected, list):
        return f"a list of {_type_name(expected[0])}"
    if isinstance(expected, dict):
        return "a table"
    return _TYPE_NAMES.get(expected, getattr(expected, "__name__", str(expected)))


def check_shape(value: Any, spec: Any, key: str, origin: str) -> None:
    """Raise a MappingError naming the key when ``value`` does not have the shape ``spec`` says."""
    if isinstance(spec, dict):
        if not isinstance(value, dict):
            raise MappingError(f"{origin}: '{key}' must be a table, not {type(value).__name__}")
        for sub_key, sub_value in value.items():
            full = f"{key}.{sub_key}" if key else sub_key
            if sub_key in spec:
                check_shape(sub_value, spec[sub_key], full, origin)
            elif "*" in spec:
                check_shape(sub_value, spec["*"], full, origin)
            else:
                known = ", ".join(k for k in spec if k != "*")
                raise MappingError(f"{origin}: unknown key '{full}' (known keys here: {known})")
        return
    if isinstance(spec, list):
        if not isinstance(value, list):
            raise MappingError(f"{origin}: '{key}' must be {_type_name(spec)}, not {type(value).__name__}")
        for i, item in enumerate(value):
            check_shape(item, spec[0], f"{key}[{i}]", origin)
        return
    allowed = spec if isinstance(spec, tuple) else (spec,)
    ok = isinstance(value, allowed) and not (isinstance(value, bool) and bool not in allowed)
    if not ok:
        raise MappingError(f"{origin}: '{key}' must be {_type_name(spec)}, not {value!r}")


def one_of(value: str, allowed: tuple[str, ...], origin: str, key: str) -> str:
    if value not in allowed:
        raise MappingError(f"{origin}: '{key}' must be one of {', '.join(repr(a) for a in allowed)}, not {value!r}")
    return value


def _merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        elif key.endswith(ADD_SUFFIX) and isinstance(value, list) and isinstance(merged.get(key), list):
            merged[key] = merged[key] + value  # additions add up along the `extends` chain
        else:
            merged[key] = value
    return merged


def builtin_names() -> list[str]:
    return sorted(p.stem for p in resources.mappings_dir().glob("*.toml"))


def resolve(name_or_path: str, relative_to: Path | None = None) -> Path:
    """A built-in name (``web``) or a path to a TOML file -> the file's path."""
    candidate = Path(name_or_path)
    if candidate.suffix == ".toml" or "/" in name_or_path or "\\" in name_or_path:
        if not candidate.is_absolute() and relative_to is not None and not candidate.exists():
            candidate = relative_to / candidate
        if not candidate.is_file():
            raise MappingError(f"{name_or_path}: no such mapping file")
        return candidate
    builtin = resources.mappings_dir() / f"{name_or_path}.toml"
    if not builtin.is_file():
        raise MappingError(
            f"no built-in mapping named {name_or_path!r} (built-in: {', '.join(builtin_names())}); "
            "give a path to use your own file"
        )
    return builtin


def _parse_file(path: Path) -> dict[str, Any]:
    origin = str(path)
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise MappingError(f"{origin}: not valid TOML: {exc}") from None
    except UnicodeDecodeError:
        raise MappingError(f"{origin}: not UTF-8 text") from None
    except OSError as exc:
        raise MappingError(f"{origin}: cannot be read: {exc.strerror or exc}") from None


def read_toml(path: Path, chain: tuple[Path, ...] = ()) -> dict[str, Any]:
    """A mapping file as a dict, checked against the schema, with the files it extends merged in
    (rules keep the file and key they come from under ``RULE_SOURCES``)."""
    origin = str(path)
    if path.resolve() in chain:
        raise MappingError(f"{origin}: 'extends' forms a loop")
    data = _parse_file(path)
    check_shape(data, _SPEC, "", origin)
    if "downloads" in data:
        data["rules"] = [{DOWNLOADS_RULE: True}, *data.get("rules", [])]
    if "rules" in data:
        data[RULE_SOURCES] = [
            (origin, "downloads" if DOWNLOADS_RULE in spec else f"rules[{j}]") for j, spec in enumerate(data["rules"])
        ]
    placement = data.pop("parent_rules", None)
    if placement is not None:
        one_of(placement, PARENT_RULES, origin, "parent_rules")
        if "extends" not in data:
            raise MappingError(
                f"{origin}: 'parent_rules' says where the rules of the mapping this file "
                f"extends go, but the file has no 'extends'"
            )
    if "extends" not in data:
        return data
    parent = read_toml(resolve(data["extends"], path.parent), (*chain, path.resolve()))
    parent.pop("name", None)
    parent.pop("description", None)
    merged = _merge(parent, {k: v for k, v in data.items() if k != "extends"})
    if "rules" in data:
        # The parent's rules run after this file's (the first match wins, so these come
        # first), unless the file puts them first or leaves them out.
        for key in ("rules", RULE_SOURCES):
            own, inherited = data[key], parent.get(key, [])
            merged[key] = {"after": own + inherited, "before": inherited + own, "none": own}[placement or "after"]
    return merged
