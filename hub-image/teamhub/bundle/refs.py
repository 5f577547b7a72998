"""Image references split the way registries and the container runtime read them, so a site copy keeps the
same repository path under the site's host. No registry is contacted here."""

from __future__ import annotations

import re
from dataclasses import dataclass

DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
# The implicit registry of a name without a host part (the runtime's default); never contacted here, only
# needed to tell "rocker/r-ver" and "host:5000/rocker/r-ver" apart.
_DEFAULT_REGISTRY = "docker.io"


@dataclass(frozen=True)
class Ref:
    registry: str  # host[:port]
    repository: str  # path below the host
    tag: str | None
    digest: str | None

    @property
    def name(self) -> str:
        return f"{self.registry}/{self.repository}"

    @property
    def text(self) -> str:
        out = self.name + (f":{self.tag}" if self.tag else "")
        return out + (f"@{self.digest}" if self.digest else "")

    def by_digest(self, digest: str) -> str:
        """`registry/repository@digest`: what crane fetches once a tag is resolved."""
        return f"{self.name}@{digest}"


def _is_host(part: str) -> bool:
    return "." in part or ":" in part or part == "localhost"


def parse(text: str) -> Ref:
    """`[host[:port]/]path[:tag][@sha256:...]`; a name without a host gets the runtime's default registry
    and, for one-part names, its `library/` namespace (as the runtime pulls them)."""
    rest, _, digest = text.partition("@")
    if digest and not DIGEST.match(digest):
        raise ValueError(f"{text!r}: the digest must be sha256: and 64 lowercase hex digits")
    tag = None
    slash = rest.rfind("/")
    colon = rest.rfind(":")
    if colon > slash:
        rest, tag = rest[:colon], rest[colon + 1:]
    first, sep, path = rest.partition("/")
    if sep and _is_host(first):
        registry, repository = first, path
    else:
        registry, repository = _DEFAULT_REGISTRY, rest if "/" in rest else f"library/{rest}"
    if not re.fullmatch(r"[a-z0-9]+(?:(?:[._-]|__|/)[a-z0-9]+)*", repository):
        raise ValueError(f"{text!r}: not an image reference (registry/repository[:tag][@digest])")
    return Ref(registry, repository, tag or None, digest or None)
