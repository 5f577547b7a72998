"""The keys an admin brings from Zero to JupyterHub (issue 30): placement and priority of the chart's own
pods, the hub's ServiceAccount annotations, extra volumes, containers and env, a chart-created image pull
secret, name overrides, common labels and annotations, and the Gateway API HTTPRoute."""

from __future__ import annotations

import base64
import json

import yaml
from support import CONFIG
from test_chart import CHART, render, validate_all, write_values

GATEWAY = "gateway.networking.k8s.io/v1/HTTPRoute"


def find(docs, kind, name=None, component=None):
    for d in docs:
        if d["kind"] != kind:
            continue
        if name and d["metadata"]["name"] != name:
            continue
        if component and d["metadata"]["labels"].get("app.kubernetes.io/component") != component:
            continue
        return d
    raise AssertionError(f"no {kind} {name or component} in {[(d['kind'], d['metadata']['name']) for d in docs]}")


def pod_spec(doc):
    return doc["spec"] if doc["kind"] == "Pod" else doc["spec"]["template"]["spec"]


def overlay(tmp_path, name, data, *extra):
    return render("helm3", CONFIG / "values.yaml", write_values(tmp_path, name, data), extra=list(extra))


ANTI = {"podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
    {"weight": 50, "podAffinityTerm": {"topologyKey": "kubernetes.io/hostname",
                                        "labelSelector": {"matchLabels": {"app": "x"}}}}]}}
CORE_NODES = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
    {"matchExpressions": [{"key": "pool", "operator": "In", "values": ["core"]}]}]}}}
TAINT = {"key": "dedicated", "operator": "Equal", "value": "core", "effect": "NoSchedule"}


def test_hub_and_proxy_placement_and_priority(tmp_path):
    docs = overlay(tmp_path, "placement", {
        "hub": {"affinity": {**CORE_NODES, **ANTI}, "priorityClassName": "hub-critical", "tolerations": [TAINT],
                "nodeSelector": {"pool": "core"}},
        "proxy": {"affinity": ANTI, "priorityClassName": "proxy-critical", "tolerations": [TAINT]}})
    validate_all(docs)
    for doc in (find(docs, "Deployment", "t-teamhub-hub"), find(docs, "Job", component="upgrade-check")):
        spec = pod_spec(doc)  # the check runs where and as the hub will, or it proves nothing
        assert spec["affinity"] == {**CORE_NODES, **ANTI}, doc["metadata"]["name"]
        assert spec["priorityClassName"] == "hub-critical"
        assert spec["tolerations"] == [TAINT] and spec["nodeSelector"] == {"pool": "core"}
    proxy = pod_spec(find(docs, "Deployment", "t-teamhub-proxy"))
    assert proxy["affinity"] == ANTI and proxy["priorityClassName"] == "proxy-critical" and proxy["tolerations"] == [TAINT]
    assert "nodeSelector" not in proxy


def test_defaults_set_no_placement_or_priority():
    docs = render("helm3", CONFIG / "values.yaml")
    for name in ("t-teamhub-hub", "t-teamhub-proxy"):
        spec = pod_spec(find(docs, "Deployment", name))
        assert not {"affinity", "priorityClassName", "tolerations", "nodeSelector"} & set(spec), name


def _terms(spec):
    return spec.get("affinity", {}).get("nodeAffinity", {}).get("requiredDuringSchedulingIgnoredDuringExecution", {}) \
        .get("nodeSelectorTerms", [])


def test_puller_placement_joins_the_catalog_nodes_with_the_operators(tmp_path):
    base = render("helm3", CONFIG / "values.yaml")
    docs = overlay(tmp_path, "pullers", {"prePuller": {
        "affinity": {**CORE_NODES, **ANTI}, "nodeSelector": {"kubernetes.io/os": "linux"}, "tolerations": [TAINT],
        "priorityClassName": "low"}})
    validate_all(docs)
    before = {d["metadata"]["name"]: pod_spec(d) for d in base if d["kind"] == "DaemonSet"}
    after = {d["metadata"]["name"]: pod_spec(d) for d in docs if d["kind"] == "DaemonSet"}
    assert before.keys() == after.keys() and len(after) >= 4
    joined = 0
    for name, spec in after.items():
        old = before[name]
        assert spec["priorityClassName"] == "low" and spec["nodeSelector"] == {"kubernetes.io/os": "linux"}
        assert spec["tolerations"] == old.get("tolerations", []) + [TAINT], name
        assert spec["affinity"]["podAntiAffinity"] == ANTI["podAntiAffinity"]
        core = CORE_NODES["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"][0]
        if _terms(old):
            # each catalog term must also match the operator's: both sets of expressions in one term
            assert _terms(spec) == [{"matchExpressions": t["matchExpressions"] + core["matchExpressions"]}
                                    for t in _terms(old)], name
            joined += 1
        else:
            assert _terms(spec) == [core], name
    assert joined, "the shipped catalog has GPU nodes: some puller must have catalog terms"


def test_service_account_annotations(tmp_path):
    docs = overlay(tmp_path, "sa", {"hub": {"serviceAccount": {"annotations": {"iam.gke.io/gcp-service-account": "hub@p.iam"}}}})
    sa = find(docs, "ServiceAccount", "t-teamhub-hub")
    assert sa["metadata"]["annotations"] == {"iam.gke.io/gcp-service-account": "hub@p.iam"}


SIDECAR = {"name": "db-proxy", "image": "gcr.io/cloud-sql-connectors/cloud-sql-proxy:2.14.3",
           "args": ["--port=5432", "project:region:db"], "resources": {"requests": {"cpu": "10m", "memory": "32Mi"}}}
INIT = {"name": "ca-bundle", "image": "docker.io/library/busybox:1.37.0", "command": ["true"],
        "securityContext": {"runAsUser": 2000}}
CA = {"name": "ca", "configMap": {"name": "campus-ca"}}
CA_MOUNT = {"name": "ca", "mountPath": "/etc/campus-ca", "readOnly": True}
ENV = {"SSL_CERT_FILE": "/etc/campus-ca/ca.crt",
       "PGPASSWORD": {"valueFrom": {"secretKeyRef": {"name": "pg", "key": "password"}}},
       "NODE_NAME": {"valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}}}


def test_hub_extra_volumes_containers_and_env(tmp_path):
    docs = overlay(tmp_path, "extras", {"hub": {"extraVolumes": [CA], "extraVolumeMounts": [CA_MOUNT],
                                                "extraContainers": [SIDECAR], "initContainers": [INIT], "extraEnv": ENV}})
    validate_all(docs)
    restricted = pod_spec(find(docs, "Deployment", "t-teamhub-proxy"))["containers"][0]["securityContext"]
    hub = pod_spec(find(docs, "Deployment", "t-teamhub-hub"))
    check = pod_spec(find(docs, "Job", component="upgrade-check"))
    for spec in (hub, check):
        assert CA in spec["volumes"] and CA_MOUNT in spec["containers"][0]["volumeMounts"]
        env = spec["containers"][0]["env"]
        assert {"name": "SSL_CERT_FILE", "value": "/etc/campus-ca/ca.crt"} in env
        assert {"name": "PGPASSWORD", "valueFrom": {"secretKeyRef": {"name": "pg", "key": "password"}}} in env
        assert {"name": "NODE_NAME", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}} in env
        init = spec["initContainers"][0]
        # the operator's setting stays, everything they left out is the restricted default
        assert init["securityContext"] == {**restricted, "runAsUser": 2000}
    sidecar = hub["containers"][1]
    assert sidecar["name"] == "db-proxy" and sidecar["args"] == SIDECAR["args"] and sidecar["securityContext"] == restricted
    assert [c["name"] for c in check["containers"]] == ["check"], "a sidecar would keep the check Job from ending"


def test_extra_env_refuses_a_value_that_is_neither_text_nor_value_from(tmp_path):
    from test_chart import helm

    bad = write_values(tmp_path, "bad", {"hub": {"extraEnv": {"X": {"value": "y"}}}})
    proc = helm("helm3", "template", "t", CHART, "-f", CONFIG / "values.yaml", "-f", bad, check=False)
    assert proc.returncode != 0 and "extraEnv" in proc.stderr


PULL = {"create": True, "registry": "registry.example.org:5000", "username": "robot$teamhub",
        "password": "s3cret-Token-9f", "email": "ops@example.org"}


def test_image_pull_secret_is_created_and_named_by_every_pod(tmp_path):
    docs = overlay(tmp_path, "pull", {"imagePullSecret": PULL, "hub": {"image": {"pullSecrets": ["mirror"]}}})
    validate_all(docs)
    secret = find(docs, "Secret", "t-teamhub-image-pull-secret")
    assert secret["type"] == "kubernetes.io/dockerconfigjson"
    config = json.loads(base64.b64decode(secret["data"][".dockerconfigjson"]))
    entry = config["auths"]["registry.example.org:5000"]
    assert base64.b64decode(entry["auth"]).decode() == "robot$teamhub:s3cret-Token-9f"
    assert entry["username"] == "robot$teamhub" and entry["password"] == "s3cret-Token-9f"
    assert entry["email"] == "ops@example.org"
    pods = [d for d in docs if d["kind"] in ("Deployment", "DaemonSet", "Job", "Pod")]
    assert len(pods) >= 8
    for d in pods:
        names = [s["name"] for s in pod_spec(d).get("imagePullSecrets", [])]
        assert "t-teamhub-image-pull-secret" in names, d["metadata"]["name"]
    hub = pod_spec(find(docs, "Deployment", "t-teamhub-hub"))
    assert [s["name"] for s in hub["imagePullSecrets"]] == ["mirror", "t-teamhub-image-pull-secret"]


def test_image_pull_secret_needs_its_credentials(tmp_path):
    from test_chart import helm

    bad = write_values(tmp_path, "bad", {"imagePullSecret": {"create": True, "registry": "r.example.org"}})
    proc = helm("helm3", "template", "t", CHART, "-f", CONFIG / "values.yaml", "-f", bad, check=False)
    assert proc.returncode != 0 and "username" in proc.stderr


def test_password_is_marked_secret_in_the_schema():
    schema = json.loads((CHART / "values.schema.json").read_text())
    password = schema["properties"]["imagePullSecret"]["properties"]["password"]
    assert password["writeOnly"] is True and password["x-secret"] is True


def test_name_override_renames_objects_and_the_name_label(tmp_path):
    docs = overlay(tmp_path, "name", {"nameOverride": "jupyter"})
    validate_all(docs)
    hub = find(docs, "Deployment", "t-jupyter-hub")
    assert hub["metadata"]["labels"]["app.kubernetes.io/name"] == "jupyter"
    assert hub["spec"]["selector"]["matchLabels"]["app.kubernetes.io/name"] == "jupyter"
    env = {e["name"]: e.get("value") for e in pod_spec(hub)["containers"][0]["env"]}
    assert env["TEAMHUB_PROXY_API_URL"] == "http://t-jupyter-proxy-api:8001"
    assert json.loads(env["TEAMHUB_USER_POD_LABELS"])["app.kubernetes.io/name"] == "jupyter"
    assert not [d for d in docs if "teamhub" in d["metadata"]["name"]]


EVERYTHING = {
    "commonLabels": {"cost-centre": "rc-42", "example.org/team": "research"},
    "commonAnnotations": {"example.org/owner": "ops", "helm.sh/resource-policy": "never-wins"},
    "ingress": {"enabled": True, "hosts": ["hub.example.org"], "annotations": {"a.example.org/x": "1"}},
    "httpRoute": {"enabled": True, "parentRefs": [{"name": "shared", "namespace": "gateways"}]},
    "imagePullSecret": PULL,
    "hub": {"pdb": {"enabled": True}, "db": {"type": "postgres", "url": "postgresql://teamhub@db/teamhub", "password": "x"}},
    "proxy": {"pdb": {"enabled": True}, "service": {"annotations": {"lb.example.org/internal": "true"}}},
    "metrics": {"serviceMonitor": {"enabled": True}},
}


def test_common_labels_and_annotations_reach_every_object(tmp_path):
    docs = overlay(tmp_path, "everything", EVERYTHING, "--api-versions", GATEWAY, "--api-versions",
                   "monitoring.coreos.com/v1/ServiceMonitor", "--api-versions",
                   "admissionregistration.k8s.io/v1/ValidatingAdmissionPolicy")
    kinds = {d["kind"] for d in docs}
    assert {"HTTPRoute", "Ingress", "ServiceMonitor", "ValidatingAdmissionPolicy", "PodDisruptionBudget", "Job",
            "DaemonSet", "NetworkPolicy", "Pod", "PersistentVolumeClaim", "ConfigMap"} <= kinds, kinds
    for d in docs:
        what = f"{d['kind']}/{d['metadata']['name']}"
        assert d["metadata"]["labels"]["cost-centre"] == "rc-42", what
        assert d["metadata"]["annotations"]["example.org/owner"] == "ops", what
        template = d.get("spec", {}).get("template", {}).get("metadata")
        if template:
            assert template["labels"]["example.org/team"] == "research", what
    # an object's own annotation wins over a common one on the same key
    kept = [d for d in docs if d["kind"] == "PersistentVolumeClaim" or d["metadata"]["name"] == "t-teamhub-secrets"]
    assert kept and all(d["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep" for d in kept)
    assert find(docs, "Ingress")["metadata"]["annotations"]["a.example.org/x"] == "1"
    hooks = [d for d in docs if "helm.sh/hook" in d["metadata"]["annotations"]]
    assert len(hooks) >= 6


def test_common_labels_may_not_replace_the_charts_own(tmp_path):
    from test_chart import helm

    bad = write_values(tmp_path, "bad", {"commonLabels": {"app.kubernetes.io/name": "x"}})
    proc = helm("helm3", "template", "t", CHART, "-f", CONFIG / "values.yaml", "-f", bad, check=False)
    assert proc.returncode != 0 and "invalid propertyName 'app.kubernetes.io/name'" in proc.stderr


ROUTE = {"httpRoute": {"enabled": True, "parentRefs": [{"name": "shared", "namespace": "gateways", "sectionName": "https"}],
                       "annotations": {"x.example.org/a": "b"}},
         "ingress": {"hosts": ["hub.example.org"]}}


def test_http_route_where_the_gateway_api_is_served(tmp_path):
    docs = overlay(tmp_path, "route", ROUTE, "--api-versions", GATEWAY)
    route = find(docs, "HTTPRoute")
    assert route["apiVersion"] == "gateway.networking.k8s.io/v1"
    assert route["metadata"]["annotations"] == {"x.example.org/a": "b"}
    assert route["spec"]["parentRefs"] == ROUTE["httpRoute"]["parentRefs"]
    assert route["spec"]["hostnames"] == ["hub.example.org"]
    service = find(docs, "Service", "t-teamhub-proxy-public")
    assert route["spec"]["rules"] == [{"matches": [{"path": {"type": "PathPrefix", "value": "/"}}],
                                       "backendRefs": [{"name": service["metadata"]["name"],
                                                        "port": service["spec"]["ports"][0]["port"]}]}]
    assert not [d for d in docs if d["kind"] == "Ingress"], "the Ingress is its own switch"


def test_http_route_left_out_where_the_gateway_api_is_not_served(tmp_path):
    # NOTES then says it was skipped: chart/tests/notes_test.yaml
    assert not [d for d in overlay(tmp_path, "route", ROUTE) if d["kind"] == "HTTPRoute"]


def test_http_route_needs_a_parent(tmp_path):
    from test_chart import helm

    bad = write_values(tmp_path, "bad", {"httpRoute": {"enabled": True}})
    proc = helm("helm3", "template", "t", CHART, "-f", CONFIG / "values.yaml", "-f", bad, check=False)
    assert proc.returncode != 0 and "parentRefs" in proc.stderr


def test_chart_metadata_for_artifact_hub():
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    for key in ("home", "icon", "sources", "maintainers", "kubeVersion"):
        assert chart.get(key), key
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    images = {i["name"]: i["image"] for i in yaml.safe_load(chart["annotations"]["artifacthub.io/images"])}
    hub, proxy, pause = values["hub"]["image"], values["proxy"]["image"], values["prePuller"]["pause"]
    # what Artifact Hub lists (and scans) is what the chart runs by default
    assert images == {"hub": f"{hub['name']}:{hub['tag'] or chart['appVersion']}",
                      "configurable-http-proxy": f"{proxy['name']}:{proxy['tag']}",
                      "pause": f"{pause['name']}:{pause['tag']}"}
    assert yaml.safe_load(chart["annotations"]["artifacthub.io/links"])


def test_priority_classes_are_created_and_a_resources_class_is_enforced():
    docs = render("helm3", CONFIG / "examples" / "chart-campus-integration.yaml", extra=[
        "--api-versions", "admissionregistration.k8s.io/v1/ValidatingAdmissionPolicy"])
    validate_all([d for d in docs if not d["kind"].startswith("ValidatingAdmissionPolicy")])  # not in 1.28
    classes = {d["metadata"]["name"]: d for d in docs if d["kind"] == "PriorityClass"}
    assert classes.keys() == {"campus-critical", "course-servers", "campus-batch-low"}
    low = classes["campus-batch-low"]
    assert (low["value"], low["preemptionPolicy"], low["globalDefault"]) == (-10, "Never", False)
    assert classes["course-servers"]["value"] == 1000 and classes["course-servers"]["preemptionPolicy"] == "PreemptLowerPriority"
    assert pod_spec(find(docs, "Deployment", "t-teamhub-hub"))["priorityClassName"] == "campus-critical"
    assert all(pod_spec(d)["priorityClassName"] == "campus-batch-low" for d in docs if d["kind"] == "DaemonSet")
    params = find(docs, "ConfigMap", "t-teamhub-admission")["data"]
    assert params["cpu-small"].split("\n")[13] == "course-servers"  # the policy's priority rule compares it
