"""`teamhub demo`: the real hub and configurable-http-proxy on a laptop, JupyterLab as local processes.

Same catalog, launch page, validation and session limits as on Kubernetes; CPU, memory and GPU limits
are NOT enforced. State lives in `.demo/` (git-ignored). Ctrl-C stops everything it started.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

from .passwords import verify_password
from .validation import load

PACKAGE = Path(__file__).resolve().parent
CONFIG_FILE = PACKAGE.parent / "jupyterhub_config.py"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def find_chp(start: Path) -> str | None:
    for base in (start, *start.parents):
        candidate = base / "node_modules" / ".bin" / "configurable-http-proxy"
        if candidate.exists():
            return str(candidate)
    return shutil.which("configurable-http-proxy")


def demo_passwords(values_path: Path, checked) -> list[tuple[str, str]]:
    """(name, password) for demo accounts whose password really matches the values' hash."""
    users = ((checked.values["auth"].get("local") or {}).get("users")) or {}
    out = []
    for path in (values_path.parent / "demo-accounts.txt",):
        if not path.exists():
            continue
        for line in path.read_text(encoding="utf-8").splitlines():
            parts = line.split()
            if len(parts) == 2 and not line.startswith("#") and parts[0] in users:
                if verify_password(parts[1], users[parts[0]]["passwordHash"]):
                    out.append((parts[0], parts[1]))
    return out


def crypt_key(state: Path) -> str:
    """The demo's auth_state key (GitHub/OIDC keep the person's groups there), kept in the state folder so a
    restarted demo still reads what it encrypted."""
    path = Path(state) / "jupyterhub_crypt_key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_hex(32))
    return path.read_text().strip()


def hub_environment(values: Path, port: int, state: Path, chp: str | None, base=None) -> dict:
    env = dict(base if base is not None else os.environ)
    if not env.get("JUPYTERHUB_CRYPT_KEY"):
        # Without it, a demo with GitHub or OIDC enabled stops at start ("auth_state is enabled, but
        # encryption is not available").
        env["JUPYTERHUB_CRYPT_KEY"] = crypt_key(state)
    env.update({
        "TEAMHUB_MODE": "local",
        "TEAMHUB_VALUES": str(values),
        "TEAMHUB_DATA_DIR": str(state),
        "TEAMHUB_BIND_URL": f"http://127.0.0.1:{port}",
        "TEAMHUB_HUB_PORT": str(free_port()),
        "TEAMHUB_PROXY_API_PORT": str(free_port()),
        "CONFIGPROXY_AUTH_TOKEN": secrets.token_hex(32),
        "PYTHONPATH": os.pathsep.join(p for p in [str(PACKAGE.parent), env.get("PYTHONPATH", "")] if p),
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")]),
    })
    if chp:
        env["TEAMHUB_CHP"] = chp
    return env


def hub_command(state: Path) -> list[str]:
    config = CONFIG_FILE
    if not config.exists():  # installed without the image's config file next to the package
        config = state / "jupyterhub_config.py"
        config.write_text("from teamhub.hub.config import load_from_environment\nload_from_environment(c)  # noqa: F821\n")
    return [sys.executable, "-m", "jupyterhub", "-f", str(config)]


def run(values: str, port: int, state_dir: str | None = None) -> int:
    values_path = Path(values).resolve()
    checked = load([values_path])
    for problem in checked.problems:
        print(problem, file=sys.stderr)
    if not checked.ok:
        print(f"teamhub demo: {values}: invalid, not starting", file=sys.stderr)
        return 1
    state = Path(state_dir or Path.cwd() / ".demo").resolve()
    (state / "homes").mkdir(parents=True, exist_ok=True)
    chp = find_chp(Path.cwd()) or find_chp(PACKAGE)
    if not chp:
        print("teamhub demo: configurable-http-proxy not found (run make setup)", file=sys.stderr)
        return 2
    env = hub_environment(values_path, port, state, chp)
    url = f"http://127.0.0.1:{port}"
    print(f"teamhub demo: {url}  (values: {values}, state: {state})")
    print("  LOCAL MODE: JupyterLab runs as local processes on this machine. CPU, memory and GPU limits are NOT")
    print("  enforced here; the catalog, launch page, team rules, quotas and session lengths are.")
    accounts = demo_passwords(values_path, checked)
    if accounts:
        print("  Demo accounts (log in with the name, e.g. alice):")
        for name, password in accounts:
            print(f"    {name:<10} {password}")
    print("  Ctrl-C stops the hub, the proxy and every server it started.", flush=True)
    proc = subprocess.Popen(hub_command(state), env=env, cwd=state, start_new_session=True)
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        return proc.wait()
    except KeyboardInterrupt:
        print("\nteamhub demo: stopping ...", flush=True)
        return stop(proc)


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def stop(proc: subprocess.Popen, timeout: float = 20) -> int:
    """Let the hub stop its servers and proxy, then make sure nothing of its process group is left."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.terminate()
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except (ProcessLookupError, PermissionError):
        pass
    try:
        return proc.wait(5)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        return proc.wait()
