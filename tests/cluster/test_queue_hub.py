"""The GPU queue through the real hub (issue 26): the hub as it ships (hub.py) starting user servers in
singleuser.namespace, which Kueue's real manager queues, behind the chart's own admission policy.

Two Strix Halo GPUs (course.py). cv-course is guaranteed one and may borrow the other (max 2); vision-lab is
guaranteed one and may hold no more (max 1). Students start a GPU server a second apart (Kueue orders creations
within one second at random). Two run, two wait in line, their pods gated by Kueue, each shown their place on the
progress stream; one running server stops and the first in line is admitted and comes up; Stop while waiting takes
the pod and its Workload away; a borrowed GPU is never taken back from a running server, and a team at its cap
waits while another team takes a free GPU; a hub restart while two wait loses neither place and Stop still works;
a wait past queue.maxWaitMinutes (the hub's test clock) ends with a sentence; with Kueue down a GPU start gets a
sentence and a CPU start is unaffected. Every wait polls for a state with a generous deadline.
"""

from __future__ import annotations

import copy
import sqlite3
import time
from contextlib import closing
from datetime import datetime

import pytest
import yaml
from support import wait_for

from .chart import VALUES
from .controlplane import ApiError
from .hub import ClusterHub, people_overlay
from .test_hub_starts import spawn_outcome
from .test_queue import EXAMPLE, KUEUE_API, OVERLAY, render_queue, teardown

PEOPLE = {**{name: ["cv-course"] for name in ("ann", "ben", "cat", "dan")}, **{name: ["vision-lab"] for name in ("eve", "fay")}}
ADMIN = {"admin": ["vision-lab"]}  # the example's admin, with a password the test knows
GPU = {"resource": "pytorch", "accelerator": "strix-halo"}
CPU = {"resource": "cpu-small"}
# test_queue's two Strix Halo GPUs, shared: cv-course guaranteed one and may borrow the other, vision-lab one at most.
SHARES = {"cv-course": {"guaranteed": 1, "max": 2}, "vision-lab": {"guaranteed": 1, "max": 1}}
HUB_OVERLAY = {"catalog": {**OVERLAY["catalog"], "teams": {
    team: {"queue": {"accelerators": {"strix-halo": share}}} for team, share in SHARES.items()}}}
MAX_WAIT_MINUTES = 45  # the example's queue.maxWaitMinutes
WATCH = 60  # seconds: how long running servers are watched under contention
# Each scenario is several queued starts (JupyterHub's REST start answers a waiting one after slow_spawn_timeout) and
# waits for Kueue; the first also starts the hub.
pytestmark = pytest.mark.timeout(900)
GATE = "kueue.x-k8s.io/admission"
WAIT = 120  # seconds: generous, for a busy machine


@pytest.fixture(scope="module")
def hub(cluster, kueue, shipped_venv, tmp_path_factory):
    ns = cluster.new_namespace("queue-hub")
    users = kueue.managed_namespace("queue-hub-users", restricted=True)
    state = tmp_path_factory.mktemp("queue-hub")
    clock = state / "clock"
    clock.write_text("0")
    overlay = people_overlay(state / "overlay.yaml", {**PEOPLE, **ADMIN}, {**HUB_OVERLAY, "singleuser": {"namespace": users}})
    applied: list = []
    h = None
    try:
        queue_objects = render_queue(cluster, users, overlay)
        applied = [d for d in yaml.safe_load_all(queue_objects) if d]
        cluster.kubectl("apply", "-f", "-", input=queue_objects)
        # The example's catalog under the tier's overlay, with the chart's admission policy for the user namespace.
        h = ClusterHub(cluster, ns, shipped_venv, state, overlays=(overlay,), base=(EXAMPLE, VALUES[1]),
                       show=("templates/admission/policy.yaml",), extra_env={"TEAMHUB_TEST_CLOCK_FILE": str(clock)})
        h.users, h.clock = users, clock
        h.kueue = kueue
        kueue.wait(lambda: all(_active(cluster, d) for d in applied if d["kind"] in ("ClusterQueue", "LocalQueue")), WAIT,
                   "the queues Active")
        kueue.wait(lambda: _strix_gpus_free(cluster), WAIT, "the Strix Halo GPUs free of earlier tests' pods")
        h.start()
        yield h
    finally:
        if h is not None:
            h.stop()
        problems = teardown(cluster, users, applied)
        policy = f"{ns}-teamhub-user-pods"
        for kind in ("validatingadmissionpolicybinding", "validatingadmissionpolicy"):
            cluster.kubectl("delete", kind, policy, "--ignore-not-found", "--wait=false")
        cluster.delete_namespace(ns)
        assert not problems, problems
    assert not h.servers.errors, h.servers.errors


def _active(cluster, obj: dict) -> bool:
    ns = obj["metadata"].get("namespace")
    path = f"/apis/{KUEUE_API}/" + (f"namespaces/{ns}/" if ns else "") + f"{obj['kind'].lower()}s/{obj['metadata']['name']}"
    conditions = cluster.api.get(path).get("status", {}).get("conditions") or []
    return any(c["type"] == "Active" and c["status"] == "True" for c in conditions)


def _strix_gpus_free(cluster) -> bool:
    pods = cluster.api.get("/api/v1/pods")["items"]
    return not any(p["spec"].get("nodeName", "").startswith("strix-halo")
                   and p.get("status", {}).get("phase") not in ("Succeeded", "Failed") for p in pods)


def pod_of(hub, person: str) -> dict | None:
    items = hub.cluster.api.get(f"/api/v1/namespaces/{hub.users}/pods")["items"]
    mine = [p for p in items if p["metadata"].get("annotations", {}).get("hub.jupyter.org/username") == f"local:{person}"]
    return mine[0] if mine else None


def gated(pod: dict | None) -> bool:
    return bool(pod) and any(g["name"] == GATE for g in pod["spec"].get("schedulingGates") or [])


def server(api, person: str) -> dict:
    return api.get(f"/users/local:{person}").json().get("servers", {}).get("", {})


def states(hub, apis: dict) -> dict:
    """person -> "running" (ready, pod Running), "waiting" (start pending, pod gated) or what else it is."""
    out = {}
    for person, api in apis.items():
        s, pod = server(api, person), pod_of(hub, person)
        if s.get("ready") and pod and pod["status"].get("phase") == "Running" and not gated(pod):
            out[person] = "running"
        elif s.get("pending") == "spawn" and gated(pod):
            out[person] = "waiting"
        elif not s and pod is None:
            out[person] = "stopped"
        else:
            out[person] = f"other: server {s}, pod {pod and (pod['status'].get('phase'), gated(pod))}"
    return out


def start_in_order(hub, people) -> dict:
    """Each person's REST client after their start was asked; the next asks a second after the previous pod exists."""
    apis = {}
    hub.cluster.top_up_volumes(free=len(people) + 2)  # a free PV per home PVC
    for person in people:
        client = hub.login(person, f"{person}-demo-pass")
        api = hub.api(hub.token(client, f"local:{person}"))
        r = api.post(f"/users/local:{person}/server", json=GPU, timeout=60)
        assert r.status_code in (201, 202), r.text[:500]
        pod = wait_for(lambda person=person: pod_of(hub, person), f"the pod of {person}", WAIT)
        stamp = datetime.fromisoformat(pod["metadata"]["creationTimestamp"].replace("Z", "+00:00")).timestamp()
        wait_for(lambda stamp=stamp: time.time() >= stamp + 1.05, "the next second", 10)
        apis[person] = api
    return apis


def workloads(hub) -> list[dict]:
    return hub.cluster.api.get(f"/apis/{KUEUE_API}/namespaces/{hub.users}/workloads")["items"]


def usage_started(hub, person: str) -> float | None:
    with closing(sqlite3.connect(hub.state / "data" / "jupyterhub.sqlite", timeout=30)) as con:
        row = con.execute("SELECT started FROM teamhub_usage WHERE server = ? ORDER BY id DESC LIMIT 1",
                          (f"local:{person}/",)).fetchone()
    return row[0] if row else None


def place_shown(api, person: str, wanted: str) -> str:
    """The progress stream's (what the progress page shows) first waiting sentence containing `wanted`."""
    import json

    deadline = time.monotonic() + WAIT
    said = []
    with api.stream("GET", f"/users/local:{person}/server/progress", timeout=WAIT) as r:
        for line in r.iter_lines():
            if line.startswith("data:"):
                message = json.loads(line[5:]).get("message", "")
                said.append(message)
                if wanted in message:
                    return message
            if time.monotonic() > deadline:
                break
    raise AssertionError(f"{person}'s progress never said {wanted!r}: {said}")


def stop(api, person: str) -> None:
    r = api.delete(f"/users/local:{person}/server", timeout=60)
    assert r.status_code in (202, 204), r.text[:500]


def test_two_gpus_four_students_two_run_two_wait_and_the_first_in_line_is_next(hub):
    apis = start_in_order(hub, ["ann", "ben", "cat", "dan"])
    expected = {"ann": "running", "ben": "running", "cat": "waiting", "dan": "waiting"}
    wait_for(lambda: states(hub, apis) == expected, f"two running, two waiting: {expected}", WAIT)
    running = {p: pod_of(hub, p)["metadata"]["uid"] for p in ("ann", "ben")}
    ann = pod_of(hub, "ann")["metadata"]["name"]
    # The progress page: the place from Kueue's visibility API, the team's GPUs in use from the hub's pods.
    assert place_shown(apis["cat"], "cat", "in line") == "You are 1st in line for AMD Radeon 8060S (team cv-course: 2 of 2 in use)."
    assert place_shown(apis["dan"], "dan", "in line") == "You are 2nd in line for AMD Radeon 8060S (team cv-course: 2 of 2 in use)."
    # The admins' usage page lists who waits, since when (beside the running servers).
    page = hub.login("admin", "admin-demo-pass").get("/hub/usage").text
    assert page.count("waiting in line for a GPU since") == 2, page[:3000]
    # Nothing of the wait is charged: the waiting have no usage record yet.
    assert usage_started(hub, "cat") is None and usage_started(hub, "dan") is None

    stopped_at = time.time()
    stop(apis["ann"], "ann")
    expected = {"ann": "stopped", "ben": "running", "cat": "running", "dan": "waiting"}
    wait_for(lambda: states(hub, apis) == expected, f"the first in line admitted and up: {expected}", WAIT)
    assert pod_of(hub, "ben")["metadata"]["uid"] == running["ben"]  # nobody was preempted to make room
    assert place_shown(apis["dan"], "dan", "1st") == "You are 1st in line for AMD Radeon 8060S (team cv-course: 2 of 2 in use)."
    # cat's session and usage begin at admission, after ann's stop, not when cat joined the line
    assert usage_started(hub, "cat") >= stopped_at - 1

    dan = pod_of(hub, "dan")
    stop(apis["dan"], "dan")  # Stop while waiting: the pod and its Workload go
    wait_for(lambda: pod_of(hub, "dan") is None, "dan's pod gone", WAIT)
    wait_for(lambda: not [w for w in workloads(hub) if any(o.get("uid") == dan["metadata"]["uid"]
                                                           for o in w["metadata"].get("ownerReferences", []))],
             "dan's Workload gone", WAIT)
    assert states(hub, apis) == {"ann": "stopped", "ben": "running", "cat": "running", "dan": "stopped"}
    assert usage_started(hub, "dan") is None

    # Only the pods of the two who pressed Stop were ever deleted: never a running server's.
    deleted = {e["objectRef"].get("name") for e in hub.cluster.audit_events(hub.users, "pods", "delete")}
    assert deleted == {ann, dan["metadata"]["name"]}, deleted
    assert not [e for e in hub.cluster.audit_events(hub.users, "pods") if e["objectRef"].get("subresource") == "eviction"]


def test_the_policy_accepts_kueues_mutations_and_refuses_a_gpu_pod_outside_the_queue(hub):
    """The chart's policy and Kueue's webhook on the same pods: the hub's queued pods were admitted with Kueue's
    label, annotation, finalizer and gates, placed where the catalog says; the same pod without the queue label
    is refused by the rule `queue`."""
    pod = pod_of(hub, "cat")
    assert pod is not None, "runs after the scenario above: cat's server is up"
    meta = pod["metadata"]
    assert meta["labels"].get("kueue.x-k8s.io/managed") == "true" and "kueue.x-k8s.io/managed" in meta.get("finalizers", [])
    assert "kueue.x-k8s.io/role-hash" in meta.get("annotations", {})
    assert pod["spec"]["nodeSelector"] == {"node-type": "strix-halo"}  # the flavor's nodeLabels changed nothing
    hub_api = hub.cluster.service_account_api(hub.namespace, "teamhub-hub")
    asked = _as_asked(pod)
    hub_api.create(f"/api/v1/namespaces/{hub.users}/pods?dryRun=All", asked)  # through Kueue's webhook and the policy
    outside = copy.deepcopy(asked)
    del outside["metadata"]["labels"]["kueue.x-k8s.io/queue-name"]
    try:
        hub_api.create(f"/api/v1/namespaces/{hub.users}/pods?dryRun=All", outside)
    except ApiError as exc:
        assert exc.status == 403 and "teamhub rule queue:" in exc.body["message"], exc
    else:
        raise AssertionError("a GPU pod of the hub without the queue label was admitted")


def _as_asked(pod: dict) -> dict:
    """A running pod back to what the hub asked for: without the status, the server's fields and Kueue's additions."""
    asked = copy.deepcopy(pod)
    asked.pop("status", None)
    meta = asked["metadata"]
    for key in ("uid", "resourceVersion", "creationTimestamp", "managedFields", "finalizers", "generation"):
        meta.pop(key, None)
    meta["name"] = meta["name"] + "-probe"
    meta["labels"] = {k: v for k, v in meta["labels"].items() if k == "kueue.x-k8s.io/queue-name" or not k.startswith("kueue.x-k8s.io/")}
    meta["annotations"] = {k: v for k, v in meta.get("annotations", {}).items() if not k.startswith("kueue.x-k8s.io/")}
    spec = asked["spec"]
    for key in ("nodeName", "schedulingGates"):
        spec.pop(key, None)
    spec["volumes"] = [v for v in spec.get("volumes", []) if v["name"] != "home"]
    for container in spec["containers"]:
        container["volumeMounts"] = [m for m in container.get("volumeMounts", []) if m["name"] != "home"]
    return asked


def api_of(hub, person: str):
    return hub.api(hub.token(hub.login(person, f"{person}-demo-pass"), f"local:{person}"))


def outcome(hub, person: str) -> dict:
    """The progress stream's last event (ready or failed), as the person's progress page reads it."""
    return spawn_outcome(hub, hub.login(person, f"{person}-demo-pass"), f"local:{person}", timeout=WAIT)


def stop_everyone(hub) -> None:
    """Every person's server stopped and every pod gone: the next test starts from an empty pool."""
    for person in PEOPLE:
        api = api_of(hub, person)
        if server(api, person):
            stop(api, person)
    wait_for(lambda: all(pod_of(hub, p) is None for p in PEOPLE), "every pod gone", WAIT)
    wait_for(lambda: all(not server(api_of(hub, p), p) for p in PEOPLE), "every server stopped", WAIT)


def uids(hub, people) -> dict:
    return {p: (pod_of(hub, p) or {}).get("metadata", {}).get("uid") for p in people}


def test_a_borrowed_gpu_is_never_taken_back_and_a_team_at_its_cap_waits(hub):
    """After the scenario above ben and cat (cv-course) run, one of them on vision-lab's guaranteed GPU, borrowed while
    vision-lab was idle. eve (vision-lab) now waits rather than have a running server ended for her, however long
    (watched for WATCH seconds); cat stops and eve is admitted. fay (vision-lab) waits; ben stops and a GPU is free,
    but vision-lab holds its max (1): fay keeps waiting while ann (cv-course, after her) takes the free GPU."""
    apis = {p: api_of(hub, p) for p in PEOPLE}
    wait_for(lambda: states(hub, {p: apis[p] for p in ("ben", "cat")}) == {"ben": "running", "cat": "running"},
             "ben and cat running (the scenario above)", WAIT)
    start_in_order(hub, ["eve"])
    running = uids(hub, ("ben", "cat"))
    assert place_shown(apis["eve"], "eve", "in line") == "You are 1st in line for AMD Radeon 8060S (team vision-lab: 0 of 1 in use)."
    end = time.monotonic() + WATCH
    while time.monotonic() < end:  # contention: nothing ends a running server to make room
        assert uids(hub, ("ben", "cat")) == running
        assert states(hub, {p: apis[p] for p in ("ben", "cat", "eve")}) == {"ben": "running", "cat": "running", "eve": "waiting"}
        time.sleep(1)

    stop(apis["cat"], "cat")
    wait_for(lambda: states(hub, {p: apis[p] for p in ("ben", "eve")}) == {"ben": "running", "eve": "running"},
             "eve admitted to vision-lab's own GPU", WAIT)
    start_in_order(hub, ["fay"])
    wait_for(lambda: states(hub, {"fay": apis["fay"]}) == {"fay": "waiting"}, "fay waiting", WAIT)
    stop(apis["ben"], "ben")
    wait_for(lambda: pod_of(hub, "ben") is None, "ben's pod gone", WAIT)
    start_in_order(hub, ["ann"])
    expected = {"ann": "running", "eve": "running", "fay": "waiting"}
    wait_for(lambda: states(hub, {p: apis[p] for p in expected}) == expected,
             f"the free GPU to cv-course, vision-lab at its cap: {expected}", WAIT)
    assert place_shown(apis["fay"], "fay", "in line") == "You are 1st in line for AMD Radeon 8060S (team vision-lab: 1 of 1 in use)."


def test_the_waiting_page_shows_the_place_in_a_browser(hub):
    """dan's progress page as he sees it in Debian's chromium while he waits behind ann (ben and cat run): his place
    and his team's GPUs in use. A picture for people (README): test-output/queue-waiting.png."""
    from browser.browserkit import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS
    from playwright.sync_api import sync_playwright

    stop_everyone(hub)
    apis = start_in_order(hub, ["ben", "cat", "ann", "dan"])
    expected = {"ben": "running", "cat": "running", "ann": "waiting", "dan": "waiting"}
    wait_for(lambda: states(hub, apis) == expected, f"two running, two waiting: {expected}", WAIT)
    sentence = "You are 2nd in line for AMD Radeon 8060S (team cv-course: 2 of 2 in use)."
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_context(viewport={"width": 1366, "height": 768}).new_page()
        try:
            page.set_default_timeout(WAIT * 1000)
            page.goto(f"{hub.url}/hub/login")
            page.fill("#username_input", "dan")
            page.fill("#password_input", "dan-demo-pass")
            page.click("#login_submit")
            page.wait_for_url(lambda url: "/hub/login" not in url)
            page.goto(f"{hub.url}/hub/spawn-pending/local%3Adan")
            page.locator("#progress-message", has_text=sentence).wait_for()
            page.screenshot(path=str(ARTIFACTS / "queue-waiting.png"), full_page=True)
        except Exception:
            page.screenshot(path=str(ARTIFACTS / "queue-waiting-failed.png"), full_page=True)
            raise
        finally:
            browser.close()
    stop_everyone(hub)


def test_a_hub_restart_while_two_wait_loses_neither_place_and_stop_still_works(hub):
    """ben and cat run, ann and dan wait; the hub restarts. dan presses Stop while still waiting (JupyterHub is still
    checking his server: this was an HTTP 500 until admission); his pod and Workload go. ben stops and ann, first in
    line, comes up on the pod she had."""
    stop_everyone(hub)
    apis = start_in_order(hub, ["ben", "cat", "ann", "dan"])
    expected = {"ben": "running", "cat": "running", "ann": "waiting", "dan": "waiting"}
    wait_for(lambda: states(hub, apis) == expected, f"two running, two waiting: {expected}", WAIT)
    waiting = uids(hub, ("ann", "dan"))
    running = uids(hub, ("ben", "cat"))

    hub.stop_hub()
    hub.start()
    assert uids(hub, ("ann", "dan")) == waiting and all(gated(pod_of(hub, p)) for p in waiting)
    assert uids(hub, ("ben", "cat")) == running

    apis = {p: api_of(hub, p) for p in apis}  # tokens outlive the restart; fresh clients all the same
    stop(apis["dan"], "dan")
    wait_for(lambda: pod_of(hub, "dan") is None, "dan's pod gone", WAIT)
    wait_for(lambda: not [w for w in workloads(hub) if any(o.get("uid") == waiting["dan"]
                                                           for o in w["metadata"].get("ownerReferences", []))],
             "dan's Workload gone", WAIT)
    wait_for(lambda: not server(apis["dan"], "dan"), "dan's server stopped", WAIT)
    assert uids(hub, ("ann",)) == {"ann": waiting["ann"]} and gated(pod_of(hub, "ann"))

    stop(apis["ben"], "ben")
    wait_for(lambda: server(apis["ann"], "ann").get("ready") and not gated(pod_of(hub, "ann")), "ann admitted and up", WAIT)
    assert pod_of(hub, "ann")["metadata"]["uid"] == waiting["ann"]  # the same pod: her place was kept
    assert uids(hub, ("cat",)) == {"cat": running["cat"]}
    stop_everyone(hub)


def test_a_wait_past_max_wait_minutes_ends_with_a_sentence(hub):
    """ben and cat run, ann waits; the hub's clock moves past queue.maxWaitMinutes: ann's start ends with the sentence
    and her pod leaves the line."""
    apis = start_in_order(hub, ["ben", "cat", "ann"])
    expected = {"ben": "running", "cat": "running", "ann": "waiting"}
    wait_for(lambda: states(hub, apis) == expected, f"two running, one waiting: {expected}", WAIT)
    try:
        hub.clock.write_text(str((MAX_WAIT_MINUTES + 1) * 60))
        event = outcome(hub, "ann")
    finally:
        hub.clock.write_text("0")
    assert event.get("failed"), event
    assert "No AMD Radeon 8060S GPU came free for team cv-course within 45 minutes (queue.maxWaitMinutes)" in event["message"], event
    wait_for(lambda: pod_of(hub, "ann") is None, "ann's pod gone", WAIT)
    assert states(hub, {p: apis[p] for p in ("ben", "cat")}) == {"ben": "running", "cat": "running"}
    stop_everyone(hub)


def test_with_kueue_down_a_gpu_start_gets_a_sentence_and_a_cpu_start_runs(hub):
    """Kueue's manager stopped (its webhooks, failing closed, stay): a GPU start ends with the sentence and leaves no
    pod; a CPU server in the same namespace starts as usual. Kueue back: GPU starts work again."""
    from teamhub.hub.queueing import KUEUE_DOWN

    hub.kueue.pause()
    try:
        hub.cluster.top_up_volumes(free=4)
        ann = api_of(hub, "ann")
        r = ann.post("/users/local:ann/server", json=GPU, timeout=60)
        # A start that fails within JupyterHub's slow_spawn_timeout is answered with its sentence (JupyterHub's 500
        # for a failed start, spawnerrors.py); a later failure ends the progress stream with it.
        said = r.json().get("message", "") if r.status_code == 500 else outcome(hub, "ann").get("message", "")
        assert r.status_code in (202, 500) and KUEUE_DOWN in said, (r.status_code, r.text[:500], said)
        assert pod_of(hub, "ann") is None
        ben = api_of(hub, "ben")
        r = ben.post("/users/local:ben/server", json=CPU, timeout=60)
        assert r.status_code in (201, 202), r.text[:500]
        hub.wait_ready(ben, "local:ben", WAIT)
        assert "kueue.x-k8s.io/queue-name" not in pod_of(hub, "ben")["metadata"]["labels"]
        stop(ben, "ben")
        wait_for(lambda: pod_of(hub, "ben") is None, "ben's CPU pod gone", WAIT)
    finally:
        hub.kueue.resume()
    apis = start_in_order(hub, ["ann"])
    wait_for(lambda: states(hub, apis) == {"ann": "running"}, "ann's GPU server running with Kueue back", WAIT)
    stop_everyone(hub)
