"""Every image that rendering the chart with given values can run, computed, never written by hand.

Two sources, because the chart renders some images and the hub starts others:
- the rendered objects (`helm template`, with hooks, the `helm test` pod and the admission policy): every
  container and init container of every pod template (hub, proxy, check Job, prepull hook and pullers
  with `prePuller.extraImages` and the pause container, the test pod);
- the catalog the hub reads (the values Secret the chart renders, so chart defaults are filled exactly as
  the hub sees them): every placement's image, a resource's own or an accelerator override's, whether or
  not it is pre-pulled.

Each image is named with the values paths that produce it (`hub.image`, `catalog.images.scipy`,
`hub.extraContainers[0].image`), so `teamhub bundle push` can point each of them at the site's registry.
A rendered image no values path produces is an error: a bundle that could not retarget it would install
an image from outside.
"""

from __future__ import annotations

import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from ..catalog.loader import load_or_raise
from ..catalog.model import image_ref
from ..catalog.placement import place

# Rendered so the admission policy and its parameters are part of what is checked.
API_VERSIONS = ("admissionregistration.k8s.io/v1/ValidatingAdmissionPolicy",)
POD_TEMPLATE_KINDS = {"Deployment", "DaemonSet", "StatefulSet", "ReplicaSet", "Job"}
CONTAINER_LISTS = ("initContainers", "containers", "ephemeralContainers")


class ImageListError(Exception):
    pass


@dataclass
class BundleImage:
    ref: str  # as the cluster is told to pull it: name[:tag][@digest]
    paths: list = field(default_factory=list)  # values paths that produce it, sorted


def render(chart: str | Path, values_files, helm: str = "helm", release: str = "teamhub",
           namespace: str = "teamhub") -> list[dict]:
    """`helm template` with the values files in order (hooks and the test pod included)."""
    argv = [helm, "template", release, str(chart), "--namespace", namespace]
    for version in API_VERSIONS:
        argv += ["--api-versions", version]
    for f in values_files:
        argv += ["-f", str(f)]
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=300)
    except FileNotFoundError as exc:
        raise ImageListError(f"{helm} cannot be run ({exc.strerror}): install helm or pass --helm PATH") from exc
    if proc.returncode != 0:
        raise ImageListError(f"`{' '.join(argv)}` failed: {proc.stderr.strip()}")
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml: the rendered chart is large
    return [d for d in yaml.load_all(proc.stdout, Loader=loader) if d]


def pod_spec(doc: dict) -> dict | None:
    if doc.get("kind") == "Pod":
        return doc.get("spec") or {}
    if doc.get("kind") in POD_TEMPLATE_KINDS:
        return ((doc.get("spec") or {}).get("template") or {}).get("spec") or {}
    if doc.get("kind") == "CronJob":
        job = ((doc.get("spec") or {}).get("jobTemplate") or {}).get("spec") or {}
        return (job.get("template") or {}).get("spec") or {}
    return None


def rendered_images(docs) -> dict:
    """image ref -> the objects running it ("Deployment/x container hub")."""
    out: dict = {}
    for doc in docs:
        spec = pod_spec(doc)
        if spec is None:
            continue
        for lst in CONTAINER_LISTS:
            for c in spec.get(lst) or ():
                out.setdefault(c["image"], []).append(f"{doc['kind']}/{doc['metadata']['name']} {lst[:-1]} {c['name']}")
    return out


def hub_values(docs) -> dict:
    """The merged values the hub reads: the chart's values Secret (chart defaults + every -f file)."""
    for doc in docs:
        data = doc.get("stringData") or {}
        if doc.get("kind") == "Secret" and "values.yaml" in data and "release-revision" in data:
            return yaml.safe_load(data["values.yaml"]) or {}
    raise ImageListError("the rendered chart has no values Secret (templates/hub/values-secret.yaml)")


def chart_version(docs) -> str:
    for doc in docs:
        labels = (doc.get("metadata") or {}).get("labels") or {}
        if "app.kubernetes.io/version" in labels:
            return str(labels["app.kubernetes.io/version"])
    raise ImageListError("no rendered object carries app.kubernetes.io/version (the chart's appVersion)")


def value_paths(values: dict, app_version: str) -> dict:
    """values path -> the image ref it produces: every image mapping (`name` with `tag` or `digest`) and
    every `image:` string of a container list (hub.extraContainers, hub.initContainers)."""
    out: dict = {}

    def walk(node, path):
        if isinstance(node, dict):
            if isinstance(node.get("name"), str) and node["name"] and ("tag" in node or "digest" in node):
                # an empty tag is the chart's appVersion (teamhub.hub.image); elsewhere no tag at all
                tag = node.get("tag") or (app_version if path == "hub.image" else None)
                out[path] = image_ref(node["name"], tag, node.get("digest"))
                return
            for k, v in node.items():
                walk(v, f"{path}.{k}" if path else str(k))
        elif isinstance(node, list):
            for i, item in enumerate(node):
                if isinstance(item, dict) and isinstance(item.get("image"), str) and "name" in item:
                    out[f"{path}[{i}].image"] = item["image"]
                else:
                    walk(item, f"{path}[{i}]")

    walk(values, "")
    return out


def catalog_images(values_file: Path) -> set:
    """Keys of catalog images some placement launches (a resource's image or an accelerator override's)."""
    catalog = load_or_raise([values_file]).catalog
    keys = set()
    for resource in catalog.resources.values():
        for acc in [catalog.accelerators[a] for a in resource.accelerators] or [None]:
            keys.add(place(resource, acc).image)
    return keys


@dataclass
class Plan:
    images: list  # BundleImage, sorted by ref
    lists: dict  # values path of a container list -> the list as the chart reads it (for the site overlay)


def images(chart: str | Path, values_files, helm: str = "helm") -> list[BundleImage]:
    """Every image the chart rendered with these values can run, sorted by ref, each with its values paths."""
    return plan(chart, values_files, helm).images


def _get(values: dict, dotted: str):
    node = values
    for part in dotted.split("."):
        node = node[part]
    return node


def plan(chart: str | Path, values_files, helm: str = "helm", workdir: Path | None = None) -> Plan:
    docs = render(chart, values_files, helm)
    values = hub_values(docs)
    paths = value_paths(values, chart_version(docs))
    wanted: dict = {ref: [] for ref in rendered_images(docs)}

    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        merged = Path(tmp) / "values.yaml"
        merged.write_text(yaml.safe_dump(values), encoding="utf-8")
        for key in catalog_images(merged):
            wanted.setdefault(paths[f"catalog.images.{key}"], [])
    by_ref: dict = {}
    for path, ref in paths.items():
        by_ref.setdefault(ref, []).append(path)
    unmapped = [ref for ref in wanted if ref not in by_ref]
    if unmapped:
        raise ImageListError("rendered image(s) no values path produces, so a bundle could not point them at a site "
                             f"registry: {', '.join(sorted(unmapped))}")
    out = [BundleImage(ref, sorted(by_ref[ref])) for ref in sorted(wanted)]
    list_paths = {p.split("[", 1)[0] for img in out for p in img.paths if "[" in p}
    return Plan(out, {p: _get(values, p) for p in sorted(list_paths)})
