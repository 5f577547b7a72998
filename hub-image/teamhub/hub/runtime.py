"""What the running hub knows: the checked values, the mode and the team quota book.

`config.configure()` makes one and hands it to the spawner classes as configuration
(`c.TeamhubKubeSpawner.teamhub_runtime`), the JupyterHub way, as the login methods get the catalog.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .quota import QuotaBook


@dataclass
class Runtime:
    checked: object  # catalog.loader.Checked
    mode: str = "kubernetes"
    quota: QuotaBook = field(default_factory=QuotaBook)  # one per hub process: every spawner reserves in it
    usage: object = None  # usage.store.Store, set once the database is migrated; None: nothing is recorded

    def __deepcopy__(self, memo):
        return self  # traitlets deep-copies configuration values: every spawner must share this one

    @property
    def catalog(self):
        return self.checked.catalog

    @property
    def values(self) -> dict:
        return self.checked.values

    @property
    def singleuser(self) -> dict:
        return self.values["singleuser"]

    @property
    def autoscaler(self) -> bool:
        return bool(self.singleuser["clusterAutoscaler"])
