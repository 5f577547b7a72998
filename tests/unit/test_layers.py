"""The package's layers are checked by import-linter in `make lint` (contracts in pyproject.toml): the tree keeps
them, and a copy of the package with one upward import, or one import cycle, is refused."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "hub-image" / "teamhub"
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def lint_imports(package_parent: Path) -> subprocess.CompletedProcess:
    """lint-imports with the repository's contracts on the `teamhub` package found under `package_parent`."""
    env = {**os.environ, "PYTHONPATH": str(package_parent)}
    return subprocess.run([str(LINT_IMPORTS), "--config", str(ROOT / "pyproject.toml"), "--no-cache"],
                          cwd=package_parent, env=env, capture_output=True, text=True, timeout=120)


def copy_package(tmp_path: Path) -> Path:
    shutil.copytree(PACKAGE, tmp_path / "teamhub", ignore=shutil.ignore_patterns("__pycache__", "templates", "schema", "etc"))
    return tmp_path / "teamhub"


def add_import(module: Path, line: str) -> None:
    text = module.read_text()
    anchor = "from __future__ import annotations\n"
    assert anchor in text, module
    module.write_text(text.replace(anchor, anchor + line + "\n", 1))


def test_the_tree_keeps_every_contract():
    result = lint_imports(ROOT / "hub-image")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Contracts: 2 kept, 0 broken." in result.stdout


def test_every_package_has_a_layer():
    """A new package must be placed in a layer, or nothing would stop it importing anything."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    (layers,) = [c["layers"] for c in config["contracts"] if c["type"] == "layers"]
    placed = {name.strip() for layer in layers for name in layer.split("|")}
    present = {f"teamhub.{p.stem if p.is_file() else p.name}" for p in PACKAGE.iterdir()
               if (p.is_dir() and (p / "__init__.py").exists()) or (p.suffix == ".py" and not p.name.startswith("__"))}
    assert present == placed


def test_an_upward_import_is_refused(tmp_path):
    pkg = copy_package(tmp_path)
    assert lint_imports(tmp_path).returncode == 0  # the copy as it is passes
    add_import(pkg / "values" / "quantities.py", "from ..hub import sessions  # noqa: F401")  # values may not know the hub
    result = lint_imports(tmp_path)
    assert result.returncode != 0
    assert "teamhub's layers: nothing imports upwards BROKEN" in result.stdout
    assert "teamhub.values.quantities -> teamhub.hub.sessions" in result.stdout


def test_an_import_between_independent_packages_is_refused(tmp_path):
    pkg = copy_package(tmp_path)
    add_import(pkg / "auth" / "passwords.py", "from ..db import settings  # noqa: F401")  # auth and db share a layer
    result = lint_imports(tmp_path)
    assert result.returncode != 0
    assert "teamhub.auth.passwords -> teamhub.db.settings" in result.stdout


def test_an_import_cycle_is_refused(tmp_path):
    pkg = copy_package(tmp_path)
    # serverlist imports launchpage (serverlist and launchhandler once imported each other, issue 25)
    add_import(pkg / "hub" / "launchpage.py", "from . import serverlist  # noqa: F401")
    result = lint_imports(tmp_path)
    assert result.returncode != 0
    assert "no import cycles between the modules of one package BROKEN" in result.stdout
    assert "No cycles are allowed in teamhub.hub." in result.stdout
