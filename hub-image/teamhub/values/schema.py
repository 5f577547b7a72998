"""The schema (teamhub/schema/values.schema.yaml) as Python reads it: the one `$ref` resolver, the inlined
schema the validator and the defaults use, and `with_defaults`, the one place defaults come from.

Every default lives in the schema; the loader (values.validation) fills them in, and code reads the filled
values (no `or "..."` fallbacks). tests/unit/test_validation.py checks chart/values.yaml against them.
"""

from __future__ import annotations

import copy
import functools
import sys
from pathlib import Path

import yaml

from . import renames

SCHEMA_FILE = Path(__file__).parents[1] / "schema" / "values.schema.yaml"


@functools.cache
def schema() -> dict:
    return renames.expand(yaml.safe_load(SCHEMA_FILE.read_text(encoding="utf-8")))


def deref(node: dict, root: dict | None = None) -> dict:
    """A schema node with its $ref chain merged in (the node's own keys win)."""
    root = schema() if root is None else root
    while isinstance(node, dict) and "$ref" in node:
        target = root
        for part in node["$ref"].lstrip("#/").split("/"):
            target = target[part]
        node = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
    return node


@functools.cache
def inlined_schema() -> dict:
    """The schema with every $ref replaced by its target: resolving references on every value (in the
    validator, and when filling defaults) costs more than the checks themselves."""
    return _inline(schema())


def _inline(node):
    if isinstance(node, dict):
        node = deref(node)
        return {k: (v if k in ("$defs", "$schema", "$id") else _inline(v)) for k, v in node.items()}
    if isinstance(node, list):
        return [_inline(v) for v in node]
    return node


@functools.cache
def validator():
    # jsonschema imports an optional IRI format checker whose grammar takes ~1.5 s to build; our schema
    # uses no `format`, so a CLI call should not pay for it. (Where something loaded it already, it stays.)
    sys.modules.setdefault("rfc3987_syntax", None)
    from jsonschema import Draft202012Validator

    return Draft202012Validator(inlined_schema())


def pattern(def_name: str) -> str:
    """The regular expression of a `$defs` entry (e.g. localUserName), for code that checks names outside values."""
    return deref(schema()["$defs"][def_name])["pattern"]


# --- defaults ---------------------------------------------------------------------------------------

def default_of(path: str):
    """The schema's default at a dotted path (e.g. sessions.maxMinutes), for checks that run on unfilled values."""
    node = inlined_schema()
    for key in path.split("."):
        node = node["properties"][key]
    return node["default"]


def with_defaults(data: dict) -> dict:
    """A copy of values with every schema `default` filled in where the operator wrote nothing. A section the
    operator left out entirely is filled too when it has defaults and nothing required (an opt-in object
    such as an existingSecret has required keys and so stays absent)."""
    out = _copy(data)
    _fill(out, inlined_schema())
    return out


def _copy(value):
    """deepcopy for plain YAML data, several times faster."""
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value


def _defaults_below(node: dict) -> bool:
    return "default" in node or any(isinstance(s, dict) and _defaults_below(s) for s in node.get("properties", {}).values())


def _fillable(node: dict) -> bool:
    return node.get("type") == "object" and bool(node.get("properties")) and not node.get("required") and _defaults_below(node)


def _fill(value, node):
    if isinstance(value, dict):
        props = node.get("properties", {})
        for key, sub in props.items():
            if key not in value:
                if "default" in sub:
                    value[key] = copy.deepcopy(sub["default"])
                elif _fillable(sub):
                    value[key] = {}
            if key in value:
                _fill(value[key], sub)
        extra = node.get("additionalProperties")
        if isinstance(extra, dict):
            for key in value:
                if key not in props:
                    _fill(value[key], extra)
    elif isinstance(value, list) and isinstance(node.get("items"), dict):
        for item in value:
            _fill(item, node["items"])
