"""What the running hub knows: the checked values and the mode. Set once by `config.configure()`."""

from __future__ import annotations

from dataclasses import dataclass, field

from .quota import BOOK, QuotaBook


@dataclass
class Runtime:
    checked: object  # validation.Checked
    mode: str = "kubernetes"
    quota: QuotaBook = field(default_factory=lambda: BOOK)

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


_current: Runtime | None = None


def set_runtime(rt: Runtime) -> Runtime:
    global _current
    _current = rt
    return rt


def get_runtime() -> Runtime:
    if _current is None:
        raise RuntimeError("teamhub.hub.config.configure() has not run")
    return _current
