"""The hub under test on the tier's cluster: the shipped wheel environment (tests/shipped.py) run with what
the rendered Deployment gives the hub container, so the chart's RBAC and configuration are what is tested.

`ClusterHub.start()` applies the chart's hub Secrets and RBAC (helm template, nothing else: kwok runs no
containers), reads the container's env from the rendered Deployment (secretKeyRef/fieldRef resolved from
the API objects), writes the values Secret's values.yaml where TEAMHUB_VALUES points, and gives the hub a
kubeconfig holding a token of its own ServiceAccount. Only network addresses differ from the pod: the hub
binds a loopback port and talks to a configurable-http-proxy this module starts (the Services' DNS names
do not resolve outside a cluster). User servers come from singleuser.py.
"""

from __future__ import annotations

import base64
import subprocess
from pathlib import Path

import yaml
from hubprocess import CHP, HubProcess
from teamhub.cli.demo import free_port

from .access import Cluster
from .chart import CHART, RELEASE, VALUES
from .singleuser import SingleUserServers

HUB_OBJECTS = ("templates/hub/secrets.yaml", "templates/hub/values-secret.yaml", "templates/hub/rbac.yaml")


VAP = "admissionregistration.k8s.io/v1/ValidatingAdmissionPolicy"


def rendered(cluster: Cluster, namespace: str, overlays, show: tuple, base=VALUES) -> list[dict]:
    values = [a for v in (*base, *overlays) for a in ("-f", v)]
    shown = [a for s in show for a in ("--show-only", s)]
    out = cluster.helm("helm3", "template", RELEASE, CHART, "-n", namespace, *values, *shown, "--kube-version", "1.37.2",
                       "--api-versions", VAP).stdout
    return [d for d in yaml.safe_load_all(out) if d]


def apply(cluster: Cluster, namespace: str, docs: list[dict]) -> None:
    """Apply rendered objects as helm install would: in `namespace` unless they name their own (singleuser.namespace)."""
    by_namespace: dict = {}
    for doc in docs:
        by_namespace.setdefault(doc["metadata"].get("namespace", namespace), []).append(doc)
    for ns, group in by_namespace.items():
        cluster.kubectl("apply", "-n", ns, "-f", "-", input=yaml.safe_dump_all(group))


def container_env(cluster: Cluster, namespace: str, deployment: dict) -> dict:
    """The hub container's environment as the kubelet would give it."""
    env = {}
    for item in deployment["spec"]["template"]["spec"]["containers"][0]["env"]:
        source = item.get("valueFrom")
        if source is None:
            env[item["name"]] = item.get("value", "")
        elif "fieldRef" in source:
            assert source["fieldRef"]["fieldPath"] == "metadata.namespace", source
            env[item["name"]] = namespace
        else:
            ref = source["secretKeyRef"]
            data = cluster.api.get(f"/api/v1/namespaces/{namespace}/secrets/{ref['name']}")["data"]
            env[item["name"]] = base64.b64decode(data[ref["key"]]).decode()
    return env


class ClusterHub(HubProcess):
    """A HubProcess in kubernetes mode: `.url` is the proxy's public address."""

    def __init__(self, cluster: Cluster, namespace: str, venv: Path, state: Path, overlays=(), extra_env=None,
                 base=VALUES, show=()):
        """`base`: the values files under the overlays; `show`: more chart templates to apply (e.g. the admission
        policy). With singleuser.namespace in the values, user servers are followed in that namespace."""
        self.cluster, self.namespace = cluster, namespace
        objects = rendered(cluster, namespace, overlays, (*HUB_OBJECTS, "templates/hub/deployment.yaml", *show), base)
        deployment = next(o for o in objects if o["kind"] == "Deployment")
        apply(cluster, namespace, [o for o in objects if o["kind"] != "Deployment"])
        super().__init__(Path(state) / "values.yaml", state, venv=venv)
        values_secret = next(o for o in objects if o["kind"] == "Secret" and "values.yaml" in o.get("stringData", {}))
        self.values.write_text(values_secret["stringData"]["values.yaml"])
        self.users_namespace = (yaml.safe_load(values_secret["stringData"]["values.yaml"]).get("singleuser") or {}).get("namespace") or namespace
        env = container_env(cluster, namespace, deployment)
        self.chart_env = dict(env)
        env.update({"TEAMHUB_VALUES": str(self.values), "TEAMHUB_DATA_DIR": str(self.state / "data"),
                    "KUBECONFIG": str(cluster.service_account_kubeconfig(namespace, f"{RELEASE}-hub")),
                    **(extra_env or {})})
        (self.state / "data").mkdir(exist_ok=True)
        for name in ("TEAMHUB_BIND_URL", "TEAMHUB_HUB_PORT", "TEAMHUB_PROXY_API_PORT", "TEAMHUB_CHP", "CONFIGPROXY_AUTH_TOKEN",
                     "JUPYTERHUB_CRYPT_KEY", "TEAMHUB_MODE"):
            self.env.pop(name, None)  # HubProcess's local-mode settings
        self.env.update(env)
        self.hub_port, self.proxy_api = free_port(), free_port()
        self.hub_api_url = f"http://127.0.0.1:{self.hub_port}/hub/api"
        # Outside a pod, on loopback, through the env the image reads (no --JupyterHub flags): the hub binds
        # exactly as in the image, only at another address.
        self.env.update({"TEAMHUB_HUB_BIND_URL": f"http://127.0.0.1:{self.hub_port}",
                         "TEAMHUB_HUB_CONNECT_URL": f"http://127.0.0.1:{self.hub_port}",
                         "TEAMHUB_PROXY_API_URL": f"http://127.0.0.1:{self.proxy_api}"})
        self.proxy: subprocess.Popen | None = None
        self.servers = SingleUserServers(cluster.api, self.users_namespace, self.hub_api_url, self.state / "servers")

    def start(self, timeout: float = 90) -> ClusterHub:
        if self.proxy is None or self.proxy.poll() is not None:
            log = open(self.state / "proxy.log", "ab")  # noqa: SIM115 - the proxy outlives this call
            self.proxy = subprocess.Popen(
                [str(CHP), "--ip=127.0.0.1", f"--port={self.port}", "--api-ip=127.0.0.1", f"--api-port={self.proxy_api}",
                 f"--default-target=http://127.0.0.1:{self.hub_port}", f"--error-target=http://127.0.0.1:{self.hub_port}/hub/error"],
                env={**self.env}, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        self.servers.start()
        super().start(timeout)
        return self

    def stop_hub(self) -> None:
        """Only the hub (as in an upgrade): proxy, user pods and their servers keep running."""
        super().stop()

    def stop(self) -> None:
        super().stop()
        self.servers.stop()
        if self.proxy and self.proxy.poll() is None:
            self.proxy.terminate()
            self.proxy.wait(10)


def people_overlay(path: Path, users: dict, extra: dict | None = None, admins=()) -> Path:
    """A values overlay adding local accounts (name -> teams) with the password "<name>-demo-pass". The hashes
    are made here (not the demo overlay's published ones, which a hub in kubernetes mode refuses)."""
    import bcrypt

    accounts = {name: {"passwordHash": bcrypt.hashpw(f"{name}-demo-pass".encode(), bcrypt.gensalt(4)).decode(), "teams": teams}
                for name, teams in users.items()}
    auth = {"local": {"users": accounts}, **({"admins": [f"local:{a}" for a in admins]} if admins else {})}
    path.write_text(yaml.safe_dump({"auth": auth, **(extra or {})}))
    return path


__all__ = ["ClusterHub", "people_overlay"]
