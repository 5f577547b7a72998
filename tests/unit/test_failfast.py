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
