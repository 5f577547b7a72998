"""`TeamhubLocalSpawner`: `teamhub demo` runs JupyterLab as a local process (no CPU/memory/GPU limits there)."""

from __future__ import annotations

import asyncio

from jupyterhub.spawner import SimpleLocalProcessSpawner
from jupyterhub.utils import wait_for_http_server

from .spawnerrors import spawn_failed
from .teamhubmixin import TeamhubMixin


class TeamhubLocalSpawner(TeamhubMixin, SimpleLocalProcessSpawner):
    """`teamhub demo`: JupyterLab as a local process. CPU, memory and GPU limits are NOT enforced."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._teamhub_init()

    async def teamhub_start_ready(self):
        """Wait here for the server to answer, as KubeSpawner waits for its pod: the start's watch (deadline, budget)
        then covers the boot, and a server the budget stopped while booting fails its start with a sentence
        instead of leaving JupyterHub waiting on a dead process (and answering the start request with a 500)."""
        ip, port = await super().teamhub_start_ready()
        up = asyncio.ensure_future(wait_for_http_server(f"http://{ip}:{port}{self.server.base_url}api", timeout=self.http_timeout))
        try:
            while not (await asyncio.wait({up}, timeout=0.5))[0]:
                code = self.proc.poll()  # the process, not self.poll(): that would clear the state holding the record
                if code is not None:  # JupyterHub would wait http_timeout for it: say so now
                    raise spawn_failed(f"The server exited while starting (exit status {code}); the hub's log has its output.",
                                       reason="failed-exited")
            up.result()
        finally:
            up.cancel()
        return ip, port

    async def progress(self):
        launch = self.teamhub_launch
        if launch is not None:
            yield {"progress": 10, "message": f"Starting '{launch.resource.display_name}' as a local process "
                                              "(demo mode: CPU, memory and GPU limits are not enforced)"}
