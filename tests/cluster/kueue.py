"""Kueue's real manager beside the tier's control plane (issue 26), run as ../shared/controlplane-notes.md
describes: the CRDs (with their conversion stanzas) and webhooks from the module's own chart (`helm template` of
.tools/kueue-chart, copied by scripts/setup.sh with the binary it matches), the webhook Service turned into an
ExternalName for localhost with the manager's real port in every clientConfig, the certificate Kueue writes to
its Secret copied into its certDir by hand (no kubelet mounts it), and the pod webhooks, which fail closed,
limited to the one namespace the queue manages. The visibility API is off in this slice.
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
# The webhooks the queue needs: Kueue's own objects and plain pods (the `pod` integration).
WEBHOOKS = {"mclusterqueue.kb.io", "mresourceflavor.kb.io", "mworkload.kb.io", "mpod.kb.io",
            "vclusterqueue.kb.io", "vcohort.kb.io", "vresourceflavor.kb.io", "vworkload.kb.io", "vpod.kb.io"}
KEEP = {"CustomResourceDefinition", "Secret", "Service", "MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"}


def manager_config(managed: str, certs: Path, webhook_port: int, health_port: int) -> dict:
    """Kueue's Configuration: only pods in the namespace `managed` are queued, and only with a queue label;
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
        "managedJobsNamespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": managed}},
        "integrations": {"frameworks": ["pod"]},
        "resources": {"excludeResourcePrefixes": ["cpu", "memory", "ephemeral-storage"]},
        "fairSharing": {"preemptionStrategies": ["LessThanOrEqualToFinalShare", "LessThanInitialShare"]},
        "featureGates": {"VisibilityOnDemand": False},
    }


def objects(cluster, managed: str, webhook_port: int) -> list[dict]:
    """The chart's CRDs, Secret, webhook Service (as an ExternalName) and the needed webhooks, pointed at the
    manager on loopback; pod webhooks only for the namespace `managed`."""
    rendered = cluster.helm("helm3", "template", "kueue", str(CHART), "-n", NAMESPACE).stdout
    out = []
    for doc in (d for d in yaml.safe_load_all(rendered) if d):
        if doc["kind"] not in KEEP or (doc["kind"] == "Service" and doc["metadata"]["name"] != SERVICE):
            continue
        if doc["kind"] == "Service":
            doc["spec"] = {"type": "ExternalName", "externalName": "localhost"}
        if doc["kind"].endswith("WebhookConfiguration"):
            doc["webhooks"] = [w for w in doc["webhooks"] if w["name"] in WEBHOOKS]
            for hook in doc["webhooks"]:
                hook["clientConfig"]["service"]["port"] = webhook_port
                if hook["name"] in ("mpod.kb.io", "vpod.kb.io"):
                    hook["namespaceSelector"] = {"matchLabels": {"kubernetes.io/metadata.name": managed}}
        conversion = doc.get("spec", {}).get("conversion", {}) if doc["kind"] == "CustomResourceDefinition" else {}
        service = conversion.get("webhook", {}).get("clientConfig", {}).get("service")
        if service:
            service["port"] = webhook_port
        out.append(doc)
    return out


class Kueue:
    """The manager process and what was applied for it; stop() undoes both and tolerates a manager that
    already exited."""

    def __init__(self, cluster, directory: Path, managed: str):
        self.cluster, self.dir, self.managed = cluster, directory, managed
        self.dir.mkdir(parents=True, exist_ok=True)
        self.log = self.dir / "kueue.log"
        self.proc: subprocess.Popen | None = None
        self.webhook_port, self.health_port = free_port(), free_port()
        self.certs = self.dir / "webhook-certs"
        self.applied: list[dict] = []

    def start(self, timeout: float = 120) -> None:
        binary = TOOLS / "kueue"
        assert binary.exists() and CHART.is_dir(), f"{binary} or {CHART} is missing: run `make setup`"
        self.cluster.kubectl("create", "namespace", NAMESPACE)
        docs = self.applied = objects(self.cluster, self.managed, self.webhook_port)
        # Server-side: the Workload CRD is larger than client-side apply's last-applied annotation allows.
        self.cluster.kubectl("apply", "--server-side", "-f", "-", input=yaml.safe_dump_all(docs))
        crds = [d["metadata"]["name"] for d in docs if d["kind"] == "CustomResourceDefinition"]
        self.cluster.plane.wait_until(lambda: all(self._established(c) for c in crds), 60, "Kueue's CRDs established")
        config = self.dir / "config.yaml"
        config.write_text(yaml.safe_dump(manager_config(self.managed, self.certs, self.webhook_port, self.health_port)))
        self.certs.mkdir(exist_ok=True)
        env = {**os.environ, "KUBECONFIG": str(self.cluster.kubeconfig)}
        with open(self.log, "wb") as out:
            # cwd: the visibility server's certDir is relative (scripts/setup.sh sets it at build time)
            self.proc = subprocess.Popen([str(binary), f"--config={config}", "--zap-log-level=info"], cwd=self.dir,
                                         env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                         start_new_session=True)
        self.wait(self._certificate_copied, timeout, "Kueue's webhook certificate")
        self.wait(self._webhooks_answer, timeout, "Kueue's webhooks")

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

    def stop(self) -> list[str]:
        """Remove the webhooks first (they fail closed), end the manager, then remove its CRDs and namespace
        (not waited for). Returns what went wrong, so a teardown tries every step."""
        problems = []
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
