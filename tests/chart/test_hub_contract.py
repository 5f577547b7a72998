"""The chart and the hub image agree: paths, env and file formats of docs/architecture.md.

The rendered hub Deployment is reproduced locally: its command, its env (Secret references resolved from
the rendered Secrets, paths remapped into a temp dir) and its mounted values file. Then the hub's own
loader reads the values, and `jupyterhub` is started from hub-image/jupyterhub_config.py.
"""

from __future__ import annotations

import base64
import re
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import yaml
from support import CONFIG, ROOT, TOOLS, tree_env
from teamhub.catalog.loader import load
from teamhub.cli.demo import free_port

CHART = ROOT / "chart"
HUB_CONFIG = ROOT / "hub-image" / "jupyterhub_config.py"
IMAGE_CONFIG = "/srv/teamhub/jupyterhub_config.py"
VALUES_PATH = "/etc/teamhub/values.yaml"
DATA_DIR = "/srv/teamhub/data"


def rendered(extra_values=()) -> list[dict]:
    helm = TOOLS / "helm"
    if not helm.exists():
        pytest.skip("helm is not installed")
    args = [str(helm), "template", "t", str(CHART), "-n", "lab", "--kube-version", "1.37.0", "-f", str(CONFIG / "values.yaml")]
    for f in extra_values:
        args += ["-f", str(f)]
    out = subprocess.run(args, capture_output=True, text=True, check=True, env=tree_env(), timeout=120).stdout
    return [d for d in yaml.safe_load_all(out) if d]


def reproduce(docs: list[dict], tmp: Path) -> tuple[list[str], dict, Path]:
    """The hub container's command and env, with its files materialised under tmp."""
    hub = next(d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"] == "t-teamhub-hub")
    pod = hub["spec"]["template"]["spec"]
    container = pod["containers"][0]
    secrets = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Secret"}

    def secret_value(ref):
        if ref["name"] not in secrets:  # an operator's existing Secret: not rendered by the chart
            return f"value-of-{ref['name']}-{ref['key']}"
        s = secrets[ref["name"]]
        if "stringData" in s and ref["key"] in s["stringData"]:
            return s["stringData"][ref["key"]]
        return base64.b64decode(s["data"][ref["key"]]).decode()

    # Mounted files: each volumeMount of a Secret volume becomes a directory under tmp.
    remap = {}
    volumes = {v["name"]: v for v in pod["volumes"]}
    for mount in container["volumeMounts"]:
        local = tmp / mount["mountPath"].lstrip("/")
        local.mkdir(parents=True, exist_ok=True)
        remap[mount["mountPath"]] = str(local)
        vol = volumes[mount["name"]]
        sources = [{"name": vol["secret"]["secretName"], "items": vol["secret"]["items"]}] if "secret" in vol else []
        sources += [src["secret"] for src in vol.get("projected", {}).get("sources", []) if "secret" in src]
        for src in sources:
            for item in src["items"]:
                (local / item["path"]).write_text(secret_value({"name": src["name"], "key": item["key"]}))

    def local_path(value: str) -> str:
        for mount_path, local in sorted(remap.items(), key=lambda kv: -len(kv[0])):
            if value == mount_path or value.startswith(mount_path + "/"):
                return local + value[len(mount_path):]
        return value

    env = {}
    for e in container["env"]:
        if "value" in e:
            env[e["name"]] = local_path(e["value"])
        elif "secretKeyRef" in e.get("valueFrom", {}):
            env[e["name"]] = secret_value(e["valueFrom"]["secretKeyRef"])
        elif "fieldRef" in e.get("valueFrom", {}):
            assert e["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.namespace"
            env[e["name"]] = "lab"
    command = [str(HUB_CONFIG) if a == IMAGE_CONFIG else a for a in container["args"]]
    return command, env, Path(remap["/etc/teamhub"]) / "values.yaml"


def test_rendered_deployment_follows_the_contract(tmp_path):
    docs = rendered()
    command, env, values_file = reproduce(docs, tmp_path)
    assert command == ["jupyterhub", "-f", str(HUB_CONFIG)]
    assert env["TEAMHUB_VALUES"] == str(values_file) and values_file.exists()
    assert env["TEAMHUB_DATA_DIR"].endswith(DATA_DIR)
    assert env["TEAMHUB_PROXY_API_URL"] == "http://t-teamhub-proxy-api:8001"
    assert env["TEAMHUB_HUB_CONNECT_URL"] == "http://t-teamhub-hub:8081"
    assert env["POD_NAMESPACE"] == "lab" and env["TEAMHUB_MODE"] == "kubernetes"
    for name in ("CONFIGPROXY_AUTH_TOKEN", "JUPYTERHUB_CRYPT_KEY", "JPY_COOKIE_SECRET"):
        assert re.fullmatch("[0-9a-f]{64}", env[name]), name
    # Every env var the architecture table names is set by the chart.
    table = (ROOT / "docs" / "architecture.md").read_text()
    named = set(re.findall(r"env `([A-Z_]+)`", table)) | set(re.findall(r"`((?:CONFIGPROXY|JUPYTERHUB|JPY)_[A-Z_]+)`", table))
    # Only with hub.db.type postgres, with an auth existingSecret or with metrics.serviceMonitor (chart/tests/hub_test.yaml);
    # the last two are overrides the chart never needs
    # (the revision comes as a file, so that an upgrade with unchanged values does not restart the hub).
    optional = {"TEAMHUB_DB_PASSWORD", "TEAMHUB_GITHUB_CLIENT_SECRET", "TEAMHUB_OIDC_CLIENT_SECRET", "TEAMHUB_METRICS_TOKEN",
                "TEAMHUB_LOCAL_USERS_FILE", "TEAMHUB_RELEASE_REVISION",
                "JUPYTERHUB_COOKIE_OPTIONS"}  # JupyterHub sets it on user servers (the table names it there)
    assert "TEAMHUB_RELEASE_REVISION" not in env
    assert (values_file.parent / "release-revision").read_text() == "1"
    assert named - optional <= set(env), named - set(env)


def test_hub_loader_accepts_the_mounted_values(tmp_path):
    """The file the hub reads at start is valid for the hub's own checks (schema and semantics)."""
    for extra in ([], [CONFIG / "examples" / "chart-postgres-loadbalancer.yaml"]):
        _, _, values_file = reproduce(rendered(extra), tmp_path / str(len(extra)))
        result = load([values_file])
        assert result.ok, "\n".join(map(str, result.errors))
        assert result.values["singleuser"]["storage"]["capacity"]


def test_hub_starts_from_the_rendered_deployment(tmp_path):
    command, env, _ = reproduce(rendered(), tmp_path)
    # No cluster here: local mode (JupyterLab as processes) and a local proxy; everything else as rendered.
    # Free ports only: a fixed 8081 or 8000 could answer from `make demo` or another test's hub.
    proxy_port, hub_port, public_port = free_port(), free_port(), free_port()
    env.update(TEAMHUB_MODE="local", TEAMHUB_PROXY_API_PORT=str(proxy_port),
               TEAMHUB_HUB_PORT=str(hub_port), TEAMHUB_BIND_URL=f"http://127.0.0.1:{public_port}")
    full_env = tree_env(**env)
    exe = shutil.which(command[0], path=full_env["PATH"]) or str(Path(sys.executable).parent / command[0])
    log = (tmp_path / "hub.log").open("w")
    proc = subprocess.Popen([exe, *command[1:]], env=full_env, cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline, ok = time.monotonic() + 90, False
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{hub_port}/hub/health", timeout=2) as r:
                    ok = r.status == 200
                    break
            except OSError:
                time.sleep(1)
        assert ok, f"the hub did not answer on :{hub_port}/hub/health:\n{(tmp_path / 'hub.log').read_text()[-4000:]}"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
