"""Prometheus metrics on JupyterHub's own `/hub/metrics` (its default prometheus_client registry, same
authentication: the `read:metrics` scope).

Servers running, GPUs in use and the GPU-/server-seconds counters are read from the usage records at every
scrape (`RecordsCollector`), so they are right after a hub restart and never count twice. The counters sum
each record up to its end, or, while it runs, up to when it was last seen alive: closing a record never
takes seconds back, so they only grow. Start outcomes and start durations are this process's counters.
"""

from __future__ import annotations

from prometheus_client import REGISTRY, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from .store import TABLE

OUTCOMES = ("started", "refused-not-allowed", "refused-quota", "refused-budget", "failed-unschedulable", "failed-image",
            "failed", "timeout")
LABELS = ("team", "resource", "accelerator")

START_OUTCOMES = Counter("teamhub_start_outcomes", "Server starts by outcome", ["reason"])
START_SECONDS = Histogram("teamhub_start_duration_seconds", "From a checked start to a running server", ["resource"],
                          buckets=(1, 2, 5, 10, 20, 30, 60, 120, 300, 600, float("inf")))
# Every metric name the hub exports (the Grafana dashboard test checks its queries against these).
EXPORTED = ("teamhub_servers_running", "teamhub_gpus_in_use", "teamhub_gpu_seconds_total", "teamhub_server_seconds_total",
            "teamhub_start_outcomes_total", "teamhub_start_duration_seconds_bucket", "teamhub_start_duration_seconds_sum",
            "teamhub_start_duration_seconds_count")


def outcome(reason: str) -> None:
    assert reason in OUTCOMES, reason
    START_OUTCOMES.labels(reason).inc()


def failure_reason(exc: BaseException) -> str:
    """The outcome a start that raised `exc` counts as (the fail-fast verdict's stage, when there is one)."""
    if isinstance(exc, TimeoutError):
        return "timeout"
    stage = getattr(exc, "teamhub_stage", "")
    return {"scheduling": "failed-unschedulable", "pulling": "failed-image"}.get(stage, "failed")


class RecordsCollector:
    """Reads the records at every scrape. Prometheus' REGISTRY is per process, so one collector is registered
    once and reads whichever store the hub's runtime holds now."""

    def __init__(self):
        self.store = None  # usage.store.Store or None

    def collect(self):
        from sqlalchemy import text

        running = GaugeMetricFamily("teamhub_servers_running", "Servers running or starting now", labels=LABELS)
        gpus = GaugeMetricFamily("teamhub_gpus_in_use", "GPUs held by running or starting servers", labels=LABELS)
        gpu_s = CounterMetricFamily("teamhub_gpu_seconds", "GPU-seconds used", labels=("team", "resource"))
        server_s = CounterMetricFamily("teamhub_server_seconds", "Server-seconds used", labels=("team", "resource"))
        s = self.store
        if s is not None:
            with s.engine.connect() as con:
                for team, res, acc, n, g in con.execute(text(
                        f"SELECT team, resource, accelerator, COUNT(*), SUM(gpus) FROM {TABLE} WHERE ended IS NULL "
                        "GROUP BY team, resource, accelerator")):
                    labels = [team or "", res, acc or ""]
                    running.add_metric(labels, n)
                    gpus.add_metric(labels, g or 0)
                secs = "(COALESCE(ended, last_seen, started) - started)"
                for team, res, sec, gsec in con.execute(text(
                        f"SELECT team, resource, SUM({secs}), SUM({secs} * gpus) FROM {TABLE} "
                        "WHERE end_reason IS NULL OR end_reason != 'failed-start' GROUP BY team, resource")):
                    server_s.add_metric([team or "", res], float(sec or 0))
                    gpu_s.add_metric([team or "", res], float(gsec or 0))
        yield from (running, gpus, gpu_s, server_s)


_collector: RecordsCollector | None = None


def install(store) -> None:
    global _collector
    if _collector is None:
        _collector = RecordsCollector()
        REGISTRY.register(_collector)
    _collector.store = store
