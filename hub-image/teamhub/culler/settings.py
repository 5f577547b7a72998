"""What the culler needs from the values, computed by the hub and handed over as JSON in the culler service's
environment (`TEAMHUB_CULLER_SETTINGS`): the culler never parses or checks values itself.

Rules are kept per accelerator kind and per resource (not per pair), so their size follows the rules
written, not the catalog's size: a resource's `idle` over its accelerator's (`rule_for`).
"""

from __future__ import annotations

import json

from ..values import gpumetrics

ENV = "TEAMHUB_CULLER_SETTINGS"


def build(values: dict, idle_minutes: int, namespace: str | None = None, cull_every: int = 60,
          hub_api: str | None = None) -> dict:
    """From filled values: today's rule (`idleSeconds`, 0 is off), and with gpuMetrics.prometheusUrl the GPU
    rules of every accelerator and GPU resource that has one, with the exporters they name."""
    gm = values.get("gpuMetrics") or {}
    target = gpumetrics.target(gm)  # checked at load: never raises here
    cat = values["catalog"]
    out = {"idleSeconds": max(0, idle_minutes) * 60, "cullEvery": cull_every, "hubApi": hub_api,
           "prometheus": None, "namespace": namespace, "exporters": {}, "accelerators": {}, "resources": {}}
    if target is None:
        return out
    for key, acc in cat["accelerators"].items():
        if acc.get("idle"):
            out["accelerators"][key] = _rule(acc["idle"])
    for key, res in cat["resources"].items():
        if res.get("idle") and (res.get("gpu") or res.get("accelerators")):
            out["resources"][key] = {**_rule(res["idle"]), "fixedGpu": bool(res.get("gpu"))}
    used = {r["exporter"] for table in ("accelerators", "resources") for r in out[table].values()}
    if used:
        out["prometheus"] = {"url": target.url.rstrip("/"), "timeout": float(gm.get("timeoutSeconds") or 5)}
        out["exporters"] = {k: v for k, v in gpumetrics.exporters(gm).items() if k in used}
    return out


def _rule(idle: dict) -> dict:
    return {"exporter": idle["exporter"], "belowPercent": float(idle["belowPercent"]),
            "seconds": float(idle["minutes"]) * 60, "warnSeconds": float(idle["warnMinutes"]) * 60}


def rule_for(settings: dict, resource: str | None, accelerator: str | None) -> dict | None:
    """The GPU rule of a server launched as (resource, accelerator), or None: today's rule. Without a
    Prometheus there is none (settings.build leaves the tables empty)."""
    if settings.get("prometheus") is None:
        return None
    own = settings["resources"].get(resource or "")
    if own is not None and (own["fixedGpu"] or accelerator):  # a resource's CPU-only choice has no GPU to judge
        return own
    return settings["accelerators"].get(accelerator) if accelerator else None


def dumps(settings: dict) -> str:
    return json.dumps(settings, separators=(",", ":"), sort_keys=True)
