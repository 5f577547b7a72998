"""A real, certified OpenID provider (panva's oidc-provider, `oidcprovider.mjs`) on loopback, and a person's
way through its pages (login form, consent, cancel, logout confirmation) with `requests`.

Slower to start than FakeOIDC (a few seconds: it makes signing keys), so a module starts it once.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
from html import unescape
from pathlib import Path
from urllib.parse import urljoin

import requests
from support import ROOT
from teamhub.cli.demo import free_port

SCRIPT = Path(__file__).with_name("oidcprovider.mjs")


class RealOIDC:
    client_id = "teamhub-hub"
    client_secret = "real-provider-secret-for-loopback-tests-only"

    def __init__(self, hub_urls: list, accounts: dict, access_seconds: int = 3600, port: int | None = None):
        self.hub_urls, self.accounts, self.access_seconds = hub_urls, accounts, access_seconds
        self.port = port or free_port()
        self.issuer = f"http://127.0.0.1:{self.port}"
        self.proc = None
        self.output = b""

    def start(self, timeout: float = 60):
        conf = {"port": self.port, "clientId": self.client_id, "clientSecret": self.client_secret,
                "redirectUris": [f"{u}/hub/oidc/oauth_callback" for u in self.hub_urls],
                "postLogoutUris": [f"{u}/hub/login" for u in self.hub_urls],
                "accessTokenSeconds": self.access_seconds, "accounts": self.accounts}
        self.proc = subprocess.Popen(["node", str(SCRIPT), json.dumps(conf)], cwd=ROOT, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"oidc-provider exited: {self.proc.stdout.read().decode(errors='replace')}")
            try:
                if requests.get(self.issuer + "/.well-known/openid-configuration", timeout=2).ok:
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.25)
        self.stop()
        raise RuntimeError("oidc-provider did not answer in time")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
        if self.proc:
            self.output = self.proc.stdout.read()
            self.proc.stdout.close()
        self.proc = None


def form(page: requests.Response, marker: str = "") -> tuple:
    """(absolute action URL, hidden fields) of the first form on a provider page containing `marker`."""
    for m in re.finditer(r"<form\b([^>]*)>(.*?)</form>", page.text, re.S):
        if marker in m.group(0):
            action = unescape(re.search(r'action="([^"]*)"', m.group(1)).group(1))
            hidden = {unescape(n): unescape(v) for n, v in
                      re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', m.group(2))}
            return urljoin(page.url, action), hidden
    raise AssertionError(f"no form with {marker!r} at {page.url}:\n{page.text[:2000]}")


def sign_in(session: requests.Session, hub_url: str, login: str) -> requests.Response:
    """Press the hub's button, sign in at the provider, consent if asked; the page the browser ends on."""
    page = session.get(f"{hub_url}/hub/oidc/oauth_login", timeout=30)
    action, fields = form(page, 'name="login"')
    page = session.post(action, data={**fields, "login": login, "password": "any"}, timeout=30)
    if 'value="consent"' in page.text:
        action, fields = form(page, 'value="consent"')
        page = session.post(action, data=fields, timeout=30)
    return page


def cancel(session: requests.Session, hub_url: str) -> requests.Response:
    """Press the hub's button, then "[ Cancel ]" on the provider's login page."""
    page = session.get(f"{hub_url}/hub/oidc/oauth_login", timeout=30)
    href = re.search(r'<a href="([^"]+)">\[ Cancel \]</a>', page.text)
    assert href, page.text[:2000]
    return session.get(urljoin(page.url, unescape(href.group(1))), timeout=30)


def confirm_logout(session: requests.Session, page: requests.Response) -> requests.Response:
    """Answer "Yes, sign me out" on the provider's logout confirmation page."""
    action, fields = form(page, 'id="op.logoutForm"')
    return session.post(action, data={**fields, "logout": "yes"}, timeout=30)
