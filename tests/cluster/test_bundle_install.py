"""An air-gapped install (issue 29) on the control plane: a bundle made from a "public" registry on loopback,
that registry stopped, the bundle pushed into a "site" registry, then the bundle's packaged chart installed with
the push's values overlay (Helm, `--wait`), and servers started through the hub as it ships (hub.py) in the
release's namespace, past the release's admission policy.

kwok runs no containers, so no image is pulled: what is checked is what the cluster would pull, every image of
every pod the API server holds (the release's and the hub's user pods), against the site's references by the
digest the bundle recorded. The registries are the bundle tier's (tests/bundle/bundlereg.py)."""

from __future__ import annotations

import json

import pytest
from bundle.bundlereg import Registry, seed, write_values
from support import CONFIG, run_teamhub, tree_env

from .chart import RELEASE, install
from .hub import ClusterHub, people_overlay
from .test_hub_starts import spawn_outcome, start_from_launch_page
from .test_user_pod import data_volume
from .watch import Recorder

PREFIX = "mirror/"
PEOPLE = {"erin": [], "alice": ["cv-course"]}


def teamhub(tmp, *args):
    proc = run_teamhub(*args, env=tree_env(DOCKER_CONFIG=str(tmp / "docker-config")))
    assert proc.returncode == 0, f"teamhub {' '.join(map(str, args))}:\n{proc.stdout}\n{proc.stderr}"
    return proc


def pod_images(pod: dict) -> set:
    spec = pod["spec"]
    return {c["image"] for c in (*spec.get("initContainers", []), *spec["containers"])}


@pytest.fixture(scope="module")
def site_install(cluster, shipped_venv, tmp_path_factory):
    """create (public registry) -> public registry stopped -> push (site registry) -> helm install of the
    bundle's chart with the overlay -> the hub in the release's namespace."""
    tmp = tmp_path_factory.mktemp("bundle-install")
    public, site = Registry(tmp, "public").start(), Registry(tmp, "site").start()
    hub = None
    ns = cluster.new_namespace("bundle-install")
    try:
        values_file = tmp / "images.yaml"
        seed(public, tmp, write_values(public.host, values_file))
        bundle, overlay = tmp / "bundle", tmp / "site-values.yaml"
        teamhub(tmp, "bundle", "create", "--values", CONFIG / "values.yaml", "--values", values_file, "-o", bundle,
                "--plain-http", public.host)
        public.stop()  # from here on, everything comes from the bundle and the site
        teamhub(tmp, "bundle", "push", bundle, "--registry", site.host, "--prefix", PREFIX, "--plain-http",
                "--overlay", overlay)
        doc = json.loads((bundle / "bundle.json").read_text(encoding="utf-8"))
        # the bundle's first values file is config/values.yaml, which the tier's install gives already
        overlays = [*(bundle / v for v in doc["values"][1:]), overlay]
        paths = [f"/api/v1/namespaces/{ns}/pods"]
        with Recorder(cluster.api, paths) as rec:
            install(cluster, "helm4", ns, *(a for v in overlays for a in ("-f", v)), chart=bundle / doc["chart"])
        assert not rec.errors, rec.errors
        release_pods = [versions[-1] for versions in rec.seen[paths[0]].values()]
        state = tmp / "hub"
        state.mkdir()
        people = people_overlay(state / "people.yaml", PEOPLE)
        hub = ClusterHub(cluster, ns, shipped_venv, state, overlays=(*overlays, people))
        for claim in ("imagenet-data", "course-materials"):  # course-cv's data sets, made by the admin
            cluster.api.create(f"/api/v1/namespaces/{ns}/persistentvolumeclaims", data_volume(claim))
        hub.start()
        yield {"doc": doc, "site": site.host, "public": public.host, "ns": ns, "hub": hub, "release_pods": release_pods}
    finally:
        if hub is not None:
            hub.stop()
        public.stop()
        site.stop()
        cluster.helm("helm4", "uninstall", RELEASE, "-n", ns, "--wait", check=False)  # its cluster-wide policy too
        cluster.delete_namespace(ns)


def site_refs(doc: dict, site: str) -> dict:
    """bundle ref -> the site's reference by digest, as the overlay must make every pod pull it."""
    return {i["ref"]: f"{site}/{PREFIX}{i['repository']}:{i['tag']}@{i['digest']}" for i in doc["images"]}


@pytest.mark.timeout(900)  # the first test pays for the module: seeding, create, push, install, the hub's start
def test_release_pods_pull_only_the_sites_images_by_digest(cluster, site_install):
    expected = site_refs(site_install["doc"], site_install["site"])
    pods = site_install["release_pods"]
    assert pods, "the install created no pod"
    seen = set().union(*(pod_images(p) for p in pods))
    assert seen <= set(expected.values()), sorted(seen - set(expected.values()))
    deployments = cluster.kubectl_json("get", "deployments", "-n", site_install["ns"])["items"]
    images = {d["metadata"]["name"]: d["spec"]["template"]["spec"]["containers"][0]["image"] for d in deployments}
    by_path = {p: expected[i["ref"]] for i in site_install["doc"]["images"] for p in i["paths"]}
    assert images == {f"{RELEASE}-hub": by_path["hub.image"], f"{RELEASE}-proxy": by_path["proxy.image"]}
    assert {d["metadata"]["name"]: d["status"].get("readyReplicas") for d in deployments} == \
        {f"{RELEASE}-hub": 1, f"{RELEASE}-proxy": 1}
    # the release's admission policy guards the namespace the hub starts servers in (the next test goes past it)
    bindings = cluster.kubectl_json("get", "validatingadmissionpolicybindings")["items"]
    assert [b for b in bindings if b["metadata"]["name"] == f"{site_install['ns']}-{RELEASE}-user-pods"], \
        [b["metadata"]["name"] for b in bindings]


@pytest.mark.parametrize(("person", "fields", "image_path"), [
    ("erin", {"resource": "cpu-small"}, "catalog.images.scipy"),
    ("alice", {"resource": "course-cv", "accelerator": "strix-halo"}, "catalog.images.pytorch-rocm-gfx1151"),
])
def test_server_started_through_the_hub_runs_the_sites_image_by_digest(site_install, person, fields, image_path):
    """The pod the hub created (with its ServiceAccount, admitted by the release's policy whose parameters
    the overlay set) names the site's copy by digest; an accelerator override's image too."""
    hub, doc = site_install["hub"], site_install["doc"]
    user = f"local:{person}"
    client, response, _ = start_from_launch_page(hub, person, fields)
    assert response.status_code == 302, response.text[:500]
    outcome = spawn_outcome(hub, client, user, timeout=120)
    assert outcome.get("ready"), outcome
    (pod,) = [p for p in hub.cluster.api.get(f"/api/v1/namespaces/{hub.namespace}/pods")["items"]
              if p["metadata"].get("annotations", {}).get("hub.jupyter.org/username") == user]
    (img,) = [i for i in doc["images"] if image_path in i["paths"]]
    assert pod["spec"]["containers"][0]["image"] == site_refs(doc, site_install["site"])[img["ref"]]
    assert site_install["public"] not in json.dumps(pod["spec"])
