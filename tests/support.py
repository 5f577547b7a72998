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
# What `make demo` runs: the operator's starting point (no accounts) and the demo overlay (the accounts whose
# passwords README publishes). Every test that logs in as a demo account, or asks about one, loads both; the
# demo's hashes are accepted only in demo mode (`teamhub demo`, HubProcess's hubs, `demo=True` below).
DEMO_OVERLAY = CONFIG / "demo" / "values.yaml"
DEMO_VALUES = (CONFIG / "values.yaml", DEMO_OVERLAY)
# A hash for values documents written by tests (bcrypt cost 4 of TEST_PASSWORD): not a demo hash, so it passes
# everywhere the demo's are refused.
TEST_PASSWORD = "test-pass"
TEST_HASH = "$2b$04$GVq.ooAxIQMhVKs0//inyOP7irRfBb0OYg0PjS6gvPkrOuxfhTLIa"


def demo_values() -> dict:
    """The demo's values as one mapping (merged like helm -f), for a test that edits and writes a copy."""
    from teamhub.values.source import load_files

    return load_files(list(DEMO_VALUES)).data


def demo_values_text() -> str:
    """config/values.yaml with the demo overlay's admins and accounts written into it: one file, comments kept,
    for tests of tools that edit a single values file (`teamhub users`). Check it with `validate --demo`."""
    import re

    import yaml

    base, overlay = (CONFIG / "values.yaml").read_text(), DEMO_OVERLAY.read_text()
    admins = re.search(r"^  admins: .*$", overlay, re.M).group(0)
    text = re.sub(r"^  admins: \[\]$", admins, base, count=1, flags=re.M)
    text = text.replace("    users: {}\n", overlay[overlay.index("    users:\n"):], 1)  # the accounts end the overlay
    assert yaml.safe_load(text)["auth"] == {**yaml.safe_load(base)["auth"], **yaml.safe_load(overlay)["auth"],
                                            "local": {**yaml.safe_load(base)["auth"]["local"], **yaml.safe_load(overlay)["auth"]["local"]}}
    return text


def load_demo(*extra, **kwargs):
    """The demo's values (plus `extra` files on top) checked as `teamhub demo` checks them."""
    from teamhub.catalog.loader import load

    return load([*DEMO_VALUES, *extra], demo=True, **kwargs)


def demo_passwords() -> dict:
    """name -> password of the demo accounts (config/demo/demo-accounts.txt)."""
    out = {}
    for line in (CONFIG / "demo" / "demo-accounts.txt").read_text().splitlines():
        parts = line.split()
        if len(parts) == 2 and not line.startswith("#"):
            out[parts[0]] = parts[1]
    return out


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
