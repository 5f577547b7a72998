"""Prometheus metrics on JupyterHub's own `/hub/metrics` (its default prometheus_client registry, same
authentication: the `read:metrics` scope).

Servers running, GPUs in use and the GPU-/server-seconds counters come from the usage records through the
store's in-memory ledger (usage/ledger.py: restored from the database at hub start, kept by the store's
writes), so they are right after a hub restart, never count twice, and a scrape costs the same at ten
records and ten million (it read the whole table on the event loop: 2.8 s at 10^6). The counters sum each
record up to its end, or, while it runs, up to when it was last seen alive: closing a record never takes
seconds back, so they only grow. Start durations per resource are this process's histogram; start outcomes are
JupyterHub's own spawn metric (its `reason` label: hub/spawnerrors.py).
"""

from __future__ import annotations

from prometheus_client import REGISTRY, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

LABELS = ("team", "resource", "accelerator")

START_SECONDS = Histogram("teamhub_start_duration_seconds", "From a checked start to a running server", ["resource"],
                          buckets=(1, 2, 5, 10, 20, 30, 60, 120, 300, 600, float("inf")))
# Every metric name the Grafana dashboard may query: teamhub's, and JupyterHub's spawn outcomes (status, reason).
EXPORTED = ("teamhub_servers_running", "teamhub_gpus_in_use", "teamhub_gpu_seconds_total", "teamhub_server_seconds_total",
            "teamhub_start_duration_seconds_bucket", "teamhub_start_duration_seconds_sum",
            "teamhub_start_duration_seconds_count", "jupyterhub_server_spawn_duration_seconds_count")


class RecordsCollector:
    """Reads the ledger at every scrape. Prometheus' REGISTRY is per process, so one collector is registered
    once and reads whichever store the hub's runtime holds now."""

    def __init__(self):
        self.store = None  # usage.store.Store or None

    def collect(self):
        running = GaugeMetricFamily("teamhub_servers_running", "Servers running or starting now", labels=LABELS)
        gpus = GaugeMetricFamily("teamhub_gpus_in_use", "GPUs held by running or starting servers", labels=LABELS)
        gpu_s = CounterMetricFamily("teamhub_gpu_seconds", "GPU-seconds used", labels=("team", "resource"))
        server_s = CounterMetricFamily("teamhub_server_seconds", "Server-seconds used", labels=("team", "resource"))
        s = self.store
        if s is not None:
            ledger = s.ledger
            for labels, (n, g) in sorted(ledger.running().items()):
                running.add_metric(list(labels), n)
                gpus.add_metric(list(labels), g)
            for labels, (sec, gsec) in sorted(ledger.seconds().items()):
                server_s.add_metric(list(labels), sec)
                gpu_s.add_metric(list(labels), gsec)
        yield from (running, gpus, gpu_s, server_s)


_collector: RecordsCollector | None = None


def install(store) -> None:
    global _collector
    if _collector is None:
        _collector = RecordsCollector()
        REGISTRY.register(_collector)
    _collector.store = store
