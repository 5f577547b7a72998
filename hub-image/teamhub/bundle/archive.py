"""A bundle as a folder or as one `.tar` file holding the same layout (bundle.json, chart/, values/, images/).

`open_bundle()` gives the same reading interface for both, so verify checks a `.tar` where it lies (member by
member, nothing unpacked); `write_tar()` packs a finished folder (bundle.json first, then every file in
sorted order, owners and times zeroed: the same bundle makes the same tar); `unpack()` extracts only what
bundle.json lists, through tarfile's "data" filter (no links, devices or paths outside the folder).
"""

from __future__ import annotations

import hashlib
import os
import tarfile
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

from .layout import CHUNK, MANIFEST, sha256_file


def is_tar(path: Path) -> bool:
    return str(path).endswith(".tar")


def blob_name(digest: str) -> str:
    return f"images/blobs/sha256/{digest.partition(':')[2]}"


class FolderBundle:
    def __init__(self, root: Path, shown_as: Path | None = None):
        self.root, self.shown_as = Path(root), shown_as

    def where(self, rel: str) -> str:
        """How a sentence names a file of the bundle: its path (or its name inside the .tar it came from)."""
        return f"{rel} in {self.shown_as}" if self.shown_as else str(self.root / rel)

    def is_file(self, rel: str) -> bool:
        return (self.root / rel).is_file()

    def size(self, rel: str) -> int:
        return (self.root / rel).stat().st_size

    def read(self, rel: str) -> bytes:
        return (self.root / rel).read_bytes()

    def sha256_many(self, rels) -> dict:
        with ThreadPoolExecutor(max_workers=4) as pool:  # hashlib lets go of the GIL: large blobs hash in parallel
            return dict(zip(rels, pool.map(lambda rel: sha256_file(self.root / rel), rels), strict=True))


class TarBundle:
    def __init__(self, path: Path, tar: tarfile.TarFile):
        self.path, self.tar = Path(path), tar
        self.members = {m.name.removeprefix("./"): m for m in tar.getmembers() if m.isfile()}

    def where(self, rel: str) -> str:
        return f"{rel} in {self.path}"

    def is_file(self, rel: str) -> bool:
        return rel in self.members

    def size(self, rel: str) -> int:
        return self.members[rel].size

    def read(self, rel: str) -> bytes:
        return self.tar.extractfile(self.members[rel]).read()

    def sha256_many(self, rels) -> dict:
        out = {}
        for rel in sorted(rels, key=lambda r: self.members[r].offset_data):  # one pass through the file, in order
            h, f = hashlib.sha256(), self.tar.extractfile(self.members[rel])
            while chunk := f.read(CHUNK):
                h.update(chunk)
            out[rel] = "sha256:" + h.hexdigest()
        return out


@contextmanager
def open_bundle(path: Path):
    path = Path(path)
    if is_tar(path) and path.is_file():
        try:
            tar = tarfile.open(path, "r:")
        except tarfile.TarError as exc:
            raise OSError(f"{path} is not a readable tar file ({exc}): the copy was damaged or is not a bundle") from exc
        with tar:
            yield TarBundle(path, tar)
    else:
        yield FolderBundle(path)


def members(doc: dict) -> list[str]:
    """Every file of a finished bundle: bundle.json, the listed files, every blob."""
    return [MANIFEST, *sorted(doc.get("files", {})), *sorted(blob_name(d) for d in doc.get("blobs", {}))]


def _plain(info: tarfile.TarInfo) -> tarfile.TarInfo:
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    info.mtime = 0
    info.mode = 0o644
    return info


def write_tar(folder: Path, doc: dict, out: Path) -> None:
    """The finished folder as one tar at `out` (written beside it first, then renamed: never half a tar)."""
    tmp = out.with_name(out.name + ".writing")
    with tarfile.open(tmp, "w", format=tarfile.PAX_FORMAT) as tar:
        for rel in members(doc):
            tar.add(folder / rel, arcname=rel, recursive=False, filter=_plain)
    os.replace(tmp, out)


def unpack(tar_path: Path, doc: dict, dest: Path) -> None:
    """Only the files bundle.json lists, each a regular file under `dest` (tarfile's "data" filter)."""
    wanted = set(members(doc))
    with tarfile.open(tar_path, "r:") as tar:
        chosen = [m for m in tar.getmembers() if m.isfile() and m.name.removeprefix("./") in wanted]
        tar.extractall(dest, members=chosen, filter="data")
