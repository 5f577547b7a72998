"""The API server refusing a pod (admission: Pod Security, quotas, webhooks, the chart's admission policy), and
the dry run that asks admission before the person's home volume is created, so a refused pod leaves no PVC."""

from __future__ import annotations

import asyncio

from kubernetes_asyncio.client.rest import ApiException
from traitlets import HasTraits

from . import podrefusal
from .spawnerrors import spawn_failed

# The API server's answers when admission (Pod Security, quotas, webhooks) or validation refuses a pod.
ADMISSION_REFUSED = (403, 422)


class DryRunAdmission(HasTraits):
    """Mixed into `TeamhubKubeSpawner` (podspawner.py), before KubeSpawner."""

    _teamhub_admitted = False  # this start's pod passed a dry-run admission before its PVC was created
    _teamhub_pod = None  # the manifest the dry run judged, for KubeSpawner's _start to create

    async def _teamhub_create_pod(self, pod, request_timeout, dry_run: bool = False) -> None:
        """POST the pod (or only ask admission, with dry_run); a refusal ends the spawn with a sentence
        and one WARNING line: it is a configuration problem for the admin, not a hub fault."""
        try:
            await asyncio.wait_for(
                self.api.create_namespaced_pod(self.namespace, pod, **({"dry_run": "All"} if dry_run else {})),
                request_timeout,
            )
        except ApiException as exc:
            if exc.status not in ADMISSION_REFUSED:
                raise
            reason = podrefusal.reason(exc)
            self.log.warning("The API server refused the pod of %s (HTTP %s%s): %s", self.teamhub_key, exc.status,
                             ", dry run before creating the home volume" if dry_run else "", reason)
            name = self.teamhub_launch.resource.display_name if self.teamhub_launch else "this server"
            raise spawn_failed(podrefusal.sentence(name, reason), reason="failed-admission") from None

    async def _make_create_pvc_request(self, pvc, request_timeout):
        # KubeSpawner calls this only when the start is about to create the person's home volume (once the
        # PVC is known it is skipped), just before it creates the pod. Let admission judge the pod first
        # with a dry run (stores nothing): a refused pod must not leave a new, never-used PVC behind, and
        # deleting it afterwards would need the right to delete PVCs, which the hub deliberately lacks.
        if not self._teamhub_admitted:
            try:
                self._teamhub_pod = await super().get_pod_manifest()
                await self._teamhub_create_pod(self._teamhub_pod, request_timeout, dry_run=True)
            except TimeoutError:
                return False  # exponential_backoff tries again
            self._teamhub_admitted = True
        return await super()._make_create_pvc_request(pvc, request_timeout)

    async def get_pod_manifest(self):
        # KubeSpawner's _start asks for the manifest right after the PVC: the dry run built it already.
        pod, self._teamhub_pod = self._teamhub_pod, None
        return pod or await super().get_pod_manifest()

    async def _make_create_pod_request(self, pod, request_timeout):
        try:
            await self._teamhub_create_pod(pod, request_timeout)
            return True
        except TimeoutError:
            return False  # as KubeSpawner: exponential_backoff tries again
        except ApiException as exc:
            if exc.status != 409:
                raise
        # A pod of that name exists: KubeSpawner's own handling (it stops the old pod, then retries).
        return await super()._make_create_pod_request(pod, request_timeout)
