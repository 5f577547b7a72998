"""The spawner's side of the GPU queue (issue 26, hub/queueing.py): user servers in singleuser.namespace, the
time in line counted against neither the start timeout nor the session, a sentence when the wait passes
queue.maxWaitMinutes, and the metrics by team and kind. Kueue itself runs in tests/cluster/test_queue.py."""

from __future__ import annotations

import asyncio
import time

from hubhelpers import configured, kube_spawner
from support import CONFIG
from teamhub.hub import queueing, sessions

EXAMPLE = CONFIG / "examples" / "gpu-queue.yaml"
GPU = {"resource": "pytorch", "accelerator": "strix-halo"}
CPU = {"resource": "cpu-small"}


def _spawner(options: dict, username: str = "local:student1"):
    sp = kube_spawner(configured(EXAMPLE), username)
    asyncio.run(sp.teamhub_apply(options))
    return sp


def _pod(gates=("kueue.x-k8s.io/admission", "kueue.x-k8s.io/topology"), phase="Pending") -> dict:
    return {"metadata": {"creationTimestamp": "2026-12-07T16:00:00Z",
                         "labels": {"kueue.x-k8s.io/queue-name": "team-cv-course"}},
            "spec": {"schedulingGates": [{"name": g} for g in gates]}, "status": {"phase": phase}}


def _sample(name: str, **labels) -> float:
    from prometheus_client import REGISTRY

    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_user_servers_start_in_singleuser_namespace():
    c = configured(EXAMPLE, environ={"POD_NAMESPACE": "teamhub"})
    assert c.KubeSpawner.namespace == "teamhub-users"
    assert configured(environ={"POD_NAMESPACE": "teamhub"}).KubeSpawner.namespace == "teamhub"


def test_a_queued_start_gets_the_wait_on_top_of_its_start_timeout_and_a_cpu_start_does_not():
    gpu = _spawner(GPU)
    base = kube_spawner(configured(EXAMPLE)).start_timeout
    assert gpu.teamhub_line is not None and gpu.start_timeout == base + 45 * 60  # the example's maxWaitMinutes
    cpu = _spawner(CPU)
    assert cpu.teamhub_line is None and cpu.start_timeout == base
    gpu.teamhub_reset()
    assert gpu.start_timeout == base  # the next start begins from the configured value


def test_the_session_starts_at_admission_not_when_the_line_was_joined():
    sp = _spawner(GPU)
    joined = sessions.now()
    # before admission, the deadline is the latest the session could end: the whole wait plus its minutes
    assert sp.teamhub_deadline >= joined + (45 + 60) * 60 - 5
    assert sp.teamhub_info.get("usage") is None  # no usage record while in line
    line = sp.teamhub_line
    line.entered -= 600  # ten minutes in line
    assert queueing.check(sp, line, _pod()) is None
    assert queueing.check(sp, line, _pod(gates=())) is None  # Kueue removed its gates
    assert abs(sp.teamhub_deadline - (sessions.now() + 60 * 60)) < 5
    assert sp.teamhub_info["queued_seconds"] >= 600


def test_waiting_longer_than_max_wait_ends_the_start_with_a_sentence():
    sp = _spawner(GPU)
    line = sp.teamhub_line
    before = _sample("teamhub_queued", team="cv-course", accelerator="strix-halo")
    assert queueing.check(sp, line, _pod()) is None
    assert _sample("teamhub_queued", team="cv-course", accelerator="strix-halo") == before + 1
    message = line.observe(_pod(), now=line.entered + 45 * 60 + 1)
    assert message and "within 45 minutes (queue.maxWaitMinutes)" in message and "AMD Radeon 8060S" in message
    assert _sample("teamhub_queued", team="cv-course", accelerator="strix-halo") == before  # out of line


def test_admission_is_measured_and_the_usual_start_timeout_applies_after_it():
    sp = _spawner(GPU)
    line = sp.teamhub_line
    count = _sample("teamhub_queue_wait_seconds_count", team="cv-course", accelerator="strix-halo")
    assert line.observe(_pod(), now=line.entered + 1) is None
    assert line.observe(_pod(gates=()), now=line.entered + 30) is None
    assert _sample("teamhub_queue_wait_seconds_count", team="cv-course", accelerator="strix-halo") == count + 1
    assert _sample("teamhub_queue_wait_seconds_sum", team="cv-course", accelerator="strix-halo") >= 30
    # a minute-long wait in line already passed the start timeout a plain start would have had: still fine
    assert line.observe(_pod(gates=()), now=line.entered + 30 + line.start_timeout - 1) is None
    late = line.observe(_pod(gates=()), now=line.entered + 30 + line.start_timeout + 1)
    assert late and "did not start within" in late
    assert line.observe(_pod(gates=(), phase="Running"), now=line.entered + 30 + line.start_timeout + 1) is None


def test_a_pod_left_in_line_by_the_previous_hub_keeps_its_place():
    sp = _spawner(GPU)
    state = sp.get_state()
    restored = kube_spawner(configured(EXAMPLE), "local:student1")
    restored.load_state(state)
    line = queueing.adopted(restored, _pod())
    assert line is not None and line.waiting and line.entered < time.time()
    assert queueing.adopted(restored, {**_pod(), "metadata": {"labels": {}}}) is None  # not a queued pod
    assert queueing.check(restored, line, _pod(gates=())) is None  # admitted while adopted: the session starts now
    assert abs(restored.teamhub_deadline - (sessions.now() + 60 * 60)) < 5


def test_the_place_in_line_in_words():
    assert [queueing.ordinal(n) for n in (1, 2, 3, 4, 11, 12, 13, 21, 22, 101, 111)] == \
        ["1st", "2nd", "3rd", "4th", "11th", "12th", "13th", "21st", "22nd", "101st", "111th"]
    line = _spawner(GPU).teamhub_line
    assert queueing.waiting_message(line, 2, 2, 2) == "You are 2nd in line for AMD Radeon 8060S (team cv-course: 2 of 2 in use)."
    assert queueing.waiting_message(line, None, 1, 3) == "Waiting for a GPU: AMD Radeon 8060S (team cv-course: 1 of 3 in use)."


def test_kueues_pending_workloads_give_the_place_of_this_pod_only():
    items = [{"metadata": {"ownerReferences": [{"kind": "Pod", "uid": "a"}]}, "positionInLocalQueue": 0},
             {"metadata": {"ownerReferences": [{"kind": "Pod", "uid": "b"}]}, "positionInLocalQueue": 1}]
    assert queueing.place_of(items, "b") == 2 and queueing.place_of(items, "a") == 1
    assert queueing.place_of(items, "c") is None and queueing.place_of(None, "a") is None


def test_gpus_in_use_count_the_teams_admitted_pods_of_that_kind():
    def pod(team, kind, gpus, gates=(), phase="Running", deleting=False):
        meta = {"labels": {"teamhub.dev/team": team, "teamhub.dev/accelerator": kind}}
        if deleting:
            meta["deletionTimestamp"] = "2026-12-07T16:00:00Z"
        return {"metadata": meta, "status": {"phase": phase},
                "spec": {"schedulingGates": [{"name": g} for g in gates],
                         "containers": [{"resources": {"limits": {"amd.com/gpu": str(gpus)}}}]}}
    pods = [pod("cv-course", "strix-halo", 1), pod("cv-course", "strix-halo", 1, phase="Pending"),
            pod("cv-course", "strix-halo", 1, gates=(queueing.GATE,)), pod("cv-course", "strix-halo", 1, deleting=True),
            pod("cv-course", "mi300x", 2), pod("vision-lab", "strix-halo", 1), pod("cv-course", "strix-halo", 1, phase="Succeeded")]
    assert queueing.gpus_in_use(pods, "cv-course", "strix-halo", "amd.com/gpu") == 2


def test_without_kueues_visibility_api_the_page_says_waiting_without_a_number():
    class Refusing:
        async def call_api(self, *args, **kwargs):
            raise OSError("connection refused")

    class Answering:
        async def call_api(self, path, method, **kwargs):
            assert path == "/apis/visibility.kueue.x-k8s.io/v1beta2/namespaces/users-a/localqueues/team-x/pendingworkloads"
            return {"items": [{"metadata": {"ownerReferences": [{"uid": "p"}]}, "positionInLocalQueue": 2}]}

    assert asyncio.run(queueing.pending(Refusing(), "users-b", "team-x")) is None
    items = asyncio.run(queueing.pending(Answering(), "users-a", "team-x"))
    assert queueing.place_of(items, "p") == 3


def test_the_progress_stream_carries_the_place_while_the_pod_waits(monkeypatch):
    sp = _spawner(GPU)
    line = sp.teamhub_line
    assert line.observe(_pod()) is None and line.in_line

    class Reflector:
        pods = {f"{sp.namespace}/{sp.pod_name}": {**_pod(), "metadata": {**_pod()["metadata"], "uid": "me"}}}

    class Client:
        async def call_api(self, *args, **kwargs):
            return {"items": [{"metadata": {"ownerReferences": [{"uid": "me"}]}, "positionInLocalQueue": 1}]}

    class Api:
        api_client = Client()

    monkeypatch.setattr(type(sp), "pod_reflector", Reflector())  # KubeSpawner's shared reflector is a class property
    sp.api = Api()
    queueing._pending_cache.clear()

    async def events():
        await asyncio.sleep(queueing.PLACE_EVERY * 1.5)  # a pod event arrives later
        yield {"progress": 50, "message": "pod event"}

    async def collect():
        return [e["message"] async for e in queueing.with_place(sp, events())]

    said = asyncio.run(collect())
    assert said[0] == "You are 2nd in line for AMD Radeon 8060S (team cv-course: 0 of 3 in use)."
    assert said[-1] == "pod event" and said.count(said[0]) == 1  # said once, while it did not change
    line.leave()


def test_starts_waiting_in_line_never_fill_the_concurrent_start_limit():
    """JupyterHub's concurrent_spawn_limit would count every queued start and 429 everyone after them: with the queue
    on it is off and the spawner counts starts without those in line."""
    assert configured(EXAMPLE).JupyterHub.concurrent_spawn_limit == 0
    assert configured().JupyterHub.concurrent_spawn_limit == 100  # queue off: JupyterHub's own limit, unchanged

    class Waiting:
        pending = "spawn"

        class teamhub_line:  # noqa: N801 - a stand-in for a Line whose pod is gated
            in_line = True

    class Starting:
        pending = "spawn"
        teamhub_line = None

    class Running:
        pending = None

    class User:
        def __init__(self, *spawners):
            self.spawners = {str(i): s for i, s in enumerate(spawners)}

    users = [User(Waiting(), Running()), User(Starting()), User(Waiting())]
    assert queueing.busy_starts(users) == 1


def test_the_launch_page_says_before_start_when_a_choice_would_wait():
    from teamhub.catalog.access import Person
    from teamhub.hub import launchpage

    catalog = configured(EXAMPLE).TeamhubKubeSpawner.teamhub_runtime.catalog
    # cv-course may use 3 Strix Halo GPUs (pool 4); vision-lab the whole pool
    assert queueing.launch_note(catalog, "cv-course", "strix-halo", {}) == ""
    full = {("cv-course", "strix-halo"): [3, 1]}
    assert queueing.launch_note(catalog, "cv-course", "strix-halo", full) == \
        "Team cv-course may use 3 AMD Radeon 8060S GPUs and 3 are in use; you would be 2nd in line."
    pool = {("cv-course", "strix-halo"): [2, 0], ("vision-lab", "strix-halo"): [2, 0]}
    assert queueing.launch_note(catalog, "vision-lab", "strix-halo", pool) == \
        "All 4 AMD Radeon 8060S GPUs are in use; you would be 1st in line."
    behind = {("vision-lab", "strix-halo"): [1, 2]}
    assert queueing.launch_note(catalog, "vision-lab", "strix-halo", behind) == \
        "2 people are already waiting for one; you would be 3rd in line."
    person = Person("local:student1")
    page = launchpage.render(catalog, person, queue_note=lambda team, kind: queueing.launch_note(catalog, team, kind, full))
    assert "you would be 2nd in line" in page and page.count('class="th-queue"') == 1  # under Strix Halo only
    assert 'class="th-queue"' not in launchpage.render(catalog, person)  # the queue off: the page as before


def test_kueue_down_is_a_sentence_for_the_gpu_start_only():
    from kubernetes_asyncio.client.rest import ApiException

    down = ApiException(status=500)
    down.body = ('{"kind":"Status","message":"Internal error occurred: failed calling webhook \\"mpod.kb.io\\": failed to '
                 'call webhook: Post \\"https://kueue-webhook-service.kueue-system.svc:9443/mutate--v1-pod\\": connect: '
                 'connection refused","code":500}')
    assert queueing.kueue_down(down) == queueing.KUEUE_DOWN
    other = ApiException(status=500)
    other.body = '{"message":"Internal error occurred: failed calling webhook \\"gate.example.org\\""}'
    assert queueing.kueue_down(other) is None
    refused = ApiException(status=403)
    refused.body = "teamhub rule queue"
    assert queueing.kueue_down(refused) is None


def test_stop_while_adopted_in_line_ends_jupyterhubs_check_instead_of_a_500():
    """After a hub restart JupyterHub checks a server in line (pending "check") until Kueue admits it, and refuses
    to stop a server under check. `leave_adopted` asks the spawner's get_url to give up, with a short http_timeout,
    and waits for JupyterHub's own check to stop it; a server not adopted in line is left to JupyterHub."""
    from types import SimpleNamespace

    line = queueing.Line("cv-course", "strix-halo", "AMD Radeon 8060S", 60, 300)
    spawner = SimpleNamespace(pending="check", teamhub_line=line, http_timeout=30, teamhub_leave_asked=False,
                              server=object())
    seen = {}

    async def jupyterhubs_check():
        while not spawner.teamhub_leave_asked:  # the spawner's get_url loop, until Stop is pressed
            await asyncio.sleep(0.01)
        seen["http_timeout"] = spawner.http_timeout
        line.leave()
        spawner.pending, spawner.server = None, None  # nothing answered: JupyterHub stopped the server

    async def stop():
        check = asyncio.ensure_future(jupyterhubs_check())
        assert queueing.adopting_in_line(spawner)
        handled = await queueing.leave_adopted(spawner, timeout=10)
        await check
        return handled

    assert asyncio.run(stop())
    assert seen["http_timeout"] == 1 and spawner.http_timeout == 30 and not spawner.teamhub_leave_asked
    admitted = SimpleNamespace(pending="check", teamhub_line=None, http_timeout=30, server=object())
    assert not asyncio.run(queueing.leave_adopted(admitted))
    starting = SimpleNamespace(pending="spawn", teamhub_line=queueing.Line("cv-course", "strix-halo", "x", 60, 300))
    assert not asyncio.run(queueing.leave_adopted(starting))
