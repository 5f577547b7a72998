"""Per-user origins in the chart (hub.subdomainHost): the proxy routes by host, the Ingress serves the hub's
host and every <name>.<host> with the wildcard certificate, the NetworkPolicies stay as they are, and the hub
reads the value from its values Secret. NOTES are checked by chart/tests/subdomain_test.yaml."""

from __future__ import annotations

import pytest
import yaml
from teamhub.values import origins
from test_chart import CONFIG, HELMS, render, write_values

SUBDOMAIN = {
    "hub": {"subdomainHost": "https://hub.example.org"},
    "ingress": {"enabled": True, "className": "nginx", "hosts": ["hub.example.org"],
                "tls": [{"hosts": ["hub.example.org"], "secretName": "hub-tls"}],
                "subdomainTlsSecretName": "hub-wildcard-tls"},
}


def objects(which, tmp_path, overlay: dict) -> dict:
    docs = render(which, CONFIG / "values.yaml", write_values(tmp_path, "overlay", overlay))
    return {(d["kind"], d["metadata"]["name"]): d for d in docs}


def proxy_command(docs: dict) -> list:
    return docs["Deployment", "t-teamhub-proxy"]["spec"]["template"]["spec"]["containers"][0]["command"]


@pytest.mark.parametrize("which", HELMS)
def test_the_proxy_routes_by_host_only_with_subdomain_host(which, tmp_path):
    assert "--host-routing" in proxy_command(objects(which, tmp_path, SUBDOMAIN))
    assert "--host-routing" not in proxy_command(objects(which, tmp_path, {}))


@pytest.mark.parametrize("which", HELMS)
def test_the_ingress_serves_the_hub_and_every_persons_host_with_the_wildcard_certificate(which, tmp_path):
    ingress = objects(which, tmp_path, SUBDOMAIN)["Ingress", "t-teamhub"]["spec"]
    assert [r["host"] for r in ingress["rules"]] == ["hub.example.org", "*.hub.example.org"]
    for rule in ingress["rules"]:
        backend = rule["http"]["paths"][0]["backend"]["service"]
        assert backend == {"name": "t-teamhub-proxy-public", "port": {"name": "http"}}
    assert ingress["tls"] == [{"hosts": ["hub.example.org"], "secretName": "hub-tls"},
                              {"hosts": ["*.hub.example.org"], "secretName": "hub-wildcard-tls"}]


@pytest.mark.parametrize("which", HELMS)
def test_the_ingress_adds_the_subdomain_host_to_other_hosts_and_reads_port_and_scheme_away(which, tmp_path):
    overlay = {"hub": {"subdomainHost": "http://lab.example.org:8080"},
               "ingress": {"enabled": True, "hosts": ["old.example.org"]}}
    ingress = objects(which, tmp_path, overlay)["Ingress", "t-teamhub"]["spec"]
    assert [r["host"] for r in ingress["rules"]] == ["old.example.org", "lab.example.org", "*.lab.example.org"]
    assert "tls" not in ingress  # no certificate named: none invented
    without = objects(which, tmp_path, {"ingress": {"enabled": True, "subdomainTlsSecretName": "hub-wildcard-tls"}})
    assert "tls" not in without["Ingress", "t-teamhub"]["spec"]  # a wildcard certificate means nothing without it
    assert [r.get("host") for r in without["Ingress", "t-teamhub"]["spec"]["rules"]] == [None]


@pytest.mark.parametrize("which", HELMS)
def test_network_policies_are_the_same_and_the_hub_reads_the_value(which, tmp_path):
    on = objects(which, tmp_path, SUBDOMAIN)
    off = objects(which, tmp_path, {"ingress": {k: v for k, v in SUBDOMAIN["ingress"].items() if k != "subdomainTlsSecretName"}})
    policies = sorted(k for k in on if k[0] == "NetworkPolicy")
    assert policies and policies == sorted(k for k in off if k[0] == "NetworkPolicy")
    for key in policies:  # host routing is the proxy's business: the same pods talk to the same ports
        assert on[key] == off[key], key
    secret = yaml.safe_load(on["Secret", "t-teamhub-values"]["stringData"]["values.yaml"])
    assert secret["hub"]["subdomainHost"] == "https://hub.example.org"


@pytest.mark.parametrize("value", ["hub.example.org", "https://hub.example.org:8443", "http://hub.localhost:8000"])
def test_the_chart_reads_the_host_as_the_hub_does(value, tmp_path):
    # Helm cannot call Python: the chart's helper and teamhub/values/origins.py parse the value each; held equal here.
    origin = origins.parse(value)
    docs = objects("helm3", tmp_path, {"hub": {"subdomainHost": value}, "ingress": {"enabled": True}})
    assert [r["host"] for r in docs["Ingress", "t-teamhub"]["spec"]["rules"]] == [origin.host, origin.wildcard]
