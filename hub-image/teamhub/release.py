"""Helpers for scripts/helm_update.sh and scripts/rollback.sh: what changes between two renderings of the
chart, and what each revision of a release deployed (chart version, image tags).

The scripts feed these with helm's own output (`helm template`, `helm get manifest`, `helm history -o json`,
`helm get values --revision N -o yaml`), so the logic is testable without a cluster.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import yaml


# --- manifests -------------------------------------------------------------------------------------
def objects(text: str) -> dict:
    """kind/namespace/name -> canonical digest of the object, for every object in a multi-document manifest."""
    out = {}
    for doc in yaml.safe_load_all(text or ""):
        if not isinstance(doc, dict) or "kind" not in doc:
            continue
        meta = doc.get("metadata") or {}
        key = f"{doc['kind']}/{meta.get('name', '?')}"
        if meta.get("namespace"):
            key = f"{doc['kind']}/{meta['namespace']}/{meta.get('name', '?')}"
        out[key] = hashlib.sha256(json.dumps(doc, sort_keys=True, default=str).encode()).hexdigest()
    return out


def diff_manifests(old: str, new: str) -> dict:
    a, b = objects(old), objects(new)
    return {
        "added": sorted(k for k in b if k not in a),
        "changed": sorted(k for k in b if k in a and a[k] != b[k]),
        "removed": sorted(k for k in a if k not in b),
        "unchanged": sorted(k for k in b if k in a and a[k] == b[k]),
    }


def format_diff(d: dict) -> list[str]:
    lines = []
    for what, sign in (("added", "+"), ("changed", "~"), ("removed", "-")):
        for key in d[what]:
            lines.append(f"  {sign} {what:8} {key}")
    lines.append(f"  {len(d['added'])} added, {len(d['changed'])} changed, {len(d['removed'])} removed, {len(d['unchanged'])} unchanged")
    return lines


# --- release history -------------------------------------------------------------------------------
@dataclass
class Revision:
    number: int
    status: str
    chart: str
    app_version: str
    updated: str
    description: str
    images: dict | None  # image key ("hub" or a catalog key) -> tag; None when the values were not read


def images_of(values: dict) -> dict:
    """Image key -> tag from a release's values (hub.image and catalog.images)."""
    values = values or {}
    out = {}
    hub = (values.get("hub") or {}).get("image") or {}
    if hub.get("tag"):
        out["hub"] = str(hub["tag"])
    for key, img in ((values.get("catalog") or {}).get("images") or {}).items():
        if isinstance(img, dict) and img.get("tag") is not None:
            out[key] = str(img["tag"])
    return out


def load_history(history_json: str | Path, values_dir: str | Path | None = None) -> list[Revision]:
    raw = json.loads(Path(history_json).read_text(encoding="utf-8") or "[]")
    revisions = []
    for item in raw:
        n = int(item["revision"])
        images = None
        if values_dir is not None:
            f = Path(values_dir) / f"{n}.yaml"
            if f.is_file():
                images = images_of(yaml.safe_load(f.read_text(encoding="utf-8")) or {})
        revisions.append(Revision(n, str(item.get("status", "")), str(item.get("chart", "")), str(item.get("app_version", "")),
                                  str(item.get("updated", "")), str(item.get("description", "")), images))
    return sorted(revisions, key=lambda r: r.number)


def changes(prev: Revision | None, cur: Revision) -> str:
    if cur.images is None:
        return f"{cur.chart}; {cur.description}"
    if prev is None or prev.images is None:
        return f"{'first: ' if prev is None else ''}{cur.chart}" + "".join(f"; {k}={v}" for k, v in sorted(cur.images.items()))
    parts = []
    if prev.chart != cur.chart:
        parts.append(f"chart {prev.chart} -> {cur.chart}")
    for key in sorted(set(prev.images) | set(cur.images)):
        a, b = prev.images.get(key), cur.images.get(key)
        if a != b:
            parts.append(f"{key} {a or '(none)'} -> {b or '(none)'}")
    return "; ".join(parts) or "values only (no chart or image change)"


def format_history(revisions: list[Revision], last: int | None = None) -> list[str]:
    lines = [f"{'REV':>4}  {'STATUS':<16} {'CHART':<18} {'UPDATED':<25} WHAT CHANGED"]
    prev = None
    shown = {r.number for r in (revisions[-last:] if last else revisions)}
    for r in revisions:
        if r.number not in shown:
            prev = r
            continue
        lines.append(f"{r.number:>4}  {r.status:<16} {r.chart:<18} {r.updated[:25]:<25} {changes(prev, r)}")
        prev = r
    return lines


def current(revisions: list[Revision]) -> Revision | None:
    deployed = [r for r in revisions if r.status == "deployed"]
    return deployed[-1] if deployed else (revisions[-1] if revisions else None)


class NoSuchRevision(Exception):
    pass


def pick_target(revisions: list[Revision], wanted: int | None) -> Revision:
    """The revision to roll back to: `wanted`, or the one before the current one."""
    if not revisions:
        raise NoSuchRevision("the release has no history: nothing to roll back to")
    numbers = [r.number for r in revisions]
    cur = current(revisions)
    if wanted is None:
        older = [r for r in revisions if r.number < cur.number]
        if not older:
            raise NoSuchRevision(f"revision {cur.number} is the first one: there is no previous revision")
        return older[-1]
    for r in revisions:
        if r.number == wanted:
            if r.number == cur.number:
                raise NoSuchRevision(f"revision {wanted} is the one running now")
            return r
    raise NoSuchRevision(f"revision {wanted} does not exist (revisions: {', '.join(map(str, numbers))})")
