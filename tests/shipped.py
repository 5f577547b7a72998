"""The hub as it ships: hub-image/Dockerfile's build stage, run step by step into a virtualenv.

The tests import teamhub from the source tree, so a file that the wheel leaves out (a template, the
schema) would never be noticed there. `shipped_venv()` reads the Dockerfile's first stage and runs its
own ENV/COPY/RUN instructions (the pinned lock with --no-deps, the pinned setuptools/wheel,
`pip install --no-deps --no-build-isolation` of hub-image) with the image's paths mapped into
build/shipped/<digest>/. Reading the Dockerfile instead of copying its commands means the test cannot
drift from the image. The digest covers the Dockerfile, every copied file and the Python version, so an
unchanged tree reuses the venv in a fraction of a second; a changed one is rebuilt (older builds removed).

`shipped_config(venv)` is the image's /srv/teamhub/jupyterhub_config.py, placed outside the source tree
so the hub started with it imports teamhub from the venv only.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CONTEXT = ROOT / "hub-image"  # the image's build context (dockerfiles/images.yaml)
DOCKERFILE = CONTEXT / "Dockerfile"
CONFIG_SOURCE = CONTEXT / "jupyterhub_config.py"  # the final stage copies it to CONFIG_IN_IMAGE
CACHE = ROOT / "build" / "shipped"
VENV_IN_IMAGE = "/opt/teamhub"
SRC_IN_IMAGE = "/src"
CONFIG_IN_IMAGE = "/srv/teamhub/jupyterhub_config.py"
# pip's download cache changes where bytes come from, never what is installed: keep it, so a rebuild after
# a code change does not download the whole lock again.
IGNORED_ENV = {"PIP_NO_CACHE_DIR"}
SKIPPED = ("__pycache__", "*.pyc", "*.egg-info")  # generated locally; a fresh clone's build context has none


def instructions(dockerfile: Path = DOCKERFILE) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order, line continuations joined, comments dropped."""
    out, current = [], ""
    for line in dockerfile.read_text(encoding="utf-8").splitlines():
        stripped = line.strip()
        if not current and (not stripped or stripped.startswith("#")):
            continue
        if stripped.startswith("#"):  # a comment inside a continued RUN
            continue
        current += " " + stripped[:-1] if stripped.endswith("\\") else " " + stripped
        if not stripped.endswith("\\"):
            keyword, _, args = current.strip().partition(" ")
            out.append((keyword.upper(), args.strip()))
            current = ""
    return out


def build_stage(dockerfile: Path = DOCKERFILE) -> list[tuple[str, str]]:
    """The instructions of the first stage (the one that builds /opt/teamhub)."""
    steps = instructions(dockerfile)
    froms = [i for i, (k, _) in enumerate(steps) if k == "FROM"]
    if not froms:
        raise ValueError(f"{dockerfile}: no FROM")
    end = froms[1] if len(froms) > 1 else len(steps)
    return steps[froms[0] + 1:end]


def _copied(src: Path):
    if src.is_file():
        yield src
        return
    for path in sorted(src.rglob("*")):
        if path.is_file() and not any(path.match(p) or p in path.parts for p in SKIPPED):
            yield path


def digest(dockerfile: Path = DOCKERFILE) -> str:
    h = hashlib.sha256()
    h.update(sys.version.encode())
    h.update(dockerfile.read_bytes())
    h.update(CONFIG_SOURCE.read_bytes())
    for keyword, args in build_stage(dockerfile):
        if keyword == "COPY":
            for path in _copied(CONTEXT / shlex.split(args)[-2]):
                h.update(str(path.relative_to(CONTEXT)).encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()[:16]



def _map(text: str, home: Path) -> str:
    return text.replace(VENV_IN_IMAGE, str(home / "venv")).replace(SRC_IN_IMAGE, str(home / "src"))


def _base_python() -> str:
    """The interpreter a `python -m venv` in the image would be: the system one, not the test venv."""
    return getattr(sys, "_base_executable", None) or sys.executable


def run_build_stage(home: Path, dockerfile: Path = DOCKERFILE) -> None:
    shim = home / "shim"  # `python` in RUN lines is the image's interpreter
    shim.mkdir(parents=True)
    (shim / "python").symlink_to(_base_python())
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
    env["PATH"] = os.pathsep.join([str(shim), env.get("PATH", "")])
    log = open(home / "build.log", "w")  # noqa: SIM115 - closed below
    try:
        for keyword, args in build_stage(dockerfile):
            if keyword == "ENV":
                for pair in shlex.split(args):
                    key, _, value = pair.partition("=")
                    if key not in IGNORED_ENV:
                        env[key] = value
            elif keyword == "COPY":
                parts = [p for p in shlex.split(args) if not p.startswith("--chown")]
                if any(p.startswith("--") for p in parts):
                    raise ValueError(f"{dockerfile}: COPY {args}: flag not supported by tests/shipped.py")
                src, dest = CONTEXT / parts[0], Path(_map(parts[1], home))
                for path in _copied(src):
                    target = dest / path.relative_to(src) if src.is_dir() else dest
                    target.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(path, target)
            elif keyword == "RUN":
                log.write(f"$ {args}\n")
                log.flush()
                done = subprocess.run(["/bin/sh", "-ec", _map(args, home)], env=env, stdout=log, stderr=subprocess.STDOUT,
                                      cwd=home, timeout=900)
                if done.returncode:
                    log.close()
                    raise RuntimeError(f"{dockerfile}: RUN {args[:80]}... failed ({done.returncode}):\n"
                                       f"{(home / 'build.log').read_text()[-3000:]}")
            else:
                raise ValueError(f"{dockerfile}: {keyword} in the build stage is not supported by tests/shipped.py; "
                                 "teach it (the test must build exactly what the image builds)")
    finally:
        log.close()
    # The final stage: COPY jupyterhub_config.py /srv/teamhub/jupyterhub_config.py
    (home / "srv").mkdir()
    shutil.copy2(CONFIG_SOURCE, home / "srv" / Path(CONFIG_IN_IMAGE).name)


def shipped_venv(dockerfile: Path = DOCKERFILE) -> Path:
    """Path of a virtualenv holding exactly what the hub image's /opt/teamhub holds (built once per input)."""
    CACHE.mkdir(parents=True, exist_ok=True)
    key = digest(dockerfile)
    home = CACHE / key
    with open(CACHE / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # two pytest runs in one tree build once
        if not (home / "complete").exists():
            shutil.rmtree(home, ignore_errors=True)
            home.mkdir()
            run_build_stage(home, dockerfile)
            (home / "complete").write_text(key)
        for other in CACHE.iterdir():
            if other.is_dir() and other.name != key and re.fullmatch(r"[0-9a-f]{16}", other.name):
                shutil.rmtree(other, ignore_errors=True)
    return home / "venv"


def shipped_config(venv: Path) -> Path:
    """The image's jupyterhub_config.py (outside the source tree, as in the image)."""
    return venv.parent / "srv" / Path(CONFIG_IN_IMAGE).name


def installed_files(venv: Path, package: str = "teamhub") -> set[str]:
    """Files the installed distribution holds under its package folder, relative to it (from RECORD, i.e. the wheel)."""
    code = ("import importlib.metadata as m, sys\n"
            f"for f in m.files('{package}') or []:\n"
            f"    p = str(f)\n"
            f"    if p.startswith('{package}/') and '__pycache__' not in p: print(p[len('{package}/'):])\n")
    out = subprocess.run([str(venv / "bin" / "python"), "-c", code], capture_output=True, text=True, check=True,
                         env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"}, cwd=venv)
    return set(out.stdout.split())
