"""The chart's HTTPRoute on a real API server (issue 30): with httpRoute enabled, a cluster without the
Gateway API gets no route (and the release installs, NOTES says why); once the standard-channel Gateway API
CRDs (sigs.k8s.io/gateway-api, fetched by `make setup` into .tools/gateway-api-crds) are served, the next
upgrade's HTTPRoute is accepted by the API server's validation of the CRD schema. That upgrade changes only
what the proxy side reads, so the hub pod (Recreate: a restart is an outage) must be the very same pod."""

from __future__ import annotations

import pytest
from support import ROOT

from .chart import RELEASE, install

CRDS = ROOT / ".tools" / "gateway-api-crds"
GROUP = "/apis/gateway.networking.k8s.io/v1"
ROUTE = ["--set", "httpRoute.enabled=true", "--set", "httpRoute.parentRefs[0].name=shared",
         "--set", "httpRoute.parentRefs[0].namespace=gateways", "--set", "ingress.hosts[0]=hub.example.org"]


def _established(cluster, name: str) -> bool:
    """Poll the condition ourselves: `kubectl wait --for condition=established` errors while a just-created
    CRD has no conditions at all."""
    crd = cluster.api.get(f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}")
    return any(c["type"] == "Established" and c["status"] == "True" for c in crd.get("status", {}).get("conditions", []))


def _served(cluster) -> bool:
    """Discovery lists httproutes under gateway.networking.k8s.io/v1 (what helm's Capabilities read)."""
    if not cluster.api.ok(GROUP):
        return False
    return any(r["name"] == "httproutes" for r in cluster.api.get(GROUP).get("resources", []))


@pytest.fixture
def gateway_api(cluster):
    files = sorted(CRDS.glob("*.yaml"))
    assert files, f"{CRDS} is empty: `make setup` fetches the Gateway API CRDs"
    created = cluster.kubectl("create", "-o", "name", *[a for f in files for a in ("-f", f)]).stdout.split()
    names = [line.split("/", 1)[1] for line in created]
    assert "httproutes.gateway.networking.k8s.io" in names, names
    cluster.plane.wait_until(lambda: all(_established(cluster, n) for n in names) and _served(cluster), 60,
                             "the Gateway API CRDs to be established and served")
    yield names
    # no --wait: deleting a CRD can take over a minute, and nothing later depends on it being gone
    cluster.kubectl("delete", "customresourcedefinition", *names, "--wait=false")


def _hub_pod(cluster, ns: str) -> dict:
    pods = cluster.kubectl_json("get", "pods", "-n", ns, "-l", "app.kubernetes.io/component=hub")["items"]
    assert len(pods) == 1, [p["metadata"]["name"] for p in pods]
    return pods[0]


def test_http_route_left_out_without_the_gateway_api_then_accepted_with_it(cluster, namespace, request):
    assert not _served(cluster), "the Gateway API is already served: this test must start without it"
    first = install(cluster, "helm3", namespace, *ROUTE)
    assert "HTTPRoute skipped" in first.stdout
    manifest = cluster.helm("helm3", "get", "manifest", RELEASE, "-n", namespace).stdout
    assert "kind: HTTPRoute" not in manifest
    hub_before = _hub_pod(cluster, namespace)
    proxy_before = cluster.kubectl_json("get", "deployment", f"{RELEASE}-proxy", "-n", namespace)

    request.getfixturevalue("gateway_api")
    # the proxy's resources change too, so this upgrade certainly rolls something: just not the hub
    second = install(cluster, "helm3", namespace, *ROUTE, "--set", "proxy.resources.requests.cpu=150m")
    assert "HTTPRoute skipped" not in second.stdout
    route = cluster.kubectl_json("get", "httproute", RELEASE, "-n", namespace)
    assert route["spec"]["parentRefs"] == [{"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": "shared",
                                            "namespace": "gateways"}]
    assert route["spec"]["hostnames"] == ["hub.example.org"]
    # the defaults of the CRD's schema (group, kind, weight) were applied: the API server validated the route
    assert route["spec"]["rules"][0]["backendRefs"] == [{"group": "", "kind": "Service", "name": f"{RELEASE}-proxy-public",
                                                         "port": 80, "weight": 1}]
    assert route["spec"]["rules"][0]["matches"] == [{"path": {"type": "PathPrefix", "value": "/"}}]

    proxy_after = cluster.kubectl_json("get", "deployment", f"{RELEASE}-proxy", "-n", namespace)
    assert proxy_after["metadata"]["generation"] > proxy_before["metadata"]["generation"]
    hub_after = _hub_pod(cluster, namespace)
    assert hub_after["metadata"]["uid"] == hub_before["metadata"]["uid"], "a proxy-side upgrade restarted the hub"
    hub_deployment = cluster.kubectl_json("get", "deployment", f"{RELEASE}-hub", "-n", namespace)
    assert hub_deployment["metadata"]["generation"] == 1
