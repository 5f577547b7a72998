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
    upgrade = next(c for c in fakes.calls("helm") if c[1] == "upgrade")
    assert upgrade[2:5] == ["--install", "teamhub", str(ROOT / "chart")]
    assert "--atomic" in upgrade and "--wait" in upgrade  # Helm 3
    assert ["-f", str(VALUES)] == upgrade[upgrade.index("-f"):upgrade.index("-f") + 2]
    assert upgrade.index(str(VALUES)) < upgrade.index(str(extra)), "extra files merge over the values, in order"
    assert upgrade[upgrade.index("--timeout") + 1] == "7m"
    assert "now at revision 2" in out
    template = next(c for c in fakes.calls("helm") if c[1] == "template")
    assert template[template.index("--kube-version") + 1] == "v1.30.4", "rendered for the cluster's Kubernetes version"
    assert "scripts/rollback.sh --release teamhub --namespace teamhub --revision 1" in out


def test_helm4_uses_rollback_on_failure(fakes):
    installed(fakes)
    r = fakes.run("helm_update.sh", "--yes", FAKE_HELM_VERSION="v4.3.1")
    assert r.returncode == 0, r.stdout + r.stderr
    upgrade = next(c for c in fakes.calls("helm") if c[1] == "upgrade")
    assert "--rollback-on-failure" in upgrade and "--wait=watcher" in upgrade
    assert "--atomic" not in upgrade


def test_failed_upgrade_is_rolled_back_with_clear_message(fakes):
    installed(fakes)
    r = fakes.run("helm_update.sh", "--yes", fail="upgrade")
    assert r.returncode == 1
    assert "failed and helm rolled it back automatically" in r.stderr
    assert "previous release (revision 1) is still running" in r.stderr
    assert "database was not touched" in r.stderr
    assert [h["revision"] for h in fakes.history()] == [1]
    assert not any(c[0] == "kubectl" and "rollout" in c for c in fakes.calls()), "no health check after a failed upgrade"


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
    assert not {"upgrade", "install", "rollback", "uninstall"} & set(fakes.helm_commands())
    assert [h["revision"] for h in fakes.history()] == [1]
    assert VALUES.read_text() == before


def test_without_terminal_and_without_yes_nothing_changes(fakes):
    installed(fakes)
    r = fakes.run("helm_update.sh")
    assert r.returncode == 3
    assert "--yes" in r.stderr
    assert "upgrade" not in fakes.helm_commands()


def test_first_install(fakes):
    (fakes.state / "new.yaml").write_text(MANIFEST_V1)
    r = fakes.run("helm_update.sh", "--yes")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "does not exist yet" in r.stdout
    assert "3 added, 0 changed, 0 removed" in r.stdout
    assert "get" not in fakes.helm_commands()


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
    assert fakes.calls("docker") == [], "--dry-run runs no builder"


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
    from teamhub import database

    return {"type": "sqlite-pvc", "url": "sqlite:////srv/teamhub/data/jupyterhub.sqlite", "backup_dir": "/srv/teamhub/data/backups",
            "jupyterhub_version": "6.1.1", "head_revision": database.head_revision(), "error": None, "revision": revision,
            "log": list(log), "backups": list(backups), "needs_migration": False, "last_migrated_by": "6.1.1"}


def test_update_says_whether_the_database_will_be_migrated(fakes):
    installed(fakes)
    (fakes.state / "exec-output").write_text(json.dumps(db_status("4621fec11365")))
    r = fakes.run("helm_update.sh", "--dry-run")
    assert r.returncode == 0, r.stderr
    assert "database: WILL BE MIGRATED from schema 4621fec11365" in r.stdout
    assert "/srv/teamhub/data/backups/jupyterhub-6.1.1.rev-4621fec11365." in r.stdout
    from teamhub import database

    (fakes.state / "exec-output").write_text(json.dumps(db_status(database.head_revision())))
    assert "no migration" in fakes.run("helm_update.sh", "--dry-run").stdout


def test_rollback_restores_the_matching_backup(fakes):
    from teamhub import database

    three_revisions(fakes)
    log = [{"at": "20261101T090000Z", "event": "start", "jupyterhub_version": "5.4.3", "alembic_revision": "4621fec11365",
            "release_revision": "2", "backup": "", "note": ""},
           {"at": "20261120T100000Z", "event": "migrate", "jupyterhub_version": "6.1.1", "alembic_revision": database.head_revision(),
            "release_revision": "3", "backup": "jupyterhub-5.4.3.rev-4621fec11365.20261120T100000Z.sqlite", "note": ""}]
    backups = [{"path": "/srv/teamhub/data/backups/jupyterhub-5.4.3.rev-4621fec11365.20261120T100000Z.sqlite",
                "jupyterhub_version": "5.4.3", "alembic_revision": "4621fec11365", "at": "20261120T100000Z"}]
    (fakes.state / "exec-output").write_text(json.dumps(db_status(database.head_revision(), log, backups)))
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
    from teamhub import database

    three_revisions(fakes)
    log = [{"at": "1", "event": "start", "jupyterhub_version": "5.4.3", "alembic_revision": "4621fec11365", "release_revision": "2",
            "backup": "", "note": ""}]
    backups = [{"path": "/b/jupyterhub-5.4.3.rev-4621fec11365.20261120T100000Z.sqlite", "jupyterhub_version": "5.4.3",
                "alembic_revision": "4621fec11365", "at": "20261120T100000Z"}]
    (fakes.state / "exec-output").write_text(json.dumps(db_status(database.head_revision(), log, backups)))
    r = fakes.run("rollback.sh", "--yes", fail="rollback")
    assert r.returncode == 1
    assert any(c[0] == "kubectl" and "--cancel" in c for c in fakes.calls())


def test_failed_upgrade_after_a_migration_says_so(fakes):
    from teamhub import database

    installed(fakes)
    (fakes.state / "exec-output").write_text(json.dumps(db_status("4621fec11365")))
    (fakes.state / "exec-output-after-upgrade").write_text(json.dumps(db_status(database.head_revision())))
    r = fakes.run("helm_update.sh", "--yes", fail="upgrade")
    assert r.returncode == 1
    assert "had already migrated the hub database before the failure; a backup was taken first" in r.stderr
    assert "was not touched" not in r.stderr
