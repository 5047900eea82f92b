"""Mapping files: which rows count, and what Plausible event each kept row becomes.

A mapping is a TOML file (the built-in ones live in ``mappings/``; ``--mapping web`` names
one, ``--mapping ./mine.toml`` a file of your own). It is validated on load: an unknown key,
a wrong type, a bad pattern or a reference to a column that does not exist is one error that
names the file and the key, never silently ignored.

The package, one job per module (see docs/mapping-engine.md):

* :mod:`.spec`: the TOML file's schema, ``extends``, and the file-and-key errors;
* :mod:`.columnmap`: the ``[input]`` table, how an export's columns become canonical ones;
* :mod:`.model` and :mod:`.load`: the loaded Mapping, its rules, conditions and templates;
* :mod:`.batch`: a batch's columns, encoded once per distinct value, and its tally;
* :mod:`.filters`: which rows count (and ``--since``/``--until``);
* :mod:`.matching`: the first rule each kept row matches;
* :mod:`.base`, :mod:`.events`, :mod:`.props`: the events, within Plausible's limits;
* :mod:`.mapper`: the Mapper that runs a batch through all of these.

Each dropped row is counted under the first filter it fails, in ``FILTER_ORDER``; rows that a
``drop`` rule matches count under ``rule:<label>``, rows that no rule matches under
``no_rule`` when the default is ``drop``, and events over Plausible's limits (with the
``reject`` policy) under ``limit:<what>``.
"""

from __future__ import annotations

from .filters import FILTER_ORDER, date_bound
from .load import describe_builtins, load
from .mapper import Mapped, Mapper
from .model import ColumnCondition, Mapping, Rule, StatusRule, Template, glob_to_regex
from .spec import PARENT_RULES, MappingError, builtin_names, resolve

__all__ = [
    "FILTER_ORDER",
    "PARENT_RULES",
    "ColumnCondition",
    "Mapped",
    "Mapper",
    "Mapping",
    "MappingError",
    "Rule",
    "StatusRule",
    "Template",
    "builtin_names",
    "date_bound",
    "describe_builtins",
    "glob_to_regex",
    "load",
    "resolve",
]
