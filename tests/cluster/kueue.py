"""Kueue's real manager beside the tier's control plane (issue 26), run as ../shared/controlplane-notes.md
describes: the CRDs (with their conversion stanzas) and webhooks from the module's own chart (`helm template` of
.tools/kueue-chart, copied by scripts/setup.sh with the binary it matches), the webhook Service turned into an
ExternalName for localhost with the manager's real port in every clientConfig, the certificate Kueue writes to
its Secret copied into its certDir by hand (no kubelet mounts it), and the pod webhooks, which fail closed,
limited to the namespaces the queue manages: those labelled MANAGED (one per test module, `managed_namespace`),
so one manager serves the whole session (the `kueue` fixture in conftest.py). The visibility API (the place in line)
is served through the control plane's aggregation layer: its APIServices point at the manager's visibility server on
loopback (an ExternalName Service for localhost, as the webhook's), applied once the manager answers, removed first
at the end (an unavailable aggregated API would hold up namespace deletion).
"""

from __future__ import annotations

import base64
import os
import signal
import subprocess
import time
from pathlib import Path

import yaml
from support import TOOLS

from .controlplane import ApiError, free_port, tail

CHART = TOOLS.parent / "kueue-chart"
NAMESPACE = "kueue-system"
SECRET = "kueue-webhook-server-cert"
SERVICE = "kueue-webhook-service"
VISIBILITY_SERVICE = "kueue-visibility-server"
# The webhooks the queue needs: Kueue's own objects and plain pods (the `pod` integration).
WEBHOOKS = {"mclusterqueue.kb.io", "mresourceflavor.kb.io", "mworkload.kb.io", "mpod.kb.io",
            "vclusterqueue.kb.io", "vcohort.kb.io", "vresourceflavor.kb.io", "vworkload.kb.io", "vpod.kb.io"}
MANAGED = {"teamhub-test/queue": "managed"}  # the label of the namespaces Kueue manages (user servers only)
# Only pods with a queue label go through Kueue's pod webhooks (manageJobsWithoutQueueName is false, so Kueue ignores the
# others anyway): with Kueue down, CPU servers in the same namespace still start.
QUEUED_PODS = {"matchExpressions": [{"key": "kueue.x-k8s.io/queue-name", "operator": "Exists"}]}
KEEP = {"CustomResourceDefinition", "Secret", "Service", "MutatingWebhookConfiguration", "ValidatingWebhookConfiguration",
        "APIService"}


def manager_config(certs: Path, webhook_port: int, health_port: int, visibility_port: int) -> dict:
    """Kueue's Configuration: only pods in the namespaces labelled MANAGED are queued, and only with a queue label;
    CPU and memory are not Kueue's to count (the queues hold GPUs only: docs/queue.md)."""
    return {
        "apiVersion": "config.kueue.x-k8s.io/v1beta2", "kind": "Configuration",
        "namespace": NAMESPACE,
        "health": {"healthProbeBindAddress": f"127.0.0.1:{health_port}"},
        "metrics": {"bindAddress": "0"},
        "webhook": {"port": webhook_port, "host": "127.0.0.1", "certDir": str(certs)},
        "leaderElection": {"leaderElect": False},
        "internalCertManagement": {"enable": True, "webhookServiceName": SERVICE, "webhookSecretName": SECRET},
        "manageJobsWithoutQueueName": False,
        "managedJobsNamespaceSelector": {"matchLabels": dict(MANAGED)},
        "integrations": {"frameworks": ["pod"]},
        "resources": {"excludeResourcePrefixes": ["cpu", "memory", "ephemeral-storage"]},
        "fairSharing": {"preemptionStrategies": ["LessThanOrEqualToFinalShare", "LessThanInitialShare"]},
        "visibilityServer": {"bindAddress": "127.0.0.1", "bindPort": visibility_port},
        "featureGates": {"VisibilityOnDemand": True},
    }


def objects(cluster, webhook_port: int, visibility_port: int) -> list[dict]:
    """The chart's CRDs, Secret, webhook Service (as an ExternalName) and the needed webhooks, pointed at the
    manager on loopback; pod webhooks only for the namespaces labelled MANAGED."""
    rendered = cluster.helm("helm3", "template", "kueue", str(CHART), "-n", NAMESPACE).stdout
    out = []
    for doc in (d for d in yaml.safe_load_all(rendered) if d):
        if doc["kind"] not in KEEP or (doc["kind"] == "Service" and doc["metadata"]["name"] not in (SERVICE, VISIBILITY_SERVICE)):
            continue
        if doc["kind"] == "APIService":
            doc["spec"]["service"]["port"] = visibility_port
        if doc["kind"] == "Service":
            doc["spec"] = {"type": "ExternalName", "externalName": "localhost"}
        if doc["kind"].endswith("WebhookConfiguration"):
            doc["webhooks"] = [w for w in doc["webhooks"] if w["name"] in WEBHOOKS]
            for hook in doc["webhooks"]:
                hook["clientConfig"]["service"]["port"] = webhook_port
                if hook["name"] in ("mpod.kb.io", "vpod.kb.io"):
                    hook["namespaceSelector"] = {"matchLabels": dict(MANAGED)}
                    hook["objectSelector"] = dict(QUEUED_PODS)  # CPU servers never wait on Kueue (README)
        conversion = doc.get("spec", {}).get("conversion", {}) if doc["kind"] == "CustomResourceDefinition" else {}
        service = conversion.get("webhook", {}).get("clientConfig", {}).get("service")
        if service:
            service["port"] = webhook_port
        out.append(doc)
    return out


class Kueue:
    """The manager process and what was applied for it; stop() undoes both and tolerates a manager that
    already exited."""

    def __init__(self, cluster, directory: Path):
        self.cluster, self.dir = cluster, directory
        self.dir.mkdir(parents=True, exist_ok=True)
        self.log = self.dir / "kueue.log"
        self.proc: subprocess.Popen | None = None
        self.webhook_port, self.health_port, self.visibility_port = free_port(), free_port(), free_port()
        self.certs = self.dir / "webhook-certs"
        self.applied: list[dict] = []

    def start(self, timeout: float = 120) -> None:
        binary = TOOLS / "kueue"
        assert binary.exists() and CHART.is_dir(), f"{binary} or {CHART} is missing: run `make setup`"
        self.cluster.kubectl("create", "namespace", NAMESPACE)
        docs = self.applied = objects(self.cluster, self.webhook_port, self.visibility_port)
        apiservices = [d for d in docs if d["kind"] == "APIService"]
        # Server-side: the Workload CRD is larger than client-side apply's last-applied annotation allows.
        self.cluster.kubectl("apply", "--server-side", "-f", "-",
                             input=yaml.safe_dump_all([d for d in docs if d["kind"] != "APIService"]))
        crds = [d["metadata"]["name"] for d in docs if d["kind"] == "CustomResourceDefinition"]
        self.cluster.plane.wait_until(lambda: all(self._established(c) for c in crds), 60, "Kueue's CRDs established")
        config = self.dir / "config.yaml"
        config.write_text(yaml.safe_dump(manager_config(self.certs, self.webhook_port, self.health_port, self.visibility_port)))
        self.certs.mkdir(exist_ok=True)
        self._launch(timeout)
        # After the manager answers: applied before, the aggregator took 27-37 s to call them Available.
        self.cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump_all(apiservices))
        self.wait(self.visible, timeout, "Kueue's visibility API Available")

    def _launch(self, timeout: float) -> None:
        """Run the manager and wait until its webhooks answer."""
        env = {**os.environ, "KUBECONFIG": str(self.cluster.kubeconfig)}
        with open(self.log, "ab") as out:
            # cwd: the visibility server's certDir is relative (scripts/setup.sh sets it at build time)
            # --kubeconfig, not only the env: the visibility server reads the flag for its delegated authentication
            self.proc = subprocess.Popen([str(TOOLS / "kueue"), f"--config={self.dir / 'config.yaml'}",
                                          f"--kubeconfig={self.cluster.kubeconfig}", "--zap-log-level=info"], cwd=self.dir,
                                         env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                         start_new_session=True)
        self.wait(self._certificate_copied, timeout, "Kueue's webhook certificate")
        self.wait(self._webhooks_answer, timeout, "Kueue's webhooks")

    def pause(self) -> None:
        """Kueue down, as when its Deployment has no ready pod: the manager ends, its webhooks (failing closed) and
        APIServices stay."""
        self._end_manager()
        self.proc = None

    def resume(self, timeout: float = 120) -> None:
        """The manager back after pause(), on the same ports, certificate and objects."""
        self._launch(timeout)
        self.wait(self.visible, timeout, "Kueue's visibility API Available again")

    def visible(self) -> bool:
        """Every Kueue APIService (the visibility API) Available."""
        return all(self._available(d["metadata"]["name"]) for d in self.applied if d["kind"] == "APIService")

    def _available(self, name: str) -> bool:
        try:
            conditions = self.cluster.api.get(f"/apis/apiregistration.k8s.io/v1/apiservices/{name}").get("status", {})
        except ApiError:
            return False
        return any(c["type"] == "Available" and c["status"] == "True" for c in conditions.get("conditions") or [])

    def wait(self, ready, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not ready():
            if self.proc is not None and self.proc.poll() is not None:
                raise AssertionError(f"kueue exited ({self.proc.returncode}); its log:\n{tail(self.log)}")
            if time.monotonic() > deadline:
                raise AssertionError(f"{what}: not ready after {timeout} s; kueue's log:\n{tail(self.log)}")
            time.sleep(0.2)

    def _established(self, crd: str) -> bool:
        try:
            conditions = self.cluster.api.get(f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{crd}")["status"]
        except (ApiError, KeyError):
            return False
        return any(c["type"] == "Established" and c["status"] == "True" for c in conditions.get("conditions") or [])

    def _certificate_copied(self) -> bool:
        """What a kubelet would do: put the Secret Kueue wrote where its webhook server reads it."""
        data = self.cluster.api.get(f"/api/v1/namespaces/{NAMESPACE}/secrets/{SECRET}").get("data") or {}
        if not data.get("tls.crt") or not data.get("tls.key"):
            return False
        for key in ("tls.crt", "tls.key", "ca.crt"):
            if data.get(key):
                (self.certs / key).write_bytes(base64.b64decode(data[key]))
        return True

    def _webhooks_answer(self) -> bool:
        """A dry-run ResourceFlavor goes through Kueue's mutating and validating webhooks (and the CRD's
        conversion); it answers once the certificate is served and injected."""
        flavor = {"apiVersion": "kueue.x-k8s.io/v1beta2", "kind": "ResourceFlavor", "metadata": {"name": "probe"}}
        try:
            self.cluster.api.create("/apis/kueue.x-k8s.io/v1beta2/resourceflavors?dryRun=All", flavor)
            return True
        except (ApiError, OSError):
            return False

    def managed_namespace(self, hint: str, restricted: bool = False) -> str:
        """A fresh namespace of user servers that this manager queues; with `restricted`, enforcing Pod Security
        "restricted" as the README asks of the user servers' namespace (the hub's pods meet it)."""
        name = f"{hint}-{int(time.time() * 1000) % 100000:05d}"
        labels = {**MANAGED, **({"pod-security.kubernetes.io/enforce": "restricted"} if restricted else {})}
        self.cluster.api.create("/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace",
                                                        "metadata": {"name": name, "labels": labels}})
        self.cluster.plane.wait_until(lambda: self.cluster.api.ok(f"/api/v1/namespaces/{name}/serviceaccounts/default"), 30, name)
        return name

    def stop(self) -> list[str]:
        """Remove the webhooks first (they fail closed), end the manager, then remove its CRDs and namespace
        (not waited for). Returns what went wrong, so a teardown tries every step."""
        problems = []
        for name in [d["metadata"]["name"] for d in self.applied if d["kind"] == "APIService"]:
            proc = self.cluster.kubectl("delete", "apiservice", name, "--ignore-not-found", "--wait=false", check=False)
            if proc.returncode:
                problems.append(proc.stderr)
        for kind in ("mutatingwebhookconfiguration", "validatingwebhookconfiguration"):
            proc = self.cluster.kubectl("delete", kind, f"kueue-{kind.removesuffix('webhookconfiguration')}-webhook-configuration",
                                        "--ignore-not-found", "--wait=false", check=False)
            if proc.returncode:
                problems.append(proc.stderr)
        self._end_manager()
        crds = [d["metadata"]["name"] for d in self.applied if d["kind"] == "CustomResourceDefinition"]
        for args in (["crd", *crds], ["namespace", NAMESPACE]):
            if args[1:]:
                proc = self.cluster.kubectl("delete", *args, "--ignore-not-found", "--wait=false", check=False)
                if proc.returncode:
                    problems.append(proc.stderr)
        return problems

    def _end_manager(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(15)
            except ProcessLookupError:
                pass  # it exited between the check and the signal
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(15)
