"""Helpers every test tier imports (`from support import ...`). Tests import teamhub from this tree
(see pyproject.toml pythonpath). Not a conftest: pytest loads every tier's conftest.py under the same
module name, so helpers imported by name must live in a module of their own."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "config"
TOOLS = ROOT / ".tools" / "bin"


def tree_env(**extra) -> dict:
    """Environment for subprocesses that must run this tree's teamhub package and tools."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "hub-image"), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env["PATH"] = os.pathsep.join([str(TOOLS), str(Path(sys.executable).parent), str(ROOT / "node_modules" / ".bin"), env["PATH"]])
    env.update(extra)
    return env


def run_teamhub(*args, input=None, env=None, cwd=ROOT) -> subprocess.CompletedProcess:
    """`teamhub ARGS` as an operator runs it, from this tree."""
    return subprocess.run([sys.executable, "-m", "teamhub", *map(str, args)], input=input, capture_output=True,
                          text=True, env=env or tree_env(), cwd=cwd, timeout=120)


def wait_for(check, what: str, timeout: float = 30, interval: float = 0.2):
    """Poll `check` until it returns something true (returned); fail naming `what` after `timeout` seconds."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = check()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"{what}: not within {timeout} s")
