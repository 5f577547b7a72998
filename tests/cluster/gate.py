"""A validating admission webhook for tests that must stop a client at an exact API write: the API server calls it
(HTTPS on loopback, a certificate from the tier's CA) for every CREATE of the watched resources in one namespace.
`hold("pods")` makes it keep the next real (not dry-run) pod create waiting inside the API server until the test
calls `release(allowed)`; meanwhile the test can kill the client, so the write is exactly "not done yet".
Everything else is allowed at once."""

from __future__ import annotations

import base64
import json
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from .controlplane import free_port
from .pki import Pki

# Below the API server's longest webhook timeout (30 s): a hold the test forgets ends as a denial, never hangs.
HOLD_SECONDS = 25


class Gate:
    def __init__(self, pki: Pki, namespace: str, resources=("pods", "persistentvolumeclaims")):
        self.namespace, self.resources = namespace, tuple(resources)
        self.port = free_port()
        self._cert, self._ca = pki.server(f"gate-{namespace}", ("IP:127.0.0.1",)), pki.ca.cert
        self._lock = threading.Lock()
        self._holding: str | None = None
        self._verdict: bool | None = None
        self._released = threading.Event()
        self.arrived = threading.Event()  # a held create is waiting
        self.seen: list[tuple[str, bool, str]] = []  # (resource, dry run, object name) of every review
        self._server: ThreadingHTTPServer | None = None

    @property
    def name(self) -> str:
        return f"teamhub-test-gate-{self.namespace}"

    def webhook_configuration(self) -> dict:
        return {
            "apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingWebhookConfiguration",
            "metadata": {"name": self.name},
            "webhooks": [{
                "name": "gate.teamhub.test",
                "clientConfig": {"url": f"https://127.0.0.1:{self.port}/validate",
                                 "caBundle": base64.b64encode(self._ca.read_bytes()).decode()},
                "rules": [{"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"], "resources": list(self.resources)}],
                "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": self.namespace}},
                "sideEffects": "None", "admissionReviewVersions": ["v1"], "timeoutSeconds": 30, "failurePolicy": "Fail",
            }],
        }

    # --- the test's side ------------------------------------------------------------------------------
    def hold(self, resource: str) -> None:
        with self._lock:
            self._holding, self._verdict = resource, None
            self._released.clear()
            self.arrived.clear()

    def release(self, allowed: bool) -> None:
        """Answer the held creates (and any later one of that resource, until the next hold or open) with `allowed`."""
        with self._lock:
            self._verdict = allowed
            self._released.set()

    def open(self) -> None:
        with self._lock:
            self._holding, self._verdict = None, None
            self._released.set()

    # --- the API server's side ------------------------------------------------------------------------
    def judge(self, review: dict) -> dict:
        request = review["request"]
        resource, dry = request["resource"]["resource"], bool(request.get("dryRun"))
        name = (request.get("object") or {}).get("metadata", {}).get("name") or request.get("name") or ""
        with self._lock:
            self.seen.append((resource, dry, name))
            held = resource == self._holding and not dry
        allowed = True
        if held:
            self.arrived.set()
            self._released.wait(HOLD_SECONDS)
            with self._lock:
                allowed = bool(self._verdict) if self._holding == resource else True
        answer = {"uid": request["uid"], "allowed": allowed}
        if not allowed:
            answer["status"] = {"code": 403, "message": "held by the test's gate and refused"}
        return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": answer}

    def start(self) -> Gate:
        gate = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's name
                review = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
                body = json.dumps(gate.judge(review)).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):  # quiet: the test reads `seen`
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self._cert.cert, self._cert.key)
        self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self.open()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
