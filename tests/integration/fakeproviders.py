"""Small, faithful fake OAuth providers on loopback: GitHub (OAuth app + REST API v3, as GitHub Enterprise
serves it under /api/v3) and an OpenID Connect provider (Keycloak-like paths).

Tests choose who "signs in" at the provider by setting `provider.as_user` before the OAuth dance; the
provider then redirects back to the hub like the real one after a successful login.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlencode, urlsplit

import jwt


class _Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):  # quiet
        pass

    def _send(self, status, body=None, headers=None):
        data = b"" if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
        self.send_response(status)
        if body is not None and not isinstance(body, bytes):
            self.send_header("Content-Type", "application/json")
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _form(self) -> dict:
        n = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(n).decode()
        if (self.headers.get("Content-Type") or "").startswith("application/json"):
            return json.loads(raw or "{}")
        return {k: v[0] for k, v in parse_qs(raw).items()}

    def _client(self, form) -> tuple:
        auth = self.headers.get("Authorization", "")
        if auth.startswith("Basic "):
            cid, _, secret = base64.b64decode(auth[6:]).decode().partition(":")
            return cid, secret
        return form.get("client_id"), form.get("client_secret")

    def _bearer(self) -> str | None:
        auth = self.headers.get("Authorization", "")
        scheme, _, token = auth.partition(" ")
        return token if scheme.lower() in ("bearer", "token") else None

    def do_GET(self):
        parts = urlsplit(self.path)
        self.server.provider.log.append(("GET", parts.path))
        self.server.provider.get(self, parts.path, {k: v[0] for k, v in parse_qs(parts.query).items()})

    def do_POST(self):
        parts = urlsplit(self.path)
        self.server.provider.log.append(("POST", parts.path))
        self.server.provider.post(self, parts.path, self._form())


class _Provider:
    client_id = "teamhub-test"
    client_secret = "fake-provider-secret-for-loopback-tests-only"

    def __init__(self, port: int = 0):
        self.as_user: str | None = None
        self.codes: dict = {}
        self.tokens: dict = {}
        self.log: list = []
        self.server = ThreadingHTTPServer(("127.0.0.1", port), _Handler)
        self.server.provider = self
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self):
        self.thread.start()
        return self

    def stop(self):
        self.server.shutdown()
        self.server.server_close()

    def _authorize(self, h, q):
        if q.get("client_id") != self.client_id:
            return h._send(400, {"error": "unauthorized_client"})
        if not self.as_user:
            return h._send(401, b"nobody is signed in at the fake provider")
        code = secrets.token_urlsafe(16)
        self.codes[code] = {"user": self.as_user, "redirect_uri": q.get("redirect_uri"),
                            "challenge": q.get("code_challenge"), "scope": q.get("scope", "")}
        sep = "&" if "?" in q["redirect_uri"] else "?"
        h._send(302, b"", {"Location": q["redirect_uri"] + sep + urlencode({"code": code, "state": q.get("state", "")})})

    def _redeem(self, h, form) -> dict | None:
        cid, secret = h._client(form)
        if (cid, secret) != (self.client_id, self.client_secret):
            h._send(401, {"error": "invalid_client"})
            return None
        grant = self.codes.pop(form.get("code", ""), None)
        if grant is None or grant["redirect_uri"] != form.get("redirect_uri"):
            h._send(400, {"error": "invalid_grant"})
            return None
        if grant["challenge"]:
            verifier = form.get("code_verifier", "")
            digest = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
            if digest != grant["challenge"]:
                h._send(400, {"error": "invalid_grant", "error_description": "PKCE verification failed"})
                return None
        return grant


class FakeGitHub(_Provider):
    """github_url = provider.url; API under /api/v3 (GitHub Enterprise layout)."""

    def __init__(self):
        super().__init__()
        # login -> account; teams are "org:team-slug"
        self.users: dict = {}

    def add_user(self, login, orgs=(), teams=(), email=None, private_email=None):
        self.users[login] = {"id": 1000 + len(self.users), "login": login, "name": login.title(), "email": email,
                             "private_email": private_email or f"{login.lower()}@users.example.org",
                             "orgs": set(orgs), "teams": set(teams)}

    def _user(self, h):
        login = self.tokens.get(h._bearer())
        if login is None:
            h._send(401, {"message": "Bad credentials"})
        return self.users.get(login) if login else None

    def get(self, h, path, q):
        if path == "/login/oauth/authorize":
            return self._authorize(h, q)
        if not path.startswith("/api/v3/"):
            return h._send(404, {"message": "Not Found"})
        user = self._user(h)
        if user is None:
            return None
        rest = path[len("/api/v3"):]
        if rest == "/user":
            return h._send(200, {k: user[k] for k in ("id", "login", "name", "email")})
        if rest == "/user/emails":
            return h._send(200, [{"email": user["private_email"], "primary": True, "verified": True}])
        if rest == "/user/teams":
            teams = sorted(user["teams"])
            return h._send(200, [{"slug": t.split(":")[1], "name": t.split(":")[1], "organization": {"login": t.split(":")[0]}}
                                 for t in teams])
        bits = rest.strip("/").split("/")
        # /orgs/{org}/members/{user}  and  /orgs/{org}/teams/{team}/members/{user}
        if len(bits) == 4 and bits[0] == "orgs" and bits[2] == "members":
            member = self.users.get(bits[3], {}).get("orgs", set())
            return h._send(204 if bits[1] in member else 404, None if bits[1] in member else {"message": "Not Found"})
        if len(bits) == 6 and bits[0] == "orgs" and bits[2] == "teams" and bits[4] == "members":
            ok = f"{bits[1]}:{bits[3]}" in self.users.get(bits[5], {}).get("teams", set())
            return h._send(204 if ok else 404, None if ok else {"message": "Not Found"})
        return h._send(404, {"message": "Not Found"})

    def post(self, h, path, form):
        if path != "/login/oauth/access_token":
            return h._send(404, {"message": "Not Found"})
        grant = self._redeem(h, form)
        if grant is None:
            return None
        token = "gho_" + secrets.token_urlsafe(20)
        self.tokens[token] = grant["user"]
        # GitHub reports granted scopes comma-separated
        granted = ",".join(s for s in grant["scope"].replace(",", " ").split() if s)
        return h._send(200, {"access_token": token, "token_type": "bearer", "scope": granted})


class FakeOIDC(_Provider):
    """Keycloak-like: issuer <url>/realms/lab, endpoints under /protocol/openid-connect/."""

    def __init__(self, realm="lab", port: int = 0):
        """`port`: a fixed one, e.g. where a hub already looks for a provider that was down."""
        super().__init__(port)
        self.issuer = f"{self.url}/realms/{realm}"
        self.base = f"/realms/{realm}"
        self.users: dict = {}  # preferred_username -> {"sub", "groups", "email"}
        self.logouts: list = []

    def add_user(self, name, groups=(), email=None):
        self.users[name] = {"sub": secrets.token_hex(8), "groups": list(groups), "email": email or f"{name}@example.org"}

    def _claims(self, name):
        u = self.users[name]
        return {"sub": u["sub"], "preferred_username": name, "email": u["email"], "groups": list(u["groups"])}

    def get(self, h, path, q):
        ep = self.issuer + "/protocol/openid-connect"
        if path == self.base + "/.well-known/openid-configuration":
            return h._send(200, {
                "issuer": self.issuer, "authorization_endpoint": ep + "/auth", "token_endpoint": ep + "/token",
                "userinfo_endpoint": ep + "/userinfo", "end_session_endpoint": ep + "/logout",
                "jwks_uri": ep + "/certs", "response_types_supported": ["code"],
                "subject_types_supported": ["public"], "id_token_signing_alg_values_supported": ["HS256"],
                "code_challenge_methods_supported": ["S256"]})
        if path == self.base + "/protocol/openid-connect/auth":
            if q.get("response_type") != "code":
                return h._send(400, {"error": "unsupported_response_type"})
            return self._authorize(h, q)
        if path == self.base + "/protocol/openid-connect/userinfo":
            name = self.tokens.get(h._bearer())
            if name is None:
                return h._send(401, {"error": "invalid_token"})
            return h._send(200, self._claims(name))
        if path == self.base + "/protocol/openid-connect/logout":
            self.logouts.append(q)
            target = q.get("post_logout_redirect_uri")
            return h._send(302, b"", {"Location": target}) if target else h._send(200, b"logged out")
        return h._send(404, {"error": "not found"})

    def post(self, h, path, form):
        if path != self.base + "/protocol/openid-connect/token":
            return h._send(404, {"error": "not found"})
        if form.get("grant_type") == "refresh_token":
            name = self.tokens.get("refresh:" + form.get("refresh_token", ""))
            if name is None:
                return h._send(400, {"error": "invalid_grant"})
        else:
            grant = self._redeem(h, form)
            if grant is None:
                return None
            name = grant["user"]
        access, refresh = secrets.token_urlsafe(20), secrets.token_urlsafe(20)
        self.tokens[access] = name
        self.tokens["refresh:" + refresh] = name
        now = int(time.time())
        id_token = jwt.encode({**self._claims(name), "iss": self.issuer, "aud": self.client_id, "iat": now, "exp": now + 300},
                              self.client_secret, algorithm="HS256")
        return h._send(200, {"access_token": access, "token_type": "Bearer", "expires_in": 300, "refresh_token": refresh,
                             "id_token": id_token, "scope": "openid profile email"})
