"""The image manifest (dockerfiles/images.yaml) and the one place where image tags are computed.

A tag is `<commit>-<hash>[-<arch>...]`: the last git commit that touched the build context (`uncommitted` when it has none), then the first
12 hex digits of a SHA-256 over everything that shapes the image: every file of the context (path, exec bit,
content; `.dockerignore` patterns and caches left out), the Dockerfile, the resolved build args and the
platforms. An unchanged context gives the same tag at every later commit; any edit gives a new one. Never
`latest`. A build limited to the platforms this machine can run (no emulation for the others) names them
at the end of the tag (`-amd64`), so it never passes for the multi-platform image.

Build args may name another image of the manifest as `{{image:NAME}}`; it resolves to that image's full
reference, so a course image's tag changes whenever its base changes.
"""

from __future__ import annotations

import fnmatch
import hashlib
import os
import re
import shlex
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[3]
MANIFEST = ROOT / "dockerfiles" / "images.yaml"
ALWAYS_IGNORED = ("__pycache__", "*.pyc", "*.egg-info", ".pytest_cache", ".ruff_cache", ".git", ".venv", "node_modules")
_REF = re.compile(r"\{\{\s*image:([a-z0-9-]+)\s*\}\}")


class ManifestError(Exception):
    pass


@dataclass
class ImageSpec:
    key: str
    name: str
    context: Path
    dockerfile: Path
    build_args: dict = field(default_factory=dict)
    platforms: list = field(default_factory=list)
    values: list = field(default_factory=list)  # dotted values paths whose tag follows this image


@dataclass
class Manifest:
    root: Path
    images: dict  # key -> ImageSpec, in file order

    def order(self, keys=None) -> list[str]:
        """The requested images (all when empty) plus the images they build on, bases first."""
        unknown = [k for k in keys or [] if k not in self.images]
        if unknown:
            raise ManifestError(f"unknown image(s): {', '.join(unknown)} (known: {', '.join(self.images)})")
        out: list[str] = []

        def visit(key, stack=()):
            if key in stack:
                raise ManifestError(f"images build on each other in a cycle: {' -> '.join((*stack, key))}")
            for dep in self.depends_on(key):
                visit(dep, (*stack, key))
            if key not in out:
                out.append(key)

        for key in keys or list(self.images):
            visit(key)
        return out

    def depends_on(self, key) -> list[str]:
        deps = []
        for value in self.images[key].build_args.values():
            for dep in _REF.findall(str(value)):
                if dep not in self.images:
                    raise ManifestError(f"{key}: build arg names unknown image '{dep}'")
                deps.append(dep)
        return deps


def load_manifest(path: str | Path = MANIFEST, root: str | Path | None = None) -> Manifest:
    path = Path(path)
    root = Path(root) if root else (ROOT if path.resolve() == MANIFEST.resolve() else path.resolve().parent.parent)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ManifestError(f"cannot read {path}: {exc}") from exc
    if not isinstance(data, dict) or not isinstance(data.get("images"), dict):
        raise ManifestError(f"{path}: expected a mapping with an 'images' mapping")
    images = {}
    for key, raw in data["images"].items():
        if not isinstance(raw, dict):
            raise ManifestError(f"{path}: images.{key}: expected a mapping")
        missing = [f for f in ("name", "context", "dockerfile") if not raw.get(f)]
        if missing:
            raise ManifestError(f"{path}: images.{key}: missing {', '.join(missing)}")
        if ":" in str(raw["name"]).rsplit("/", 1)[-1]:
            raise ManifestError(f"{path}: images.{key}.name: give the name without a tag; tags are computed")
        values = raw.get("values") or []
        images[key] = ImageSpec(
            key=key,
            name=str(raw["name"]),
            context=root / raw["context"],
            dockerfile=root / raw["dockerfile"],
            build_args={str(k): str(v) for k, v in (raw.get("buildArgs") or {}).items()},
            platforms=[str(p) for p in raw.get("platforms") or ["linux/amd64"]],
            values=[values] if isinstance(values, str) else list(values),
        )
    return Manifest(root=root, images=images)


def _ignore_patterns(context: Path) -> list[str]:
    patterns = list(ALWAYS_IGNORED)
    ignore = context / ".dockerignore"
    if ignore.is_file():
        for line in ignore.read_text(encoding="utf-8").splitlines():
            line = line.strip()
            if line and not line.startswith("#") and not line.startswith("!"):
                patterns.append(line.rstrip("/"))
    return patterns


def _ignored(rel: str, patterns) -> bool:
    parts = rel.split("/")
    for pat in patterns:
        if fnmatch.fnmatch(rel, pat) or any(fnmatch.fnmatch(p, pat) for p in parts):
            return True
    return False


def context_files(context: Path) -> list[Path]:
    patterns = _ignore_patterns(context)
    files = []
    for dirpath, dirnames, filenames in os.walk(context):
        rel_dir = os.path.relpath(dirpath, context)
        dirnames[:] = sorted(d for d in dirnames if not _ignored(os.path.normpath(os.path.join(rel_dir, d)), patterns))
        for name in sorted(filenames):
            rel = os.path.normpath(os.path.join(rel_dir, name))
            if not _ignored(rel, patterns):
                files.append(Path(dirpath) / name)
    return files


def content_hash(spec: ImageSpec, resolved_args: dict) -> str:
    if not spec.context.is_dir():
        raise ManifestError(f"{spec.key}: build context {spec.context} does not exist")
    if not spec.dockerfile.is_file():
        raise ManifestError(f"{spec.key}: Dockerfile {spec.dockerfile} does not exist")
    h = hashlib.sha256()
    for f in context_files(spec.context):
        rel = f.relative_to(spec.context).as_posix()
        h.update(f"file {rel} {'x' if os.access(f, os.X_OK) else '-'}\n".encode())
        h.update(hashlib.sha256(f.read_bytes()).digest())
    h.update(b"dockerfile\n" + spec.dockerfile.read_bytes())
    for k in sorted(resolved_args):
        h.update(f"arg {k}={resolved_args[k]}\n".encode())
    h.update(f"platforms {','.join(sorted(spec.platforms))}\n".encode())
    return h.hexdigest()[:12]


def context_commit(spec: ImageSpec, root: Path) -> str:
    """The short hash of the last commit touching the context or Dockerfile; `uncommitted` when there is none."""
    try:
        out = subprocess.run(
            ["git", "log", "-1", "--format=%h", "--abbrev=8", "--", str(spec.context), str(spec.dockerfile)],
            cwd=root, capture_output=True, text=True, timeout=30,
        )
    except (OSError, subprocess.SubprocessError):
        return "uncommitted"
    commit = out.stdout.strip()
    return commit if out.returncode == 0 and commit else "uncommitted"


@dataclass
class Planned:
    key: str
    ref: str
    tag: str
    build_args: dict
    spec: ImageSpec


def plan(manifest: Manifest, keys=None, runnable=None) -> list[Planned]:
    """Resolved build order with computed tags (bases first). `runnable`: the platforms this machine can build
    (None: all); each image is built for its platforms among them, and an image none of them covers is an error."""
    done: dict[str, Planned] = {}
    for key in manifest.order(keys):
        spec = manifest.images[key]
        suffix = ""
        if runnable is not None:
            platforms = [p for p in spec.platforms if p in runnable]
            if not platforms:
                raise ManifestError(f"{key}: built for {', '.join(spec.platforms)}, but this machine can only build "
                                    f"{', '.join(runnable) or 'nothing'} (no emulation through binfmt_misc for the others)")
            if platforms != spec.platforms:
                suffix = "".join(f"-{p.rsplit('/', 1)[-1]}" for p in platforms)
                spec = ImageSpec(**{**spec.__dict__, "platforms": platforms})
        args = {k: _REF.sub(lambda m: done[m.group(1)].ref, v) for k, v in spec.build_args.items()}
        tag = f"{context_commit(spec, manifest.root)}-{content_hash(spec, args)}{suffix}"
        done[key] = Planned(key=key, ref=f"{spec.name}:{tag}", tag=tag, build_args=args, spec=spec)
    return list(done.values())


def runnable_platforms(machine: str | None = None, binfmt: Path = Path("/proc/sys/fs/binfmt_misc")) -> list[str]:
    """linux/<arch> for this machine's own architecture plus those binfmt_misc can emulate (qemu-<arch>)."""
    arches = {"x86_64": "amd64", "aarch64": "arm64", "arm64": "arm64", "ppc64le": "ppc64le", "s390x": "s390x",
              "riscv64": "riscv64"}
    own = arches.get(machine or os.uname().machine, machine or os.uname().machine)
    found = [own]
    try:
        handlers = [p.name for p in binfmt.iterdir()]
    except OSError:
        handlers = []
    for handler in handlers:
        if handler.startswith("qemu-") and arches.get(handler[5:]) and arches[handler[5:]] not in found:
            found.append(arches[handler[5:]])
    return [f"linux/{a}" for a in found]


def build_command(engine: str, p: Planned, mounts=()) -> list[str]:
    """The build. buildah and podman build on the host's network (their default network adds a bridge, iptables
    chains and turns on ip_forward on the machine), in chroot isolation (no nested namespaces needed), keeping
    layers as cache. `mounts` ("SRC:DST"): host files bound read-only into every RUN step, never into the
    image (the site's CA bundle and pip.conf, to reach the package index through a TLS-inspecting proxy)."""
    spec = p.spec
    args = []
    for k, v in p.build_args.items():
        args += ["--build-arg", f"{k}={v}"]
    args += ["--build-arg", f"IMAGE_VERSION={p.tag}"]  # every Dockerfile puts it in its OCI version label
    oci = ["--network", "host", "--isolation", "chroot", "--layers", *(a for m in mounts for a in ("-v", f"{m}:ro"))]
    if engine == "buildah":
        cmd = ["buildah", "bud", *oci, "--platform", ",".join(spec.platforms), *args, "-f", str(spec.dockerfile), "-t", p.ref,
               str(spec.context)]
    elif engine == "podman":
        cmd = ["podman", "build", *oci, "--platform", ",".join(spec.platforms), *args, "-f", str(spec.dockerfile), "-t", p.ref,
               str(spec.context)]
    else:
        cmd = ["docker", "build", "--platform", ",".join(spec.platforms), *args, "-f", str(spec.dockerfile), "-t", p.ref, str(spec.context)]
    return cmd


def push_command(engine: str, p: Planned, digest_file: str | Path | None = None) -> list[str]:
    """The push; podman and buildah write the pushed digest to `digest_file`, docker prints it (see pushed_digest)."""
    if digest_file is not None and engine in ("podman", "buildah"):
        return [engine, "push", "--digestfile", str(digest_file), p.ref]
    return [engine, "push", p.ref]


_DIGEST = re.compile(r"\bsha256:[0-9a-f]{64}\b")


def pushed_digest(digest_file: str | Path | None = None, push_output: str = "") -> str:
    """The digest the registry gave the pushed image: the digest file (podman, buildah), else the last
    `digest: sha256:...` in the push output (docker). Raises ManifestError when there is none."""
    text = ""
    if digest_file is not None and Path(digest_file).is_file():
        text = Path(digest_file).read_text(encoding="utf-8")
    found = _DIGEST.findall(text) or _DIGEST.findall(push_output)
    if not found:
        raise ManifestError("the push reported no sha256 digest")
    return found[-1]


def write_argv(path: Path, argv: list[str]) -> None:
    """A command as NUL-separated words, for `mapfile -d ''` in bash: no shell quoting, no eval."""
    path.write_bytes(b"".join(a.encode() + b"\0" for a in argv))


def plan_lines(manifest: Manifest, keys, engine: str, argv_dir: str | Path | None = None, runnable=None, mounts=()) -> list[str]:
    """Tab-separated lines for scripts/build_images.sh: key, ref, tag, values paths (comma), build, push (the
    last two shell-quoted, to show). With `argv_dir`, also writes <key>.build and <key>.push there as argv
    files (write_argv) to run, and the push of podman/buildah records the digest in <key>.digest."""
    lines = []
    for p in plan(manifest, keys, runnable):
        digest_file = Path(argv_dir) / f"{p.key}.digest" if argv_dir else None
        build, push = build_command(engine, p, mounts), push_command(engine, p, digest_file)
        if argv_dir:
            write_argv(Path(argv_dir) / f"{p.key}.build", build)
            write_argv(Path(argv_dir) / f"{p.key}.push", push)
        lines.append("\t".join([p.key, p.ref, p.tag, ",".join(p.spec.values) or "-", shlex.join(build), shlex.join(push)]))
    return lines
