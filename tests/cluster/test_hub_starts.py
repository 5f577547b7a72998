"""A person's start on the real control plane, through the hub as it ships (hub.py): the launch page, the
pod the API server holds, the sentence when a start can never succeed, quotas and deadlines.

One hub per module (its namespace, the chart's hub Secrets and RBAC, a test-clock file); each test uses
its own person, so the tests do not depend on each other's servers except where a docstring says so.
"""

from __future__ import annotations

import html
import time

import httpx
import pytest
from support import wait_for

from .hub import ClusterHub, people_overlay
from .test_user_pod import data_volume

# dave shares alice's team so that the team's GPU quota (1 in the overlay) is counted over two people.
# alice (cv-course), ada (admin, staff) and bob (nlp-course) as in the demo overlay, with this tier's own hashes (a chart's hub refuses the demo's)
PEOPLE = {"alice": ["cv-course"], "dave": ["cv-course"], "erin": [], "frank": [], "gina": [], "ada": ["staff"], "bob": ["nlp-course"]}
# An image the registry does not have: the tier's kwok stage pod-image-missing (tests/cluster/kwok-stages/)
# keeps a pod whose image repository starts with "missing-" waiting in ErrImagePull.
MISSING_IMAGE = "ghcr.io/example-university/missing-notebook:1.0"
OVERLAY = {"catalog": {
    "images": {"missing-notebook": {"name": MISSING_IMAGE.split(":")[0], "tag": MISSING_IMAGE.split(":")[1]}},
    "resources": {"image-missing": {"displayName": "Unpublished notebook", "description": "Its image was never pushed",
                                    "category": "Basics", "image": "missing-notebook",
                                    "cpu": {"request": 1, "limit": 1}, "memory": {"request": "1Gi", "limit": "1Gi"}}},
    "teams": {"everyone": {"resources": ["cpu-small", "image-missing"]},
              "cv-course": {"quota": {"maxServers": 30, "maxGpus": 1}}}}}
STOPPED_WITHIN = 10  # seconds: a start that cannot succeed ends this fast with its sentence


@pytest.fixture(scope="module")
def hub(cluster, shipped_venv, tmp_path_factory):
    ns = cluster.new_namespace("hub-starts")
    state = tmp_path_factory.mktemp("hub-starts")
    clock = state / "clock"
    clock.write_text("0")
    overlay = people_overlay(state / "overlay.yaml", PEOPLE, OVERLAY, admins=["ada"])
    h = ClusterHub(cluster, ns, shipped_venv, state, overlays=(overlay,), extra_env={"TEAMHUB_TEST_CLOCK_FILE": str(clock)})
    h.clock = clock
    # course-materials exists (the admin made it); imagenet-data is created by the full-start test, after
    # the missing-data-set test has seen it missing.
    cluster.api.create(f"/api/v1/namespaces/{ns}/persistentvolumeclaims", data_volume("course-materials"))
    h.start()
    yield h
    h.stop()
    assert not h.servers.errors, h.servers.errors
    cluster.delete_namespace(ns)


def pods(hub, user: str | None = None) -> list[dict]:
    items = hub.cluster.api.get(f"/api/v1/namespaces/{hub.namespace}/pods")["items"]
    return [p for p in items if user is None or p["metadata"].get("annotations", {}).get("hub.jupyter.org/username") == user]


def claim_list(hub) -> list[dict]:
    return hub.cluster.api.get(f"/api/v1/namespaces/{hub.namespace}/persistentvolumeclaims")["items"]


def claims(hub) -> set[str]:
    return {c["metadata"]["name"] for c in claim_list(hub)}


def start_from_launch_page(hub, person: str, fields: dict):
    hub.cluster.top_up_volumes()  # a free PV for the home PVC this start may create
    client = hub.login(person, f"{person}-demo-pass")
    began = time.monotonic()
    response = hub.spawn_form(client, fields)
    return client, response, began


def spawn_outcome(hub, client, user: str, timeout: float = 30) -> dict:
    """The progress stream's last event (ready or failed), as the progress page reads it."""
    import json

    # JupyterHub sends a keep-alive every few seconds, so a read timeout never fires: bound the whole wait
    # and say what the pod went through when the start neither failed nor became ready.
    deadline = time.monotonic() + 120
    with client.stream("GET", f"/hub/api/users/{user}/server/progress", headers=hub.xsrf_headers(client), timeout=timeout) as r:
        last = {}
        for line in r.iter_lines():
            if line.startswith("data:"):
                last = json.loads(line[5:])
                if last.get("ready") or last.get("failed"):
                    return last
            if time.monotonic() > deadline:
                events = hub.cluster.api.get(f"/api/v1/namespaces/{hub.namespace}/events")["items"]
                raise AssertionError(f"the start of {user} neither failed nor became ready in 120 s; last event {last}; "
                                     f"pods {[(p['metadata']['name'], p['status'].get('phase')) for p in pods(hub, user)]}; "
                                     f"events {[(e['involvedObject'].get('name'), e.get('reason'), e.get('message')) for e in events][-8:]}; "
                                     f"claims {[(c['metadata']['name'], c['status'].get('phase')) for c in claim_list(hub)]}")
    return last


def fails_fast(hub, person: str, fields: dict, sentence: str) -> dict:
    """Start from the launch page; the progress stream must end failed with the sentence within
    STOPPED_WITHIN seconds, and nothing of the start may be left: no pod, no PVC but the person's home."""
    user = f"local:{person}"
    before = claims(hub)
    client, response, began = start_from_launch_page(hub, person, fields)
    assert response.status_code == 302 and "/hub/spawn-pending/" in response.headers["location"], response.text[:500]
    event = spawn_outcome(hub, client, user)
    took = time.monotonic() - began
    assert event.get("failed"), event
    # What the progress page shows: the sentence alone (JupyterHub's `message` keeps its "Spawn failed: ").
    shown = html.unescape(event["html_message"])
    assert shown.startswith(sentence) and event["message"] == f"Spawn failed: {shown}", event
    assert took < STOPPED_WITHIN, f"stopped after {took:.1f} s"
    wait_for(lambda: not pods(hub, user), f"the pod of {user} deleted", 15)
    assert all(c.startswith("home-") for c in claims(hub) - before), claims(hub) - before  # the home is kept for the next start
    return {**event, "shown": shown}


def test_missing_data_set_stops_within_seconds(hub):
    """Before test_full_start creates imagenet-data: dave's course-cv mounts it."""
    assert "imagenet-data" not in claims(hub), "runs before test_full_start_through_the_launch_page"
    fails_fast(hub, "dave", {"resource": "course-cv", "accelerator": "strix-halo"},
               "The data set 'imagenet' is not available: ask your admin")


def test_no_node_of_that_kind_stops_within_seconds(hub):
    """course-nlp asks for an nvidia-l40s node; the course cluster has none."""
    fails_fast(hub, "bob", {"resource": "course-nlp"},
               "No node in this cluster offers the NVIDIA GPU that 'NLP course' needs")


def test_busy_gpus_stop_within_seconds_and_count_what_was_asked(hub):
    """7 of the mi300x node's 8 GPUs are taken: the 2 that research-gpu asks for are not there."""
    hog = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "gpu-hog"},
           "spec": {"nodeSelector": {"node-type": "mi300x"},
                    "tolerations": [{"key": "amd.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
                    "securityContext": {"runAsNonRoot": True, "runAsUser": 1000, "seccompProfile": {"type": "RuntimeDefault"}},
                    "containers": [{"name": "c", "image": "busybox:1.37",
                                    "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}},
                                    "resources": {"limits": {"amd.com/gpu": "7"}}}]}}
    path = f"/api/v1/namespaces/{hub.namespace}/pods"
    hub.cluster.api.create(path, hog)
    try:
        wait_for(lambda: hub.cluster.api.get(f"{path}/gpu-hog")["spec"].get("nodeName"), "the hog scheduled", 20)
        event = fails_fast(hub, "ada", {"resource": "research-gpu"}, "Not enough free AMD GPUs right now:")
        assert "needs 2 on one node" in event["shown"] and "one available" not in event["shown"]
    finally:
        hub.cluster.api.delete(f"{path}/gpu-hog")


def test_missing_image_stops_within_seconds(hub):
    """gina starts an environment whose image tag was never pushed: the kubelet (kwok's stage) reports
    ErrImagePull with containerd's "not found", and the start ends with the sentence naming the image."""
    fails_fast(hub, "gina", {"resource": "image-missing"},
               f"The image {MISSING_IMAGE} for 'Unpublished notebook' cannot be used: the registry does not have it.")


def test_fail_fast_answers_the_rest_api_with_503_and_the_sentence(hub):
    """A start that finds no room while the request waits answers 503 (the cluster cannot place it: not a hub
    fault) with the sentence in `message` (docs/architecture.md)."""
    client = hub.login("bob", "bob-demo-pass")
    api = hub.api(hub.token(client, "local:bob"))
    r = api.post("/users/local:bob/server", json={"resource": "course-nlp"}, timeout=30)
    if r.status_code == 202:  # the hub answered before the verdict (slow machine): the progress stream has it
        event = spawn_outcome(hub, client, "local:bob")
        message = event["message"].removeprefix("Spawn failed: ")
    else:
        assert r.status_code == 503, r.text
        message = r.json()["message"]
    assert message.startswith("No node in this cluster offers the NVIDIA GPU that 'NLP course' needs"), message


def test_full_start_through_the_launch_page(hub):
    """alice: Computer Vision course on a Strix Halo, from the launch page to a server answering through
    the proxy; the pod as the API server holds it."""
    hub.cluster.api.create(f"/api/v1/namespaces/{hub.namespace}/persistentvolumeclaims", data_volume("imagenet-data"))
    client, response, _ = start_from_launch_page(hub, "alice", {"resource": "course-cv", "accelerator": "strix-halo"})
    assert response.status_code == 302, response.text[:500]
    assert spawn_outcome(hub, client, "local:alice", timeout=120).get("ready")
    token = hub.token(client, "local:alice")
    status = httpx.get(f"{hub.url}/user/local%3Aalice/api/status", headers={"Authorization": f"token {token}"}, timeout=30)
    assert status.status_code == 200 and "started" in status.json(), status.text[:300]

    (pod,) = pods(hub, "local:alice")
    spec, container = pod["spec"], pod["spec"]["containers"][0]
    assert spec["nodeName"] in {"strix-halo-1", "strix-halo-2"} and spec["nodeSelector"]["node-type"] == "strix-halo"
    assert container["resources"]["limits"]["amd.com/gpu"] == "1"
    assert container["image"] == "ghcr.io/example-university/pytorch-rocm:2.5-rocm6.2-gfx1151"
    assert spec["securityContext"]["runAsNonRoot"] is True and spec["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
    assert container["securityContext"]["capabilities"]["drop"] == ["ALL"] and container["securityContext"]["allowPrivilegeEscalation"] is False
    labels = pod["metadata"]["labels"]
    assert labels["teamhub.dev/resource"] == "course-cv" and labels["teamhub.dev/team"] == "cv-course"
    assert labels["teamhub.dev/accelerator"] == "strix-halo" and labels["app.kubernetes.io/instance"] == "teamhub"
    claimed = {v["persistentVolumeClaim"]["claimName"] for v in spec["volumes"] if "persistentVolumeClaim" in v}
    homes = {c for c in claimed if c.startswith("home-local-alice")}
    assert len(homes) == 1 and claimed - homes == {"imagenet-data", "course-materials"}, claimed
    assert spec["activeDeadlineSeconds"] == 60 * 60  # sessions.defaultMinutes
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["HSA_OVERRIDE_GFX_VERSION"] == "11.5.1" and env["NVIDIA_VISIBLE_DEVICES"] == "none"


def test_team_quota_counts_the_running_pods(hub):
    """After test_full_start: alice's pod holds cv-course's one GPU, so dave (same team) is refused, also
    after a hub restart (the count is restored from the servers that run)."""
    assert pods(hub, "local:alice"), "runs after test_full_start_through_the_launch_page"
    for restart in (False, True):
        if restart:
            hub.stop_hub()
            hub.start()
        client = hub.login("dave", "dave-demo-pass")
        r = hub.spawn_form(client, {"resource": "course-cv", "accelerator": "strix-halo"})
        assert r.status_code in (403, 429), (restart, r.status_code, r.text[:300])
        assert "quota" in r.text.lower() or "GPU" in r.text, r.text[:1000]
        assert not pods(hub, "local:dave")


def move_clock(hub, minutes: float) -> None:
    hub.clock.write_text(str(float(hub.clock.read_text() or 0) + minutes * 60))


@pytest.mark.parametrize("restart", [False, True], ids=["running-hub", "across-restart"])
def test_deadline_deletes_the_pod(hub, restart):
    """A session reaches its deadline (test clock): the hub deletes the pod, also when the deadline
    passed while the hub was down."""
    person = "erin" if restart else "frank"
    user = f"local:{person}"
    client, response, _ = start_from_launch_page(hub, person, {"resource": "cpu-small", "sessionMinutes": "30"})
    assert response.status_code == 302, response.text[:500]
    assert spawn_outcome(hub, client, user, timeout=120).get("ready")
    (pod,) = pods(hub, user)
    assert pod["spec"]["activeDeadlineSeconds"] == 30 * 60
    if restart:
        hub.stop_hub()
        move_clock(hub, 31)
        assert pods(hub, user), "the pod outlives the hub"
        hub.start()
    else:
        move_clock(hub, 31)
    wait_for(lambda: not pods(hub, user), f"the pod of {user} deleted at its deadline")
    api = hub.api(hub.token(client, user))
    # The pod goes inside the spawner's stop; JupyterHub forgets the server when that stop returns.
    wait_for(lambda: not api.get(f"/users/{user}").json()["servers"], f"the hub to forget the server of {user}")
