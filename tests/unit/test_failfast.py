"""Fail-fast rules, fed with recorded Kubernetes event objects."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from teamhub.hub.failfast import Context, classify, classify_pod

EVENTS = yaml.safe_load((Path(__file__).parent / "events" / "recorded.yaml").read_text())
STRIX = Context(resource_name="Computer Vision course", accelerator_key="strix-halo", accelerator_name="AMD Radeon 8060S",
                gpu_resource="amd.com/gpu", cpu="4 CPUs", memory="16Gi", image="ghcr.io/example-university/pytorch-rocm:2.5-rocm6.2")
CPU = Context(resource_name="Python (8 CPUs)", cpu="8 CPUs", memory="32Gi", image="quay.io/jupyter/scipy-notebook:2026-11-02")


def test_no_free_gpu_names_vendor_kind_and_nodes():
    v = classify(EVENTS["failed_scheduling_gpu"], STRIX)
    assert v.fatal
    assert v.message == ("No free AMD GPU of kind strix-halo right now: 0 of 3 nodes have one available. "
                         "Try another accelerator or later.")


def test_counts_only_nodes_of_that_kind():
    v = classify(EVENTS["failed_scheduling_gpu_mixed"], STRIX)
    assert v.fatal and "0 of 3 nodes" in v.message


def test_fixed_gpu_suggests_another_environment():
    ctx = Context(resource_name="NLP course", gpu_resource="amd.com/gpu")
    v = classify(EVENTS["failed_scheduling_gpu"], ctx)
    assert v.fatal and v.message.startswith("No free AMD GPU right now") and "another environment" in v.message


@pytest.mark.parametrize(("event", "word"), [("failed_scheduling_cpu", "CPU"), ("failed_scheduling_memory", "memory")])
def test_insufficient_cpu_or_memory(event, word):
    v = classify(EVENTS[event], CPU)
    assert v.fatal and f"Not enough free {word} for 'Python (8 CPUs)'" in v.message


def test_autoscaler_means_wait():
    ctx = Context(gpu_resource="amd.com/gpu", accelerator_key="strix-halo", autoscaler=True)
    v = classify(EVENTS["failed_scheduling_gpu"], ctx)
    assert not v.fatal and "add a node" in v.message


def test_unbound_pvc_is_not_fatal():
    v = classify(EVENTS["failed_scheduling_pvc"], CPU)
    assert not v.fatal


@pytest.mark.parametrize(("event", "why"), [
    ("pull_not_found", "the registry does not have it"),
    ("err_image_pull", "pulling it failed"),
    ("pull_backoff", "pulling it failed"),
    ("pull_unauthorized", "refused access"),
    ("invalid_image_name", "not a valid image reference"),
])
def test_image_errors_are_fatal(event, why):
    v = classify(EVENTS[event], CPU)
    assert v.fatal and why in v.message and v.stage == "pulling"


def test_pull_message_names_the_image():
    v = classify(EVENTS["pull_not_found"], CPU)
    assert "ghcr.io/example-university/pytorch-rocm:2.5-rocm6.9" in v.message


def test_container_config_error_is_fatal():
    v = classify(EVENTS["config_error"], CPU)
    assert v.fatal and 'secret "ghcr-creds" not found' in v.message


@pytest.mark.parametrize(("event", "stage", "words"), [
    ("scheduled", "scheduled", "gpu-node-2"),
    ("pulling", "pulling", "Pulling"),
    ("started", "starting", "Starting JupyterLab"),
])
def test_progress_stages(event, stage, words):
    v = classify(EVENTS[event], CPU)
    assert not v.fatal and v.stage == stage and words in v.message


def test_unknown_events_say_nothing():
    assert classify({"reason": "Killing", "message": "Stopping container"}, CPU) is None
    assert classify({}, CPU) is None


@pytest.mark.parametrize("reason", ["ErrImagePull", "ImagePullBackOff", "InvalidImageName", "CreateContainerConfigError"])
def test_pod_container_states(reason):
    pod = {"status": {"containerStatuses": [{"image": "x/y:1", "state": {"waiting": {"reason": reason, "message": "boom"}}}]}}
    v = classify_pod(pod, CPU)
    assert v.fatal


def test_running_pod_is_fine():
    assert classify_pod({"status": {"containerStatuses": [{"state": {"running": {}}}]}}, CPU) is None
    assert classify_pod(None, CPU) is None


# --- issue 15: kube-scheduler v1.37's messages for cases that never resolve without an autoscaler ----------
L40S = Context(resource_name="Computer Vision course", accelerator_key="nvidia-l40s", accelerator_name="NVIDIA L40S",
               gpu_resource="nvidia.com/gpu")
NLP = Context(resource_name="NLP course", gpu_resource="nvidia.com/gpu")
RESEARCH = Context(resource_name="Research: 2x MI300X", gpu_resource="amd.com/gpu", gpu_count=2)
CV_DATA = Context(resource_name="Computer Vision course", data_sets=(("imagenet-data", "imagenet"), ("course-materials", "course-materials")))


def test_no_node_of_the_accelerators_kind_is_final():
    v = classify(EVENTS["no_node_of_that_kind"], L40S)
    assert v.fatal and v.message.startswith("No node in this cluster offers NVIDIA L40S, so 'Computer Vision course' cannot start")
    assert "another accelerator" in v.message


def test_no_node_for_a_fixed_gpu_names_the_vendor():
    v = classify(EVENTS["no_node_of_that_kind"], NLP)
    assert v.fatal and v.message.startswith("No node in this cluster offers the NVIDIA GPU that 'NLP course' needs")


def test_no_node_of_that_kind_waits_for_an_autoscaler():
    v = classify(EVENTS["no_node_of_that_kind"], Context(accelerator_name="NVIDIA L40S", autoscaler=True))
    assert not v.fatal


def test_missing_data_set_names_the_catalog_volume():
    v = classify(EVENTS["data_pvc_missing"], CV_DATA)
    assert v.fatal
    assert v.message.startswith("The data set 'imagenet' is not available: ask your admin to create its volume claim 'imagenet-data'")


def test_missing_data_set_is_final_even_with_an_autoscaler():
    v = classify(EVENTS["data_pvc_missing"], Context(autoscaler=True))
    assert v.fatal and "The storage volume 'imagenet-data' is not available" in v.message


def test_unbound_claim_still_waits():
    assert not classify(EVENTS["unbound_pvc_v137"], CV_DATA).fatal


def test_busy_multi_gpu_counts_the_gpus_asked_for():
    v = classify(EVENTS["gpus_busy_multi"], RESEARCH)
    assert v.fatal and "0 of 1 node has one" not in v.message
    assert v.message == ("Not enough free AMD GPUs right now: 'Research: 2x MI300X' needs 2 on one node, and the one node "
                         "that could run it does not have 2 free. Try another environment or later.")


def test_more_gpus_than_any_node_has_is_not_busy():
    v = classify(EVENTS["gpus_more_than_any_node"], Context(resource_name="Research", gpu_resource="amd.com/gpu", gpu_count=9))
    assert v.fatal and "right now" not in v.message and "one available" not in v.message
    assert v.message.startswith("'Research' needs 9 AMD GPUs on one node, more than any node it may run on has")


def test_single_gpu_busy_on_v137_wording():
    v = classify(EVENTS["gpus_busy_multi"], STRIX)
    assert v.message.startswith("No free AMD GPU of kind strix-halo right now: 0 of 1 node has one available.")


@pytest.mark.parametrize("event", ["failed_scheduling_gpu", "failed_scheduling_cpu", "failed_scheduling_memory"])
def test_unschedulable_pod_condition_reads_like_the_event(event):
    """kube-scheduler writes the FailedScheduling message into the PodScheduled condition as well: the
    spawner's watch reads the pod (one lookup) and reaches the same verdict as the event gives."""
    message = EVENTS[event]["message"]
    pod = {"status": {"phase": "Pending", "conditions": [
        {"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": message}]}}
    assert classify_pod(pod, STRIX) == classify(EVENTS[event], STRIX)
    assert classify_pod(pod, STRIX).fatal
    waiting = {"status": {"conditions": [{"type": "PodScheduled", "status": "False", "reason": "SchedulerError", "message": message}]}}
    assert classify_pod(waiting, STRIX) is None  # only the scheduler's "does not fit" verdict


def test_a_pod_preempting_a_placeholder_is_not_refused():
    """scheduling.userPlaceholders: until the placeholder is gone the condition still says Unschedulable for lack of
    CPU; the nominated node says the scheduler is making room, so the start goes on (issue 30)."""
    short = "0/1 nodes are available: 1 Insufficient cpu."
    unschedulable = {"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": short}
    assert classify_pod({"status": {"conditions": [unschedulable]}}, CPU).fatal  # without a nomination: refused
    v = classify_pod({"status": {"conditions": [unschedulable], "nominatedNodeName": "cpu-1"}}, CPU)
    assert not v.fatal and "cpu-1" in v.message and v.stage == "scheduling"
