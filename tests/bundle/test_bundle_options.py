"""`teamhub bundle` options against real registries on loopback (issue 29): the bundle as one `.tar` (create
writes it, verify and push read it as it is), `--platform` keeping only some platforms of a multi-platform
image (and saying so in bundle.json), and create's registry login by flag (a TLS registry with a password)."""

from __future__ import annotations

import json
import subprocess
import tarfile

import pytest
import yaml
from bundlereg import CRANE, MULTI_PLATFORM, PASSWORD, PLATFORMS, crane, refused, seed, write_values
from support import CONFIG, run_teamhub, tree_env


def teamhub(tmp, *args, **kw):
    return run_teamhub(*args, env=tree_env(DOCKER_CONFIG=str(tmp / "docker-config")), **kw)


@pytest.fixture(scope="module")
def seeded(workspace):
    w = workspace
    return {"public": w.public, "site": w.site, "tmp": w.tmp, "refs": w.refs, "digests": seed(w.public, w.tmp, w.refs),
            "create": ("bundle", "create", "--values", CONFIG / "values.yaml", "--values", w.values_file,
                       "--plain-http", w.public.host)}


@pytest.fixture(scope="module")
def tar_bundle(seeded):
    tar = seeded["tmp"] / "teamhub-bundle.tar"
    made = teamhub(seeded["tmp"], *seeded["create"], "-o", tar)
    assert made.returncode == 0, made.stdout + made.stderr
    return tar, made


def test_create_writes_one_tar(seeded, tar_bundle):
    tar, made = tar_bundle
    assert f"wrote {tar}" in made.stdout
    assert sorted(p.name for p in tar.parent.iterdir() if p.name.startswith(tar.name)) == [tar.name]  # no staging left
    checked = teamhub(seeded["tmp"], "bundle", "verify", tar)
    assert checked.returncode == 0 and f"{tar}: intact" in checked.stdout, checked.stdout + checked.stderr


def test_push_reads_the_tar(seeded, tar_bundle, tmp_path):
    tar, _ = tar_bundle
    site = seeded["site"]
    pushed = teamhub(seeded["tmp"], "bundle", "push", tar, "--registry", site.host, "--prefix", "fromtar", "--plain-http",
                     "--overlay", tmp_path / "site-values.yaml")
    assert pushed.returncode == 0, pushed.stdout + pushed.stderr
    overlay = yaml.safe_load((tmp_path / "site-values.yaml").read_text())
    assert overlay["hub"]["image"]["name"] == f"{site.host}/fromtar/teamhub/hub"
    for ref in seeded["refs"]:
        repo, tag = ref.split("/", 1)[1].rsplit(":", 1)
        assert crane("digest", "--insecure", f"{site.host}/fromtar/{repo}:{tag}") == seeded["digests"][ref], ref
    assert not [p for p in tar.parent.iterdir() if p.name.startswith(f".{tar.name}-")]  # the unpacked copy is gone


def test_verify_and_push_name_a_tampered_member_of_the_tar(seeded, tar_bundle, tmp_path):
    tar, _ = tar_bundle
    with tarfile.open(tar) as t:
        doc = json.loads(t.extractfile("bundle.json").read())
        layer = max(doc["blobs"], key=doc["blobs"].get)
        member = t.getmember(f"images/blobs/sha256/{layer[7:]}")
    copy = tmp_path / "copy.tar"
    data = bytearray(tar.read_bytes())
    data[member.offset_data + member.size // 2] ^= 0xFF
    copy.write_bytes(bytes(data))
    sentence = f"blob images/blobs/sha256/{layer[7:]} in {copy} was tampered with or damaged: its content's digest is sha256:"
    refused(seeded["tmp"], copy, seeded["site"], sentence, tmp_path / "o.yaml")


def test_platform_keeps_only_that_platform_and_says_so(seeded, tmp_path):
    out = tmp_path / "amd64"
    made = teamhub(seeded["tmp"], *seeded["create"], "--platform", "linux/amd64", "-o", out)
    assert made.returncode == 0, made.stdout + made.stderr
    doc = json.loads((out / "bundle.json").read_text())
    assert doc["platforms"] == ["linux/amd64"]
    multi = next(r for r in seeded["refs"] if MULTI_PLATFORM in r)
    (img,) = [i for i in doc["images"] if i["ref"] == multi]
    # the one platform left is that image's own manifest, pulled by its digest as the runtime would
    assert img["digest"] == seeded["digests"][f"{multi} linux/amd64"]
    assert img["sourceDigest"] == seeded["digests"][multi] and img["platforms"] == ["linux/amd64"]
    arm = seeded["digests"][f"{multi} linux/arm64"]
    arm_manifest = json.loads(crane("manifest", "--insecure", f"{multi.rsplit(':', 1)[0]}@{arm}"))
    assert arm not in doc["blobs"] and arm_manifest["layers"][0]["digest"] not in doc["blobs"]
    assert all("platforms" not in i for i in doc["images"] if i["ref"] != multi)  # single-platform images as they are
    assert teamhub(seeded["tmp"], "bundle", "verify", out).returncode == 0
    site = seeded["site"]
    pushed = teamhub(seeded["tmp"], "bundle", "push", out, "--registry", site.host, "--prefix", "amd64", "--plain-http",
                     "--overlay", tmp_path / "o.yaml")
    assert pushed.returncode == 0, pushed.stdout + pushed.stderr
    overlay = yaml.safe_load((tmp_path / "o.yaml").read_text())
    assert overlay["proxy"]["image"]["digest"] == img["digest"]
    assert crane("digest", "--insecure", f"{site.host}/amd64/{img['repository']}:{img['tag']}") == img["digest"]


def test_platform_no_image_has_is_named(seeded, tmp_path):
    made = teamhub(seeded["tmp"], *seeded["create"], "--platform", "linux/s390x", "-o", tmp_path / "b")
    multi = next(r for r in seeded["refs"] if MULTI_PLATFORM in r)
    assert made.returncode == 1
    assert (f"teamhub: not bundled: {multi} (values: proxy.image): it has no image for linux/s390x "
            f"(its platforms: {', '.join(PLATFORMS)})") in made.stdout, made.stdout
    bad = teamhub(seeded["tmp"], *seeded["create"], "--platform", "amd64", "-o", tmp_path / "c")
    assert bad.returncode == 2 and "'amd64' is not a platform such as linux/amd64" in bad.stderr


@pytest.fixture(scope="module")
def secure_public(secure_site, tmp_path_factory):
    """The TLS registry with a login, seeded (with the login) as the source of a create."""
    site, ca = secure_site
    tmp = tmp_path_factory.mktemp("secure-public")
    env = tree_env(SSL_CERT_FILE=str(ca), DOCKER_CONFIG=str(tmp / "seeder"))
    (tmp / "seeder").mkdir()
    login = run_login(site.host, env)
    assert login.returncode == 0, login.stderr
    values_file = tmp / "values.yaml"
    refs = write_values(site.host, values_file)
    return site, ca, values_file, refs, seed(site, tmp, refs, env=env)


def run_login(host, env):
    return subprocess.run([CRANE, "auth", "login", host, "-u", "ops", "--password-stdin"], input=PASSWORD,
                          capture_output=True, text=True, env=env, timeout=60)


def test_create_from_a_registry_with_a_login_by_flag(secure_public, tmp_path):
    site, ca, values_file, refs, digests = secure_public
    config = tmp_path / "docker-config"
    env = tree_env(SSL_CERT_FILE=str(ca), DOCKER_CONFIG=str(config))
    args = ["bundle", "create", "--values", CONFIG / "values.yaml", "--values", values_file, "-o", tmp_path / "b"]
    denied = run_teamhub(*args, env=env)
    assert denied.returncode == 1 and "the registry wants a login" in denied.stdout, denied.stdout + denied.stderr
    done = run_teamhub(*args, "--username", "ops", "--password-stdin", input=PASSWORD + "\n", env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert PASSWORD not in done.stdout + done.stderr + (tmp_path / "b" / "bundle.json").read_text()
    assert not config.exists()  # the login went to a private config for the run
    doc = json.loads((tmp_path / "b" / "bundle.json").read_text())
    assert {i["ref"]: i["digest"] for i in doc["images"]} == {r: digests[r] for r in refs}
