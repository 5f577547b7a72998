"""Air-gapped install (issue 29) end to end with two real registries on loopback: create a bundle from the
"public" registry (interrupted by a missing image, then resumed), stop the public registry, verify, push
into the "site" registry, and render the chart with the overlay: every image the cluster would pull is the
site's, by the digest the bundle recorded. A tampered or missing blob is refused by verify and push."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections import Counter

import pytest
import yaml
from bundlereg import CRANE, MULTI_PLATFORM, PASSWORD, crane, refused, seed
from support import CONFIG, ROOT, run_teamhub, tree_env
from teamhub.bundle.layout import INDEX_TYPES

VAP = "admissionregistration.k8s.io/v1/ValidatingAdmissionPolicy"
HELD_BACK = "pytorch-cuda"  # not in the public registry at first: the first create stops without it


def teamhub(tmp, *args):
    return run_teamhub(*args, env=tree_env(DOCKER_CONFIG=str(tmp / "docker-config")))


def fetched(requests) -> Counter:
    """Successful GETs of blobs and manifests (the registry's access log), by path."""
    return Counter(path for method, path, status in requests
                   if method == "GET" and status == "200" and ("/blobs/" in path or "/manifests/" in path))


@pytest.fixture(scope="module")
def made(workspace):
    """The bundle, made in two runs: the first stops on a missing image, the second resumes."""
    public, site, tmp, values_file, refs = (workspace.public, workspace.site, workspace.tmp, workspace.values_file,
                                            workspace.refs)
    held = next(r for r in refs if f"/lab/{HELD_BACK}:" in r)
    digests = seed(public, tmp, refs, held_back=(held,))
    out = tmp / "bundle"
    args = ("bundle", "create", "--values", CONFIG / "values.yaml", "--values", values_file, "-o", out,
            "--plain-http", public.host)
    mark = public.mark()
    first = teamhub(tmp, *args)
    first_requests = public.requests(mark)
    first_left = sorted(p.name for p in out.iterdir())
    digests.update(seed(public, tmp, [held]))
    mark2 = public.mark()
    second = teamhub(tmp, *args)
    public.stop()  # from here on, nothing may need it
    return {"out": out, "first": first, "second": second, "first_requests": first_requests, "first_left": first_left,
            "all_requests": public.requests(mark), "second_requests": public.requests(mark2),
            "refs": refs, "held": held, "digests": digests, "values": [CONFIG / "values.yaml", values_file],
            "tmp": tmp, "public": public, "site": site}


def test_first_create_stops_on_a_missing_image_and_keeps_what_it_fetched(made):
    first = made["first"]
    assert first.returncode == 1, first.stdout + first.stderr
    assert f"teamhub: not bundled: {made['held']} (values: catalog.images.{HELD_BACK})" in first.stdout
    assert "run the same command again to resume" in first.stdout
    assert made["first_left"] == [".create-state.json", "images"]  # no bundle.json: nothing looks finished
    assert sum(1 for p in fetched(made["first_requests"]) if "/blobs/" in p) >= len(made["refs"])


def test_resumed_create_fetches_nothing_twice(made):
    second = made["second"]
    assert second.returncode == 0, second.stdout + second.stderr
    counts = fetched(made["all_requests"])
    assert counts and max(counts.values()) == 1, [p for p, n in counts.items() if n > 1]
    again = fetched(made["second_requests"])
    # the second run asked only for the image the first could not have: its manifest and its own layer
    assert again and all(f"/lab/{HELD_BACK}/" in p for p in again), sorted(again)
    assert sum(1 for p in again if "/blobs/" in p) == 2  # its config and its layer; the shared base is kept
    for ref in made["refs"]:  # progress: one line per image with its size, then a total
        assert any(ref in line and " kB" in line for line in second.stdout.splitlines() if line.startswith("[")), ref
    assert "total: " in second.stdout and "shared blobs once" in second.stdout


def test_bundle_lists_every_image_by_digest_and_stores_shared_blobs_once(made):
    doc = json.loads((made["out"] / "bundle.json").read_text())
    assert {i["ref"] for i in doc["images"]} == set(made["refs"])
    for img in doc["images"]:
        assert img["digest"] == made["digests"][img["ref"]], img["ref"]
        assert img["size"] > 0 and img["paths"]
    index = next(i for i in doc["images"] if MULTI_PLATFORM in i["ref"])  # both platforms, under the index's digest
    assert index["mediaType"] in INDEX_TYPES and index["size"] > 2 * 50_000
    blobs = list((made["out"] / "images" / "blobs" / "sha256").iterdir())
    assert len(blobs) == len(doc["blobs"])
    per_image = sum(img["size"] for img in doc["images"])
    assert sum(b.stat().st_size for b in blobs) < per_image  # the base layer under every catalog image: once
    assert set(doc["files"]) == {doc["chart"], *doc["values"], "images/index.json", "images/oci-layout"}
    verified = teamhub(made["tmp"], "bundle", "verify", made["out"])
    assert verified.returncode == 0 and "intact" in verified.stdout, verified.stderr


def test_push_needs_plain_http_said_explicitly(made):
    site = made["site"]
    mark = site.mark()
    refused = teamhub(made["tmp"], "bundle", "push", made["out"], "--registry", site.host,
                      "--overlay", made["tmp"] / "never.yaml")
    assert refused.returncode == 1
    assert f"registry {site.host} does not speak TLS" in refused.stdout + refused.stderr
    assert f"--plain-http {site.host}" in refused.stdout + refused.stderr
    assert not [r for r in site.requests(mark) if r[0] in ("PUT", "POST", "PATCH")]
    assert not (made["tmp"] / "never.yaml").exists()


@pytest.fixture(scope="module")
def pushed(made):
    overlay = made["tmp"] / "site-values.yaml"
    proc = teamhub(made["tmp"], "bundle", "push", made["out"], "--registry", made["site"].host, "--prefix", "mirror",
                   "--plain-http", "--overlay", overlay)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return overlay, proc


def every_image_field(node, out: list) -> list:
    if isinstance(node, dict):
        for k, v in node.items():
            (out.append(v) if k == "image" and isinstance(v, str) else every_image_field(v, out))
    elif isinstance(node, list):
        for item in node:
            every_image_field(item, out)
    return out


def test_overlay_points_every_rendered_image_at_the_site_by_digest(made, pushed):
    overlay, _ = pushed
    doc = json.loads((made["out"] / "bundle.json").read_text())
    site = made["site"].host
    expected = {f"{site}/mirror/{i['repository']}:{i['tag']}@{i['digest']}" for i in doc["images"]}
    values = [made["out"] / v for v in doc["values"]]
    args = [str(ROOT / ".tools" / "bin" / "helm"), "template", "t", str(made["out"] / doc["chart"]),
            "--api-versions", VAP] + [a for v in [*values, overlay] for a in ("-f", str(v))]
    proc = subprocess.run(args, capture_output=True, text=True, timeout=120, env=tree_env())
    assert proc.returncode == 0, proc.stderr
    assert made["public"].host not in proc.stdout  # no object, pre-pull list or parameter names the public registry
    docs = [d for d in yaml.safe_load_all(proc.stdout) if d]
    images = set(every_image_field(docs, []))
    params = next(d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"].endswith("-admission"))
    allowed = {v.split("\n", 1)[0] for k, v in params["data"].items() if not k.startswith(("volume.", "home", "_"))}
    assert images and allowed and images | allowed == expected
    pullers = [c["image"] for d in docs if d["kind"] == "DaemonSet" for c in d["spec"]["template"]["spec"]["initContainers"]]
    assert pullers and set(pullers) <= expected


def test_site_registry_serves_every_image_with_the_bundles_digest(made, pushed):
    doc = json.loads((made["out"] / "bundle.json").read_text())
    for img in doc["images"]:
        ref = f"{made['site'].host}/mirror/{img['repository']}:{img['tag']}"
        assert crane("digest", "--insecure", ref) == img["digest"], ref


@pytest.mark.parametrize("damage", ["tamper", "remove"])
def test_verify_and_push_refuse_a_damaged_blob(made, pushed, damage, tmp_path):
    copy = tmp_path / "bundle"
    shutil.copytree(made["out"], copy)
    doc = json.loads((copy / "bundle.json").read_text())
    layer = max(doc["blobs"], key=doc["blobs"].get)  # the largest: a layer
    blob = copy / "images" / "blobs" / "sha256" / layer[7:]
    if damage == "tamper":
        data = bytearray(blob.read_bytes())
        data[len(data) // 2] ^= 0xFF
        blob.write_bytes(bytes(data))
        sentence = f"blob {blob} was tampered with or damaged: its content's digest is sha256:"
    else:
        blob.unlink()
        sentence = f"blob {blob} is missing (used by "
    refused(made["tmp"], copy, made["site"], sentence, tmp_path / "o.yaml")


@pytest.mark.parametrize("which", ["helm", "helm4"])
def test_chart_as_oci_artifact_in_the_site_registry(made, pushed, which, tmp_path):
    """`helm push` of the bundle's chart into the site registry, then `helm pull` and `helm template oci://...
    --version X` render exactly what the bundle's chart file renders (Helm 3 and Helm 4)."""
    overlay, _ = pushed
    doc = json.loads((made["out"] / "bundle.json").read_text())
    chart = yaml.safe_load(helm(which, tmp_path, "show", "chart", made["out"] / doc["chart"]).stdout)
    (tmp_path / "pulled").mkdir()
    repo = f"oci://{made['site'].host}/charts-{which}"
    push = helm(which, tmp_path, "push", made["out"] / doc["chart"], repo, "--plain-http")
    assert f"Pushed: {made['site'].host}/charts-{which}/teamhub:{chart['version']}" in push.stdout + push.stderr
    pulled = helm(which, tmp_path, "pull", f"{repo}/teamhub", "--version", chart["version"], "--plain-http", "-d", tmp_path / "pulled")
    assert (tmp_path / "pulled" / f"teamhub-{chart['version']}.tgz").is_file(), pulled.stderr
    values = [a for v in [*(made["out"] / v for v in doc["values"]), overlay] for a in ("-f", v)]
    values += ["--set", "hub.existingSecret=site-secrets"]  # no generated secrets: two renders compare equal
    from_oci = helm(which, tmp_path, "template", "t", f"{repo}/teamhub", "--version", chart["version"], "--plain-http", *values)
    from_file = helm(which, tmp_path, "template", "t", made["out"] / doc["chart"], *values)
    assert from_oci.stdout == from_file.stdout and made["site"].host in from_oci.stdout


HELM = {"helm": ROOT / ".tools" / "bin" / "helm", "helm4": ROOT / ".tools" / "bin" / "helm4"}


def helm(which: str, home, *args):
    """helm with its config and cache in the test's folder (never the machine's registry logins)."""
    env = tree_env(HELM_CONFIG_HOME=str(home / "config"), HELM_CACHE_HOME=str(home / "cache"),
                   HELM_DATA_HOME=str(home / "data"))
    proc = subprocess.run([str(HELM[which]), *map(str, args)], capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 0, f"{which} {' '.join(map(str, args))}: {proc.stderr}"
    return proc




def test_push_to_a_tls_registry_with_a_login_never_shows_the_password(made, secure_site, tmp_path):
    site, ca = secure_site
    config = tmp_path / "docker-config"
    env = tree_env(SSL_CERT_FILE=str(ca), DOCKER_CONFIG=str(config))
    args = ["bundle", "push", made["out"], "--registry", site.host, "--overlay", tmp_path / "o.yaml"]
    denied = run_teamhub(*args, env=env)
    assert denied.returncode == 1 and "401 Unauthorized" in denied.stdout, denied.stdout + denied.stderr
    assert "the registry wants a login" in denied.stdout
    # flags: the password from standard input, TLS (no --plain-http: the registry speaks TLS)
    done = run_teamhub(*args, "--username", "ops", "--password-stdin", input=PASSWORD + "\n", env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert PASSWORD not in done.stdout + done.stderr + (tmp_path / "o.yaml").read_text()
    assert not config.exists()  # the login went to a private config for the run, not into the operator's
    # the docker config file, as `crane auth login` writes it
    config.mkdir()
    login = subprocess.run([CRANE, "auth", "login", site.host, "-u", "ops", "--password-stdin"], input=PASSWORD,
                           capture_output=True, text=True, env=env, timeout=60)
    assert login.returncode == 0, login.stderr
    again = run_teamhub(*args, env=env)
    assert again.returncode == 0 and PASSWORD not in again.stdout + again.stderr, again.stdout + again.stderr
    doc = json.loads((made["out"] / "bundle.json").read_text())
    for img in doc["images"]:
        assert crane("digest", f"{site.host}/{img['repository']}:{img['tag']}", env=env) == img["digest"]
