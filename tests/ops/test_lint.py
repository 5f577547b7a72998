"""hadolint on every Dockerfile and shellcheck on every script (also part of `make lint`)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml
from support import ROOT

BIN = Path(sys.executable).parent


def test_dockerfiles_pass_hadolint():
    files = [ROOT / "hub-image" / "Dockerfile", *sorted((ROOT / "dockerfiles").glob("*/Dockerfile"))]
    assert len(files) >= 4  # the hub, the CPU base, the GPU bases (ROCm and CUDA from one file), a course image
    r = subprocess.run([str(BIN / "hadolint"), *map(str, files)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr


def test_scripts_pass_shellcheck():
    files = sorted((ROOT / "scripts").glob("*.sh")) + sorted((ROOT / "scripts" / "lib").glob("*.sh"))
    r = subprocess.run([str(BIN / "shellcheck"), "-x", *map(str, files)], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert r.returncode == 0, r.stdout + r.stderr


def test_images_are_pinned_never_latest():
    for f in [ROOT / "hub-image" / "Dockerfile", *(ROOT / "dockerfiles").glob("*/Dockerfile")]:
        for line in f.read_text().splitlines():
            if line.startswith("FROM ") and "${" not in line:
                image = line.split()[1]
                assert ":" in image and not image.endswith(":latest"), f"{f}: {line}"


def test_base_images_given_as_build_args_are_pinned():
    """A Dockerfile with `FROM ${BASE_IMAGE}` gets its base from dockerfiles/images.yaml: pinned there."""
    manifest = yaml.safe_load((ROOT / "dockerfiles" / "images.yaml").read_text())
    for key, spec in manifest["images"].items():
        base = (spec.get("buildArgs") or {}).get("BASE_IMAGE")
        if base and not base.startswith("{{image:"):
            assert ":" in base and not base.endswith(":latest"), f"images.{key}.buildArgs.BASE_IMAGE: {base}"

