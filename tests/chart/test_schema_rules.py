"""Rules that used to live only in `teamhub validate` are in the schema (issue 11 item 11): helm refuses a
values file breaking one, so `helm upgrade` can no longer accept what the hub then refuses at start, and
`teamhub validate` still names file, line and YAML path in words (not raw schema text).

Each case is an overlay on config/examples/local-only.yaml, passed to both tools exactly alike (-f twice).
"""

from __future__ import annotations

import re
import subprocess

import pytest
import yaml
from support import CONFIG, ROOT, TOOLS, run_teamhub, tree_env

BASE = CONFIG / "examples" / "local-only.yaml"
CALLBACK = "https://hub.example.org/hub/{}/oauth_callback"
OIDC = {"enabled": True, "clientId": "hub", "clientSecret": "s", "callbackUrl": CALLBACK.format("oidc"),
        "issuerUrl": "https://sso.example.org/realms/lab"}
GITHUB = {"enabled": True, "clientId": "abc", "clientSecret": "s", "callbackUrl": CALLBACK.format("github"),
          "allowedOrganizations": ["lab"]}

# case: (overlay, YAML path reported, words of the message)
RULES = {
    "image without tag": ({"catalog": {"images": {"notag": {"name": "quay.io/jupyter/base-notebook"}}}},
                          "catalog.images.notag", "has no tag: nodes that already have an image never update it"),
    "image tag latest": ({"catalog": {"images": {"l": {"name": "quay.io/jupyter/base-notebook", "tag": "latest"}}}},
                         "catalog.images.l.tag", "uses the tag 'latest'"),
    "gpu and accelerators": ({"catalog": {"accelerators": {"a": {"displayName": "A", "gpu": {"resource": "amd.com/gpu", "count": 1}}},
                                          "resources": {"both": {"displayName": "Both", "image": "scipy", "cpu": {"request": 1},
                                                                 "memory": {"request": "1Gi"}, "accelerators": ["a"],
                                                                 "gpu": {"resource": "amd.com/gpu", "count": 1}}}}},
                             "catalog.resources.both.accelerators", "either a fixed gpu or a list of accelerators, not both"),
    "no login method": ({"auth": {"local": {"enabled": False}}}, "auth", "no login method is enabled"),
    "github without callbackUrl": ({"auth": {"github": {k: v for k, v in GITHUB.items() if k != "callbackUrl"}}},
                                   "auth.github", "github login is enabled but callbackUrl is missing"),
    "github with empty clientId": ({"auth": {"github": {**GITHUB, "clientId": ""}}}, "auth.github.clientId", "must not be empty"),
    "github without secret": ({"auth": {"github": {k: v for k, v in GITHUB.items() if k != "clientSecret"}}},
                              "auth.github", "has neither clientSecret nor existingSecret"),
    "github wrong callback": ({"auth": {"github": {**GITHUB, "callbackUrl": "https://hub.example.org/hub/oauth_callback"}}},
                              "auth.github.callbackUrl", "does not end with /github/oauth_callback"),
    "oidc without issuerUrl": ({"auth": {"oidc": {k: v for k, v in OIDC.items() if k != "issuerUrl"}}},
                               "auth.oidc", "oidc login is enabled but issuerUrl is missing"),
    "oidc github callback": ({"auth": {"oidc": {**OIDC, "callbackUrl": CALLBACK.format("github")}}},
                             "auth.oidc.callbackUrl", "does not end with /oidc/oauth_callback"),
}


def overlay_file(tmp_path, data):
    path = tmp_path / "overlay.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def helm_template(*values):
    helm = TOOLS / "helm"
    assert helm.exists(), f"{helm} is missing: run make setup"
    args = [str(helm), "template", "t", str(ROOT / "chart"), "--kube-version", "1.37.0"]
    for v in values:
        args += ["-f", str(v)]
    return subprocess.run(args, capture_output=True, text=True, env=tree_env(), timeout=120)


def test_base_passes_both():
    assert helm_template(BASE).returncode == 0
    assert run_teamhub("validate", BASE).returncode == 0


@pytest.mark.parametrize("case", RULES)
def test_helm_and_teamhub_validate_refuse_alike(case, tmp_path):
    data, path, words = RULES[case]
    overlay = overlay_file(tmp_path, data)
    proc = helm_template(BASE, overlay)
    assert proc.returncode != 0, f"helm accepted {case}"
    assert "schema" in proc.stderr
    r = run_teamhub("validate", BASE, overlay)
    assert r.returncode != 0
    out = r.stdout + r.stderr
    line = re.search(rf"^{re.escape(str(overlay))}:(\d+): {re.escape(path)}: (.*)$", out, re.M)
    assert line, out
    assert words in line.group(2), out
    assert "is not valid under" not in out and "should not be valid" not in out  # words, not raw jsonschema text


def test_pull_always_allows_latest_and_no_tag(tmp_path):
    overlay = overlay_file(tmp_path, {"catalog": {"images": {
        "l": {"name": "quay.io/jupyter/base-notebook", "tag": "latest", "pullPolicy": "Always"},
        "n": {"name": "quay.io/jupyter/base-notebook", "pullPolicy": "Always"}}}})
    assert helm_template(BASE, overlay).returncode == 0
    assert run_teamhub("validate", BASE, overlay).returncode == 0


def test_chart_defaults_alone_are_refused_with_the_reason():
    """A bare install enables no login method: the hub would refuse to start, so helm refuses first."""
    proc = helm_template()
    assert proc.returncode != 0 and "/auth" in proc.stderr


def test_security_context_overrides_pass_both_and_root_is_refused(tmp_path):
    ids = {"runAsUser": 1001, "runAsGroup": 0, "fsGroup": 0}
    data = {"singleuser": {"securityContext": ids},
            "catalog": {"images": {"scipy": {"securityContext": ids}}, "resources": {"cpu-small": {"securityContext": ids}}}}
    overlay = overlay_file(tmp_path, data)
    assert helm_template(BASE, overlay).returncode == 0
    assert run_teamhub("validate", BASE, overlay).returncode == 0
    data["catalog"]["images"]["scipy"]["securityContext"] = {"runAsUser": 0}
    overlay = overlay_file(tmp_path, data)
    assert helm_template(BASE, overlay).returncode != 0
    assert "catalog.images.scipy.securityContext.runAsUser: must be at least 1" in run_teamhub("validate", BASE, overlay).stdout
