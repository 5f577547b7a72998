"""Helpers for scripts/helm_update.sh and scripts/rollback.sh: what changes between two renderings of the
chart, and what each revision of a release deployed (chart version, image tags).

The scripts feed these with helm's own output (`helm template`, `helm get manifest`, `helm history -o json`,
`helm get values --revision N -o yaml`), so the logic is testable without a cluster.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path

import yaml

# --- manifests -------------------------------------------------------------------------------------
# Keys whose value is the helm revision number (see chart/templates/hub/values-secret.yaml): it differs
# between any two revisions by design and restarts nothing, so it is never counted as a change.
REVISION_KEYS = ("release-revision",)


def _comparable(doc: dict) -> dict:
    """The object with the revision bookkeeping blanked (a copy)."""
    if doc.get("kind") in ("Secret", "ConfigMap"):
        doc = dict(doc)
        for field_ in ("data", "stringData"):
            if isinstance(doc.get(field_), dict):
                doc[field_] = {k: ("<revision>" if k in REVISION_KEYS else v) for k, v in doc[field_].items()}
    return doc


def objects(text: str) -> dict:
    """kind/namespace/name -> canonical digest of the object, for every object in a multi-document manifest.

    Hook objects (annotation helm.sh/hook: the chart's checks and prepull, the `helm test` pod) are left out:
    `helm get manifest` never lists them, and helm recreates them on every upgrade anyway."""
    out = {}
    for doc in yaml.safe_load_all(text or ""):
        if not isinstance(doc, dict) or "kind" not in doc:
            continue
        meta = doc.get("metadata") or {}
        if "helm.sh/hook" in (meta.get("annotations") or {}):
            continue
        key = f"{doc['kind']}/{meta.get('name', '?')}"
        if meta.get("namespace"):
            key = f"{doc['kind']}/{meta['namespace']}/{meta.get('name', '?')}"
        out[key] = hashlib.sha256(json.dumps(_comparable(doc), sort_keys=True, default=str).encode()).hexdigest()
    return out


def manifest_of_release(release_json: str) -> str:
    """The manifest (hooks excluded, like `helm get manifest`) of `helm upgrade --dry-run=server -o json`."""
    return (json.loads(release_json or "{}") or {}).get("manifest") or ""


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
SUCCEEDED = ("deployed", "superseded")
_ROLLBACK = re.compile(r"^Rollback to (\d+)$")


@dataclass
class Revision:
    number: int
    status: str
    chart: str
    app_version: str
    updated: str
    description: str
    images: dict | None  # image key ("hub" or a catalog key) -> tag; None when the values were not read
    values_digest: str | None = None  # of the revision's values; None when they were not read

    @property
    def succeeded(self) -> bool:
        """helm marks a revision that was once deployed as superseded when a later one replaces it; every
        other status (failed, pending-*, uninstalled, unknown) never ran to completion."""
        return self.status in SUCCEEDED

    @property
    def rolled_back_to(self) -> int | None:
        """N when helm created this revision by `helm rollback` to N (its description is "Rollback to N")."""
        m = _ROLLBACK.match(self.description)
        return int(m.group(1)) if m else None


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
        images = digest = None
        if values_dir is not None:
            f = Path(values_dir) / f"{n}.yaml"
            if f.is_file():
                values = yaml.safe_load(f.read_text(encoding="utf-8")) or {}
                images = images_of(values)
                digest = hashlib.sha256(json.dumps(values, sort_keys=True, default=str).encode()).hexdigest()
        revisions.append(Revision(n, str(item.get("status", "")), str(item.get("chart", "")), str(item.get("app_version", "")),
                                  str(item.get("updated", "")), str(item.get("description", "")), images, digest))
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


def origin(revisions: list[Revision], r: Revision) -> int:
    """The revision whose manifest `r` deploys: a rollback to N deploys what N deployed (followed through chains)."""
    by_number = {x.number: x for x in revisions}
    seen = set()
    while r.rolled_back_to in by_number and r.number not in seen:
        seen.add(r.number)
        r = by_number[r.rolled_back_to]
    return r.number


def same_deployment(revisions: list[Revision], a: Revision, b: Revision) -> bool:
    """True when a and b deploy the same thing: one is a rollback to the other, or same chart and same values."""
    if origin(revisions, a) == origin(revisions, b):
        return True
    return a.values_digest is not None and a.values_digest == b.values_digest and a.chart == b.chart


def failed_newest(revisions: list[Revision]) -> Revision | None:
    """The newest revision when it failed after an earlier one was deployed successfully (a plain `helm upgrade
    --wait` that timed out: helm marks it failed, keeps the earlier one "deployed", but the failed revision's
    objects were applied and run). Rolling back then means going to that earlier revision."""
    if revisions and revisions[-1].status == "failed" and any(r.succeeded for r in revisions):
        return revisions[-1]
    return None


def last_good(revisions: list[Revision]) -> Revision | None:
    good = [r for r in revisions if r.succeeded]
    return good[-1] if good else None


def pick_target(revisions: list[Revision], wanted: int | None) -> Revision:
    """The revision to roll back to: `wanted`, or by default the newest earlier revision that was deployed
    successfully (deployed or superseded) and deploys something other than the current one.

    A failed upgrade that helm rolled back leaves e.g. 6 superseded, 7 failed, 8 deployed ("Rollback to 6"):
    7 never ran, and 6 is what runs now, so the default is 5. A revision that did not succeed is a target only
    when named (the caller warns, see `target_warning`). When the newest revision failed (`failed_newest`), the
    default is the newest revision deployed successfully, which helm still calls current (`target_note` says so)."""
    if not revisions:
        raise NoSuchRevision("the release has no history: nothing to roll back to")
    numbers = [r.number for r in revisions]
    cur = current(revisions)
    if wanted is None and failed_newest(revisions):
        return last_good(revisions)  # what runs now is (part of) the failed revision's objects
    if wanted is None:
        older = [r for r in revisions if r.number < cur.number and r.succeeded and not same_deployment(revisions, r, cur)]
        if not older:
            raise NoSuchRevision(f"no revision before {cur.number} was deployed successfully with something other than what runs "
                                 f"now (revisions: {', '.join(f'{r.number} {r.status}' for r in revisions)}); "
                                 "name one with --revision to roll back to it anyway")
        return older[-1]
    for r in revisions:
        if r.number == wanted:
            if r.number == cur.number and not failed_newest(revisions):
                raise NoSuchRevision(f"revision {wanted} is the one running now")
            return r
    raise NoSuchRevision(f"revision {wanted} does not exist (revisions: {', '.join(map(str, numbers))})")


def target_warning(revisions: list[Revision], target: Revision) -> str | None:
    """A sentence for the operator when the chosen target never ran successfully, or deploys what runs now."""
    if not target.succeeded:
        return (f"revision {target.number} is '{target.status}' ({target.description}): it never ran successfully, and rolling "
                "back to it is likely to fail the same way")
    cur = current(revisions)
    if cur and same_deployment(revisions, target, cur) and not (failed_newest(revisions) and target is last_good(revisions)):
        return f"revision {target.number} deploys the same as the current revision {cur.number}: the rollback changes nothing"
    return None


def target_note(revisions: list[Revision], target: Revision) -> str | None:
    """What the operator reads when the rollback undoes a failed newest revision."""
    failed = failed_newest(revisions)
    if failed is None or target is not last_good(revisions):
        return None
    return (f"the newest revision {failed.number} failed ({failed.description}) and its objects may be running: rolling back "
            f"to revision {target.number}, the newest revision that was deployed successfully")
