"""jupyterhub_config.py of cluster_starts_bench.py's comparison hub: plain JupyterHub + KubeSpawner as an
operator would write it without teamhub, making the same pod as teamhub's `BENCH_RESOURCE` launch
(image, CPU and memory, Pod Security "restricted" settings, a home PVC of the same size). People are
created and started through the REST API with the `bench` service's token.

Environment (set by the benchmark): BENCH_STATE, BENCH_PORT, BENCH_HUB_PORT, BENCH_PROXY_API_PORT,
BENCH_CHP, BENCH_TOKEN, BENCH_NAMESPACE, BENCH_RESOURCE, BENCH_SPAWN_LIMIT; KUBECONFIG (a token of the hub's ServiceAccount).
"""

import os
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
env = os.environ
values = yaml.safe_load((ROOT / "config" / "values.yaml").read_text())
resource = values["catalog"]["resources"][env["BENCH_RESOURCE"]]
image = values["catalog"]["images"][resource["image"]]
storage = (values.get("singleuser") or {}).get("storage") or {}
state = Path(env["BENCH_STATE"])

c = get_config()  # noqa: F821
c.JupyterHub.bind_url = f"http://127.0.0.1:{env['BENCH_PORT']}"
c.JupyterHub.hub_bind_url = c.JupyterHub.hub_connect_url = f"http://127.0.0.1:{env['BENCH_HUB_PORT']}"
c.ConfigurableHTTPProxy.api_url = f"http://127.0.0.1:{env['BENCH_PROXY_API_PORT']}"
c.ConfigurableHTTPProxy.command = [env["BENCH_CHP"]]
c.JupyterHub.db_url = f"sqlite:///{state / 'jupyterhub.sqlite'}"
c.JupyterHub.cookie_secret_file = str(state / "cookie_secret")
c.JupyterHub.authenticator_class = "dummy"
c.JupyterHub.concurrent_spawn_limit = int(env["BENCH_SPAWN_LIMIT"])
c.Authenticator.allow_all = True
c.JupyterHub.services = [{"name": "bench", "api_token": env["BENCH_TOKEN"]}]
# tokens: a token per person, as on teamhub's side (JupyterHub records each token's activity on its first use);
# groups: the same teams as JupyterHub groups
c.JupyterHub.load_roles = [{"name": "bench", "scopes": ["admin:users", "admin:servers", "tokens", "admin:groups"], "services": ["bench"]}]

c.JupyterHub.spawner_class = "kubespawner.KubeSpawner"
c.KubeSpawner.namespace = env["BENCH_NAMESPACE"]
c.KubeSpawner.start_timeout = 600
c.KubeSpawner.http_timeout = 120
# cmd stays unset, as teamhub leaves it: the pod gives only args (the image's CMD starts the server).
c.KubeSpawner.image = f"{image['name']}:{image['tag']}"
c.KubeSpawner.cpu_guarantee = float(resource["cpu"]["request"])
c.KubeSpawner.cpu_limit = float(resource["cpu"]["limit"])
c.KubeSpawner.mem_guarantee = resource["memory"]["request"].replace("i", "")
c.KubeSpawner.mem_limit = resource["memory"]["limit"].replace("i", "")
c.KubeSpawner.uid, c.KubeSpawner.gid, c.KubeSpawner.fs_gid = 1000, 100, 100
c.KubeSpawner.pod_security_context = {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}}
c.KubeSpawner.container_security_context = {"runAsNonRoot": True, "allowPrivilegeEscalation": False,
                                            "capabilities": {"drop": ["ALL"]}, "seccompProfile": {"type": "RuntimeDefault"}}
c.KubeSpawner.storage_pvc_ensure = True
c.KubeSpawner.storage_capacity = str(storage.get("capacity", "10Gi"))
c.KubeSpawner.pvc_name_template = "home-{username}"
c.KubeSpawner.volumes = [{"name": "home", "persistentVolumeClaim": {"claimName": "{pvc_name}"}}]
c.KubeSpawner.volume_mounts = [{"name": "home", "mountPath": storage.get("homeMountPath", "/home/jovyan")}]
c.KubeSpawner.delete_pvc = False
