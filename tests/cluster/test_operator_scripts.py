"""scripts/helm_update.sh and scripts/rollback.sh against one real release (issue 15 items 3, 4 and 6), in the
order an operator meets them: first install, an update with unchanged values, a one-tag upgrade, each failed
upgrade (the old hub keeps serving), a rollback after them, and an uninstall that keeps the data.

The steps share one release (an install with --wait is the expensive part), so they run in file order and
each names what the previous ones left. The hub does not run under kwok: "the hub answers" is its pod being
Ready, as inpod.py explains; the scripts' own probe (`kubectl exec ... /hub/health`) is answered from that.
"""

from __future__ import annotations

import base64
import json

import pytest

from .chart import CHART, RELEASE
from .inpod import HUB_HEALTH
from .operator import FAILED_UPGRADES, base_values, helm_update, overlay, run_script
from .test_user_pod import manifests
from .watch import Recorder

HUB = f"{RELEASE}-hub"
NEW_TAG = "0.1.1-test"
HUB_IMAGE = "ghcr.io/example-university/teamhub-hub"  # chart/values.yaml's; validate wants the name beside a tag


class Release:
    def __init__(self, cluster, namespace, directory, helm="helm3"):
        self.cluster, self.ns, self.dir, self.helm = cluster, namespace, directory, helm
        self.values = base_values(directory)
        self.tagged = [*self.values, overlay(directory, "new-tag", {"hub": {"image": {"name": HUB_IMAGE, "tag": NEW_TAG}}})]

    def history(self) -> list[tuple[int, str, str]]:
        out = self.cluster.helm(self.helm, "history", RELEASE, "-n", self.ns, "-o", "json").stdout
        return [(r["revision"], r["status"], r["description"]) for r in json.loads(out)]

    def hub_pods(self) -> list[dict]:
        return self.cluster.kubectl_json("get", "pods", "-n", self.ns, "-l", "app.kubernetes.io/component=hub")["items"]

    def hub_image(self) -> str:
        deploy = self.cluster.kubectl_json("get", "deployment", HUB, "-n", self.ns)
        return deploy["spec"]["template"]["spec"]["containers"][0]["image"]


@pytest.fixture(scope="module")
def release(cluster, tmp_path_factory):
    ns = cluster.new_namespace("operator-scripts")
    cluster.hub_loopback.namespace = ns
    yield Release(cluster, ns, tmp_path_factory.mktemp("operator"))
    cluster.hub_loopback.namespace = None
    cluster.delete_namespace(ns)


def _ok(proc) -> str:
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    return out


def test_first_install(cluster, release):
    asked = len(cluster.hub_loopback.asked)
    out = _ok(helm_update(cluster, release.ns, release.values))
    assert "does not exist yet: this will install it" in out
    assert "the hub answers on /hub/health" in out
    assert HUB_HEALTH in cluster.hub_loopback.asked[asked:]  # the script's own probe, through kubectl exec
    assert [(n, s) for n, s, _ in release.history()] == [(1, "deployed")]


def test_unchanged_values_show_no_change(cluster, release):
    out = _ok(helm_update(cluster, release.ns, release.values, "--dry-run"))
    assert "0 added, 0 changed, 0 removed" in out, out
    assert " + added " not in out and " ~ changed " not in out
    assert "dry run: nothing was changed" in out
    assert len(release.history()) == 1


def test_one_tag_change_shows_exactly_that_then_upgrades(cluster, release):
    out = _ok(helm_update(cluster, release.ns, release.tagged, "--dry-run"))
    changed = [line.split()[-1] for line in out.splitlines() if line.startswith("  ~ changed ")]
    # The hub's Deployment (its image) and the values Secret the hub reads (which holds the values): nothing else.
    assert changed == [f"Deployment/{HUB}", f"Secret/{RELEASE}-values"], out
    assert "0 added" in out and "0 removed" in out, out

    before = {p["metadata"]["uid"] for p in release.hub_pods()}
    out = _ok(helm_update(cluster, release.ns, release.tagged))
    assert "is now at revision 2" in out and "the hub answers on /hub/health" in out
    assert release.hub_image().endswith(f":{NEW_TAG}")
    assert not before & {p["metadata"]["uid"] for p in release.hub_pods()}  # Recreate: a new hub pod


@pytest.mark.parametrize("case", list(FAILED_UPGRADES))
def test_failed_upgrade_keeps_the_old_hub_serving(cluster, release, case):
    assert_failed_upgrade_kept_the_hub(cluster, release, release.tagged, case, "helm3")
    assert release.hub_image().endswith(f":{NEW_TAG}")


def assert_failed_upgrade_kept_the_hub(cluster, release, values, case, helm):
    bad = overlay(release.dir, case, FAILED_UPGRADES[case])
    (old,) = release.hub_pods()
    revisions = len(release.history())
    pods = f"/api/v1/namespaces/{release.ns}/pods"
    with Recorder(cluster.api, [pods]) as rec:
        proc = helm_update(cluster, release.ns, [*values, bad], helm=helm)
    assert not rec.errors, rec.errors
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out
    assert "was stopped by its pre-upgrade check: the new hub would not start" in out, out
    assert "was not stopped: it kept serving" in out
    # What the API saw: the old hub pod was never touched and no other hub pod was made.
    hub_versions = [v for versions in rec.seen[pods].values() for v in versions
                    if v["metadata"]["labels"].get("app.kubernetes.io/component") == "hub"]
    assert {v["metadata"]["uid"] for v in hub_versions} == {old["metadata"]["uid"]}
    assert not [v for v in hub_versions if v["metadata"].get("deletionTimestamp")]
    # The check pod was the one left Pending: the scheduler had no node for it.
    checks = [v for versions in rec.seen[pods].values() for v in versions
              if v["metadata"]["labels"].get("app.kubernetes.io/component") == "upgrade-check"]
    assert checks and not [v for v in checks if v["spec"].get("nodeName")], case
    history = release.history()
    assert history[revisions][1] == "failed" and history[-1][1] == "deployed", history


def test_invalid_values_never_reach_the_cluster(cluster, release):
    bad = overlay(release.dir, "invalid", {"sessions": {"idleCullMinutes": "soon"}})
    revisions = release.history()
    proc = helm_update(cluster, release.ns, [*release.tagged, bad])
    assert proc.returncode == 4, proc.stdout + proc.stderr
    assert "nothing was sent to the cluster" in proc.stderr
    assert release.history() == revisions


def test_rollback_after_failed_upgrades_picks_the_last_deployed_other_revision(cluster, release):
    history = release.history()
    current = history[-1][0]
    # 1 install, 2 the new tag, then per failed upgrade: the failed revision and helm's automatic rollback
    # (--atomic) redeploying what ran before it. Revision 2's deployment runs now; the failed ones never ran.
    assert [(n, s) for n, s, _ in history] == [
        (1, "superseded"), (2, "superseded"), (3, "failed"), (4, "superseded"), (5, "failed"), (6, "deployed")], history
    assert [d for n, _, d in history if n in (4, 6)] == ["Rollback to 2", "Rollback to 4"], history
    out = _ok(run_script(cluster, "rollback.sh", release.ns))
    assert f"roll back from revision {current} to revision 1" in out, out
    assert "the hub answers on /hub/health" in out
    assert not release.hub_image().endswith(f":{NEW_TAG}")
    assert release.history()[-1][1:] == ("deployed", "Rollback to 1")


def test_uninstall_keeps_database_homes_and_generated_secrets(cluster, release):
    ns = release.ns
    hub = cluster.service_account_api(ns, HUB)  # a home folder, made by the hub as for a person's first start
    _, home = manifests(ns, "local:alice", {"resource": "cpu-small"})
    hub.create(f"/api/v1/namespaces/{ns}/persistentvolumeclaims", home)
    keep = {"pvc": [f"{HUB}-db", home["metadata"]["name"]], "secret": [f"{RELEASE}-secrets"]}
    before = {kind: {n: cluster.kubectl_json("get", kind, n, "-n", ns) for n in names} for kind, names in keep.items()}

    cluster.helm("helm3", "uninstall", RELEASE, "-n", ns, "--wait", "--timeout=2m")
    for kind, names in keep.items():
        for name in names:
            after = cluster.kubectl_json("get", kind, name, "-n", ns)
            assert after["metadata"]["uid"] == before[kind][name]["metadata"]["uid"], (kind, name)
    secret = before["secret"][f"{RELEASE}-secrets"]["data"]
    assert all(len(base64.b64decode(v)) >= 32 for v in secret.values())
    assert cluster.kubectl_json("get", "secret", f"{RELEASE}-secrets", "-n", ns)["data"] == secret
    assert not cluster.kubectl("get", "deployment", "-n", ns, "-o", "name").stdout.strip()


def test_helm4_install_and_failed_upgrade(cluster, tmp_path):
    """The scripts with Helm 4 (--rollback-on-failure --wait=watcher; its own error wording), in a namespace
    of its own: the install answers, a failed upgrade leaves the old hub serving, and rollback.sh refuses to
    "roll back" to what already runs."""
    ns, previous = cluster.new_namespace("operator-helm4"), cluster.hub_loopback.namespace
    cluster.hub_loopback.namespace = ns
    try:
        release = Release(cluster, ns, tmp_path, "helm4")
        assert "helm 4" in _ok(helm_update(cluster, ns, release.values, helm="helm4"))
        assert_failed_upgrade_kept_the_hub(cluster, release, release.values, next(iter(FAILED_UPGRADES)), "helm4")
        proc = run_script(cluster, "rollback.sh", ns, helm="helm4")
        assert proc.returncode == 5, proc.stdout + proc.stderr
        assert "no revision before 3 was deployed successfully with something other than what runs now" in proc.stderr
    finally:
        cluster.hub_loopback.namespace = previous
        cluster.delete_namespace(ns)


def test_rollback_after_a_failed_plain_upgrade_goes_back_to_the_last_deployed_revision(cluster, tmp_path):
    """Issue 24: install (revision 1), then a plain `helm upgrade --wait` that fails after its hooks: the proxy's new
    pod has no node (revision 2 failed, but its Deployment was applied). rollback.sh goes back to revision 1, the
    newest one deployed successfully, and says so; revision 3 deploys revision 1's values and Deployment."""
    ns, previous = cluster.new_namespace("operator-failed-newest"), cluster.hub_loopback.namespace
    cluster.hub_loopback.namespace = ns
    try:
        release = Release(cluster, ns, tmp_path)
        _ok(helm_update(cluster, ns, release.values))
        proxy = f"{RELEASE}-proxy"
        good = cluster.kubectl_json("get", "deployment", proxy, "-n", ns)["spec"]["template"]["spec"]
        bad = overlay(tmp_path, "proxy-nowhere", {"proxy": {"nodeSelector": {"node-type": "no-such-node"}}})
        values = [a for v in (*release.values, bad) for a in ("-f", v)]
        upgrade = cluster.helm("helm3", "upgrade", RELEASE, CHART, "-n", ns, *values, "--wait", "--timeout=40s", check=False)
        assert upgrade.returncode != 0, upgrade.stdout + upgrade.stderr
        assert [(n, s) for n, s, _ in release.history()] == [(1, "deployed"), (2, "failed")]
        applied = cluster.kubectl_json("get", "deployment", proxy, "-n", ns)["spec"]["template"]["spec"]
        assert applied.get("nodeSelector") == {"node-type": "no-such-node"}, "revision 2's Deployment runs"

        out = _ok(run_script(cluster, "rollback.sh", ns))
        assert "the newest revision 2 failed" in out and "rolling back to revision 1, the newest revision that was deployed " \
            "successfully" in out, out
        assert "nothing was changed" not in out
        assert [(n, s, d) for n, s, d in release.history()][-1] == (3, "deployed", "Rollback to 1")

        def values_of(rev: int) -> dict:
            return json.loads(cluster.helm("helm3", "get", "values", RELEASE, "-n", ns, "--revision", str(rev), "-o", "json").stdout)

        assert values_of(3) == values_of(1) != values_of(2)
        back = cluster.kubectl_json("get", "deployment", proxy, "-n", ns)["spec"]["template"]["spec"]
        assert back.get("nodeSelector") == good.get("nodeSelector") and "no-such-node" not in json.dumps(back)
    finally:
        cluster.hub_loopback.namespace = previous
        cluster.delete_namespace(ns)
