"""`teamhub bundle create`: the chart, the values and every image the chart can run, in one folder.

Resuming: every blob is written under its digest only once complete and checked, and each resolved
manifest is recorded in `.create-state.json` as soon as it is stored; a second run reads both back and asks
the registry only for what is missing. Blobs shared between images are fetched and stored once.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path

from . import archive, imagelist, refs
from .layout import IMAGE_TYPES, INDEX_TYPES, MANIFEST, REF_NAME, Layout, LayoutError, children, media_type, sha256_file
from .tools import ANY_REGISTRY, Registries, ToolError, crane, crane_stream, interrupted, stop_streams

STATE = ".create-state.json"


class CreateError(Exception):
    pass


def human(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1000
    return f"{n:.1f} GB"


@dataclass
class Resolved:
    image: imagelist.BundleImage
    ref: refs.Ref
    digest: str = ""
    media_type: str = ""
    manifest_size: int = 0
    blobs: dict = field(default_factory=dict)  # digest -> size: config and layers (all platforms)
    manifests: dict = field(default_factory=dict)  # digest -> size: the top manifest and an index's children
    source_digest: str = ""  # with --platform: the registry's index, when what is kept has another digest
    platforms: list = field(default_factory=list)  # with --platform: the platforms kept of an index

    @property
    def size(self) -> int:
        return sum(self.blobs.values()) + sum(self.manifests.values())


class Progress:
    """One line per image once all its bytes are in, a running total every few seconds, totals at the end."""

    def __init__(self, images: list[Resolved], layout: Layout, out=sys.stdout, every: float = 2.0):
        self.out, self.every, self.lock = out, every, threading.Lock()
        self.images = images
        self.waiting = {id(r): {d for d in r.blobs if not layout.has(d, r.blobs[d])} for r in images}
        self.total = sum(s for d, s in {d: s for r in images for d, s in r.blobs.items()}.items()
                         if not layout.has(d, s))
        self.fetched, self.done, self.started, self.last = 0, 0, time.monotonic(), time.monotonic()

    def say(self, text: str) -> None:
        print(text, file=self.out, flush=True)

    def image_done(self, r: Resolved, note: str) -> None:
        self.done += 1
        self.say(f"[{self.done}/{len(self.images)}] {r.image.ref}  {r.digest[:19]}  {human(r.size)}{note}")

    def start(self) -> None:
        for r in self.images:
            if not self.waiting[id(r)]:
                self.image_done(r, "  (all blobs already in the bundle)")

    def add(self, n: int) -> None:
        with self.lock:
            self.fetched += n
            now = time.monotonic()
            if now - self.last >= self.every:
                self.last = now
                rate = self.fetched / max(now - self.started, 1e-6)
                self.say(f"    {human(self.fetched)} of {human(self.total)} downloaded ({human(rate)}/s)")

    def blob_done(self, digest: str) -> None:
        with self.lock:
            for r in self.images:
                waiting = self.waiting[id(r)]
                if digest in waiting:
                    waiting.discard(digest)
                    if not waiting:
                        self.image_done(r, "")


def _fetch_manifest(registries: Registries, layout: Layout, state: dict, ref: refs.Ref, digest: str | None) -> tuple:
    """(digest, raw manifest): from the layout when this run or an earlier one stored it, else from the registry."""
    known = digest or state.get(ref.text)
    if known and layout.has(known):
        return known, layout.read(known)
    target = ref.by_digest(digest) if digest else ref.text
    raw = crane(registries, ref.registry, "manifest", target, timeout=300).stdout
    got = "sha256:" + hashlib.sha256(raw).hexdigest()
    if digest and got != digest:
        raise CreateError(f"{target}: the registry served a manifest whose digest is {got}")
    layout.put(raw)
    if not digest:
        state[ref.text] = got
    return got, raw


def platform_of(desc: dict) -> str:
    """An index entry's platform as `os/arch[/variant]` ("unknown/unknown" for attestations and the like)."""
    p = desc.get("platform") or {}
    text = f"{p.get('os') or 'unknown'}/{p.get('architecture') or 'unknown'}"
    return text + (f"/{p['variant']}" if p.get("variant") else "")


def _wanted(desc: dict, platforms) -> bool:
    have = platform_of(desc)
    return any(have == want or (want.count("/") == 1 and have.startswith(want + "/")) for want in platforms)


def _only_platforms(registries, layout, state, r: Resolved, raw: bytes, platforms) -> bytes:
    """An index cut down to `platforms`: one left is kept as that image's own manifest (its registry digest),
    several as a new index of those entries (a new digest; bundle.json keeps the registry's as sourceDigest)."""
    doc = json.loads(raw)
    kept = [d for d in doc["manifests"] if _wanted(d, platforms)]
    if not kept:
        have = ", ".join(sorted({platform_of(d) for d in doc["manifests"]}))
        raise CreateError(f"it has no image for {', '.join(platforms)} (its platforms: {have})")
    r.source_digest, r.platforms = r.digest, [platform_of(d) for d in kept]
    if len(kept) == 1:
        r.digest, raw = _fetch_manifest(registries, layout, state, r.ref, kept[0]["digest"])
    elif len(kept) < len(doc["manifests"]):
        doc["manifests"] = kept
        raw = (json.dumps(doc, indent=3) + "\n").encode()
        r.digest = layout.put(raw)
    else:
        r.source_digest = ""  # every platform wanted: the registry's index as it is
    return raw


def resolve(registries: Registries, layout: Layout, state: dict, image: imagelist.BundleImage,
            platforms=()) -> Resolved:
    ref = refs.parse(image.ref)
    r = Resolved(image, ref)
    r.digest, raw = _fetch_manifest(registries, layout, state, ref, ref.digest)
    if platforms and media_type(raw) in INDEX_TYPES:
        raw = _only_platforms(registries, layout, state, r, raw, platforms)
    r.media_type, r.manifest_size = media_type(raw), len(raw)
    r.manifests[r.digest] = len(raw)
    pending = [raw]
    while pending:
        doc = pending.pop()
        for desc in children(doc):
            if desc.get("mediaType") in IMAGE_TYPES | INDEX_TYPES or "platform" in desc:  # an index's child manifest
                _, child = _fetch_manifest(registries, layout, state, ref, desc["digest"])
                r.manifests[desc["digest"]] = len(child)
                pending.append(child)
            else:
                r.blobs[desc["digest"]] = int(desc["size"])
    return r


def _download(registries: Registries, layout: Layout, ref: refs.Ref, digest: str, size: int, progress: Progress) -> None:
    if interrupted():
        raise CreateError("interrupted before it started")
    with crane_stream(registries, ref.registry, "blob", ref.by_digest(digest)) as stream:
        layout.receive(digest, size, stream, progress.add)
    progress.blob_done(digest)


def _package_chart(chart: Path, helm: str, dest: Path) -> Path:
    shutil.rmtree(dest, ignore_errors=True)
    dest.mkdir(parents=True)
    proc = subprocess.run([helm, "package", str(chart), "-d", str(dest)], capture_output=True, text=True, timeout=120)
    if proc.returncode != 0:
        raise CreateError(f"helm package {chart} failed: {proc.stderr.strip()}")
    return next(dest.glob("*.tgz"))


def _copy_values(values_files, out: Path) -> list[Path]:
    dest = out / "values"
    shutil.rmtree(dest, ignore_errors=True)
    dest.mkdir(parents=True)
    copies = []
    for i, f in enumerate(values_files, 1):
        copy = dest / f"{i:02d}-{Path(f).name}"
        shutil.copyfile(f, copy)
        copies.append(copy)
    return copies


def _login_host(registries: Registries, wanted) -> None:
    """Credentials given by flag without --login-registry: for the one registry every image comes from, else
    refused (a password is never sent to a registry nobody named)."""
    if ANY_REGISTRY not in registries.logins:
        return
    hosts = sorted({refs.parse(i.ref).registry for i in wanted})
    if len(hosts) != 1:
        raise CreateError(f"the images come from {len(hosts)} registries ({', '.join(hosts)}): name the one "
                          "the --username is for with --login-registry HOST")
    registries.logins[hosts[0]] = registries.logins.pop(ANY_REGISTRY)


def create(values_files, out: Path, chart: Path, helm: str, registries: Registries, jobs: int = 4,
           stdout=sys.stdout, platforms=()) -> int:
    """`out`: the bundle folder, or FILE.tar (made in FILE.tar.partial/, where an interrupted create resumes)."""
    say = lambda text: print(text, file=stdout, flush=True)  # noqa: E731
    plan = imagelist.plan(chart, values_files, helm)  # before anything is written: bad values leave no folder
    wanted = plan.images
    _login_host(registries, wanted)
    tar, out = (Path(out), Path(f"{out}.partial")) if archive.is_tar(out) else (None, Path(out))
    out.mkdir(parents=True, exist_ok=True)
    say(f"{len(wanted)} images from the chart rendered with {', '.join(map(str, values_files))}"
        + (f", only {', '.join(platforms)} of multi-platform images" if platforms else ""))
    layout = Layout(out / "images")
    layout.init()
    state_path = out / STATE
    state = json.loads(state_path.read_text(encoding="utf-8")) if state_path.is_file() else {}
    resolved, failed = [], []
    try:
        with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:  # manifests: one small request each, at once
            answers = [(image, pool.submit(resolve, registries, layout, state, image, platforms)) for image in wanted]
        for image, answer in answers:
            exc = answer.exception()
            if exc is None:
                resolved.append(answer.result())
            elif isinstance(exc, (ToolError, CreateError, LayoutError, ValueError)):
                failed.append(f"{image.ref} (values: {', '.join(image.paths)}): {exc}")
            else:
                raise exc
    finally:
        state_path.write_text(json.dumps(state, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    packaging = ThreadPoolExecutor(max_workers=1)  # helm package needs nothing from the images: run it meanwhile
    package = packaging.submit(_package_chart, chart, helm, layout.partial / "chart")
    packaging.shutdown(wait=False)
    progress = Progress(resolved, layout, stdout)
    progress.start()
    missing: dict = {}  # digest -> (ref to fetch it from, size): each blob once, whatever shares it
    for r in resolved:
        for digest, size in r.blobs.items():
            if not layout.has(digest, size):
                missing.setdefault(digest, (r.ref, size))
    say(f"downloading {len(missing)} blobs, {human(progress.total)}")
    pool = ThreadPoolExecutor(max_workers=max(1, jobs))
    futures = {pool.submit(_download, registries, layout, ref, d, size, progress): d for d, (ref, size) in missing.items()}
    try:
        wait(futures)
    except KeyboardInterrupt:
        # Ctrl-C: start nothing more, end the downloads running now (their partial files are never kept)
        pool.shutdown(wait=False, cancel_futures=True)
        stop_streams()
        say(f"teamhub: interrupted; every complete blob is kept in {out}: run the same command again to resume")
        raise
    pool.shutdown()
    for future, digest in futures.items():
        if future.exception():
            users = [r.image.ref for r in resolved if digest in r.blobs]
            failed.append(f"blob {digest} of {', '.join(users)}: {future.exception()}")
    if failed:
        for line in failed:
            say(f"teamhub: not bundled: {line}")
        say(f"teamhub: {len(failed)} problem(s); what was fetched is kept in {out}: run the same command again to resume")
        return 1
    doc = _write_manifest(out, layout, resolved, plan, values_files, package.result(), platforms)
    elapsed = time.monotonic() - progress.started
    say(f"total: {len(resolved)} images, {human(sum(r.size for r in resolved))} "
        f"({human(_blob_bytes(layout, resolved))} stored, shared blobs once); downloaded {human(progress.fetched)} "
        f"in {elapsed:.1f} s ({human(progress.fetched / max(elapsed, 1e-6))}/s)")
    say(f"bundle.json {sha256_file(out / MANIFEST)}: compare it at the site before trusting the copy")
    if tar is not None:
        archive.write_tar(out, doc, tar)
        shutil.rmtree(out)
        say(f"wrote {tar} ({human(tar.stat().st_size)}): verify and push read it as it is")
    return 0


def _blob_bytes(layout: Layout, resolved) -> int:
    every = {d: s for r in resolved for d, s in {**r.blobs, **r.manifests}.items()}
    return sum(every.values())


def _write_manifest(out: Path, layout: Layout, resolved, plan, values_files, packaged: Path, platforms=()) -> dict:
    shutil.rmtree(out / "chart", ignore_errors=True)
    (out / "chart").mkdir()
    package = out / "chart" / packaged.name
    packaged.replace(package)
    shutil.rmtree(packaged.parent)
    copies = _copy_values(values_files, out)
    layout.write_index([{"mediaType": r.media_type, "digest": r.digest, "size": r.manifest_size,
                         "annotations": {REF_NAME: r.image.ref}} for r in resolved])
    layout.finish()
    (out / STATE).unlink(missing_ok=True)
    files = [package, *copies, layout.root / "oci-layout", layout.root / "index.json"]
    doc = {
        "bundle": 1,
        "chart": str(package.relative_to(out)),
        "values": [str(c.relative_to(out)) for c in copies],
        "images": [{"ref": r.image.ref, "registry": r.ref.registry, "repository": r.ref.repository,
                    "tag": r.ref.tag, "digest": r.digest, "mediaType": r.media_type, "size": r.size,
                    "paths": r.image.paths,
                    **({"platforms": r.platforms} if r.platforms else {}),
                    **({"sourceDigest": r.source_digest} if r.source_digest else {})} for r in resolved],
        "lists": plan.lists,
        "platforms": list(platforms) or "all",  # of multi-platform images; a single-platform image is kept as it is
        "blobs": dict(sorted({d: s for r in resolved for d, s in {**r.blobs, **r.manifests}.items()}.items())),
        "files": {str(f.relative_to(out)): sha256_file(f) for f in files},
    }
    (out / MANIFEST).write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    return doc
