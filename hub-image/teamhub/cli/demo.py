"""`teamhub demo`: the real hub and configurable-http-proxy on a laptop, JupyterLab as local processes.

Same catalog, launch page, validation and session limits as on Kubernetes; CPU, memory and GPU limits
are NOT enforced. State lives in `.demo/` (git-ignored).

The demo owns every process it starts. JupyterHub starts the proxy, the idle culler and each JupyterLab in
sessions of their own (so a Ctrl-C in the terminal does not reach them), which a process-group kill would
miss; so the demo keeps the list of the hub's descendants in `<state>/demo-processes.json` while it runs. Ctrl-C
or SIGTERM stops the hub (which stops its servers) and then ends whatever is left of that list; when the hub
dies on its own, the demo ends the rest; and the next start ends what a killed demo left behind.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import psutil

from ..auth.passwords import verify_password
from ..catalog.loader import load

PACKAGE = Path(__file__).resolve().parents[1]  # the teamhub package
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


def demo_passwords(values_paths, checked) -> list[tuple[str, str]]:
    """(name, password) for demo accounts whose password really matches the values' hash, from the
    demo-accounts.txt beside a values file (config/demo/)."""
    users = ((checked.values["auth"].get("local") or {}).get("users")) or {}
    out = []
    for path in dict.fromkeys(Path(v).parent / "demo-accounts.txt" for v in values_paths):
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


def hub_environment(values, port: int, state: Path, chp: str | None, base=None) -> dict:
    """The hub's environment in demo mode; `values`: a values file or a list of them (merged in order)."""
    env = dict(base if base is not None else os.environ)
    files = [values] if isinstance(values, (str, Path)) else list(values)
    if not env.get("JUPYTERHUB_CRYPT_KEY"):
        # Without it, a demo with GitHub or OIDC enabled stops at start ("auth_state is enabled, but
        # encryption is not available").
        env["JUPYTERHUB_CRYPT_KEY"] = crypt_key(state)
    env.update({
        "TEAMHUB_MODE": "local",
        "TEAMHUB_DEMO": "1",  # the demo accounts' published hashes are accepted (values/demohashes.py)
        "TEAMHUB_VALUES": os.pathsep.join(str(Path(v)) for v in files),
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


def run(values, port: int, state_dir: str | None = None) -> int:
    """`values`: the values files, merged in order (default: config/values.yaml and the demo overlay)."""
    values = [values] if isinstance(values, (str, Path)) else list(values)
    values_paths = [Path(v).resolve() for v in values]
    checked = load(values_paths, demo=True)
    for problem in checked.problems:
        print(problem, file=sys.stderr)
    if not checked.ok:
        print(f"teamhub demo: {', '.join(map(str, values))}: invalid, not starting", file=sys.stderr)
        return 1
    state = Path(state_dir or Path.cwd() / ".demo").resolve()
    (state / "homes").mkdir(parents=True, exist_ok=True)
    chp = find_chp(Path.cwd()) or find_chp(PACKAGE)
    if not chp:
        print("teamhub demo: configurable-http-proxy not found (run make setup)", file=sys.stderr)
        return 2
    env = hub_environment(values_paths, port, state, chp)
    url = f"http://127.0.0.1:{port}{(checked.values.get('hub') or {}).get('baseUrl') or '/'}"  # hub.baseUrl: served under it
    print(f"teamhub demo: {url}  (values: {' + '.join(map(str, values))}, state: {state})")
    print("  LOCAL MODE: JupyterLab runs as local processes on this machine. CPU, memory and GPU limits are NOT")
    print("  enforced here; the catalog, launch page, team rules, quotas and session lengths are.")
    accounts = demo_passwords(values_paths, checked)
    if accounts:
        print("  Demo accounts (log in with the name, e.g. alice):")
        for name, password in accounts:
            print(f"    {name:<10} {password}")
    print("  Ctrl-C stops the hub, the proxy and every server it started.", flush=True)
    owned = Owned(state / PROCESS_FILE)
    owned.end_leftovers()
    signal.signal(signal.SIGTERM, _interrupt)
    proc = subprocess.Popen(hub_command(state), env=env, cwd=state, start_new_session=True)
    try:
        while proc.poll() is None:
            owned.record(proc.pid)
            time.sleep(WATCH_SECONDS)
        print(f"teamhub demo: the hub exited ({proc.returncode}); stopping what it left running", file=sys.stderr, flush=True)
        owned.end_all()
        return proc.returncode or 1
    except KeyboardInterrupt:
        print("\nteamhub demo: stopping ...", flush=True)
        return stop(proc, owned)


PROCESS_FILE = "demo-processes.json"
WATCH_SECONDS = 0.5  # how often the list of the hub's descendants is refreshed


def _interrupt(signum, frame):
    raise KeyboardInterrupt


class Owned:
    """The processes the demo started (the hub and all its descendants), remembered in a file so that
    even a demo killed with SIGKILL has its leftovers ended by the next start. Each is remembered with
    its creation time, so a recycled process id never makes us end somebody else's process."""

    def __init__(self, path: Path):
        self.path = path
        self.known: dict[int, float] = {}

    def record(self, hub_pid: int) -> None:
        try:
            hub = psutil.Process(hub_pid)
            found = {p.pid: p.create_time() for p in [hub, *hub.children(recursive=True)]}
        except psutil.NoSuchProcess:
            return
        if not found.keys() <= self.known.keys():
            self.known.update(found)
            tmp = self.path.with_suffix(".tmp")
            tmp.write_text(json.dumps({str(k): v for k, v in self.known.items()}))
            tmp.replace(self.path)

    def _alive(self) -> list[psutil.Process]:
        out = []
        for pid, created in self.known.items():
            try:
                p = psutil.Process(pid)
                if abs(p.create_time() - created) < 0.01 and p.status() != psutil.STATUS_ZOMBIE:
                    out.append(p)
            except psutil.NoSuchProcess:
                pass
        return out

    def end_all(self, timeout: float = 10) -> None:
        alive = self._alive()
        for p in alive:
            try:
                p.terminate()
            except psutil.NoSuchProcess:
                pass
        _, alive = psutil.wait_procs(alive, timeout=timeout)
        for p in alive:
            try:
                p.kill()
            except psutil.NoSuchProcess:
                pass
        psutil.wait_procs(alive, timeout=timeout)
        self.known.clear()
        self.path.unlink(missing_ok=True)

    def end_leftovers(self) -> None:
        """End what a demo that could not clean up (killed with SIGKILL) left running."""
        try:
            self.known = {int(k): float(v) for k, v in json.loads(self.path.read_text()).items()}
        except (FileNotFoundError, ValueError):
            self.known = {}
        left = self._alive()
        if left:
            print(f"teamhub demo: ending {len(left)} process(es) a previous demo left running", file=sys.stderr, flush=True)
        self.end_all()


def stop(proc: subprocess.Popen, owned: Owned, timeout: float = 30) -> int:
    """Let the hub stop its servers and proxy (SIGTERM: a demo started in the background ignores SIGINT,
    and so does its hub), then end whatever it started that is still running."""
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, signal.SIG_IGN)  # a second Ctrl-C must not cut the clean-up short
    owned.record(proc.pid)
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    owned.end_all()
    return 0
