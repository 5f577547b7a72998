"""hub.baseUrl in the hub's configuration (issue 30): on Kubernetes JupyterHub's base_url and the culler's hub
API follow it; in local mode (the demo) it is the bind URL's path, since base_url beside bind_url would make
JupyterHub rebuild the bind URL from its default address."""

from __future__ import annotations

import json

import yaml
from hubhelpers import VALUES, configured


def with_base(tmp_path, base: str):
    data = yaml.safe_load(VALUES.read_text())
    data.setdefault("hub", {})["baseUrl"] = base
    path = tmp_path / "v.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_on_kubernetes_the_hub_and_its_culler_live_under_the_base_url(tmp_path):
    c = configured(with_base(tmp_path, "/jupyter/"), environ={"TEAMHUB_HUB_CONNECT_URL": "http://teamhub-hub:8081"})
    assert c.JupyterHub.base_url == "/jupyter/"
    (service,) = c.JupyterHub.services.get_value([])
    settings = json.loads(service["environment"]["TEAMHUB_CULLER_SETTINGS"])  # the culler's, from its config file
    assert settings["hubApi"] == "http://127.0.0.1:8081/jupyter/hub/api"
    assert "base_url" not in configured(environ={}).JupyterHub or configured(environ={}).JupyterHub.base_url == "/"


def test_in_local_mode_the_base_url_is_the_bind_urls_path(tmp_path):
    c = configured(with_base(tmp_path, "/lab/hub/"), mode="local", environ={"TEAMHUB_BIND_URL": "http://127.0.0.1:8123"})
    assert c.JupyterHub.bind_url == "http://127.0.0.1:8123/lab/hub/"
    assert "base_url" not in c.JupyterHub
