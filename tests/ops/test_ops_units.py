"""teamhub.values.edit, teamhub.ops.buildplan and teamhub.ops.release without scripts."""

from __future__ import annotations

import json

import pytest
import yaml
from support import CONFIG, ROOT, run_teamhub
from teamhub.ops import buildplan as images
from teamhub.ops import release
from teamhub.values import edit as values_edit


def test_round_trip_is_byte_identical():
    text = (CONFIG / "values.yaml").read_text()
    assert values_edit.dump(values_edit.load(CONFIG / "values.yaml")) == text


def test_set_image_changes_only_the_tag_line(tmp_path):
    f = tmp_path / "values.yaml"
    original = (CONFIG / "values.yaml").read_text()
    f.write_text(original)
    assert values_edit.set_image(f, "catalog.images.scipy", "abc123-0123456789ab")
    new = f.read_text()
    diff = [(a, b) for a, b in zip(original.splitlines(), new.splitlines(), strict=True) if a != b]
    assert diff == [('      tag: "2026-11-02"', '      tag: "abc123-0123456789ab"')]
    assert not values_edit.set_image(f, "catalog.images.scipy", "abc123-0123456789ab"), "same tag: unchanged"


def test_set_image_creates_missing_entries_and_refuses_latest(tmp_path):
    f = tmp_path / "values.yaml"
    f.write_text("# top comment\ncatalog:\n  images: {}  # none yet\n")
    values_edit.set_image(f, "hub.image", "t1", name="registry.example/hub")
    values_edit.set_image(f, "catalog.images.course-cv", "t2", name="registry.example/course-cv")
    text = f.read_text()
    assert text.startswith("# top comment\n")
    assert values_edit.get(f, "hub.image.tag") == "t1"
    assert values_edit.get(f, "catalog.images.course-cv.name") == "registry.example/course-cv"
    with pytest.raises(values_edit.ValuesEditError):
        values_edit.set_image(f, "hub.image", "latest")


def test_set_image_tag_cli(tmp_path):
    f = tmp_path / "values.yaml"
    f.write_text((CONFIG / "values.yaml").read_text())
    r = run_teamhub("set-image-tag", "--values", f, "catalog.images.pytorch-rocm", "9f9f9f9f-aaaaaaaaaaaa")
    assert r.returncode == 0, r.stderr
    assert run_teamhub("validate", f).returncode == 0


def test_manifest_of_this_repository_plans_every_image():
    m = images.load_manifest()
    planned = images.plan(m)
    assert {p.key for p in planned} == set(m.images)
    assert [p.key for p in planned].index("base-rocm") < [p.key for p in planned].index("course-cv")
    for p in planned:
        assert p.tag and "latest" not in p.tag
        assert p.spec.dockerfile.is_file() and p.spec.context.is_dir()


def test_context_hash_ignores_caches_and_follows_dockerignore(tmp_path):
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text("FROM python:3.11.11-slim-bookworm\n")
    (ctx / ".dockerignore").write_text("scratch/\n")
    spec = images.ImageSpec("x", "r/x", ctx, ctx / "Dockerfile")
    h1 = images.content_hash(spec, {})
    (ctx / "__pycache__").mkdir()
    (ctx / "__pycache__" / "a.pyc").write_bytes(b"\0")
    (ctx / "scratch").mkdir()
    (ctx / "scratch" / "notes").write_text("x")
    assert images.content_hash(spec, {}) == h1
    assert images.content_hash(spec, {"A": "1"}) != h1
    (ctx / "new.txt").write_text("x")
    assert images.content_hash(spec, {}) != h1


def test_manifest_diff_and_history():
    old = "kind: A\nmetadata: {name: a}\n---\nkind: B\nmetadata: {name: b}\nx: 1\n"
    new = "kind: B\nmetadata: {name: b}\nx: 2\n---\nkind: C\nmetadata: {name: c, namespace: n}\n"
    d = release.diff_manifests(old, new)
    assert d == {"added": ["C/n/c"], "changed": ["B/b"], "removed": ["A/a"], "unchanged": []}


def test_pick_target(tmp_path):
    h = tmp_path / "h.json"
    h.write_text(json.dumps([{"revision": n, "status": s, "chart": "teamhub-0.1.0"}
                             for n, s in ((1, "superseded"), (2, "failed"), (3, "deployed"))]))
    revs = release.load_history(h)
    assert release.pick_target(revs, None).number == 1, "2 failed: never the default target"
    assert release.target_warning(revs, release.pick_target(revs, None)) is None
    assert release.pick_target(revs, 2).number == 2, "named, it is allowed"
    assert "never ran successfully" in release.target_warning(revs, release.pick_target(revs, 2))
    assert release.pick_target(revs, 1).number == 1
    with pytest.raises(release.NoSuchRevision, match="does not exist"):
        release.pick_target(revs, 7)
    with pytest.raises(release.NoSuchRevision, match="running now"):
        release.pick_target(revs, 3)


def test_pick_target_after_a_failed_newest_revision(tmp_path):
    """1 deployed, 2 failed (a plain `helm upgrade --wait` that timed out, its objects applied; issue 24): helm still
    calls 1 current, but what runs is 2's. The default target is 1, said in a note, with no warning."""
    h = tmp_path / "h.json"
    h.write_text(json.dumps([{"revision": n, "status": s, "chart": "teamhub-0.1.0", "description": d} for n, s, d in (
        (1, "deployed", "Install complete"), (2, "failed", "Upgrade \"teamhub\" failed: context deadline exceeded"))]))
    revs = release.load_history(h)
    target = release.pick_target(revs, None)
    assert target.number == 1 and release.target_warning(revs, target) is None
    assert "newest revision 2 failed (Upgrade \"teamhub\" failed" in release.target_note(revs, target)
    assert release.pick_target(revs, 1).number == 1, "named, the last good revision is allowed too"
    # a failed upgrade that helm rolled back itself (--atomic) ends deployed: nothing to note
    h.write_text(json.dumps([{"revision": n, "status": s, "chart": "teamhub-0.1.0", "description": d} for n, s, d in (
        (1, "superseded", "Install complete"), (2, "failed", "Upgrade failed"), (3, "deployed", "Rollback to 1"))]))
    revs = release.load_history(h)
    assert release.target_note(revs, revs[0]) is None
    with pytest.raises(release.NoSuchRevision, match="no revision before 3"):
        release.pick_target(revs, None)


def test_readme_operator_section_names_only_existing_scripts():
    text = (ROOT / "README.md").read_text()
    for script in ("scripts/helm_update.sh", "scripts/rollback.sh", "scripts/build_images.sh"):
        assert script in text
        assert (ROOT / script).exists()


def test_pick_target_skips_what_runs_now(tmp_path):
    """6 superseded, 7 failed, 8 deployed "Rollback to 6" (issue 15): 6 is what runs; the default is 5."""
    h = tmp_path / "h.json"
    h.write_text(json.dumps([{"revision": n, "status": s, "chart": "teamhub-0.1.0", "description": d} for n, s, d in (
        (5, "superseded", "Upgrade complete"), (6, "superseded", "Upgrade complete"), (7, "failed", "Upgrade failed"),
        (8, "deployed", "Rollback to 6"))]))
    revs = release.load_history(h)
    assert release.pick_target(revs, None).number == 5
    assert "changes nothing" in release.target_warning(revs, release.pick_target(revs, 6))
    # with the values read, a revision with the same chart and values as the current one is skipped too
    vals = tmp_path / "values"
    vals.mkdir()
    for n, tag in ((5, "a"), (6, "b"), (7, "c"), (8, "b")):
        (vals / f"{n}.yaml").write_text(f"hub: {{image: {{tag: {tag}}}}}\n")
    h.write_text(h.read_text().replace("Rollback to 6", "Upgrade complete"))
    assert release.pick_target(release.load_history(h, vals), None).number == 5
    with pytest.raises(release.NoSuchRevision, match="name one with --revision"):
        release.pick_target(release.load_history(h, vals)[2:], None)


def test_diff_leaves_out_hooks_and_the_revision_number():
    old = "kind: Secret\nmetadata: {name: v}\nstringData: {values.yaml: 'a: 1', release-revision: '1'}\n"
    new = old.replace("'1'}", "'2'}") + ("---\nkind: Job\nmetadata: {name: check, annotations: {helm.sh/hook: pre-upgrade}}\n"
                                        "---\nkind: Pod\nmetadata: {name: t, annotations: {helm.sh/hook: test}}\n")
    assert release.diff_manifests(old, new) == {"added": [], "changed": [], "removed": [], "unchanged": ["Secret/v"]}
    assert release.diff_manifests(old, new.replace("a: 1", "a: 2"))["changed"] == ["Secret/v"]
    assert release.manifest_of_release(json.dumps({"manifest": old, "hooks": [{"name": "x"}]})) == old


def test_release_revision_file(tmp_path):
    from teamhub import paths

    (tmp_path / "values.yaml").write_text("{}")
    env = {"TEAMHUB_VALUES": str(tmp_path / "values.yaml")}
    assert paths.release_revision(env) == ""
    (tmp_path / "release-revision").write_text("7\n")
    assert paths.release_revision(env) == "7"
    assert paths.release_revision({**env, "TEAMHUB_RELEASE_REVISION": "9"}) == "9"


def test_set_image_digest_and_pushed_digest(tmp_path):
    from teamhub.ops import buildplan as images
    from teamhub.values import edit as values_edit

    f = tmp_path / "v.yaml"
    f.write_text("hub:\n  image:\n    name: x  # the hub\n    tag: \"a\"\n    pullPolicy: IfNotPresent\n")
    d = "sha256:" + "0" * 64
    assert values_edit.set_image(f, "hub.image", "b", digest=d)
    assert f.read_text() == f'hub:\n  image:\n    name: x  # the hub\n    tag: "b"\n    digest: "{d}"\n    pullPolicy: IfNotPresent\n'
    assert not values_edit.set_image(f, "hub.image", "b", digest=d)
    assert values_edit.set_image(f, "hub.image", "c")
    assert "digest" not in f.read_text(), "a new tag without a push drops the digest of another image"
    with pytest.raises(values_edit.ValuesEditError, match="refusing digest"):
        values_edit.set_image(f, "hub.image", "c", digest="sha256:xyz")
    assert images.pushed_digest(None, f"b: digest: {d} size: 1570\n") == d
    (tmp_path / "k.digest").write_text(d.replace("0", "1"))
    assert images.pushed_digest(tmp_path / "k.digest", "") == d.replace("0", "1")
    with pytest.raises(images.ManifestError, match="no sha256 digest"):
        images.pushed_digest(tmp_path / "none", "pushed")


# hadolint and shellcheck run in `make lint` (no test repeats them); these pins are checked nowhere else.
def test_images_are_pinned_never_latest():
    for f in [ROOT / "hub-image" / "Dockerfile", *(ROOT / "dockerfiles").glob("*/Dockerfile")]:
        for line in f.read_text().splitlines():
            if line.startswith("FROM ") and "${" not in line and line.split()[1] != "scratch":  # scratch: no image
                image = line.split()[1]
                assert ":" in image and not image.endswith(":latest"), f"{f}: {line}"


def test_base_images_given_as_build_args_are_pinned():
    """A Dockerfile with `FROM ${BASE_IMAGE}` gets its base from dockerfiles/images.yaml: pinned there."""
    manifest = yaml.safe_load((ROOT / "dockerfiles" / "images.yaml").read_text())
    for key, spec in manifest["images"].items():
        base = (spec.get("buildArgs") or {}).get("BASE_IMAGE")
        if base and not base.startswith("{{image:"):
            assert ":" in base and not base.endswith(":latest"), f"images.{key}.buildArgs.BASE_IMAGE: {base}"


def _pins(path) -> dict:
    import re

    return {m.group(1).lower(): m.group(2) for m in re.finditer(r"^([A-Za-z0-9_.-]+)==([^\s\\;]+)", path.read_text(), re.M)}


def test_single_user_locks_have_hashes_and_agree_with_the_hub_and_the_build_args():
    """base-cpu's lock: every pin hashed, the Jupyter versions images.yaml gives the GPU bases, and the hub's
    version of every package both need (one cryptography in the project, not whatever a build resolved)."""
    manifest = yaml.safe_load((ROOT / "dockerfiles" / "images.yaml").read_text())
    for folder in ("base-cpu", "course-cv"):
        text = (ROOT / "dockerfiles" / folder / "requirements.txt").read_text()
        blocks = [b for b in text.split("\n") if "==" in b and not b.lstrip().startswith("#")]
        assert blocks and all(b.rstrip().endswith("\\") for b in blocks), f"{folder}: a pin without --hash"
        assert "--require-hashes --no-deps" in (ROOT / "dockerfiles" / folder / "Dockerfile").read_text()
    base = _pins(ROOT / "dockerfiles" / "base-cpu" / "requirements.txt")
    args = manifest["images"]["base-cpu"]["buildArgs"]
    for package, arg in (("jupyterhub", "JUPYTERHUB_VERSION"), ("jupyterlab", "JUPYTERLAB_VERSION"), ("nbgitpuller", "NBGITPULLER_VERSION")):
        assert base[package] == args[arg], (package, base[package], args[arg])
    hub = _pins(ROOT / "hub-image" / "requirements.txt")
    differ = {p: (v, hub[p]) for p, v in base.items() if p in hub and hub[p] != v}
    assert not differ, f"base-cpu and the hub lock different versions: {differ}"


def test_plan_builds_only_what_the_machine_runs_and_names_it(tmp_path):
    from teamhub.ops import buildplan as images

    binfmt = tmp_path / "binfmt"
    binfmt.mkdir()
    assert images.runnable_platforms("x86_64", binfmt) == ["linux/amd64"]
    (binfmt / "qemu-aarch64").write_text("enabled\n")
    assert images.runnable_platforms("x86_64", binfmt) == ["linux/amd64", "linux/arm64"]
    m = images.load_manifest()
    full = {p.key: p for p in images.plan(m, ["hub"])}
    narrow = {p.key: p for p in images.plan(m, ["hub"], ["linux/amd64"])}
    assert full["hub"].spec.platforms == ["linux/amd64", "linux/arm64"]
    assert narrow["hub"].spec.platforms == ["linux/amd64"] and narrow["hub"].tag.endswith("-amd64")
    assert narrow["hub"].tag.rsplit("-", 1)[0] != full["hub"].tag, "another platform set is another image"
    with pytest.raises(images.ManifestError, match="can only build linux/s390x"):
        images.plan(m, ["hub"], ["linux/s390x"])
    cmd = images.build_command("buildah", narrow["hub"], ["/etc/ssl/certs/ca-certificates.crt:/etc/ssl/certs/ca-certificates.crt"])
    assert cmd[:2] == ["buildah", "bud"] and "host" == cmd[cmd.index("--network") + 1] and "chroot" in cmd
    assert "/etc/ssl/certs/ca-certificates.crt:/etc/ssl/certs/ca-certificates.crt:ro" in cmd
