"""The GPU queue (issue 26): values checked with file:line sentences, Kueue's objects from the catalog, and the
launches Kueue could never admit refused before their pod exists."""

from __future__ import annotations

import pytest
from support import CONFIG
from teamhub.catalog import loader, queue
from teamhub.catalog.access import access_of
from teamhub.catalog.placement import build_launch
from teamhub.values.source import load_text

EXAMPLE = (CONFIG / "examples" / "gpu-queue.yaml").read_text(encoding="utf-8")


def check(text: str):
    return loader.check(load_text(text, "queue.yaml"))


def edit(replacements: dict) -> str:
    text = EXAMPLE
    for old, new in replacements.items():
        assert old in text, old
        text = text.replace(old, new, 1)
    return text


def line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


def errors(text: str) -> list:
    return [str(p) for p in check(text).errors]


def test_the_example_is_valid_and_its_objects_add_up_to_the_pool():
    result = check(EXAMPLE)
    assert result.ok, [str(p) for p in result.problems]
    objs = queue.objects(result.catalog, "t-teamhub")
    kinds = [o["kind"] for o in objs]
    assert kinds == ["ResourceFlavor"] * 2 + ["Cohort"] + ["ClusterQueue"] * 3 + ["LocalQueue"] * 3
    flavors = {o["metadata"]["name"]: o["spec"]["nodeLabels"] for o in objs if o["kind"] == "ResourceFlavor"}
    assert flavors == {"t-teamhub-mi300x": {"node-type": "mi300x"}, "t-teamhub-strix-halo": {"node-type": "strix-halo"}}

    def quotas(obj, key):
        return {f["name"]: int(f["resources"][0][key]) for g in obj["spec"]["resourceGroups"] for f in g["flavors"]}

    cohort = next(o for o in objs if o["kind"] == "Cohort")
    queues = [o for o in objs if o["kind"] == "ClusterQueue"]
    for flavor, capacity in (("t-teamhub-strix-halo", 4), ("t-teamhub-mi300x", 8)):
        assert quotas(cohort, "nominalQuota")[flavor] + sum(quotas(q, "nominalQuota")[flavor] for q in queues) == capacity
    cv = next(q for q in queues if q["metadata"]["name"] == "t-teamhub-cv-course")
    assert quotas(cv, "nominalQuota") == {"t-teamhub-mi300x": 0, "t-teamhub-strix-halo": 2}
    assert quotas(cv, "borrowingLimit") == {"t-teamhub-mi300x": 2, "t-teamhub-strix-halo": 1}
    for q in queues:
        assert q["spec"]["preemption"] == {"reclaimWithinCohort": "Never", "borrowWithinCohort": {"policy": "Never"},
                                           "withinClusterQueue": "Never"}
        assert q["spec"]["cohortName"] == "t-teamhub"
        assert q["spec"]["namespaceSelector"] == {"matchLabels": {"kubernetes.io/metadata.name": "teamhub-users"}}
    assert {q["metadata"]["name"]: q["spec"]["fairSharing"]["weight"] for q in queues} == {
        "t-teamhub-cv-course": "1", "t-teamhub-everyone": "1", "t-teamhub-vision-lab": "2"}
    locals_ = [(o["metadata"]["namespace"], o["metadata"]["name"], o["spec"]["clusterQueue"]) for o in objs if o["kind"] == "LocalQueue"]
    assert ("teamhub-users", "team-cv-course", "t-teamhub-cv-course") in locals_


def test_a_team_cap_above_the_pool_names_its_line():
    text = edit({"strix-halo: {guaranteed: 2, max: 3}": "strix-halo: {guaranteed: 2, max: 5}"})
    assert errors(text) == [
        f"queue.yaml:{line_of(text, 'max: 5')}: catalog.teams.cv-course.queue.accelerators.strix-halo.max: "
        "5 is more than the pool: catalog.accelerators.strix-halo.capacity is 4"]


def test_guarantees_beyond_the_pool_and_above_the_teams_max():
    text = edit({"strix-halo: {guaranteed: 1}": "strix-halo: {guaranteed: 3}",
                 "mi300x: {guaranteed: 0, max: 2}": "mi300x: {guaranteed: 3, max: 2}"})
    found = errors(text)
    assert f"queue.yaml:{line_of(text, 'capacity: 4')}: catalog.accelerators.strix-halo.capacity: the teams are guaranteed 5 " \
           "devices of this kind (queue.accelerators.strix-halo.guaranteed), more than the pool of 4" in found
    assert any("catalog.teams.cv-course.queue.accelerators.mi300x.guaranteed: 3 is more than this team's max (2)" in f for f in found)


def test_queue_on_needs_a_namespace_for_user_servers():
    text = edit({"singleuser:\n  namespace: teamhub-users\n": ""})
    (problem,) = errors(text)
    assert "queue.enabled needs singleuser.namespace" in problem


def test_queue_on_needs_a_pool_per_accelerator():
    text = edit({"      capacity: 8\n": ""})
    assert errors(text) == [f"queue.yaml:{line_of(text, '    mi300x:')}: catalog.accelerators.mi300x: queue.enabled needs "
                            "capacity here: how many devices of this kind the cluster has"]


def test_a_resource_no_team_could_ever_fit():
    text = edit({"gpu: {resource: amd.com/gpu, count: 2}": "gpu: {resource: amd.com/gpu, count: 3}",
                 "mi300x: {guaranteed: 4}": "mi300x: {guaranteed: 2, max: 2}"})
    (problem,) = errors(text)
    assert problem == (f"queue.yaml:{line_of(text, 'accelerators: [strix-halo, mi300x]')}: catalog.resources.pytorch.accelerators[1]: "
                       "needs 3 devices of mi300x, more than the max of every team granting it (cv-course, vision-lab): "
                       "no team could ever start it")
    text = edit({"gpu: {resource: amd.com/gpu, count: 2}": "gpu: {resource: amd.com/gpu, count: 9}"})
    assert "needs 9 devices of mi300x, more than its pool of 8: no team could ever start it" in errors(text)[0]


def test_fixed_gpus_overrides_and_lookalike_kinds_are_refused_with_the_queue_on():
    text = edit({"    pytorch:\n": "    fixed:\n      displayName: F\n      image: scipy\n      cpu: {request: 1}\n"
                                   "      memory: {request: 1Gi}\n      gpu: {resource: amd.com/gpu, count: 1}\n    pytorch:\n",
                 "      accelerators: [strix-halo, mi300x]\n": "      accelerators: [strix-halo, mi300x]\n"
                                                              "      acceleratorOverrides: {mi300x: {nodeSelector: {node-type: other}}}\n",
                 "nodeSelector: {node-type: mi300x}": "nodeSelector: {zone: a}"})
    found = "\n".join(errors(text))
    assert "catalog.resources.fixed.gpu: with queue.enabled a GPU is offered through catalog.accelerators" in found
    assert "catalog.resources.pytorch.acceleratorOverrides.mi300x.nodeSelector.node-type: node-type: other contradicts" not in found
    assert "a node could match both mi300x and strix-halo" in found
    # without the queue the same catalog is fine
    assert errors(text.replace("  enabled: true\n  maxWaitMinutes", "  enabled: false\n  maxWaitMinutes")) == []


def test_an_override_may_not_move_a_kind_off_its_flavor():
    text = edit({"      accelerators: [strix-halo, mi300x]\n": "      accelerators: [strix-halo, mi300x]\n"
                                                               "      acceleratorOverrides: {mi300x: {nodeSelector: {node-type: other}}}\n"})
    (problem,) = errors(text)
    assert "catalog.resources.pytorch.acceleratorOverrides.mi300x.nodeSelector.node-type: node-type: other contradicts " \
           "the accelerator's node-type: mi300x" in problem


def test_unknown_accelerator_in_a_team_share():
    (problem,) = errors(edit({"mi300x: {guaranteed: 4}": "mi300: {guaranteed: 4}"}))
    assert "catalog.teams.vision-lab.queue.accelerators.mi300: unknown accelerator 'mi300' (did you mean 'mi300x'?)" in problem


def launch(catalog, team: str, kind: str):
    resource = catalog.resources["pytorch"]
    return build_launch(catalog, resource, catalog.accelerators[kind], 60, access_of(catalog, (team,)))


def test_gpu_launches_wait_in_their_teams_line_and_impossible_ones_get_a_sentence():
    catalog = check(EXAMPLE).catalog
    ok = launch(catalog, "cv-course", "strix-halo")
    assert queue.labels(catalog, ok) == {"kueue.x-k8s.io/queue-name": "team-cv-course"}
    assert queue.never_admitted(catalog, ok) is None
    # cv-course may hold 2 MI300X devices and one server takes 2: fits; a third device would not
    assert queue.never_admitted(catalog, launch(catalog, "cv-course", "mi300x")) is None
    tight = check(edit({"mi300x: {guaranteed: 0, max: 2}": "mi300x: {guaranteed: 0, max: 1}"})).catalog
    assert queue.never_admitted(tight, launch(tight, "cv-course", "mi300x")) == (
        "PyTorch on a GPU needs 2 AMD Instinct MI300X GPUs, more than team cv-course may hold at once (1): it could never start.")
    cpu = build_launch(catalog, catalog.resources["cpu-small"], None, 60, access_of(catalog, ("everyone",)))
    assert queue.labels(catalog, cpu) == {} and queue.never_admitted(catalog, cpu) is None
    off = check(EXAMPLE.replace("  enabled: true\n  maxWaitMinutes", "  enabled: false\n  maxWaitMinutes")).catalog
    assert queue.labels(off, launch(off, "cv-course", "strix-halo")) == {}


@pytest.mark.parametrize("suffix", ["", "a", "x" * 63])
def test_queue_names_fit_a_label_value(suffix):
    name = queue.name("r" * 40, suffix)
    assert len(name) <= 63
    assert name == ("r" * 40 + (f"-{suffix}" if suffix else "") if len(name) < 63 else name)
    assert queue.name("r" * 40, "x" * 63) != queue.name("r" * 40, "x" * 62 + "y")
