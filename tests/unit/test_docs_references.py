"""README, docs/ and benchmarks/README.md name only what exists (issue 25, item 8: a read-through found links to
headings and modules that no longer exist): every relative link reaches a file, every `#anchor` a heading of it
(GitHub's slug), and every repository path written in the text (`hub-image/...`, `tests/...`) exists."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", ROOT / "benchmarks" / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
TOP = "hub-image|tests|scripts|chart|config|docs|benchmarks|dockerfiles|tools|\\.ci"
# A repository path in running text; one followed by a placeholder (`base-*`, `teamhub-<version>.tgz`) is a pattern.
PATH = re.compile(rf"(?<![\w/.-])((?:{TOP})/[\w./-]*+)(?![<*{{])")  # possessive: no shorter match
LINK = re.compile(r"\]\(([^)#\s]*)(#[^)\s]*)?\)")


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(md: Path) -> set[str]:
    fenced, out = False, set()
    for line in md.read_text().splitlines():
        if line.startswith("```"):
            fenced = not fenced
        elif not fenced and line.startswith("#"):
            out.add(slug(line.lstrip("#")))
    return out


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_links_and_paths_exist(doc):
    text = doc.read_text()
    missing = [p for p in (m.group(1).rstrip(".-") for m in PATH.finditer(text)) if not (ROOT / p).exists()]
    for m in LINK.finditer(text):
        target, anchor = m.group(1), m.group(2)
        if target.startswith(("http://", "https://", "mailto:")):
            continue
        path = (doc.parent / target) if target else doc
        if not path.exists():
            missing.append(f"link {target}")
        elif anchor and path.suffix == ".md" and anchor[1:] not in anchors(path):
            missing.append(f"anchor {target}{anchor}")
    assert not missing, f"{doc.relative_to(ROOT)} names what does not exist: {missing}"


def test_slug_follows_github():
    assert slug(" The hub database (`teamhub.db`)") == "the-hub-database-teamhubdb"
    assert slug("Per-user origins (turn them on in production)") == "per-user-origins-turn-them-on-in-production"
