"""The hub (one replica, Recreate: an upgrade that changes its pod template is an outage of every login)
restarts only when something it reads changes. Its pod template carries the hash of what it reads from its
values ("teamhub.hub.inputs"); a proxy-only or puller-only change must leave the template, and so the running
hub, exactly as it was. The schema's `x-read-by: hub` marks are the list of what the hub reads: every such
key must move the hash."""

from __future__ import annotations

import copy
from concurrent.futures import ThreadPoolExecutor

import pytest
import yaml
from support import CONFIG
from teamhub.values.validation import inlined_schema
from test_chart import render, write_values

SHIPPED = yaml.safe_load((CONFIG / "values.yaml").read_text())


def hub_template(tmp_path, name: str, values: dict) -> dict:
    docs = render("helm3", write_values(tmp_path, name, values))
    hub = next(d for d in docs if d["kind"] == "Deployment" and d["metadata"]["labels"]["app.kubernetes.io/component"] == "hub")
    return hub["spec"]["template"]


def changed(**sections) -> dict:
    values = copy.deepcopy(SHIPPED)
    for path, value in sections.items():
        node = values
        *parents, last = path.split("__")
        for part in parents:
            node = node.setdefault(part, {})
        node[last] = value
    return values


# Changes only the proxy or the pullers see: the hub must not notice.
NOT_THE_HUB = {
    "proxy resources": changed(proxy__resources={"requests": {"cpu": "300m", "memory": "256Mi"}}),
    "proxy image": changed(proxy__image={"name": "quay.io/jupyterhub/configurable-http-proxy", "tag": "5.2.0"}),
    "proxy placement": changed(proxy__priorityClassName="proxy-critical", proxy__nodeSelector={"pool": "edge"}),
    "proxy service": changed(proxy__service={"type": "LoadBalancer", "port": 443}),
    "puller resources": changed(prePuller__resources={"limits": {"cpu": "50m", "memory": "32Mi"}}),
    "extra puller image": changed(prePuller__extraImages={"r": {"name": "docker.io/rocker/r-ver", "tag": "4.4.2"}}),
    "puller placement": changed(prePuller__priorityClassName="low", prePuller__tolerations=[{"operator": "Exists"}]),
    "continuous puller off": changed(prePuller__continuous={"enabled": False}),
    "network policy egress": changed(networkPolicy__proxy={"extraEgress": [{"ports": [{"port": 443}]}]}),
    "admission actions": changed(admissionPolicy__validationActions=["Warn"]),
    "common annotations": changed(commonAnnotations={"example.org/owner": "ops"}),
    "user placeholders": changed(scheduling__userPlaceholders={"priority": -5, "nodeKinds": {
        "cpu": {"resource": "cpu-small", "replicas": 2}}}),
}

# One change per thing the schema says the hub reads (an `x-read-by: hub` node), plus what the hub reads
# beside them (the Ingress hosts for launch links' public address).
CATALOG = copy.deepcopy(SHIPPED["catalog"])
CATALOG["resources"][next(iter(CATALOG["resources"]))]["displayName"] = "Renamed"
HUB_READS = {
    "auth": changed(auth__admins=[*SHIPPED["auth"]["admins"], "local:bob"]),
    "branding": changed(branding={"title": "Lab hub"}),
    "catalog": changed(catalog=CATALOG),
    "sessions": changed(sessions__defaultMinutes=45),
    "launchLinks": changed(launchLinks__publicUrl="https://lab.example.org"),
    "hub.db.url": changed(hub__db={"type": "postgres", "url": "postgresql://teamhub@db2/teamhub",
                                   "existingSecret": {"name": "pg", "key": "pw"}}),
    "hub.db.keepBackups": changed(hub__db__keepBackups=9),
    "hub.db.backupDir": changed(hub__db__backupDir="/srv/teamhub/data/elsewhere"),
    "singleuser": changed(singleuser__clusterAutoscaler=True),
    "hub.subdomainHost": changed(hub__subdomainHost="https://hub.example.org"),
    "hub.baseUrl": changed(hub__baseUrl="/jupyter/"),
    "queue": changed(queue__maxWaitMinutes=30),
    "gpuMetrics": changed(gpuMetrics__prometheusUrl="http://prometheus-operated.monitoring.svc:9090"),
    "ingress hosts": changed(ingress={"enabled": True, "hosts": ["hub.example.org"]}),
}


def _hub_read_paths(node: dict, path: tuple = ()) -> list[str]:
    if node.get("x-read-by") == "hub":
        return [".".join(path)]
    return [p for key, sub in node.get("properties", {}).items() for p in _hub_read_paths(sub, (*path, key))]


def test_every_key_the_hub_reads_has_a_case():
    """A new `x-read-by: hub` key in the schema needs its case here, and in "teamhub.hub.inputs"."""
    assert sorted(_hub_read_paths(inlined_schema())) == sorted(k for k in HUB_READS if k != "ingress hosts")


@pytest.fixture(scope="module")
def templates(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("restarts")
    cases = {"shipped": SHIPPED, **NOT_THE_HUB, **HUB_READS}
    with ThreadPoolExecutor(max_workers=2) as pool:
        got = pool.map(lambda item: hub_template(tmp, f"c{abs(hash(item[0]))}", item[1]), cases.items())
        return dict(zip(cases, got, strict=True))


@pytest.mark.parametrize("case", NOT_THE_HUB)
def test_a_change_the_hub_does_not_read_leaves_its_pod_template_alone(templates, case):
    assert templates[case] == templates["shipped"]


@pytest.mark.parametrize("case", HUB_READS)
def test_a_change_the_hub_reads_restarts_it(templates, case):
    before = templates["shipped"]["metadata"]["annotations"]["checksum/hub-values"]
    assert templates[case]["metadata"]["annotations"]["checksum/hub-values"] != before
