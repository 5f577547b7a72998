"""`teamhub bundle verify`: every file against its SHA-256 in bundle.json, every blob against its digest and
size, and every manifest's references present, so a copy carried across an air gap is trusted or refused
with sentences naming what is wrong."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from .layout import MANIFEST, Layout, LayoutError, children, sha256_file


def load_manifest(bundle: Path) -> dict:
    path = bundle / MANIFEST
    if not path.is_file():
        raise LayoutError(f"{path} does not exist: {bundle} is not a bundle made by `teamhub bundle create` (or it is unfinished)")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise LayoutError(f"{path} is not valid JSON (line {exc.lineno}): the manifest was damaged") from exc


def _users(doc: dict, layout: Layout) -> dict:
    """blob digest -> refs of the images it belongs to (walking the stored manifests)."""
    users: dict = {}
    for img in doc.get("images", []):
        pending = [img["digest"]]
        while pending:
            digest = pending.pop()
            users.setdefault(digest, set()).add(img["ref"])
            if digest in doc.get("blobs", {}) and layout.has(digest):
                try:
                    for desc in children(layout.read(digest)):
                        pending.append(desc["digest"])
                except (ValueError, KeyError, TypeError):
                    pass  # a config or layer, not a manifest
    return users


def problems(bundle: Path) -> list[str]:
    """Every problem in a sentence; empty when the bundle is intact."""
    bundle = Path(bundle)
    try:
        doc = load_manifest(bundle)
    except LayoutError as exc:
        return [str(exc)]
    out = []
    for rel, digest in doc.get("files", {}).items():
        path = bundle / rel
        if not path.is_file():
            out.append(f"{path} is missing (bundle.json lists it with {digest}).")
        elif (got := sha256_file(path)) != digest:
            out.append(f"{path} was changed: its SHA-256 is {got}, bundle.json records {digest}.")
    layout = Layout(bundle / "images")
    users = _users(doc, layout)
    blobs = doc.get("blobs", {})
    present = [d for d in blobs if layout.path(d).is_file()]
    with ThreadPoolExecutor(max_workers=4) as pool:  # hashlib lets go of the GIL: large blobs hash in parallel
        sums = dict(zip(present, pool.map(lambda d: sha256_file(layout.path(d)), present), strict=True))
    for digest, size in blobs.items():
        path = layout.path(digest)
        who = ", ".join(sorted(users.get(digest, ()))) or "no image"
        if digest not in sums:
            out.append(f"blob {path} is missing (used by {who}).")
            continue
        got = sums[digest]
        if got != digest:
            out.append(f"blob {path} was tampered with or damaged: its content's digest is {got} (used by {who}).")
        elif path.stat().st_size != size:
            out.append(f"blob {path} has {path.stat().st_size} bytes, bundle.json records {size} (used by {who}).")
    for digest, refs in sorted(users.items()):
        if digest not in doc.get("blobs", {}):
            out.append(f"blob {digest} of {', '.join(sorted(refs))} is referenced by a manifest but not listed in bundle.json.")
    return out
