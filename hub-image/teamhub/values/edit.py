"""Editing config/values.yaml by program without losing the operator's comments, order or quoting.

`scripts/build_images.sh` records the tag it just built here, so the next `scripts/helm_update.sh`
deploys exactly that image. A ruamel.yaml round trip keeps comments, key order, flow style and quotes;
the indentation settings match the style of config/values.yaml, so an edit changes only the edited line.
"""

from __future__ import annotations

import io
import re
from pathlib import Path

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap
from ruamel.yaml.scalarstring import DoubleQuotedScalarString


class ValuesEditError(Exception):
    """The file cannot be edited (unreadable, not a mapping where one is needed)."""


def _yaml() -> YAML:
    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True
    yaml.indent(mapping=2, sequence=4, offset=2)
    yaml.width = 4096  # never re-wrap long lines
    return yaml


def split_path(dotted: str) -> list[str]:
    parts = [p for p in dotted.split(".") if p]
    if not parts:
        raise ValuesEditError(f"empty values path {dotted!r}")
    return parts


def load(path: str | Path):
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ValuesEditError(f"cannot read {path}: {exc.strerror or exc}") from exc
    try:
        data = _yaml().load(text)
    except Exception as exc:  # ruamel raises many error types
        raise ValuesEditError(f"{path}: not valid YAML: {exc}") from exc
    if data is None:
        data = CommentedMap()
    if not isinstance(data, dict):
        raise ValuesEditError(f"{path}: the top level is not a mapping")
    return data


def dump(data) -> str:
    out = io.StringIO()
    _yaml().dump(data, out)
    return out.getvalue()


def set_image(path: str | Path, image_path: str, tag: str, name: str | None = None, digest: str | None = None) -> bool:
    """Set `<image_path>.tag` (and `.name` when given and absent or different) in the values file.

    `digest` (sha256:..., what the registry returned for the push) goes beside the tag as `digest`. Without
    one, a digest left from an earlier push is removed when the tag changes: it names another image.

    `image_path` is dotted, e.g. `catalog.images.scipy` or `hub.image`. Missing mappings are created (a
    new course image gets its catalog entry from the build). Returns True when the file changed.
    """
    if not tag or tag == "latest":
        raise ValuesEditError(f"refusing tag {tag!r}: tags must be immutable")
    if digest is not None and not re.fullmatch(r"sha256:[0-9a-f]{64}", digest):
        raise ValuesEditError(f"refusing digest {digest!r}: expected sha256: and 64 hex digits")
    data = load(path)
    node = data
    for part in split_path(image_path):
        child = node.get(part)
        if child is None:
            child = CommentedMap()
            node[part] = child
        if not isinstance(child, dict):
            raise ValuesEditError(f"{path}: {image_path}: '{part}' is not a mapping")
        node = child
    changed = False
    if name is not None and node.get("name") != name:
        node["name"] = name
        changed = True
    if str(node.get("tag", "")) != tag:
        node["tag"] = DoubleQuotedScalarString(tag)
        changed = True
        if digest is None and "digest" in node:
            del node["digest"]
    if digest is not None and str(node.get("digest", "")) != digest:
        if "digest" in node:
            node["digest"] = DoubleQuotedScalarString(digest)
        else:  # right after the tag, where a person looks for it
            node.insert(list(node.keys()).index("tag") + 1, "digest", DoubleQuotedScalarString(digest))
        changed = True
    if changed:
        Path(path).write_text(dump(data), encoding="utf-8")
    return changed


def get(path: str | Path, dotted: str, default=None):
    node = load(path)
    for part in split_path(dotted):
        if not isinstance(node, dict) or part not in node:
            return default
        node = node[part]
    return node
