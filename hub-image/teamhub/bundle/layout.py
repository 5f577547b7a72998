"""The bundle on disk: an OCI image layout holding every image (each blob once, named by its digest), and
`bundle.json`, the manifest of what is in it.

    DIR/bundle.json            images (source, digest, size, values paths), blobs, SHA-256 of every file
    DIR/chart/teamhub-X.tgz    `helm package` of the chart
    DIR/values/NN-name.yaml    the values files, in the order given
    DIR/images/                the OCI image layout: oci-layout, index.json, blobs/sha256/<hex>

Manifests are stored byte for byte as the registry served them (Docker or OCI media types), so every
digest survives the copy into the site's registry.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from pathlib import Path

INDEX_TYPES = {"application/vnd.oci.image.index.v1+json",
               "application/vnd.docker.distribution.manifest.list.v2+json"}
IMAGE_TYPES = {"application/vnd.oci.image.manifest.v1+json",
               "application/vnd.docker.distribution.manifest.v2+json"}
REF_NAME = "org.opencontainers.image.ref.name"
MANIFEST = "bundle.json"
CHUNK = 1 << 20


class LayoutError(Exception):
    pass


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
    return "sha256:" + h.hexdigest()


def media_type(raw: bytes) -> str:
    """A manifest's media type: its own field, else (OCI makes it optional) what its shape says."""
    doc = json.loads(raw)
    if doc.get("schemaVersion") == 1:
        raise LayoutError("a schema 1 manifest (deprecated, unsigned digests) cannot be bundled; push the image again with a current tool")
    mt = doc.get("mediaType") or ("application/vnd.oci.image.index.v1+json" if "manifests" in doc
                                  else "application/vnd.oci.image.manifest.v1+json")
    if mt not in INDEX_TYPES | IMAGE_TYPES:
        raise LayoutError(f"unsupported manifest media type {mt}")
    return mt


def children(raw: bytes) -> list[dict]:
    """Descriptors a manifest points at: an index's manifests, or an image's config and layers."""
    doc = json.loads(raw)
    if "manifests" in doc:
        return list(doc["manifests"])
    return [doc["config"], *doc.get("layers", [])]


class Layout:
    def __init__(self, root: Path):
        self.root = Path(root)
        self.blobs = self.root / "blobs" / "sha256"
        self.partial = self.root / ".partial"  # downloads in progress; never read as blobs

    def init(self) -> None:
        self.blobs.mkdir(parents=True, exist_ok=True)
        self.partial.mkdir(exist_ok=True)
        (self.root / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}\n', encoding="utf-8")

    def path(self, digest: str) -> Path:
        algo, _, hexpart = digest.partition(":")
        if algo != "sha256" or len(hexpart) != 64:
            raise LayoutError(f"unsupported digest {digest}")
        return self.blobs / hexpart

    def has(self, digest: str, size: int | None = None) -> bool:
        p = self.path(digest)
        return p.is_file() and (size is None or p.stat().st_size == size)

    def read(self, digest: str) -> bytes:
        return self.path(digest).read_bytes()

    def put(self, data: bytes) -> str:
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        if not self.has(digest, len(data)):
            tmp = self.partial / f"{digest[7:]}.{os.getpid()}.{threading.get_ident()}.put"  # threads may put the same blob
            tmp.write_bytes(data)
            os.replace(tmp, self.path(digest))
        return digest

    def receive(self, digest: str, size: int, stream, on_bytes=lambda n: None) -> None:
        """Write a blob from a stream: into .partial first, checked against digest and size, then renamed,
        so a blob under blobs/ is always complete (an interrupted create resumes from there)."""
        tmp = self.partial / digest[7:]
        h, n = hashlib.sha256(), 0
        with open(tmp, "wb") as f:
            while chunk := stream.read(CHUNK):
                f.write(chunk)
                h.update(chunk)
                n += len(chunk)
                on_bytes(len(chunk))
        got = "sha256:" + h.hexdigest()
        if got != digest or n != size:
            tmp.unlink()
            raise LayoutError(f"blob {digest}: received {n} bytes with digest {got}, expected {size} bytes")
        os.replace(tmp, self.path(digest))

    def write_index(self, descriptors: list[dict]) -> None:
        doc = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": descriptors}
        (self.root / "index.json").write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")

    def finish(self) -> None:
        for leftover in self.partial.glob("*"):
            leftover.unlink()
        self.partial.rmdir()
