"""A server's devices by Dynamic Resource Allocation (issue 27): the claim in its pod.

KubeSpawner has no DRA support, and its `extra_container_config` would replace the container's whole
`resources` (CPU, memory and their limits) to add `resources.claims`. So the spawner hands every pod manifest it
builds to `with_claim`, which adds, for a launch whose accelerator has `devices`:
  - `spec.resourceClaims: [{name: teamhub-devices, resourceClaimTemplateName: teamhub-<kind>}]`: the control
    plane creates the claim from the chart's template, owned by the pod, so it goes when the pod goes (the hub
    needs no rights on claims, and never names a claim itself: the admission policy admits only this);
  - `resources.claims: [{name: teamhub-devices}]` on the container, beside its requests and limits.
"""

from __future__ import annotations

from kubernetes_asyncio.client import CoreV1ResourceClaim, V1PodResourceClaim

from ..catalog import devices


def with_claim(pod, launch):
    """The pod (a V1Pod as KubeSpawner builds it) with the launch's device claim; unchanged without one."""
    if launch is None or launch.devices is None:
        return pod
    template = devices.template_name(launch.accelerator.key)
    pod.spec.resource_claims = [V1PodResourceClaim(name=devices.POD_CLAIM, resource_claim_template_name=template)]
    container = pod.spec.containers[0]
    container.resources.claims = [CoreV1ResourceClaim(name=devices.POD_CLAIM)]
    return pod
