"""`teamhub bundle push`: every image of a verified bundle into the site's registry, digests unchanged, then a
values overlay that points every image path (chart and catalog) at the copy, by digest."""

from __future__ import annotations

import json
import subprocess
import sys
import tarfile
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import yaml

from . import archive, verify
from .archive import FolderBundle
from .layout import Layout, LayoutError
from .tools import Registries, ToolError, bundle_push_binary, crane, tool_error


class PushError(Exception):
    pass


def site_name(registry: str, prefix: str, repository: str) -> str:
    return f"{registry}/{prefix}{repository}"


def _send(registries: Registries, layout: Layout, plan: list, registry: str, jobs: int, on_pushed) -> None:
    """bundle-push (tools/bundle-push, on go-containerregistry like crane): each blob sent once and mounted
    into every other repository using it, then every manifest byte for byte from the layout (digests kept)."""
    with tempfile.TemporaryDirectory(prefix="teamhub-push-") as tmp:
        plan_file = Path(tmp) / "plan.json"
        plan_file.write_text(json.dumps(plan), encoding="utf-8")
        with registries.environment() as env:
            proc = subprocess.Popen([bundle_push_binary(), *registries.flags(registry), "--jobs", str(jobs),
                                     str(layout.root), str(plan_file)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                    env=env, text=True)
            err = []
            drain = threading.Thread(target=lambda: err.append(proc.stderr.read()), daemon=True)
            drain.start()
            for line in proc.stdout:
                if line.startswith("pushed "):
                    on_pushed(*line.split()[1:3])
            drain.join()
            if proc.wait() != 0:
                raise ToolError(tool_error("".join(err).encode()))


def _check(registries: Registries, registry: str, target: str, digest: str) -> None:
    stored = crane(registries, registry, "digest", target, timeout=300).stdout.decode().strip()
    if stored != digest:
        raise PushError(f"the registry answers {stored} for {target}, not the bundle's {digest}")


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
    """A folder, or a `.tar`: unpacked beside itself (only the files bundle.json lists) for crane, removed after."""
    say = lambda text: print(text, file=stdout, flush=True)  # noqa: E731
    bundle = Path(bundle)
    if not (archive.is_tar(bundle) and bundle.is_file()):
        return _push(bundle, FolderBundle(bundle), registry, prefix, registries, overlay_path, jobs, say)
    try:
        doc = verify.load_manifest(bundle)
    except LayoutError as exc:
        say(f"teamhub: {exc}")
        say(f"teamhub: {bundle} failed verification: nothing was pushed")
        return 1
    with tempfile.TemporaryDirectory(prefix=f".{bundle.name}-", dir=bundle.parent) as tmp:
        say(f"unpacking {bundle} into {tmp} (removed after the push)")
        try:
            archive.unpack(bundle, doc, Path(tmp))
        except (tarfile.TarError, OSError) as exc:
            say(f"teamhub: {bundle} cannot be unpacked ({exc}): nothing was pushed")
            return 1
        return _push(Path(tmp), FolderBundle(Path(tmp), shown_as=bundle), registry, prefix, registries, overlay_path,
                     jobs, say, shown=bundle)


def _push(bundle: Path, src: FolderBundle, registry: str, prefix: str, registries: Registries, overlay_path: Path,
          jobs: int, say, shown: Path | None = None) -> int:
    found = verify.problems(shown or bundle, src)
    if found:
        for line in found:
            say(f"teamhub: {line}")
        say(f"teamhub: {shown or bundle} failed verification: nothing was pushed")
        return 1
    if prefix and not prefix.endswith("/"):
        prefix += "/"
    doc = verify.load_manifest(bundle)
    layout = Layout(bundle / "images")
    total, done, failed = len(doc["images"]), 0, []
    registries.flags(registry)  # refuse plain HTTP before any image starts (one sentence, not one per image)
    targets = {}
    for img in doc["images"]:
        name = site_name(registry, prefix, img["repository"])
        targets[f"{name}:{img['tag']}" if img["tag"] else f"{name}@{img['digest']}"] = img
    lock = threading.Lock()

    def pushed(target: str, digest: str) -> None:
        nonlocal done
        with lock:
            done += 1
            say(f"[{done}/{total}] {target}@{digest}  {targets[target]['size']} bytes")

    try:
        _send(registries, layout, [{"digest": img["digest"], "target": t} for t, img in targets.items()], registry,
              jobs, pushed)
    except ToolError as exc:
        failed.append(f"teamhub: pushing to {registry} failed: {exc}")
    if not failed:  # every tag now names the bundle's digest: asked of the registry, not taken on trust
        with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
            checks = {pool.submit(_check, registries, registry, t, img["digest"]): t for t, img in targets.items()}
        for future, target in checks.items():
            if future.exception() is not None:
                if not isinstance(future.exception(), (ToolError, PushError)):
                    raise future.exception()
                failed.append(f"teamhub: {target}: {future.exception()}")
    if failed:
        for line in failed:
            say(line)
        say(f"teamhub: {total - done} of {total} images not pushed; no overlay written (the same command again "
            "pushes what is missing: blobs the registry has are not sent again)")
        return 1
    header = (f"# Written by `teamhub bundle push`: every image of the bundle in {registry}, pinned by digest.\n"
              f"# Install: scripts/helm_update.sh --values <bundle>/{doc['values'][0]} "
              + "".join(f"-f <bundle>/{v} " for v in doc["values"][1:]) + f"-f {overlay_path.name}\n")
    overlay_path.write_text(header + yaml.safe_dump(overlay(doc, registry, prefix), sort_keys=True), encoding="utf-8")
    say(f"wrote {overlay_path}: {total} images point at {registry}")
    chart = f"{doc['chart']}  (first: tar -xf {shown} {doc['chart']})" if shown else bundle / doc["chart"]
    say(f"the chart as an OCI artifact: helm push {chart} oci://{registry}/{prefix}charts"
        + (" --plain-http" if registry in registries.plain_http else ""))
    return 0
