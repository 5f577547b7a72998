"""scripts/helm_update.sh, scripts/rollback.sh and scripts/build_images.sh against stand-in tools."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest
from support import CONFIG, ROOT

VALUES = CONFIG / "values.yaml"
MANIFEST_V1 = """\
apiVersion: v1
kind: Secret
metadata: {name: teamhub-values}
stringData: {values.yaml: "a: 1"}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: teamhub-hub}
spec: {replicas: 1}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: teamhub-old}
"""
MANIFEST_V2 = MANIFEST_V1.replace('"a: 1"', '"a: 2"').replace("teamhub-old", "teamhub-new")


def installed(fakes, values_text: str | None = None):
    """A release at revision 1 (optionally with given values)."""
    (fakes.state / "values").mkdir(exist_ok=True)
    fakes.state.joinpath("history.json").write_text(json.dumps([
        {"revision": 1, "updated": "2026-11-01T09:00:00Z", "status": "deployed", "chart": "teamhub-0.1.0",
         "app_version": "0.1.0", "description": "Install complete"}]))
    (fakes.state / "values" / "1.yaml").write_text(values_text or VALUES.read_text())
    (fakes.state / "old.yaml").write_text(MANIFEST_V1)
    (fakes.state / "new.yaml").write_text(MANIFEST_V2)


def changing(fakes) -> list[str]:
    """helm commands that change the cluster (a server-side dry run changes nothing)."""
    return [c[1] for c in fakes.calls("helm") if not any(a.startswith("--dry-run") for a in c)]


# --- helm_update.sh ----------------------------------------------------------------------------------
def test_invalid_values_never_reach_helm(fakes, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(VALUES.read_text().replace("image: scipy\n", "image: scipyy\n", 1))
    r = fakes.run("helm_update.sh", "--values", bad, "--yes")
    assert r.returncode == 4, r.stdout + r.stderr
    assert "scipyy" in r.stdout + r.stderr
    assert "nothing was sent to the cluster" in r.stderr
    assert set(fakes.helm_commands()) <= {"version"}, fakes.helm_commands()


def test_invalid_extra_file_is_merged_and_refused(fakes, tmp_path):
    extra = tmp_path / "extra.yaml"
    extra.write_text("sessions: {maxMinutes: 0}\n")
    r = fakes.run("helm_update.sh", "-f", extra, "--yes")
    assert r.returncode == 4
    assert "upgrade" not in fakes.helm_commands()


def test_successful_upgrade_prints_revision_and_rollback_command(fakes, tmp_path):
    installed(fakes)
    extra = tmp_path / "extra.yaml"
    extra.write_text("sessions: {maxMinutes: 300}\n")
    r = fakes.run("helm_update.sh", "-f", extra, "--yes", "--timeout", "7m")
    out = r.stdout + r.stderr
    assert r.returncode == 0, out
    assert "context: test-cluster" in out
    assert "1 added, 1 changed, 1 removed, 1 unchanged" in out
    upgrade = next(c for c in fakes.calls("helm") if c[1] == "upgrade" and "--install" in c)
    assert upgrade[2:5] == ["--install", "teamhub", str(ROOT / "chart")]
    assert "--atomic" in upgrade and "--wait" in upgrade  # Helm 3
    assert ["-f", str(VALUES)] == upgrade[upgrade.index("-f"):upgrade.index("-f") + 2]
    assert upgrade.index(str(VALUES)) < upgrade.index(str(extra)), "extra files merge over the values, in order"
    assert upgrade[upgrade.index("--timeout") + 1] == "7m"
    assert "now at revision 2" in out
    dry = next(c for c in fakes.calls("helm") if c[1] == "upgrade" and "--dry-run=server" in c)
    assert dry.index(str(VALUES)) < dry.index(str(extra)) and "-o" in dry, "the diff renders with the same values, against the cluster"
    assert "template" not in fakes.helm_commands(), "helm template cannot look up the kept secrets: never compared with a release"
    assert "scripts/rollback.sh --release teamhub --namespace teamhub --revision 1" in out


def test_helm4_uses_rollback_on_failure(fakes):
    installed(fakes)
    r = fakes.run("helm_update.sh", "--yes", FAKE_HELM_VERSION="v4.3.1")
    assert r.returncode == 0, r.stdout + r.stderr
    upgrade = next(c for c in fakes.calls("helm") if c[1] == "upgrade" and "--install" in c)
    assert "--rollback-on-failure" in upgrade and "--wait=watcher" in upgrade
    assert "--atomic" not in upgrade


def test_failed_upgrade_is_rolled_back_with_clear_message(fakes):
    installed(fakes)
    r = fakes.run("helm_update.sh", "--yes", fail="upgrade")
    assert r.returncode == 1
    assert "failed and helm rolled it back automatically" in r.stderr
    assert "helm reports revision 1 as the deployed one" in r.stderr
    # what is true now, checked: the hub answers again (and was down while helm waited)
    assert "The previous hub is running again and answers; it was down while helm waited" in r.stderr
    assert any(c[0] == "kubectl" and "rollout" in c for c in fakes.calls())
    assert "database was not touched" in r.stderr
    assert [h["revision"] for h in fakes.history()] == [1]


def test_failed_upgrade_with_hub_down_says_so(fakes):
    installed(fakes)
    r = fakes.run("helm_update.sh", "--yes", fail="upgrade,health")
    assert r.returncode == 1
    assert "The hub is NOT answering yet" in r.stderr
    assert "running again" not in r.stderr


def test_failed_pre_upgrade_check_says_the_old_hub_kept_serving(fakes):
    installed(fakes)
    r = fakes.run("helm_update.sh", "--yes", fail="check")
    assert r.returncode == 1
    assert "stopped by its pre-upgrade check: the new hub would not start" in r.stderr
    assert "the hub of revision 1 was not stopped: it kept serving" in r.stderr
    assert "scheduling: 0/5 nodes are available" in r.stderr, "the scheduler's reason is shown"
    assert "rolled it back" not in r.stderr and "running again" not in r.stderr
    logs = [c for c in fakes.calls("kubectl") if "logs" in c]
    assert logs and "app.kubernetes.io/instance=teamhub,app.kubernetes.io/component=upgrade-check" in logs[0]


def test_unchanged_values_show_no_change(fakes):
    """`helm get manifest` and the server dry run leave hooks out alike; the revision number is no change."""
    installed(fakes)
    (fakes.state / "old.yaml").write_text(MANIFEST_V1.replace('stringData: {values.yaml: "a: 1"}', 'stringData: {values.yaml: "a: 1", release-revision: "1"}'))
    (fakes.state / "new.yaml").write_text(MANIFEST_V1.replace('stringData: {values.yaml: "a: 1"}', 'stringData: {values.yaml: "a: 1", release-revision: "2"}'))
    r = fakes.run("helm_update.sh", "--dry-run")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "0 added, 0 changed, 0 removed, 3 unchanged" in r.stdout


def test_hub_not_answering_fails_with_rollback_command(fakes):
    installed(fakes)
    r = fakes.run("helm_update.sh", "--yes", fail="health")
    assert r.returncode == 1
    assert "hub is not answering" in r.stderr
    assert "--revision 1" in r.stdout


def test_dry_run_changes_nothing(fakes):
    installed(fakes)
    before = VALUES.read_text()
    r = fakes.run("helm_update.sh", "--dry-run")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "dry run: nothing was changed" in r.stdout
    assert not {"upgrade", "install", "rollback", "uninstall"} & set(changing(fakes))
    assert [h["revision"] for h in fakes.history()] == [1]
    assert VALUES.read_text() == before


def test_without_terminal_and_without_yes_nothing_changes(fakes):
    installed(fakes)
    r = fakes.run("helm_update.sh")
    assert r.returncode == 3
    assert "--yes" in r.stderr
    assert "upgrade" not in changing(fakes)


def test_first_install(fakes):
    (fakes.state / "new.yaml").write_text(MANIFEST_V1)
    r = fakes.run("helm_update.sh", "--yes")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "does not exist yet" in r.stdout
    assert "3 added, 0 changed, 0 removed" in r.stdout
    assert "get" not in fakes.helm_commands()
    template = next(c for c in fakes.calls("helm") if c[1] == "template")
    assert template[template.index("--kube-version") + 1] == "v1.30.4", "rendered for the cluster's Kubernetes version"


def test_failed_pre_install_check(fakes):
    r = fakes.run("helm_update.sh", "--yes", fail="check")
    assert r.returncode == 1
    assert "stopped by its pre-install check" in r.stderr


def test_hub_is_found_only_by_its_labels(fakes):
    installed(fakes)
    r = fakes.run("helm_update.sh", "--yes", FAKE_HUB_NAME="lab1-teamhub-hub")
    assert r.returncode == 0, r.stdout + r.stderr
    rollout = next(c for c in fakes.calls("kubectl") if "rollout" in c)
    assert "deployment.apps/lab1-teamhub-hub" in rollout
    r = fakes.run("helm_update.sh", "--yes", fail="nohub")
    assert r.returncode == 1
    assert "no hub Deployment with the labels app.kubernetes.io/instance=teamhub,app.kubernetes.io/component=hub" in r.stderr
    assert not any("deployment/teamhub-hub" in c for c in fakes.calls("kubectl")), "no name is guessed"


def test_missing_tool_is_reported(fakes):
    (fakes.bin / "helm").unlink()  # PATH holds only the stand-ins and /usr/bin, /bin: no helm anywhere
    r = fakes.run("helm_update.sh", "--yes")
    assert r.returncode == 2
    assert "'helm' is not installed" in r.stderr


# --- rollback.sh --------------------------------------------------------------------------------------
def three_revisions(fakes):
    installed(fakes, "hub: {image: {tag: aaa}}\ncatalog: {images: {scipy: {name: x, tag: '2026-11-02'}}}\n")
    for values in ("hub: {image: {tag: bbb}}\ncatalog: {images: {scipy: {name: x, tag: '2026-11-02'}}}\n",
                   "hub: {image: {tag: bbb}}\ncatalog: {images: {scipy: {name: x, tag: '2026-12-01'}}}\n"):
        h = fakes.history()
        h[-1]["status"] = "superseded"
        n = h[-1]["revision"] + 1
        h.append(dict(h[-1], revision=n, status="deployed", chart="teamhub-0.2.0" if n == 3 else "teamhub-0.1.0"))
        fakes.state.joinpath("history.json").write_text(json.dumps(h))
        (fakes.state / "values" / f"{n}.yaml").write_text(values)


def test_rollback_lists_what_each_revision_changed(fakes):
    three_revisions(fakes)
    r = fakes.run("rollback.sh", "--list")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert any(" 2 " in ln and "hub aaa -> bbb" in ln for ln in lines), r.stdout
    assert any(" 3 " in ln and "chart teamhub-0.1.0 -> teamhub-0.2.0" in ln and "scipy 2026-11-02 -> 2026-12-01" in ln for ln in lines)
    assert "rollback" not in fakes.helm_commands()


def test_rollback_to_previous(fakes):
    three_revisions(fakes)
    r = fakes.run("rollback.sh", "--yes")
    assert r.returncode == 0, r.stdout + r.stderr
    rb = next(c for c in fakes.calls("helm") if c[1] == "rollback")
    assert rb[2:4] == ["teamhub", "2"] and "--wait" in rb
    assert "revision 4 now runs what revision 2 ran" in r.stdout
    assert "the hub answers" in r.stdout


def test_rollback_to_given_revision(fakes):
    three_revisions(fakes)
    r = fakes.run("rollback.sh", "1", "--yes", FAKE_HELM_VERSION="v4.3.1")
    assert r.returncode == 0, r.stdout + r.stderr
    rb = next(c for c in fakes.calls("helm") if c[1] == "rollback")
    assert rb[2:4] == ["teamhub", "1"] and "--wait=watcher" in rb


def test_rollback_refuses_nonexistent_revision(fakes):
    three_revisions(fakes)
    r = fakes.run("rollback.sh", "--revision", "42", "--yes")
    assert r.returncode == 5
    assert "revision 42 does not exist (revisions: 1, 2, 3)" in r.stderr
    assert "rollback" not in fakes.helm_commands()


def test_rollback_dry_run_and_unconfirmed_change_nothing(fakes):
    three_revisions(fakes)
    assert fakes.run("rollback.sh", "--dry-run").returncode == 0
    assert fakes.run("rollback.sh").returncode == 3
    assert "rollback" not in fakes.helm_commands()


def after_failed_upgrade(fakes, rolled_back=True):
    """What helm leaves after a failed upgrade to 4 that --atomic rolled back: 1, 2, 3 superseded, 4 failed,
    5 deployed "Rollback to 3" (as seen on a real cluster, issue 15)."""
    three_revisions(fakes)
    h = fakes.history()
    h[-1]["status"] = "superseded"
    h.append(dict(h[-1], revision=4, status="failed", description="Upgrade \"teamhub\" failed: context deadline exceeded"))
    (fakes.state / "values" / "4.yaml").write_text("hub: {image: {tag: ccc}, nodeSelector: {pool: nowhere}}\n")
    if rolled_back:
        h.append(dict(h[-2], revision=5, status="deployed", description="Rollback to 3"))
        (fakes.state / "values" / "5.yaml").write_text((fakes.state / "values" / "3.yaml").read_text())
    fakes.state.joinpath("history.json").write_text(json.dumps(h))


def test_rollback_after_a_failed_upgrade_skips_the_failed_and_the_current_one(fakes):
    after_failed_upgrade(fakes)
    r = fakes.run("rollback.sh", "--yes")
    assert r.returncode == 0, r.stdout + r.stderr
    rb = next(c for c in fakes.calls("helm") if c[1] == "rollback")
    assert rb[2:4] == ["teamhub", "2"], "4 failed, 3 is what 5 runs now: the newest other successful one is 2"
    assert "roll back from revision 5 to revision 2" in r.stdout
    assert "WARNING: revision" not in r.stderr


def test_rollback_when_helm_did_not_roll_back(fakes):
    after_failed_upgrade(fakes, rolled_back=False)  # 3 superseded, 4 failed, nothing deployed
    r = fakes.run("rollback.sh", "--yes")
    assert r.returncode == 0, r.stdout + r.stderr
    assert next(c for c in fakes.calls("helm") if c[1] == "rollback")[2:4] == ["teamhub", "3"]


def test_rollback_to_a_failed_revision_only_when_named_and_warned(fakes):
    after_failed_upgrade(fakes)
    r = fakes.run("rollback.sh", "--revision", "4")
    assert r.returncode == 3, "asked, not confirmed"
    assert "WARNING: revision 4 is 'failed'" in r.stderr and "never ran successfully" in r.stderr
    r = fakes.run("rollback.sh", "--revision", "4", "--yes")
    assert r.returncode == 0, r.stdout + r.stderr
    assert next(c for c in fakes.calls("helm") if c[1] == "rollback")[2:4] == ["teamhub", "4"]


def test_failed_rollback_is_reported(fakes):
    three_revisions(fakes)
    r = fakes.run("rollback.sh", "--yes", fail="rollback")
    assert r.returncode == 1
    assert "helm rollback to revision 2 failed" in r.stderr


# --- build_images.sh ----------------------------------------------------------------------------------
@pytest.fixture
def image_repo(tmp_path):
    """A small git repository with an image manifest, two contexts and a values file with comments."""
    repo = tmp_path / "repo"
    (repo / "dockerfiles" / "base").mkdir(parents=True)
    (repo / "dockerfiles" / "course").mkdir(parents=True)
    (repo / "config").mkdir()
    (repo / "dockerfiles" / "base" / "Dockerfile").write_text("FROM python:3.11.11-slim-bookworm\n")
    (repo / "dockerfiles" / "base" / "app.py").write_text("print('hi')\n")
    (repo / "dockerfiles" / "course" / "Dockerfile").write_text("ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\n")
    (repo / "dockerfiles" / "images.yaml").write_text(
        "images:\n"
        "  base:\n    name: registry.example/base\n    context: dockerfiles/base\n    dockerfile: dockerfiles/base/Dockerfile\n"
        "    values: [hub.image]\n"
        "  course:\n    name: registry.example/course\n    context: dockerfiles/course\n"
        "    dockerfile: dockerfiles/course/Dockerfile\n    buildArgs: {BASE_IMAGE: '{{image:base}}'}\n"
        "    values: [catalog.images.course]\n")
    shutil.copy(VALUES, repo / "config" / "values.yaml")
    for cmd in (["init", "-q"], ["add", "."], ["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "init"]):
        subprocess.run(["git", *cmd], cwd=repo, check=True, capture_output=True)
    return repo


def build(fakes, repo, *args, fail=""):
    return fakes.run("build_images.sh", "--manifest", repo / "dockerfiles" / "images.yaml",
                     "--values", repo / "config" / "values.yaml", *args, fail=fail)


def refs(fakes):
    return [c[c.index("-t") + 1] for c in fakes.calls("docker") if c[1] == "build"]


def test_build_tags_stable_and_content_derived(fakes, image_repo):
    r = build(fakes, image_repo, "--dry-run")
    assert r.returncode == 0, r.stderr
    first = r.stdout
    assert build(fakes, image_repo, "--dry-run").stdout == first, "same context, same tags"
    assert ":latest" not in first
    (image_repo / "dockerfiles" / "base" / "app.py").write_text("print('changed')\n")
    second = build(fakes, image_repo, "--dry-run").stdout
    base_tag = [ln for ln in first.splitlines() if ln.startswith("==> base ->")]
    assert base_tag and base_tag[0] not in second, "a changed file changes the base's tag"
    assert [ln for ln in first.splitlines() if ln.startswith("==> course ->")][0] not in second, \
        "an image built on a changed base gets a new tag too"
    assert [c for c in fakes.calls("docker") if c[1] != "info"] == [], "--dry-run runs no builder"


def test_a_docker_cli_without_a_daemon_is_not_a_builder(fakes, image_repo):
    """Issue 31: a Docker CLI on PATH with no daemon behind it; buildah is there and must be used."""
    r = build(fakes, image_repo, "base", fail="daemon")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "builder: buildah" in r.stdout
    (bud,) = [c for c in fakes.calls("buildah") if c[1] == "bud"]
    assert bud[bud.index("--network") + 1] == "host" and bud[bud.index("--isolation") + 1] == "chroot"
    assert bud[bud.index("--platform") + 1] == "linux/amd64"
    assert not [c for c in fakes.calls("docker") if c[1] != "info"]


def test_build_push_and_values_keep_comments(fakes, image_repo):
    values = image_repo / "config" / "values.yaml"
    before = values.read_text()
    r = build(fakes, image_repo, "course", "--push")
    assert r.returncode == 0, r.stdout + r.stderr
    built = refs(fakes)
    assert [b.split(":")[0] for b in built] == ["registry.example/base", "registry.example/course"], "bases first"
    pushes = [c[2] for c in fakes.calls("docker") if c[1] == "push"]
    assert pushes == built
    course = next(c for c in fakes.calls("docker") if c[1] == "build" and "registry.example/course" in c[c.index("-t") + 1])
    assert f"BASE_IMAGE={built[0]}" in course
    after = values.read_text()
    tag = built[1].split(":", 1)[1]
    assert f'tag: "{tag}"' in after and f'tag: "{built[0].split(":", 1)[1]}"' in after
    # every comment line of the original is still there, in order, and nothing else changed
    assert [ln for ln in before.splitlines() if ln.lstrip().startswith("#")] == \
           [ln for ln in after.splitlines() if ln.lstrip().startswith("#")]
    assert after.startswith(before.split("\ncatalog:")[0].rstrip("\n"))


@pytest.mark.parametrize("engine", ["docker", "podman"])
def test_push_records_the_pushed_digest_beside_the_tag(fakes, image_repo, engine):
    import hashlib

    import yaml

    values = image_repo / "config" / "values.yaml"
    r = fakes.run("build_images.sh", "--manifest", image_repo / "dockerfiles" / "images.yaml", "--values", values, "course", "--push",
                  BUILD_ENGINE=engine)
    assert r.returncode == 0, r.stdout + r.stderr
    pushed = [c[-1] for c in fakes.calls(engine) if c[1] == "push"]
    data = yaml.safe_load(values.read_text())
    for ref, image in zip(pushed, (data["hub"]["image"], data["catalog"]["images"]["course"]), strict=True):
        assert image["tag"] == ref.rsplit(":", 1)[1]
        assert image["digest"] == "sha256:" + hashlib.sha256(ref.encode()).hexdigest(), "the digest the registry returned"
    assert list(data["hub"]["image"]).index("digest") == list(data["hub"]["image"]).index("tag") + 1
    # a later build without --push names another image: the old digest must go
    (image_repo / "dockerfiles" / "base" / "app.py").write_text("print('changed')\n")
    assert fakes.run("build_images.sh", "--manifest", image_repo / "dockerfiles" / "images.yaml", "--values", values, "base",
                     BUILD_ENGINE=engine).returncode == 0
    assert "digest" not in yaml.safe_load(values.read_text())["hub"]["image"]


def test_build_arguments_reach_the_builder_word_for_word(fakes, image_repo):
    """The commands are passed as argv files, not through eval: spaces, quotes and $(...) arrive unchanged."""
    manifest = image_repo / "dockerfiles" / "images.yaml"
    manifest.write_text(manifest.read_text().replace("buildArgs: {BASE_IMAGE: '{{image:base}}'}",
                                                     "buildArgs: {BASE_IMAGE: '{{image:base}}', NOTE: \"it's $(touch pwned) a  b\"}"))
    r = build(fakes, image_repo, "course")
    assert r.returncode == 0, r.stdout + r.stderr
    course = next(c for c in fakes.calls("docker") if c[1] == "build" and "registry.example/course" in c[c.index("-t") + 1])
    assert "NOTE=it's $(touch pwned) a  b" in course
    assert not (ROOT / "pwned").exists()
    for script in ("build_images.sh", "helm_update.sh", "rollback.sh", "lib/common.sh"):
        assert not any(line.split("#")[0].strip().startswith("eval") or " eval " in line.split("#")[0]
                       for line in (ROOT / "scripts" / script).read_text().splitlines()), script


def test_failed_build_leaves_values_alone(fakes, image_repo):
    values = image_repo / "config" / "values.yaml"
    before = values.read_text()
    r = build(fakes, image_repo, fail="build")
    assert r.returncode == 1
    assert "the build failed; values were not changed" in r.stderr
    assert values.read_text() == before


def test_unknown_image_name_is_refused(fakes, image_repo):
    r = build(fakes, image_repo, "nope", "--dry-run")
    assert r.returncode == 2
    assert "unknown image(s): nope" in r.stderr


# --- the hub database in the scripts -------------------------------------------------------------------------------
def db_status(revision, log=(), backups=()):
    from teamhub.db import schema

    return {"type": "sqlite-pvc", "url": "sqlite:////srv/teamhub/data/jupyterhub.sqlite", "backup_dir": "/srv/teamhub/data/backups",
            "jupyterhub_version": "6.1.1", "head_revision": schema.head_revision(), "error": None, "revision": revision,
            "log": list(log), "backups": list(backups), "needs_migration": False, "last_migrated_by": "6.1.1"}


def test_update_says_whether_the_database_will_be_migrated(fakes):
    installed(fakes)
    (fakes.state / "exec-output").write_text(json.dumps(db_status("4621fec11365")))
    r = fakes.run("helm_update.sh", "--dry-run")
    assert r.returncode == 0, r.stderr
    assert "database: WILL BE MIGRATED from schema 4621fec11365" in r.stdout
    assert "/srv/teamhub/data/backups/jupyterhub-6.1.1.rev-4621fec11365." in r.stdout
    from teamhub.db import schema

    (fakes.state / "exec-output").write_text(json.dumps(db_status(schema.head_revision())))
    assert "no migration" in fakes.run("helm_update.sh", "--dry-run").stdout


def test_rollback_restores_the_matching_backup(fakes):
    from teamhub.db import schema

    three_revisions(fakes)
    log = [{"at": "20261101T090000Z", "event": "start", "jupyterhub_version": "5.4.3", "alembic_revision": "4621fec11365",
            "release_revision": "2", "backup": "", "note": ""},
           {"at": "20261120T100000Z", "event": "migrate", "jupyterhub_version": "6.1.1", "alembic_revision": schema.head_revision(),
            "release_revision": "3", "backup": "jupyterhub-5.4.3.rev-4621fec11365.20261120T100000Z.sqlite", "note": ""}]
    backups = [{"path": "/srv/teamhub/data/backups/jupyterhub-5.4.3.rev-4621fec11365.20261120T100000Z.sqlite",
                "jupyterhub_version": "5.4.3", "alembic_revision": "4621fec11365", "at": "20261120T100000Z"}]
    (fakes.state / "exec-output").write_text(json.dumps(db_status(schema.head_revision(), log, backups)))
    assert fakes.run("rollback.sh").returncode == 3, "unconfirmed: nothing happens"
    assert not [c for c in fakes.calls("kubectl") if "restore" in c]
    r = fakes.run("rollback.sh", "--yes")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "runs JupyterHub 5.4.3 (schema 4621fec11365), older than JupyterHub 6.1.1" in r.stdout
    assert "Matching backup: /srv/teamhub/data/backups/jupyterhub-5.4.3.rev-4621fec11365.20261120T100000Z.sqlite" in r.stdout
    calls = fakes.calls()
    restore = next(i for i, c in enumerate(calls) if c[0] == "kubectl" and "restore" in c)
    rollback = next(i for i, c in enumerate(calls) if c[0] == "helm" and c[1] == "rollback")
    assert restore < rollback
    assert calls[restore][-2:] == ["restore", "jupyterhub-5.4.3.rev-4621fec11365.20261120T100000Z.sqlite"]


def test_failed_rollback_cancels_the_scheduled_restore(fakes):
    from teamhub.db import schema

    three_revisions(fakes)
    log = [{"at": "1", "event": "start", "jupyterhub_version": "5.4.3", "alembic_revision": "4621fec11365", "release_revision": "2",
            "backup": "", "note": ""}]
    backups = [{"path": "/b/jupyterhub-5.4.3.rev-4621fec11365.20261120T100000Z.sqlite", "jupyterhub_version": "5.4.3",
                "alembic_revision": "4621fec11365", "at": "20261120T100000Z"}]
    (fakes.state / "exec-output").write_text(json.dumps(db_status(schema.head_revision(), log, backups)))
    r = fakes.run("rollback.sh", "--yes", fail="rollback")
    assert r.returncode == 1
    assert any(c[0] == "kubectl" and "--cancel" in c for c in fakes.calls())


def test_failed_upgrade_after_a_migration_says_so(fakes):
    from teamhub.db import schema

    installed(fakes)
    (fakes.state / "exec-output").write_text(json.dumps(db_status("4621fec11365")))
    (fakes.state / "exec-output-after-upgrade").write_text(json.dumps(db_status(schema.head_revision())))
    r = fakes.run("helm_update.sh", "--yes", fail="upgrade")
    assert r.returncode == 1
    assert "had already migrated the hub database before the failure; a backup was taken first" in r.stderr
    assert "was not touched" not in r.stderr


# --- all scripts -------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("script", ["helm_update.sh", "rollback.sh", "build_images.sh"])
def test_help_prints_the_header_only(fakes, script):
    r = fakes.run(script, "--help")
    assert r.returncode == 0, r.stderr
    assert "set -euo pipefail" not in r.stdout
    lines = (ROOT / "scripts" / script).read_text().splitlines()[1:]
    block = lines[:next(i for i, ln in enumerate(lines) if not ln.startswith("#"))]
    assert r.stdout.splitlines() == [ln[2:] if ln.startswith("# ") else ln[1:] for ln in block]
    assert r.stdout.splitlines()[0].startswith(("Apply", "Roll", "Build"))


@pytest.mark.parametrize("version, ok", [("3 2", False), ("4 3", False), ("4 4", True), ("5 0", True)])
def test_bash_older_than_4_4_is_refused_with_a_clear_message(version, ok):
    r = subprocess.run(["bash", "-c", f'set -euo pipefail; source scripts/lib/common.sh; require_bash {version}; echo fine'],
                       cwd=ROOT, capture_output=True, text=True)
    if ok:
        assert r.returncode == 0 and r.stdout == "fine\n", r.stderr
    else:
        assert r.returncode == 2
        assert f"needs bash 4.4 or newer; this is bash {version.replace(' ', '.')}" in r.stderr
        assert "brew install bash" in r.stderr


@pytest.mark.parametrize("script", ["helm_update.sh", "rollback.sh", "build_images.sh"])
def test_every_script_checks_bash_before_anything_else(script):
    lines = [ln for ln in (ROOT / "scripts" / script).read_text().splitlines() if ln.strip() and not ln.startswith("#")]
    assert lines[:3] == ["set -euo pipefail", 'source "$(dirname "$0")/lib/common.sh"', "require_bash"]
