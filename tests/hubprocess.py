"""Start the real hub (teamhub's jupyterhub_config.py + configurable-http-proxy) on free loopback ports.

Reusable by any test tier (integration, browser): `HubProcess(values, state_dir).start()` gives a hub in
local mode, reachable at `.url`; `.login(name, password)` returns a logged-in httpx client; `.api(token)`
a REST client. Every process the hub started is tracked and ended by `.stop()` (also after `.crash()`).
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "hub-image"))

from support import DEMO_VALUES, demo_passwords, demo_values  # noqa: E402,F401 -- the tiers import them from here too
from teamhub.cli.demo import free_port, hub_command, hub_environment  # noqa: E402

CHP = ROOT / "node_modules" / ".bin" / "configurable-http-proxy"


class HubProcess:
    """`venv` (optional): run JupyterHub and teamhub from that virtualenv (see shipped.py) instead of this
    tree; the user servers still come from the test environment's JupyterLab, as on a cluster they come
    from the user image, not from the hub image. `config` (optional): another jupyterhub_config.py (the
    benchmark's KubeSpawner hubs) instead of teamhub's."""

    def __init__(self, values, state_dir, port: int | None = None, extra_env: dict | None = None, venv: Path | None = None,
                 config: Path | None = None):
        """`values`: a values file, or several merged in order (DEMO_VALUES: what `make demo` runs). The hub runs
        in demo mode, as `teamhub demo` runs it (the demo accounts' published hashes are accepted)."""
        files = [values] if isinstance(values, (str, Path)) else list(values)
        self.values = Path(files[-1]).resolve()  # the file a test rewrites (the last one wins on a clash)
        self.values_files = [Path(v).resolve() for v in files]
        self.state = Path(state_dir).resolve()
        (self.state / "homes").mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        # Fixed across restarts, so a restarted hub finds its proxy and servers where they were.
        self.env = hub_environment(self.values_files, self.port, self.state, str(CHP), base={**os.environ, **(extra_env or {})})
        self.command = hub_command(self.state) if config is None else [sys.executable, "-m", "jupyterhub", "-f", str(config)]
        if venv is not None:
            self._use_venv(Path(venv))
        self.proc: subprocess.Popen | None = None
        self.log_path = self.state / "hub.log"
        self._tracked: set = set()

    def _use_venv(self, venv: Path) -> None:
        from shipped import shipped_config

        user_image = self.state / "user-image-bin"  # only the single-user server, from the test environment
        user_image.mkdir(exist_ok=True)
        link = user_image / "jupyterhub-singleuser"
        if not link.exists():
            link.symlink_to(Path(sys.executable).parent / "jupyterhub-singleuser")
        self.env.pop("PYTHONPATH", None)  # nothing from the source tree
        self.env["PATH"] = os.pathsep.join([str(user_image), str(venv / "bin"), os.environ.get("PATH", "")])
        self.command = [str(venv / "bin" / "python"), "-m", "jupyterhub", "-f", str(shipped_config(venv))]

    @property
    def base_url(self) -> str:
        """hub.baseUrl ("/" or "/jupyter/") of the values as they are now (a test may write its file after
        making the hub): `.url` carries its path, so "/hub/..." relative to it is the hub's page."""
        base = "/"
        for path in self.values_files:
            if path.exists():
                base = ((yaml.safe_load(path.read_text()) or {}).get("hub") or {}).get("baseUrl") or base
        return base

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{self.base_url.rstrip('/')}"

    def start(self, timeout: float = 90) -> HubProcess:
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self.command, env=self.env, cwd=self.state, stdout=log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"hub exited with {self.proc.returncode}:\n{self.log()[-4000:]}")
            try:
                if httpx.get(f"{self.url}/hub/api/", timeout=2).status_code == 200:
                    self.track()
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        raise TimeoutError(f"hub did not answer on {self.url}:\n{self.log()[-4000:]}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def track(self) -> None:
        """Remember every descendant of the hub (proxy, services, servers) so none outlives the tests."""
        if self.proc and self.proc.poll() is None:
            try:
                self._tracked.update(psutil.Process(self.proc.pid).children(recursive=True))
            except psutil.NoSuchProcess:
                pass

    def crash(self) -> None:
        """Kill the hub like a crash or a node failure: its proxy and servers keep running."""
        self.track()
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        self.track()
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        for child in list(self._tracked):
            try:
                child.terminate()
            except psutil.NoSuchProcess:
                pass
        _, alive = psutil.wait_procs(list(self._tracked), timeout=10)
        for child in alive:
            child.kill()
        self._tracked.clear()

    # --- clients ------------------------------------------------------------------------------------

    def login(self, name: str, password: str, timeout: float = 30) -> httpx.Client:
        client = httpx.Client(base_url=self.url, timeout=timeout, follow_redirects=False)
        page = client.get("/hub/login").text
        # The local-account form's own action: /hub/local/login behind the multi-login (POST /hub/login is refused).
        action = re.search(r'<form[^>]*class="[^"]*teamhub-local[^"]*"[^>]*action="([^"?]+)', page)
        xsrf = client.cookies.get("_xsrf")
        r = client.post(action.group(1) if action else "/hub/login", data={"username": name, "password": password, "_xsrf": xsrf})
        if r.status_code != 302:
            raise AssertionError(f"login of {name} failed: {r.status_code} {r.text[:300]}")
        return client

    def xsrf_headers(self, client: httpx.Client) -> dict:
        if not client.cookies.get("_xsrf"):
            client.get("/hub/home")
        return {"X-XSRFToken": client.cookies.get("_xsrf")}

    def token(self, client: httpx.Client, username: str) -> str:
        r = client.post(f"/hub/api/users/{username}/tokens", json={"note": "tests"}, headers=self.xsrf_headers(client))
        r.raise_for_status()
        return r.json()["token"]

    def api(self, token: str) -> httpx.Client:
        return httpx.Client(base_url=f"{self.url}/hub/api", headers={"Authorization": f"token {token}"}, timeout=30)

    def spawn_form(self, client: httpx.Client, fields: dict) -> httpx.Response:
        client.get("/hub/spawn")
        return client.post(f"/hub/spawn?_xsrf={client.cookies.get('_xsrf')}", data=fields)

    def wait_ready(self, api: httpx.Client, username: str, timeout: float = 90, server: str = "") -> dict:
        """The server (default: the default server; `server`: a named one) once it is ready."""
        name = server
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            server = api.get(f"/users/{username}").json().get("servers", {}).get(name)
            if server and server.get("ready"):
                self.track()
                return server
            time.sleep(0.5)
        raise TimeoutError(f"server of {username} not ready:\n{self.log()[-3000:]}")


def clock_hub(state: Path, password: str, teams: dict | None = None, edit=None, clock: bool = True) -> HubProcess:
    """A started hub on the demo's values with the test clock (TEAMHUB_TEST_CLOCK_FILE, its file at `.clock_file`;
    `clock=False`: the real clock and the real poll interval): every local account's password is `password`,
    `teams` adds accounts ({name: [team, ...]}), `edit(values)` changes the rest. The caller stops it."""
    from teamhub.auth.passwords import hash_password

    values = demo_values()
    users = values["auth"]["local"]["users"]
    users.update({name: {"teams": list(t)} for name, t in (teams or {}).items()})
    for user in users.values():
        user["passwordHash"] = hash_password(password, 4)
    if edit is not None:
        edit(values)
    (state / "values.yaml").write_text(yaml.safe_dump(values, sort_keys=False))
    h = HubProcess(state / "values.yaml", state, extra_env={"TEAMHUB_TEST_CLOCK_FILE": str(state / "clock")} if clock else None)
    h.clock_file = state / "clock"
    return h.start()


@contextlib.contextmanager
def edited_hub(state: Path, edit):
    """A hub on the demo's values changed by `edit(values)`, started for the `with` block."""
    values = demo_values()
    edit(values)
    (state / "values.yaml").write_text(yaml.safe_dump(values))
    h = HubProcess(state / "values.yaml", state)
    h.start()
    try:
        yield h
    finally:
        h.stop()


def offered_resources(html: str) -> set:
    return set(re.findall(r'name="resource" id="[^"]*" value="([^"]+)"', html))

