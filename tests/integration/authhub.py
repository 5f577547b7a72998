"""A real JupyterHub 6 + configurable-http-proxy on loopback, configured by `teamhub.auth.configure`.

Small on purpose: once the hub engineer's shared hub fixture lands, tests can swap this for it.
Users never start servers here; the REST API (with a service token) shows what the hub knows.
"""

from __future__ import annotations

import secrets
import subprocess
import sys
import time
from pathlib import Path

import requests
import yaml
from support import ROOT, tree_env
from teamhub.cli.demo import free_port

CONFIG_TEMPLATE = '''
import teamhub.auth
from teamhub import paths
from teamhub.catalog.loader import load_or_raise

checked = load_or_raise([{values!r}], accounts_file=paths.local_users_file())
teamhub.auth.configure(c, checked)
c.JupyterHub.ip = "127.0.0.1"
c.JupyterHub.port = {port}
c.JupyterHub.hub_ip = "127.0.0.1"
c.JupyterHub.hub_port = {hub_port}
c.ConfigurableHTTPProxy.api_url = "http://127.0.0.1:{api_port}"
c.ConfigurableHTTPProxy.command = [{chp!r}]
c.JupyterHub.db_url = "sqlite:///{data}/jupyterhub.sqlite"
c.JupyterHub.cookie_secret_file = "{data}/cookie_secret"
c.JupyterHub.pid_file = "{data}/hub.pid"
c.JupyterHub.default_url = "/hub/home"
c.JupyterHub.services = [{{"name": "tester", "api_token": {token!r}}}]
c.JupyterHub.load_roles = [{{"name": "tester", "services": ["tester"],
    "scopes": ["admin:users", "admin:groups", "admin:auth_state", "list:users", "read:users", "read:groups"]}}]
'''


class AuthHub:
    def __init__(self, values: dict, workdir: Path, env: dict | None = None):
        self.values, self.dir, self.extra_env = values, Path(workdir), env or {}
        self.port, self.hub_port, self.api_port = free_port(), free_port(), free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.token = secrets.token_hex(16)
        self.proc = None

    def start(self, timeout: float = 60):
        self.dir.mkdir(parents=True, exist_ok=True)
        values_file = self.dir / "values.yaml"
        values_file.write_text(yaml.safe_dump(self.values, sort_keys=False))
        config = self.dir / "jupyterhub_config.py"
        config.write_text(CONFIG_TEMPLATE.format(
            values=str(values_file), port=self.port, hub_port=self.hub_port, api_port=self.api_port,
            chp=str(ROOT / "node_modules" / ".bin" / "configurable-http-proxy"), data=self.dir, token=self.token))
        env = tree_env(JUPYTERHUB_CRYPT_KEY=secrets.token_hex(32), CONFIGPROXY_AUTH_TOKEN=secrets.token_hex(16),
                       TEAMHUB_DATA_DIR=str(self.dir), **self.extra_env)
        self.log = open(self.dir / "hub.log", "wb")  # noqa: SIM115
        self.proc = subprocess.Popen([sys.executable, "-m", "jupyterhub", "-f", str(config)], cwd=self.dir, env=env,
                                     stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"hub exited ({self.proc.returncode}):\n{self.log_text()[-4000:]}")
            try:
                if requests.get(self.url + "/hub/health", timeout=2).status_code == 200:
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.25)
        self.stop()
        raise RuntimeError(f"hub did not answer in {timeout}s:\n{self.log_text()[-4000:]}")

    def log_text(self) -> str:
        if not self.log.closed:
            self.log.flush()
        return (self.dir / "hub.log").read_text(errors="replace")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if getattr(self, "log", None):
            self.log.close()

    # -- REST API as the admin service --------------------------------------------------------------
    def api(self, method: str, path: str, **kw):
        r = requests.request(method, f"{self.url}/hub/api{path}", headers={"Authorization": f"token {self.token}"},
                             timeout=10, **kw)
        return r

    def user(self, name: str) -> dict | None:
        r = self.api("GET", f"/users/{name}")
        return r.json() if r.status_code == 200 else None

    def groups(self) -> dict:
        return {g["name"]: sorted(g["users"]) for g in self.api("GET", "/groups").json()}

    # -- logging in ---------------------------------------------------------------------------------
    def login_page(self, session: requests.Session) -> str:
        r = session.get(self.url + "/hub/login", timeout=10)
        r.raise_for_status()
        return r.text

    def form_login(self, session: requests.Session, method: str, username: str, password: str):
        self.login_page(session)
        xsrf = session.cookies.get("_xsrf")
        return session.post(f"{self.url}/hub/{method}/login", data={"username": username, "password": password, "_xsrf": xsrf},
                            allow_redirects=False, timeout=30)

