"""Keys that were renamed or removed: each says what replaced it, in `teamhub validate`, at the hub's start and
in helm's own schema check, instead of a bare "unknown key" / "additional property".

The schema source marks such a key with `x-renamed-to: <new dotted path>` or `x-removed: <what to do instead>`.
`expand` (run when the schema is loaded, so the Python validator and chart/values.schema.json get the same
rule) turns the marker into a rule no value passes: `not: {}`, and a `const` holding the sentence, because
helm prints a failed `const` as "value must be '<const>'" and so names the replacement; the `not` makes sure
even that exact text is refused. The generators leave such keys out of chart/values.yaml and list them in
docs/values-reference.md.
"""

from __future__ import annotations

MARKERS = ("x-renamed-to", "x-removed")


def retired(node) -> bool:
    return isinstance(node, dict) and any(m in node for m in MARKERS)


def sentence(node: dict) -> str:
    """What the operator reads after the file, line and path of the old key."""
    if "x-renamed-to" in node:
        new = node["x-renamed-to"]
        return f"renamed to {new}: write {new} instead"
    return f"removed: {' '.join(str(node['x-removed']).split())}"


def expand(schema: dict) -> dict:
    """The schema with every retired key's refusal filled in (in place; returned for chaining)."""
    _walk(schema, "")
    for sub in schema.get("$defs", {}).values():
        _walk(sub, "<key>")  # a retired key inside a definition: its path is only known up to the definition
    return schema


def _walk(node, path: str) -> None:
    if not isinstance(node, dict):
        return
    for key, sub in (node.get("properties") or {}).items():
        sub_path = f"{path}.{key}" if path else key
        if retired(sub):
            text = sentence(sub)
            sub.setdefault("description", f"{sub_path}: {text}.")
            sub["not"] = {}
            sub["const"] = text
            sub["errorMessage"] = text  # what teamhub validate prints (values/validation.py)
        else:
            _walk(sub, sub_path)
    extra = node.get("additionalProperties")
    if isinstance(extra, dict):
        _walk(extra, f"{path}.<key>" if path else "<key>")


def retired_keys(schema: dict, path: str = "") -> list[tuple[str, dict]]:
    """(dotted path, node) of every retired key below `schema`'s properties, in schema order."""
    out: list = []
    for key, sub in (schema.get("properties") or {}).items():
        sub_path = f"{path}.{key}" if path else key
        if retired(sub):
            out.append((sub_path, sub))
        elif isinstance(sub, dict):
            out += retired_keys(sub, sub_path)
    extra = schema.get("additionalProperties")
    if isinstance(extra, dict):
        out += retired_keys(extra, f"{path}.<key>" if path else "<key>")
    return out
