"""The images the tier runs, built on this machine into the tier's image storage (.tools/containers, kept
between runs so unchanged images are not rebuilt):

- hub and base-cpu from their Dockerfiles, unchanged, through scripts/build_images.sh itself (it picks buildah
  here and builds only what the machine can run); the tags it writes go into a copy of config/values.yaml;
- pause (the pod sandbox) from the static binary setup.sh builds from tools/pause;
- a configurable-http-proxy stand-in from the pinned npm package in node_modules and this machine's Node
  (the upstream proxy image is out of reach), on the same Debian base as the stand-in Python image.

Registries are out of reach: `make setup` imports the stand-in python:3.11.11-slim-bookworm that the
Dockerfiles start FROM.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import yaml
from support import CONFIG, ROOT, TOOLS

CONTAINERS = TOOLS.parent / "containers"
STORAGE_CONF = CONTAINERS / "storage.conf"
STANDIN_BASE = "docker.io/library/python:3.11.11-slim-bookworm"
LOCAL = "teamhub.local"


def engine_env() -> dict:
    # Only the storage: registries, policy and short names keep their defaults (nothing is pulled here).
    return {**os.environ, "CONTAINERS_STORAGE_CONF": str(STORAGE_CONF)}


def buildah(*args, timeout: float = 900) -> subprocess.CompletedProcess:
    r = subprocess.run(["buildah", *map(str, args)], capture_output=True, text=True, env=engine_env(), timeout=timeout)
    if r.returncode != 0:
        raise AssertionError(f"buildah {' '.join(map(str, args))} failed ({r.returncode}):\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}")
    return r


def exists(ref: str) -> bool:
    return subprocess.run(["buildah", "inspect", "--type", "image", ref], capture_output=True, env=engine_env(),
                          timeout=60).returncode == 0


@dataclass
class Images:
    hub: str
    base_cpu: str
    pause: str
    proxy: str
    values: Path  # config/values.yaml with the built tags, as build_images.sh wrote it

    def all(self) -> list[str]:
        return [self.hub, self.base_cpu, self.pause, self.proxy]


def build_all(work: Path) -> Images:
    missing = [str(p) for p in (STORAGE_CONF, TOOLS / "pause") if not p.exists()]
    if missing or not exists(STANDIN_BASE):
        raise AssertionError(f"the containers tier's set-up is missing ({', '.join(missing) or STANDIN_BASE}): run `make setup`")
    values = work / "values.yaml"
    shutil.copy(CONFIG / "values.yaml", values)
    log = work / "build_images.log"
    with open(log, "w") as out:
        r = subprocess.run([str(ROOT / "scripts" / "build_images.sh"), "hub", "base-cpu", "--values", str(values)],
                           stdout=out, stderr=subprocess.STDOUT, env={**engine_env(), "BUILD_ENGINE": ""}, timeout=1800)
    if r.returncode != 0:
        raise AssertionError(f"scripts/build_images.sh failed ({r.returncode}); the end of {log}:\n{log.read_text()[-4000:]}")
    built = _built_refs(log)
    data = yaml.safe_load(values.read_text())
    hub = f"{data['hub']['image']['name']}:{data['hub']['image']['tag']}"
    assert built.get("hub") == hub, f"build_images.sh built {built.get('hub')} but wrote {hub} into {values}"
    return Images(hub=hub, base_cpu=built["base-cpu"], pause=_pause(), proxy=_proxy(work), values=values)


def _built_refs(log: Path) -> dict:
    """What build_images.sh announced: `==> KEY -> REF` lines."""
    lines = [ln[4:].split(" -> ", 1) for ln in log.read_text().splitlines() if ln.startswith("==> ") and " -> " in ln]
    return {key.strip(): ref.strip() for key, ref in lines}


def _digest(*parts: bytes) -> str:
    h = hashlib.sha256()
    for p in parts:
        h.update(hashlib.sha256(p).digest())
    return h.hexdigest()[:12]


def _pause() -> str:
    binary = TOOLS / "pause"
    ref = f"{LOCAL}/pause:{_digest(binary.read_bytes())}"
    if not exists(ref):
        ctr = buildah("from", "scratch").stdout.strip()
        try:
            buildah("copy", "--chmod", "0755", ctr, binary, "/pause")
            buildah("config", "--entrypoint", '["/pause"]', "--user", "65535:65535", ctr)
            buildah("commit", "--quiet", ctr, ref)
        finally:
            buildah("rm", ctr)
    return ref


CHP_CONTAINERFILE = """\
FROM {base}
COPY node /usr/local/bin/node
COPY node_modules /opt/chp/node_modules
RUN ln -s /opt/chp/node_modules/configurable-http-proxy/bin/configurable-http-proxy /usr/local/bin/configurable-http-proxy
USER 65534:65534
CMD ["configurable-http-proxy"]
"""


def _proxy(work: Path) -> str:
    """configurable-http-proxy at the version package-lock.json pins, as the chart's proxy image would hold it."""
    node = Path(shutil.which("node") or "/usr/bin/node").resolve()
    lock = json.loads((ROOT / "package-lock.json").read_text())
    version = lock["packages"]["node_modules/configurable-http-proxy"]["version"]
    modules = ROOT / "node_modules"
    ref = f"{LOCAL}/configurable-http-proxy:{version}-{_digest(node.read_bytes(), (ROOT / 'package-lock.json').read_bytes())}"
    if not exists(ref):
        context = work / "chp-context"
        context.mkdir()
        shutil.copy(node, context / "node")
        shutil.copytree(modules.resolve(), context / "node_modules", symlinks=True)
        (context / "Containerfile").write_text(CHP_CONTAINERFILE.format(base=STANDIN_BASE))
        buildah("bud", "--network", "host", "--isolation", "chroot", "--layers", "--pull=never", "-f",
                context / "Containerfile", "-t", ref, context)
        shutil.rmtree(context)
    return ref


def archive(ref: str, work: Path) -> Path:
    """A docker-archive of the image, which containerd's `ctr images import` reads; cached per image ID and name:
    the archive carries the name it is imported under, and one image ID can get a new tag (a tag follows the
    sources, and a change that leaves an image's layers alone still moves its tag)."""
    image_id = buildah("inspect", "--type", "image", "--format", "{{.FromImageID}}", ref).stdout.strip()
    cache = CONTAINERS / "archives"
    cache.mkdir(exist_ok=True)
    path = cache / f"{image_id[:24]}-{_digest(ref.encode())}.tar"
    if not path.exists():
        partial = path.with_suffix(".partial")
        partial.unlink(missing_ok=True)
        buildah("push", "--quiet", ref, f"docker-archive:{partial}:{ref}")
        partial.rename(path)
        for old in cache.glob("*.tar"):  # keep the archives of the last two builds of each image at most
            if old != path and old.stat().st_mtime < path.stat().st_mtime - 7 * 86400:
                old.unlink(missing_ok=True)
    return path


def rootfs_files(ref: str, *paths: str) -> dict:
    """The bytes of `paths` in the image (None when absent), read from a mounted working container."""
    ctr = buildah("from", "--pull=never", ref).stdout.strip()
    try:
        root = Path(buildah("mount", ctr).stdout.strip())
        out = {}
        for p in paths:
            f = root / p.lstrip("/")
            out[p] = f.read_bytes() if f.is_file() and not f.is_symlink() or (f.is_symlink() and f.exists()) else None
        return out
    finally:
        buildah("umount", ctr)
        buildah("rm", ctr)
