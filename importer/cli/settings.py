"""Option values from outside the command line: a TOML config file with named profiles, and
environment variables. Precedence: command line > environment > profile > the file's defaults.

A config file holds any long option of ``send`` and ``backfill`` by its name without the
dashes (``endpoint = "..."``, ``log-timezone = "Europe/Berlin"``); its ``[profiles.NAME]``
tables hold the same keys for one site each. The environment variable of an option is
``PLAUSIBLE_IMPORT_`` and its name in capitals with ``_`` for ``-`` (``PLAUSIBLE_IMPORT_ENDPOINT``);
a repeatable option (``--header``) takes one value per line there.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ENV_PREFIX = "PLAUSIBLE_IMPORT_"
CONFIG_ENV = ENV_PREFIX + "CONFIG"
PROFILE_ENV = ENV_PREFIX + "PROFILE"
PROFILES = "profiles"
SECRET_KEYS = ("header",)  # values shown as *** (the endpoint's password is hidden by redact_url)


class SettingsError(Exception):
    """A config file that cannot be used: the message names the file and the key."""


@dataclass(frozen=True)
class Setting:
    value: Any
    origin: str  # "environment PLAUSIBLE_IMPORT_RATE", "profile blog in FILE", "FILE"
    # for messages: "config file FILE, [profiles.blog]: rate" (the key as written), "environment variable ..."
    where: str
    text: bool = False  # the value is text to convert (the environment's), not a TOML value


# An option's type -> what its value must be, in words.
EXPECTED = {bool: "true or false", int: "a whole number", float: "a number", str: "a string", Path: "a path (a string)"}
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def env_name(key: str) -> str:
    return ENV_PREFIX + key.upper().replace("-", "_")


def default_config_path(environ: Mapping[str, str]) -> Path:
    """``$XDG_CONFIG_HOME/plausible-import/config.toml`` (``~/.config/...`` without XDG_CONFIG_HOME)."""
    base = environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "plausible-import" / "config.toml"


def read_config(explicit: str | None, environ: Mapping[str, str]) -> tuple[Path | None, dict[str, Any]]:
    """The config file named by ``--config`` or $PLAUSIBLE_IMPORT_CONFIG (which must exist), else
    the default one if it exists; (None, {}) when there is none."""
    named = explicit or environ.get(CONFIG_ENV)
    path = Path(named) if named else default_config_path(environ)
    if not named and not path.is_file():
        return None, {}
    try:
        with path.open("rb") as file:
            return path, tomllib.load(file)
    except OSError as exc:
        raise SettingsError(f"config file {path}: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(f"config file {path}: not valid TOML ({exc})") from None


def _keys(table: Mapping[str, Any], known: Iterable[str], where: str) -> dict[str, tuple[str, Any]]:
    """``table`` by option name (``log_timezone`` as ``log-timezone``): (the key as written, its
    value); unknown keys are errors."""
    known = set(known)
    out = {}
    for key, value in table.items():
        name = key.replace("_", "-")
        if name not in known:
            raise SettingsError(
                f"{where}: unknown key {key!r} (keys are long options without the dashes, "
                "e.g. endpoint, domain, log-timezone)"
            )
        out[name] = (key, value)
    return out


def resolve(
    keys: Iterable[str],
    known: Iterable[str],
    explicit_config: str | None,
    profile: str | None,
    environ: Mapping[str, str],
) -> dict[str, Setting]:
    """The value of each option in ``keys`` that the file, a profile or the environment sets, with
    its origin; ``known`` are every command's keys (a backfill key in the file is no error for send)."""
    known = set(known)
    path, data = read_config(explicit_config, environ)
    profiles = data.get(PROFILES, {})
    if not isinstance(profiles, dict) or not all(isinstance(v, dict) for v in profiles.values()):
        raise SettingsError(f"config file {path}: [{PROFILES}] must hold tables such as [{PROFILES}.blog]")
    where = f"config file {path}"
    settings = {
        key: Setting(value, str(path), f"{where}: {written}")
        for key, (written, value) in _keys({k: v for k, v in data.items() if k != PROFILES}, known, where).items()
    }
    profile = profile or environ.get(PROFILE_ENV)
    if profile:
        if profile not in profiles:
            where = f"config file {path}" if path else "no config file"
            raise SettingsError(
                f"--profile {profile!r}: {where} has no [{PROFILES}.{profile}] "
                f"(profiles: {', '.join(sorted(profiles)) or 'none'})"
            )
        where = f"config file {path}, [{PROFILES}.{profile}]"
        table = _keys(profiles[profile], known, where)
        settings.update(
            {
                key: Setting(value, f"profile {profile} in {path}", f"{where}: {written}")
                for key, (written, value) in table.items()
            }
        )
    for key in keys:
        variable = env_name(key)
        if environ.get(variable):
            settings[key] = Setting(
                environ[variable], f"environment {variable}", f"environment variable {variable}", text=True
            )
    return {key: setting for key, setting in settings.items() if key in set(keys)}


def typed(setting: Setting, kind: Any, many: bool) -> Any:
    """The setting's value as an option of type ``kind`` (``int``, ``Path``...; ``many``: a
    repeatable option) takes it: checked, not coerced, so that ``concurrency = true`` is not
    read as 1. SettingsError names where it was set, the key and what was expected."""
    value = setting.value
    if many:
        if isinstance(value, str):
            return value.splitlines()
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return value
        expected = "a list of strings (or one string, a value per line)"
    else:
        converted = _from_text(value, kind) if setting.text else _of_type(value, kind)
        if converted is not None:
            return converted
        expected = EXPECTED[kind]
    written = json.dumps(value, ensure_ascii=False, default=str)  # as TOML writes it: true, "many"
    raise SettingsError(f"{setting.where} = {written}: expected {expected}")


def _of_type(value: Any, kind: Any) -> Any:
    """A TOML value if it is of the type (an integer is a number too); else None."""
    if kind is bool:
        return value if isinstance(value, bool) else None
    if isinstance(value, bool):  # (bool is an int in Python; not in TOML)
        return None
    if kind is float:
        return float(value) if isinstance(value, int | float) else None
    if kind is int:
        return value if isinstance(value, int) else None
    return value if isinstance(value, str) else None  # str, Path


def _from_text(text: str, kind: Any) -> Any:
    """An environment variable's text as the type; None if it does not read as one."""
    if kind is bool:
        word = text.strip().lower()
        return True if word in _TRUE else False if word in _FALSE else None
    if kind in (int, float):
        try:
            return kind(text.strip())
        except ValueError:
            return None
    return text


def shown(key: str, value: Any) -> str:
    """A value as the ``config`` command prints it, secrets hidden."""
    from ..report import redact_url

    if key in SECRET_KEYS:
        values = value.splitlines() if isinstance(value, str) else list(value)
        return ", ".join(f"{str(v).partition(':')[0].strip()}: ***" for v in values)
    return redact_url(str(value))
