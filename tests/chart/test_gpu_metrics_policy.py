"""Issue 28: the hub pod (the idle culler runs there) reaches the Prometheus named by gpuMetrics.prometheusUrl,
and nothing else new.

The rule is read two ways: the rendered egress rule equals what teamhub/values/gpumetrics.py `target()` makes of
the URL (the hub and `teamhub validate` read it there), for a Service name, an address and an IPv6 address, with
and without a port of its own; and network-config-analyzer (NCA, as in test_network_policy.py) computes the whole
connectivity map with and without the URL: the only pairs added are hub -> that Prometheus on that port.
"""

from __future__ import annotations

import copy
import subprocess

import pytest
import yaml
from support import CONFIG
from teamhub.values import gpumetrics
from test_chart import CHART, helm, render, write_values
from test_network_policy import HUB, NCA, NS, Connectivity, _dns_pod, _rendered, _user_pod

SHIPPED = yaml.safe_load((CONFIG / "values.yaml").read_text())
PROMETHEUS, DECOY, ELSEWHERE = "monitoring/prometheus", "monitoring/grafana", "other/prometheus"


def with_gpu_metrics(**gm) -> dict:
    values = copy.deepcopy(SHIPPED)
    values["gpuMetrics"] = gm
    return values


def hub_egress(tmp_path, name, values) -> list:
    docs = render("helm3", write_values(tmp_path, name, values))
    (policy,) = [d for d in docs if d["kind"] == "NetworkPolicy" and d["metadata"]["name"] == "t-teamhub-hub"]
    return policy["spec"]["egress"]


def expected_rule(gm: dict) -> dict:
    """The one egress rule gpumetrics.target() describes."""
    t = gpumetrics.target(gm)
    if t.ip is not None:
        peer = {"ipBlock": {"cidr": f"{t.ip}/{128 if ':' in t.ip else 32}"}}
    else:
        peer = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": t.namespace}}}
        if gm.get("podSelector"):
            peer["podSelector"] = {"matchLabels": gm["podSelector"]}
    return {"to": [peer], "ports": [{"port": t.port, "protocol": "TCP"}]}


@pytest.mark.parametrize("gm", [
    {"prometheusUrl": "http://prometheus-operated.monitoring.svc:9090"},
    {"prometheusUrl": "http://prometheus-server.monitoring.svc.cluster.local", "port": 9090, "podSelector": {"app": "prometheus"}},
    {"prometheusUrl": "https://10.0.0.5/prometheus"},
    {"prometheusUrl": "http://[fd00::5]:9090"},
])
def test_the_rendered_rule_is_the_one_the_hub_reads(tmp_path, gm):
    before = hub_egress(tmp_path, "off", SHIPPED)
    after = hub_egress(tmp_path, "on", with_gpu_metrics(**gm))
    assert after[:len(before)] == before  # every rule of today, unchanged
    assert after[len(before):] == [expected_rule(gm)]  # and exactly one more


def test_an_address_no_policy_can_name_is_refused_by_helm_too(tmp_path):
    path = write_values(tmp_path, "bad", with_gpu_metrics(prometheusUrl="http://prometheus.example.org:9090"))
    proc = helm("helm3", "template", "t", CHART, "-f", path, check=False)
    assert proc.returncode != 0 and "neither an IP address nor a cluster Service name" in proc.stderr


def _pod(namespace, name, labels, port=9090) -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": namespace, "labels": labels},
            "spec": {"containers": [{"name": name, "image": "example.org/prometheus:v3", "ports": [{"containerPort": port}]}]}}


def connectivity(tmp_path, name, values) -> Connectivity:
    docs = _rendered([write_values(tmp_path, name, values)], tmp_path)
    namespaces = [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": n, "labels": {"kubernetes.io/metadata.name": n}}}
                  for n in (NS, "kube-system", "monitoring", "other")]
    extra = [_user_pod(docs, "alice"), _dns_pod("kube-system", "coredns"), _pod("monitoring", "prometheus", {"app": "prometheus"}),
             _pod("monitoring", "grafana", {"app": "grafana"}), _pod("other", "prometheus", {"app": "prometheus"})]
    resources = tmp_path / f"{name}-resources.yaml"
    resources.write_text(yaml.safe_dump_all([*namespaces, *docs, *extra]))
    proc = subprocess.run([str(NCA), "--connectivity", "-r", str(resources), "-o", "txt_no_fw_rules"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and "=>" in proc.stdout, f"nca failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
    return Connectivity(proc.stdout)


def test_only_the_hub_reaches_that_prometheus_and_nothing_else_is_new(tmp_path):
    assert NCA.exists(), f"{NCA} is missing: `make .venv-nca/stamp` (make test and make test-chart build it)"
    off = connectivity(tmp_path, "off", SHIPPED)
    on = connectivity(tmp_path, "on", with_gpu_metrics(prometheusUrl="http://prometheus-operated.monitoring.svc:9090",
                                                        podSelector={"app": "prometheus"}))
    assert not off.permits(HUB, PROMETHEUS, 9090)
    assert on.permits(HUB, PROMETHEUS, 9090)
    assert not on.permits(HUB, PROMETHEUS, 9091) and not on.permits(HUB, DECOY, 9090) and not on.permits(HUB, ELSEWHERE, 9090)
    added = {pair: conns for pair, conns in on.allowed.items() if off.allowed.get(pair) != conns}
    assert set(added) == {(HUB, PROMETHEUS)}, added  # the user servers, the proxy: nothing new
