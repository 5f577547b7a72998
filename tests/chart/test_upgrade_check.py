"""The pre-install/pre-upgrade check Job (chart/templates/hub/upgrade-check.yaml), rendered by real helm: it
must run what the new hub would run, where the new hub would run, before anything of the release changes."""

from __future__ import annotations

import pytest
import yaml
from support import CONFIG
from teamhub.ops import release
from test_chart import CHART, HELMS, KUBE_VERSIONS, helm, render, validate_all, write_values

PLACEMENT = {"hub": {"nodeSelector": {"pool": "core"}, "tolerations": [{"key": "core", "operator": "Exists", "effect": "NoSchedule"}],
                     "resources": {"requests": {"cpu": "300m", "memory": "600Mi"}, "limits": {"memory": "2Gi"}},
                     "image": {"name": "registry.example/hub", "tag": "2026-11-30", "pullSecrets": ["regcred"]},
                     "extraEnv": {"JUPYTERHUB_LOG_LEVEL": "DEBUG"},
                     "upgradeCheck": {"timeoutSeconds": 45}},
             "auth": {"github": {"existingSecret": {"name": "gh", "key": "secret"}}}}


def find(docs, kind, suffix):
    return next(d for d in docs if d["kind"] == kind and d["metadata"]["name"].endswith(suffix))


@pytest.mark.parametrize("which", HELMS)
def test_the_check_runs_the_new_hub_where_the_hub_runs(which, tmp_path):
    overlay = write_values(tmp_path, "placement", PLACEMENT)
    docs = render(which, CONFIG / "values.yaml", overlay)
    validate_all(docs)
    hub = find(docs, "Deployment", "-hub")["spec"]["template"]["spec"]
    job = find(docs, "Job", "-upgrade-check")
    pod = job["spec"]["template"]["spec"]
    for key in ("nodeSelector", "tolerations", "securityContext", "imagePullSecrets"):
        assert pod[key] == hub[key], key
    (check,), (hub_c,) = pod["containers"], hub["containers"]
    for key in ("image", "imagePullPolicy", "resources", "securityContext"):
        assert check[key] == hub_c[key], key
    assert check["image"] == "registry.example/hub:2026-11-30"
    assert check["args"] == ["teamhub", "check-config"] and "command" not in check  # tini stays PID 1
    generated = {"CONFIGPROXY_AUTH_TOKEN", "JPY_COOKIE_SECRET", "JUPYTERHUB_CRYPT_KEY"}
    assert check["env"] == [e for e in hub_c["env"] if e["name"] not in generated], "the hub's environment, one definition"
    assert {"name": "TEAMHUB_GITHUB_CLIENT_SECRET", "valueFrom": {"secretKeyRef": {"name": "gh", "key": "secret"}}} in check["env"], \
        "a missing client Secret stops the check as it would stop the hub"
    assert job["spec"]["activeDeadlineSeconds"] == 45 and job["spec"]["backoffLimit"] == 0
    assert pod["restartPolicy"] == "Never" and pod["automountServiceAccountToken"] is False and "serviceAccountName" not in pod
    # the NEW values: its own Secret (the values Secret still holds the old ones during pre-upgrade), same text
    mounted = pod["volumes"][0]["projected"]["sources"][0]["secret"]["name"]
    secret = find(docs, "Secret", "-upgrade-check")
    assert mounted == secret["metadata"]["name"] == job["metadata"]["name"]
    assert secret["stringData"]["values.yaml"] == find(docs, "Secret", "-values")["stringData"]["values.yaml"]
    assert yaml.safe_load(secret["stringData"]["values.yaml"])["hub"]["nodeSelector"] == {"pool": "core"}
    policy = find(docs, "NetworkPolicy", "-upgrade-check")
    assert policy["metadata"]["annotations"]["helm.sh/hook-weight"] == secret["metadata"]["annotations"]["helm.sh/hook-weight"]
    assert all(job["spec"]["template"]["metadata"]["labels"][k] == v for k, v in policy["spec"]["podSelector"]["matchLabels"].items())
    assert "ingress" not in policy["spec"] and policy["spec"]["policyTypes"] == ["Ingress", "Egress"], "nothing reaches the check"
    # no database volume: the running hub holds the ReadWriteOnce one
    assert {v["name"]: v for v in pod["volumes"]}["data"] == {"name": "data", "emptyDir": {}}


@pytest.mark.parametrize("which", HELMS)
def test_the_check_runs_first_as_a_hook(which):
    docs = render(which, CONFIG / "values.yaml")
    hooks = [d for d in docs if "helm.sh/hook" in (d["metadata"].get("annotations") or {})]
    pre = [d for d in hooks if "pre-upgrade" in d["metadata"]["annotations"]["helm.sh/hook"]]
    job = find(docs, "Job", "-upgrade-check")
    ann = job["metadata"]["annotations"]
    assert ann["helm.sh/hook"] == "pre-install,pre-upgrade"
    assert ann["helm.sh/hook-delete-policy"] == "before-hook-creation,hook-succeeded", "a failed check is kept for its logs"
    weight = int(ann["helm.sh/hook-weight"])
    secret_weight = int(find(docs, "Secret", "-upgrade-check")["metadata"]["annotations"]["helm.sh/hook-weight"])
    assert secret_weight < weight
    others = [int(d["metadata"]["annotations"].get("helm.sh/hook-weight", 0)) for d in pre if "upgrade-check" not in d["metadata"]["name"]]
    assert others and weight < min(others), "the check fails an upgrade before any image is pre-pulled"
    assert job["spec"]["activeDeadlineSeconds"] == 180, "the schema's default"


@pytest.mark.parametrize("which", HELMS)
def test_postgres_password_reaches_the_check_from_its_own_secret(which, tmp_path):
    overlay = write_values(tmp_path, "pg", {"hub": {"db": {"type": "postgres", "url": "postgresql://teamhub@db/teamhub", "password": "s3cret"}}})
    docs = render(which, CONFIG / "values.yaml", overlay)
    env = {e["name"]: e for e in find(docs, "Job", "-upgrade-check")["spec"]["template"]["spec"]["containers"][0]["env"]}
    name = find(docs, "Secret", "-upgrade-check")["metadata"]["name"]
    assert env["TEAMHUB_DB_PASSWORD"]["valueFrom"]["secretKeyRef"] == {"name": name, "key": "password"}
    assert find(docs, "Secret", "-upgrade-check")["stringData"]["password"] == "s3cret"


@pytest.mark.parametrize("which", HELMS)
def test_the_check_can_be_turned_off_and_its_deadline_is_bounded(which, tmp_path):
    off = write_values(tmp_path, "off", {"hub": {"upgradeCheck": {"enabled": False}}})
    assert not [d for d in render(which, CONFIG / "values.yaml", off) if "upgrade-check" in d["metadata"]["name"]]
    short = write_values(tmp_path, "short", {"hub": {"upgradeCheck": {"timeoutSeconds": 5}}})
    r = helm(which, "template", "t", CHART, "-f", CONFIG / "values.yaml", "-f", short, "--kube-version", KUBE_VERSIONS[-1], check=False)
    assert r.returncode != 0 and "timeoutSeconds" in r.stderr


@pytest.mark.parametrize("which", HELMS)
def test_two_renders_of_the_same_values_differ_only_in_what_helm_template_cannot_look_up(which):
    """What scripts/helm_update.sh compares, minus the lookup: hooks (the check, the prepuller, the `helm test`
    pod) are never counted, and the revision number is no change. The generated-secrets Secret is the one
    difference helm template cannot avoid (no lookup), which is why the script renders with --dry-run=server."""
    args = ["template", "t", CHART, "-f", CONFIG / "values.yaml", "--kube-version", KUBE_VERSIONS[-1], "--namespace", "lab"]
    first, second = helm(which, *args).stdout, helm(which, *args).stdout
    d = release.diff_manifests(first, second.replace("release-revision: \"1\"", "release-revision: \"2\""))
    assert d["added"] == [] and d["removed"] == []
    assert d["changed"] == ["Secret/t-teamhub-secrets"]
    assert not any("upgrade-check" in k or "prepull-awaiter" in k or "test" in k.lower() for k in d["unchanged"])
