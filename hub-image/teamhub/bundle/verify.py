"""`teamhub bundle verify`: every file against its SHA-256 in bundle.json, every blob against its digest and
size, and every manifest's references present, so a copy carried across an air gap is trusted or refused
with sentences naming what is wrong. A `.tar` bundle is checked where it lies, nothing unpacked."""

from __future__ import annotations

import json
from pathlib import Path

from .archive import FolderBundle, TarBundle, blob_name, open_bundle
from .layout import MANIFEST, LayoutError, children
from .refs import DIGEST


def _manifest(src: FolderBundle | TarBundle, bundle: Path) -> dict:
    if not src.is_file(MANIFEST):
        raise LayoutError(f"{src.where(MANIFEST)} does not exist: {bundle} is not a bundle made by `teamhub bundle create` "
                          "(or it is unfinished)")
    try:
        return json.loads(src.read(MANIFEST).decode("utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise LayoutError(f"{src.where(MANIFEST)} is not valid JSON ({exc}): the manifest was damaged") from exc


def load_manifest(bundle: Path) -> dict:
    bundle = Path(bundle)
    try:
        with open_bundle(bundle) as src:
            return _manifest(src, bundle)
    except OSError as exc:
        raise LayoutError(str(exc)) from exc


def _users(doc: dict, src) -> dict:
    """blob digest -> refs of the images it belongs to (walking the stored manifests)."""
    users: dict = {}
    for img in doc.get("images", []):
        pending = [img["digest"]]
        while pending:
            digest = pending.pop()
            users.setdefault(digest, set()).add(img["ref"])
            if digest in doc.get("blobs", {}) and src.is_file(blob_name(digest)):
                try:
                    for desc in children(src.read(blob_name(digest))):
                        pending.append(desc["digest"])
                except (ValueError, KeyError, TypeError):
                    pass  # a config or layer, not a manifest
    return users


def problems(bundle: Path, src: FolderBundle | None = None) -> list[str]:
    """Every problem in a sentence; empty when the bundle is intact. `src`: an unpacked copy to read instead."""
    bundle = Path(bundle)
    try:
        if src is not None:
            return _problems(bundle, src)
        with open_bundle(bundle) as opened:
            return _problems(bundle, opened)
    except OSError as exc:
        return [str(exc)]


def _problems(bundle: Path, src) -> list[str]:
    try:
        doc = _manifest(src, bundle)
    except LayoutError as exc:
        return [str(exc)]
    out = []
    files = doc.get("files", {})
    blobs = doc.get("blobs", {})
    for digest in [d for d in blobs if not DIGEST.match(d)]:
        out.append(f"bundle.json lists a blob {digest!r}, which is not a sha256 digest: the manifest was damaged.")
        blobs = {d: s for d, s in blobs.items() if d != digest}
    names = {rel: rel for rel in files} | {blob_name(d): d for d in blobs}
    sums = src.sha256_many([rel for rel in names if src.is_file(rel)])
    for rel, digest in files.items():
        if rel not in sums:
            out.append(f"{src.where(rel)} is missing (bundle.json lists it with {digest}).")
        elif sums[rel] != digest:
            out.append(f"{src.where(rel)} was changed: its SHA-256 is {sums[rel]}, bundle.json records {digest}.")
    users = _users(doc, src)
    for digest, size in blobs.items():
        rel = blob_name(digest)
        who = ", ".join(sorted(users.get(digest, ()))) or "no image"
        if rel not in sums:
            out.append(f"blob {src.where(rel)} is missing (used by {who}).")
        elif sums[rel] != digest:
            out.append(f"blob {src.where(rel)} was tampered with or damaged: its content's digest is {sums[rel]} (used by {who}).")
        elif src.size(rel) != size:
            out.append(f"blob {src.where(rel)} has {src.size(rel)} bytes, bundle.json records {size} (used by {who}).")
    for digest, refs in sorted(users.items()):
        if digest not in blobs:
            out.append(f"blob {digest} of {', '.join(sorted(refs))} is referenced by a manifest but not listed in bundle.json.")
    return out
