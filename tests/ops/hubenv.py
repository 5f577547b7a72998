"""Throwaway virtualenvs for tests that must run the hub exactly as its image does, cached by content.

`cached_venv(name, requirements)` builds `build/venvs/<name>-<hash of requirements>` once (pip's own cache
makes a rebuild cheap) and reuses it while the requirements are unchanged; build/ is ignored by git.
`install_teamhub(venv)` installs this tree's teamhub package into it as a wheel, like the image does.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

from support import ROOT
from teamhub.cli.demo import free_port  # noqa: F401 -- re-exported for the ops tests

VENVS = ROOT / "build" / "venvs"
HUB_LOCK = ROOT / "hub-image" / "requirements.txt"


def _pip_env() -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    return env


def cached_venv(name: str, requirements: str, no_deps: bool = True) -> Path:
    """A virtualenv with exactly `requirements` (a requirements.txt text) installed."""
    key = hashlib.sha256(f"{sys.version_info[:2]}\n{no_deps}\n{requirements}".encode()).hexdigest()[:16]
    venv = VENVS / f"{name}-{key}"
    if (venv / ".complete").exists():
        return venv
    # built in place (scripts name the venv's path in their shebangs); .complete marks a finished build
    shutil.rmtree(venv, ignore_errors=True)
    VENVS.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    req = venv / "requirements.txt"
    req.write_text(requirements)
    cmd = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", *(["--no-deps"] if no_deps else []), "-r", str(req)]
    subprocess.run(cmd, check=True, timeout=1500, env=_pip_env())
    (venv / ".complete").write_text(requirements)
    return venv


def install_teamhub(venv: Path) -> None:
    """Build this tree's teamhub as a wheel (outside the tree) and install it into venv, replacing any older one."""
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "src"
        shutil.copytree(ROOT / "hub-image", src, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info", "build"))
        wheels = Path(tmp) / "wheels"
        subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(wheels), str(src)],
                       check=True, timeout=300, env=_pip_env(), capture_output=True)
        wheel = next(wheels.glob("teamhub-*.whl"))
        subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--no-deps", "--no-index", "--force-reinstall", str(wheel)],
                       check=True, timeout=300, env=_pip_env())


def hub_venv() -> Path:
    """The hub image's Python environment: hub-image/requirements.txt (with --no-deps, as in the Dockerfile)."""
    return cached_venv("hub", HUB_LOCK.read_text())


def wait_http(url: str, timeout: float, proc: subprocess.Popen | None = None) -> int:
    """GET url until it answers 200 (the proxy answers 404 until the hub's route exists); returns the last
    status seen when time runs out; raises if the process exits first or nothing answered at all."""
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before {url} answered (last: {last})")
        try:
            with urllib.request.urlopen(url, timeout=5) as resp:
                return resp.status
        except urllib.error.HTTPError as exc:
            last = exc.code
        except OSError as exc:
            last = exc
        time.sleep(0.5)
    if isinstance(last, int):
        return last
    raise TimeoutError(f"{url} did not answer within {timeout}s ({last})")


def stop_tree(proc: subprocess.Popen, timeout: float = 30) -> None:
    """Stop a hub and everything it started (JupyterHub starts the proxy in a session of its own)."""
    import psutil

    try:
        children = psutil.Process(proc.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        children = []
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout)
    for child in children:
        try:
            child.terminate()
        except psutil.NoSuchProcess:
            pass
    _gone, alive = psutil.wait_procs(children, timeout=10)
    for child in alive:
        child.kill()
