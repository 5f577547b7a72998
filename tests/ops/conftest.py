"""Fixtures for the operator-script tests: stand-in tools on PATH that record their arguments."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from support import ROOT, tree_env

FAKES = Path(__file__).with_name("fakes.py")


@dataclass
class Fakes:
    bin: Path
    state: Path
    log: Path
    env: dict = field(default_factory=dict)

    def calls(self, tool: str | None = None) -> list[list[str]]:
        if not self.log.exists():
            return []
        calls = [json.loads(line) for line in self.log.read_text().splitlines() if line.strip()]
        return [c for c in calls if tool is None or c[0] == tool]

    def helm_commands(self) -> list[str]:
        return [c[1] for c in self.calls("helm")]

    def history(self) -> list:
        f = self.state / "history.json"
        return json.loads(f.read_text()) if f.exists() else []

    def run(self, script: str, *args, fail: str = "", stdin: str | None = "", timeout: int = 120, **env) -> subprocess.CompletedProcess:
        e = dict(self.env, FAKE_FAIL=fail, **env)
        return subprocess.run([str(ROOT / "scripts" / script), *map(str, args)], capture_output=True, text=True,
                              env=e, cwd=ROOT, timeout=timeout, stdin=subprocess.DEVNULL if stdin == "" else None)


@pytest.fixture
def fakes(tmp_path) -> Fakes:
    """helm, kubectl, docker, podman and buildah stand-ins first on PATH; no real one can be reached."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("helm", "kubectl", "docker", "podman", "buildah"):
        exe = bin_dir / tool
        exe.write_text(f"#!{sys.executable}\nimport os, runpy\nos.environ['FAKE_TOOL'] = {tool!r}\nrunpy.run_path({str(FAKES)!r}, run_name='__main__')\n")
        exe.chmod(0o755)
    state = tmp_path / "state"
    state.mkdir()
    env = tree_env()
    # only the stand-ins, coreutils and python: a real helm/kubectl/docker on this machine must not be used
    env["PATH"] = os.pathsep.join([str(bin_dir), "/usr/bin", "/bin"])
    env.update(FAKE_STATE=str(state), FAKE_LOG=str(tmp_path / "calls.log"), TEAMHUB=f"{sys.executable} -m teamhub",
               TEAMHUB_OPS=f"{sys.executable} -m teamhub.cli.ops",
               HOME=str(tmp_path))
    return Fakes(bin=bin_dir, state=state, log=tmp_path / "calls.log", env=env)
