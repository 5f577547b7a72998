"""hub.baseUrl in the chart (issue 30): the Ingress and HTTPRoute route only the base URL's path, the hub's
probes, the proxy's error page, `helm test` and the ServiceMonitor ask for the hub's pages under it, the hub reads
it (so a change restarts it), and helm and `teamhub validate` refuse a malformed one alike. NOTES are checked by
chart/tests/baseurl_test.yaml; the hub answering under it through the real proxy by
tests/integration/test_base_url.py."""

from __future__ import annotations

import pytest
import yaml
from support import run_teamhub
from teamhub.hub import launchlinks
from teamhub.hub.config import base_url
from test_chart import CONFIG, HELMS, helm, render, write_values
from test_schema_rules import BASE, helm_template

API = ("--api-versions", "gateway.networking.k8s.io/v1/HTTPRoute", "--api-versions", "monitoring.coreos.com/v1/ServiceMonitor")
ON = {"hub": {"baseUrl": "/jupyter/"}, "ingress": {"enabled": True, "hosts": ["apps.example.org"]},
      "httpRoute": {"enabled": True, "parentRefs": [{"name": "campus"}]}, "metrics": {"serviceMonitor": {"enabled": True}}}


def objects(which, tmp_path, overlay: dict) -> dict:
    docs = render(which, CONFIG / "values.yaml", write_values(tmp_path, "overlay", overlay), extra=API)
    return {(d["kind"], d["metadata"]["name"]): d for d in docs}


@pytest.mark.parametrize("which", HELMS)
def test_every_hub_path_the_chart_names_is_under_the_base_url(which, tmp_path):
    docs = objects(which, tmp_path, ON)
    hub = docs["Deployment", "t-teamhub-hub"]["spec"]["template"]["spec"]["containers"][0]
    assert {hub[p]["httpGet"]["path"] for p in ("startupProbe", "readinessProbe", "livenessProbe")} == {"/jupyter/hub/health"}
    proxy = docs["Deployment", "t-teamhub-proxy"]["spec"]["template"]["spec"]["containers"][0]["command"]
    assert "--error-target=http://t-teamhub-hub:8081/jupyter/hub/error" in proxy
    [path] = docs["Ingress", "t-teamhub"]["spec"]["rules"][0]["http"]["paths"]
    assert (path["path"], path["pathType"]) == ("/jupyter", "Prefix")  # whole segments: /jupyter and /jupyter/..., never /jupyterlab
    [rule] = docs["HTTPRoute", "t-teamhub"]["spec"]["rules"]
    assert rule["matches"] == [{"path": {"type": "PathPrefix", "value": "/jupyter"}}]
    assert docs["ServiceMonitor", "t-teamhub-hub"]["spec"]["endpoints"][0]["path"] == "/jupyter/hub/metrics"
    test = docs["Pod", "t-teamhub-test-hub"]["spec"]["containers"][0]["args"][-1]
    assert 'url = "http://t-teamhub-hub:8081/jupyter/hub/api/"' in test


@pytest.mark.parametrize("which", HELMS)
def test_the_default_keeps_every_path_at_the_root(which, tmp_path):
    docs = objects(which, tmp_path, {k: v for k, v in ON.items() if k != "hub"})
    hub = docs["Deployment", "t-teamhub-hub"]["spec"]["template"]["spec"]["containers"][0]
    assert hub["startupProbe"]["httpGet"]["path"] == "/hub/health"
    assert docs["Ingress", "t-teamhub"]["spec"]["rules"][0]["http"]["paths"][0]["path"] == "/"
    assert docs["HTTPRoute", "t-teamhub"]["spec"]["rules"][0]["matches"][0]["path"]["value"] == "/"


def test_the_hub_reads_it_from_its_values_and_launch_links_carry_it(tmp_path):
    docs = objects("helm3", tmp_path, ON)
    values = yaml.safe_load(docs["Secret", "t-teamhub-values"]["stringData"]["values.yaml"])
    assert base_url(values) == "/jupyter/"
    links = {"launchLinks": {"publicUrl": "https://apps.example.org"}, "hub": {"baseUrl": "/jupyter/"}}
    assert launchlinks.public_url(links) == "https://apps.example.org/jupyter"
    links["launchLinks"]["publicUrl"] = "https://apps.example.org/jupyter/"  # already under it: not added twice
    assert launchlinks.public_url(links) == "https://apps.example.org/jupyter"
    ingress = {"launchLinks": {}, "hub": {"baseUrl": "/"}, "ingress": {"enabled": True, "hosts": ["a.example.org"]}}
    assert launchlinks.public_url(ingress) == "http://a.example.org"


def test_teamhub_link_prints_the_launch_link_under_the_base_url(tmp_path):
    overlay = write_values(tmp_path, "link", {"hub": {"baseUrl": "/jupyter/"}, "launchLinks": {"publicUrl": "https://apps.example.org"}})
    r = run_teamhub("link", CONFIG / "values.yaml", overlay, "--resource", "cpu-small")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "https://apps.example.org/jupyter/hub/launch?resource=cpu-small"


@pytest.mark.parametrize("bad", ["jupyter/", "/jupyter", "/a//", "/../", "/./x/", "/a b/", "/ju?py/", ""])
def test_a_malformed_base_url_is_refused_by_helm_and_validate_alike(bad, tmp_path):
    overlay = write_values(tmp_path, "bad", {"hub": {"baseUrl": bad}})
    proc = helm_template(BASE, overlay)
    assert proc.returncode != 0 and "baseUrl" in proc.stderr, proc.stderr
    r = run_teamhub("validate", BASE, overlay)
    assert r.returncode == 1 and f"{overlay}:" in r.stdout + r.stderr and "hub.baseUrl" in r.stdout + r.stderr, r.stdout + r.stderr


@pytest.mark.parametrize("good", ["/", "/jupyter/", "/a/b-c_d.e~f/"])
def test_well_formed_base_urls_pass(good, tmp_path):
    overlay = write_values(tmp_path, "good", {"hub": {"baseUrl": good}})
    assert helm_template(BASE, overlay).returncode == 0
    assert run_teamhub("validate", BASE, overlay).returncode == 0


def test_helm_lints_with_a_base_url(tmp_path):
    assert helm("helm3", "lint", CONFIG.parent / "chart", "-f", CONFIG / "values.yaml",
                "-f", write_values(tmp_path, "on", ON)).returncode == 0
