"""Secret values are never printed back (issue 23): fields marked `x-secret: true` in the schema (passwords and
their hashes, client secrets, database URLs, Secret references an operator may fill with the secret itself).

`values_under_secrets` collects what the operator wrote in such fields (and the password inside any URL there);
`mask` removes it from a message. Every problem `teamhub validate`, `teamhub check-config` and the hub print
passes through `validation.check`, which masks it, so the file, line and YAML path stay and the value goes.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from .schema import inlined_schema

HIDDEN = "(a secret value, not shown)"
_SHORTEST_BARE = 8  # shorter values are masked only where quoted, so common words in messages survive


def values_under_secrets(data, node: dict | None = None) -> set[str]:
    """Every text the values hold at or under an `x-secret` field."""
    node = inlined_schema() if node is None else node
    found: set[str] = set()
    _walk(data, node, found)
    return {v for v in found if v}


def _walk(value, node: dict, found: set) -> None:
    if not isinstance(node, dict):
        return
    if node.get("x-secret"):
        _leaves(value, found)
        return
    for alt in (*node.get("anyOf", ()), *node.get("oneOf", ()), *node.get("allOf", ())):
        _walk(value, alt, found)
    if isinstance(value, dict):
        props = node.get("properties", {})
        extra = node.get("additionalProperties")
        for key, sub in value.items():
            if key in props:
                _walk(sub, props[key], found)
            elif isinstance(extra, dict):
                _walk(sub, extra, found)
    elif isinstance(value, list) and isinstance(node.get("items"), dict):
        for item in value:
            _walk(item, node["items"], found)


def _leaves(value, found: set) -> None:
    if isinstance(value, dict):
        for sub in value.values():
            _leaves(sub, found)
    elif isinstance(value, list):
        for sub in value:
            _leaves(sub, found)
    elif isinstance(value, str):
        found.add(value)
        try:
            password = urlsplit(value).password
        except ValueError:
            password = None
        if password:
            found.add(password)
    elif value is not None and not isinstance(value, bool):
        found.add(str(value))


def mask(text: str, secrets) -> str:
    """`text` without any of `secrets`: quoted (as repr prints them) always, bare when long enough to be
    unmistakable; longest first, so a URL goes whole before its password."""
    for value in sorted(secrets, key=len, reverse=True):
        for form in (repr(value), f'"{value}"', f"'{value}'"):
            text = text.replace(form, HIDDEN)
        if len(value) >= _SHORTEST_BARE or value in text.split():
            text = text.replace(value, HIDDEN)
    return text
