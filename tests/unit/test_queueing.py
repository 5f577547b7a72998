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
