"""`teamhub bundle push`: every image of a verified bundle into the site's registry, digests unchanged, then a
values overlay that points every image path (chart and catalog) at the copy, by digest."""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

import yaml

from . import verify
from .layout import Layout
from .tools import Registries, ToolError, crane


class PushError(Exception):
    pass


def site_name(registry: str, prefix: str, repository: str) -> str:
    return f"{registry}/{prefix}{repository}"


def _push_one(registries: Registries, layout: Layout, img: dict, target: str, registry: str) -> None:
    """crane push of a one-image layout whose blobs are the bundle's own (a link, nothing copied)."""
    with tempfile.TemporaryDirectory(prefix="teamhub-push-") as tmp:
        single = Path(tmp)
        shutil.copyfile(layout.root / "oci-layout", single / "oci-layout")
        (single / "blobs").symlink_to(layout.root.resolve() / "blobs")
        desc = {"mediaType": img["mediaType"], "digest": img["digest"], "size": layout.path(img["digest"]).stat().st_size}
        (single / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [desc]}), encoding="utf-8")
        # one entry, an image or an index: crane pushes that manifest's raw bytes, so the digest is kept
        crane(registries, registry, "push", str(single), target, timeout=3600)
    stored = crane(registries, registry, "digest", target, timeout=300).stdout.decode().strip()
    if stored != img["digest"]:
        raise PushError(f"the registry answers {stored} for {target}, not the bundle's {img['digest']}")


def _set(tree: dict, dotted: str, value) -> None:
    node = tree
    parts = dotted.split(".")
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = value


def overlay(doc: dict, registry: str, prefix: str) -> dict:
    """values that point every image path of the bundle at the site's copy, pinned by digest."""
    out: dict = {}
    lists = json.loads(json.dumps(doc.get("lists", {})))  # copies: container lists are replaced whole by helm
    for img in doc["images"]:
        name = site_name(registry, prefix, img["repository"])
        for path in img["paths"]:
            if "[" in path:  # hub.extraContainers[0].image: a plain reference string
                base, _, rest = path.partition("[")
                lists[base][int(rest.split("]", 1)[0])]["image"] = f"{name}@{img['digest']}"
            else:
                _set(out, path, {"name": name, "tag": img["tag"] or "", "digest": img["digest"]})
    for base, items in lists.items():
        _set(out, base, items)
    return out


def push(bundle: Path, registry: str, prefix: str, registries: Registries, overlay_path: Path, jobs: int = 4,
         stdout=sys.stdout) -> int:
    say = lambda text: print(text, file=stdout, flush=True)  # noqa: E731
    found = verify.problems(bundle)
    if found:
        for line in found:
            say(f"teamhub: {line}")
        say(f"teamhub: {bundle} failed verification: nothing was pushed")
        return 1
    if prefix and not prefix.endswith("/"):
        prefix += "/"
    doc = verify.load_manifest(bundle)
    layout = Layout(bundle / "images")
    total, done, failed = len(doc["images"]), 0, []
    registries.flags(registry)  # refuse plain HTTP before any image starts (one sentence, not one per image)
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        pushes = {}
        for img in doc["images"]:
            name = site_name(registry, prefix, img["repository"])
            target = f"{name}:{img['tag']}" if img["tag"] else f"{name}@{img['digest']}"
            pushes[pool.submit(_push_one, registries, layout, img, target, registry)] = (img, target)
        for future in as_completed(pushes):
            img, target = pushes[future]
            if future.exception() is not None:
                if not isinstance(future.exception(), (ToolError, PushError)):
                    raise future.exception()
                failed.append(f"teamhub: pushing {img['ref']} to {target} failed: {future.exception()}")
                continue
            done += 1
            say(f"[{done}/{total}] {target}@{img['digest']}  {img['size']} bytes")
    if failed:
        for line in failed:
            say(line)
        say(f"teamhub: {len(failed)} of {total} images not pushed; no overlay written (the same command again "
            "pushes what is missing: blobs the registry has are not sent again)")
        return 1
    header = (f"# Written by `teamhub bundle push`: every image of the bundle in {registry}, pinned by digest.\n"
              f"# Install: scripts/helm_update.sh --values <bundle>/{doc['values'][0]} "
              + "".join(f"-f <bundle>/{v} " for v in doc["values"][1:]) + f"-f {overlay_path.name}\n")
    overlay_path.write_text(header + yaml.safe_dump(overlay(doc, registry, prefix), sort_keys=True), encoding="utf-8")
    say(f"wrote {overlay_path}: {total} images point at {registry}")
    say(f"the chart as an OCI artifact: helm push {bundle / doc['chart']} oci://{registry}/{prefix}charts"
        + (" --plain-http" if registry in registries.plain_http else ""))
    return 0
