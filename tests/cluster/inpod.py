"""What a command run with `kubectl exec` in the hub pod reaches on the pod's loopback, under kwok.

No container runs under kwok: kwok runs exec'd commands on this machine (controlplane.cluster_exec). The
operator scripts' health probe is such a command, `python3 -c "urlopen('http://127.0.0.1:8081/hub/health')"`
(scripts/lib/common.sh check_hub), meant for the hub container's own port. The ClusterExec environment makes
HTTP clients send it here (http_proxy), and this stand-in answers as the hub's readiness probe would: 200 while
the API shows a Ready, not terminating hub pod in the namespace the test names (`namespace`), else 503.
So under kwok "the hub answers" means "the API has a Ready hub pod" (kwok marks a scheduled pod Running and
Ready at once): a real hub would add its own start time (seconds) to every outage this observes.
"""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HUB_HEALTH = "http://127.0.0.1:8081/hub/health"
HUB_PODS = "app.kubernetes.io/component=hub"


def ready(pod: dict) -> bool:
    return not pod["metadata"].get("deletionTimestamp") and any(
        c["type"] == "Ready" and c["status"] == "True" for c in pod.get("status", {}).get("conditions", []))


class HubLoopback:
    def __init__(self):
        self.api = None  # set once the API server runs
        self.namespace: str | None = None
        self.asked: list[str] = []  # the URLs probes asked for, for tests to check the probe was used
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (http.server's naming)
                owner.asked.append(self.path)
                status = 200 if self.path == HUB_HEALTH and owner.hub_ready() else 503
                body = b'{"status": "ok"}' if status == 200 else b"no ready hub pod"
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, name="hub-loopback", daemon=True)
        self.thread.start()

    def exec_env(self) -> dict:
        """The environment of exec'd commands: their HTTP requests come here (also for 127.0.0.1)."""
        proxy = f"http://127.0.0.1:{self.server.server_address[1]}"
        bypass = "nothing.invalid"  # an empty no_proxy counts as unset: the machine's NO_PROXY would win
        return {"http_proxy": proxy, "HTTP_PROXY": proxy, "no_proxy": bypass, "NO_PROXY": bypass}

    def hub_ready(self) -> bool:
        if self.api is None or self.namespace is None:
            return False
        pods = self.api.get(f"/api/v1/namespaces/{self.namespace}/pods?labelSelector={HUB_PODS}")["items"]
        return any(ready(p) for p in pods)

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)
