"""`teamhub validate --cluster`: what the cluster publishes for the catalog's DRA kinds (issue 27).

Reads DeviceClasses and ResourceSlices (resource.k8s.io/v1) with a kubeconfig (`--kubeconfig`, else
KUBECONFIG or ~/.kube/config) through kubernetes_asyncio, and prints per DRA kind how many published devices
its DeviceClasses match (catalog.devices.published); kinds whose class is missing or that match no device
are warnings. Nothing is written to the cluster.
"""

from __future__ import annotations

import asyncio

from ..catalog import devices


class ClusterUnreachable(Exception):
    pass


async def _read(kubeconfig: str | None) -> tuple[list, list]:
    import aiohttp
    from kubernetes_asyncio import client, config
    from kubernetes_asyncio.client.exceptions import ApiException

    configuration = client.Configuration()
    try:
        await config.load_kube_config(config_file=kubeconfig, client_configuration=configuration)
    except (config.ConfigException, OSError, TypeError) as exc:
        raise ClusterUnreachable(f"no usable kubeconfig ({kubeconfig or 'KUBECONFIG or ~/.kube/config'}): {exc}") from exc
    async with client.ApiClient(configuration) as api_client:
        api = client.ResourceV1Api(api_client)
        out = []
        for call in (api.list_device_class, api.list_resource_slice):
            try:
                response = await call(_preload_content=False, _request_timeout=20)
                if response.status >= 400:
                    raise ClusterUnreachable(f"{call.__name__}: HTTP {response.status} {response.reason} (resource.k8s.io/v1 "
                                             "needs Kubernetes 1.34+, and the kubeconfig's user needs list rights on it)")
                out.append((await response.json()).get("items") or [])
            except ApiException as exc:
                raise ClusterUnreachable(f"{call.__name__}: HTTP {exc.status}") from exc
            except (aiohttp.ClientError, TimeoutError, OSError, ValueError) as exc:
                raise ClusterUnreachable(f"{call.__name__}: {exc or type(exc).__name__}") from exc
    return out[0], out[1]


def report(catalog, values: dict, release: str, kubeconfig: str | None) -> tuple[list, list]:
    """(lines, warnings) for the catalog's DRA kinds on the cluster the kubeconfig names."""
    classes, slices = asyncio.run(_read(kubeconfig))
    return devices.published(catalog, devices.fullname(values, release), classes, slices)
