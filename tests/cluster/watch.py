"""Recording what happens to objects while an operation runs (e.g. hook pods and Jobs that Helm deletes
once they succeed): every version of every object seen by watches on the given collections."""

from __future__ import annotations

import threading
from collections import defaultdict

from .controlplane import Api


class Recorder:
    """with Recorder(api, [path, ...]) as rec: ...; then rec.seen[path][name] is the list of versions."""

    def __init__(self, api: Api, paths: list[str]):
        self.api = api
        self.paths = paths
        self.seen: dict = {p: defaultdict(list) for p in paths}
        self.errors: list = []
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._follow, args=(p,), daemon=True) for p in paths]

    def __enter__(self) -> Recorder:
        self._versions = {}
        for p in self.paths:  # list first, so nothing created after __enter__ is missed
            listing = self.api.get(p)
            self._versions[p] = listing["metadata"]["resourceVersion"]
            for obj in listing["items"]:
                self.seen[p][obj["metadata"]["name"]].append(obj)
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(10)

    def _follow(self, path: str) -> None:
        version = self._versions[path]
        try:
            while not self._stop.is_set():
                for event in self.api.watch(path, version, timeout_seconds=1):
                    obj = event["object"]
                    if event["type"] == "ERROR":
                        raise RuntimeError(f"watch {path}: {obj.get('message')}")
                    version = obj["metadata"]["resourceVersion"]
                    if event["type"] != "BOOKMARK":
                        self.seen[path][obj["metadata"]["name"]].append(obj)
        except Exception as exc:  # reported by the test, which must not pass on a blind recorder
            self.errors.append(exc)
