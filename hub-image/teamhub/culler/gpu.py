"""GPU use from Prometheus, and the one judgement both the culler and the hub's pages make from it.

One range query over the rule's window gives, per pod, the utilisation (in percent) at every step, each step
the highest sample within it (`max_over_time`), so a burst between two steps still counts as busy. From those:

- no recent point for the pod (no exporter series, or one that went stale): GPU use is unknown, and the server
  follows today's rule. This is also what a partitioned AMD GPU gives: the exporter reports activity only for
  partition 0, and the `amd` preset counts only unpartitioned (SPX) devices, so no partition's server is ever
  judged by another partition's figure.
- otherwise the GPU has been idle since the last busy point (at or above `belowPercent`), or, with none in the
  window, since the first point (a server newer than the window has been idle only as long as it has run).
  At `seconds` the culler stops it; in the last `warnSeconds` before that the pages warn its owner.

A pod with several GPUs is busy when any of them is. The standard library only: the culler runs it in a thread.
"""

from __future__ import annotations

import json
import math
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass

STALE_SLACK = 60.0  # a pod's newest point older than 3 steps + this: its series went stale, GPU use unknown


class PrometheusUnavailable(Exception):
    """Prometheus did not answer, or answered with an error: GPU use is unknown for everyone."""


@dataclass(frozen=True)
class Verdict:
    known: bool
    idle_seconds: float = 0.0
    window: float = 0.0
    warn: float = 0.0

    @property
    def cull(self) -> bool:
        return self.known and self.idle_seconds >= self.window

    @property
    def warning(self) -> bool:
        return self.known and self.warn > 0 and self.window - self.warn <= self.idle_seconds < self.window

    @property
    def left_seconds(self) -> float:
        return max(0.0, self.window - self.idle_seconds)


UNKNOWN = Verdict(False)


def step_for(window: float) -> float:
    """About 60 points over the window, never under a second."""
    return max(1.0, round(window / 60.0))


def _label_value(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')


def query(exporter: dict, namespace: str | None, step: float, pod: str | None = None) -> str:
    """PromQL: per pod, the highest utilisation (percent) within each step, of the pods in `namespace` (or one)."""
    matchers = []
    if namespace:
        matchers.append(f'{exporter["namespaceLabel"]}="{_label_value(namespace)}"')
    if pod:
        matchers.append(f'{exporter["podLabel"]}="{_label_value(pod)}"')
    else:
        matchers.append(f'{exporter["podLabel"]}!=""')
    if exporter.get("selector"):
        matchers.append(exporter["selector"])
    series = f'{exporter["metric"]}{{{",".join(matchers)}}}'
    scale = float(exporter.get("toPercent") or 1)
    inner = f"max by ({exporter['podLabel']}) (max_over_time({series}[{int(step)}s]))"
    return inner if scale == 1 else f"{inner} * {scale:g}"


def fetch(prometheus: dict, exporter: dict, namespace: str | None, window: float, now: float,
          pod: str | None = None) -> tuple[dict, float]:
    """({pod: [(t, percent), ...]}, step) over [now - window - step, now]. Raises PrometheusUnavailable."""
    step = step_for(window)
    params = urllib.parse.urlencode({"query": query(exporter, namespace, step, pod), "start": f"{now - window - step:.3f}",
                                     "end": f"{now:.3f}", "step": f"{step:g}"})
    url = f"{prometheus['url']}/api/v1/query_range?{params}"
    try:
        with urllib.request.urlopen(url, timeout=prometheus.get("timeout", 5)) as resp:  # noqa: S310 (the operator's URL)
            body = json.loads(resp.read().decode("utf-8"))
    except urllib.error.HTTPError as exc:  # a 400 (bad query) carries Prometheus' own error text
        raise PrometheusUnavailable(f"HTTP {exc.code}: {_error_text(exc)}") from None
    except (OSError, ValueError) as exc:
        raise PrometheusUnavailable(str(getattr(exc, "reason", None) or exc)) from None
    if body.get("status") != "success":
        raise PrometheusUnavailable(f"{body.get('errorType', 'error')}: {body.get('error', 'no status')}")
    out: dict = {}
    for item in body.get("data", {}).get("result", []):
        name = item.get("metric", {}).get(exporter["podLabel"])
        if name:
            out.setdefault(name, []).extend((float(t), float(v)) for t, v in item.get("values", []))
    return {k: sorted(v) for k, v in out.items()}, step


def _error_text(exc) -> str:
    try:
        return json.loads(exc.read().decode("utf-8")).get("error", exc.reason)
    except (OSError, ValueError):
        return str(exc.reason)


def judge(points: list, now: float, rule: dict, step: float) -> Verdict:
    """The verdict on one pod's points ([(t, percent)], sorted) under `rule` (`settings._rule`)."""
    window, warn = rule["seconds"], rule["warnSeconds"]
    if not points or now - points[-1][0] > 3 * step + STALE_SLACK:
        return UNKNOWN
    busy = [t for t, v in points if v >= rule["belowPercent"]]
    since = busy[-1] if busy else points[0][0] - step  # a step's point covers the step before it
    return Verdict(True, max(0.0, now - since), window, warn)


def minutes_text(seconds: float, up: bool = False) -> str:
    """'25 min' (whole minutes, down, or up for a time still to come), or seconds under a minute (short test windows)."""
    if seconds < 60:
        return f"{max(1, math.ceil(seconds) if up else int(seconds))} s"
    return f"{math.ceil(seconds / 60) if up else int(seconds // 60)} min"


def warning_text(verdict: Verdict) -> str:
    return (f"Your GPU has been idle for {minutes_text(verdict.idle_seconds)}; this server stops in "
            f"{minutes_text(verdict.left_seconds, up=True)} unless it computes")
