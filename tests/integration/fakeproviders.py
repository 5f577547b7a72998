"""Small, faithful fake OAuth providers on loopback: GitHub (OAuth app + REST API v3, as GitHub Enterprise
serves it under /api/v3) and an OpenID Connect provider (Keycloak-like paths).

Tests choose who "signs in" at the provider by setting `provider.as_user` before the OAuth dance; the
provider then redirects back to the hub like the real one after a successful login (`as_user = None`: no
session at the provider, so `prompt=none` gets `login_required`; `cancel = True`: the person cancels).

FakeOIDC is as strict as certified providers (tests/integration/oidcprovider.mjs runs one): claims only for
the scopes granted (`groups` only with the `groups` scope, unless `groups_mapper` like Keycloak's), refresh
tokens only for `offline_access` with `prompt=consent` (unless `refresh_always`), access tokens that expire
(`access_seconds`), and the client authenticated only as registered (`auth_method`).
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

    auth_method = "client_secret_basic"  # as registered; None: either
    cancel = False

    def _authorize(self, h, q):
        if q.get("client_id") != self.client_id:
            return h._send(400, {"error": "unauthorized_client"})
        sep = "&" if "?" in q["redirect_uri"] else "?"
        back = {"state": q.get("state", "")}
        if self.cancel:
            back.update(error="access_denied", error_description="End-User aborted interaction")
        elif not self.as_user and q.get("prompt") == "none":
            back.update(error="login_required", error_description="End-User authentication is required")
        elif not self.as_user:
            return h._send(401, b"nobody is signed in at the fake provider")
        else:
            back["code"] = secrets.token_urlsafe(16)
            self.codes[back["code"]] = {"user": self.as_user, "redirect_uri": q.get("redirect_uri"),
                                        "challenge": q.get("code_challenge"), "scope": q.get("scope", ""),
                                        "prompt": q.get("prompt", "")}
        h._send(302, b"", {"Location": q["redirect_uri"] + sep + urlencode(back)})

    def _redeem(self, h, form) -> dict | None:
        cid, secret = h._client(form)
        basic = h.headers.get("Authorization", "").startswith("Basic ")
        if self.auth_method and basic != (self.auth_method == "client_secret_basic"):
            h._send(401, {"error": "invalid_client", "error_description": f"registered for {self.auth_method}"})
            return None
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

    auth_method = None  # GitHub takes the secret either way

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
        self.groups_mapper = False  # True: groups in every token whatever the scopes (Keycloak's mapper)
        self.refresh_always = False  # True: a refresh token with every token response (Keycloak's default)
        self.access_seconds = 300
        self.expires: dict = {}  # access token -> epoch
        self.granted: dict = {}  # access or refresh token -> granted scopes

    def add_user(self, name, groups=(), email=None):
        self.users[name] = {"sub": secrets.token_hex(8), "groups": list(groups), "email": email or f"{name}@example.org"}

    def _claims(self, name, scopes=("openid", "profile", "email", "groups")):
        u = self.users[name]
        claims = {"sub": u["sub"]}
        if "profile" in scopes:
            claims["preferred_username"] = name
        if "email" in scopes:
            claims["email"] = u["email"]
        if "groups" in scopes or self.groups_mapper:
            claims["groups"] = list(u["groups"])
        return claims

    def get(self, h, path, q):
        ep = self.issuer + "/protocol/openid-connect"
        if path == self.base + "/.well-known/openid-configuration":
            return h._send(200, {
                "issuer": self.issuer, "authorization_endpoint": ep + "/auth", "token_endpoint": ep + "/token",
                "userinfo_endpoint": ep + "/userinfo", "end_session_endpoint": ep + "/logout",
                "jwks_uri": ep + "/certs", "response_types_supported": ["code"],
                "subject_types_supported": ["public"], "id_token_signing_alg_values_supported": ["HS256"],
                "code_challenge_methods_supported": ["S256"],
                "scopes_supported": ["openid", "profile", "email", "groups", "offline_access"]})
        if path == self.base + "/protocol/openid-connect/auth":
            if q.get("response_type") != "code":
                return h._send(400, {"error": "unsupported_response_type"})
            return self._authorize(h, q)
        if path == self.base + "/protocol/openid-connect/userinfo":
            token = h._bearer()
            name = self.tokens.get(token)
            if name is None or self.expires.get(token, 0) < time.time():
                return h._send(401, {"error": "invalid_token"})
            return h._send(200, self._claims(name, self.granted[token]))
        if path == self.base + "/protocol/openid-connect/logout":
            self.logouts.append(q)
            target = q.get("post_logout_redirect_uri")
            return h._send(302, b"", {"Location": target}) if target else h._send(200, b"logged out")
        return h._send(404, {"error": "not found"})

    def post(self, h, path, form):
        if path != self.base + "/protocol/openid-connect/token":
            return h._send(404, {"error": "not found"})
        if form.get("grant_type") == "refresh_token":
            if h._client(form) != (self.client_id, self.client_secret):
                return h._send(401, {"error": "invalid_client"})
            old = "refresh:" + form.get("refresh_token", "")
            name = self.tokens.get(old)
            if name is None:
                return h._send(400, {"error": "invalid_grant"})
            scopes, offline = self.granted[old], True
        else:
            grant = self._redeem(h, form)
            if grant is None:
                return None
            name, scopes = grant["user"], grant["scope"].split()
            offline = "offline_access" in scopes and grant["prompt"] == "consent"
        access = secrets.token_urlsafe(20)
        self.tokens[access], self.granted[access] = name, scopes
        self.expires[access] = time.time() + self.access_seconds
        now = int(time.time())
        id_token = jwt.encode({**self._claims(name, scopes), "iss": self.issuer, "aud": self.client_id, "iat": now,
                               "exp": now + 300}, self.client_secret, algorithm="HS256")
        body = {"access_token": access, "token_type": "Bearer", "expires_in": self.access_seconds,
                "id_token": id_token, "scope": " ".join(scopes)}
        if offline or self.refresh_always:
            refresh = secrets.token_urlsafe(20)
            self.tokens["refresh:" + refresh], self.granted["refresh:" + refresh] = name, scopes
            body["refresh_token"] = refresh
        return h._send(200, body)
