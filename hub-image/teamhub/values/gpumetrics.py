"""`gpuMetrics` (issue 28): where GPU use is read, read once for the hub, the culler and `teamhub validate`.

The chart's NetworkPolicy opens exactly the address named by `prometheusUrl` to the hub pod (the culler
runs there). It can only do that for an address it can name in a policy: an IP address (an ipBlock of that
one address) or a Service name `<name>.<namespace>.svc[.cluster.local]` (that namespace, narrowed to
`podSelector`'s pods). The chart's helper `teamhub.gpuMetrics.egress` parses the URL the same way
(tests/chart/test_gpu_metrics_policy.py holds them equal); anything else is refused here, naming file and line.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from urllib.parse import urlsplit

from .schema import default_of

SERVICE_SUFFIXES = (".svc", ".svc.cluster.local")


@dataclass(frozen=True)
class Target:
    """What the NetworkPolicy opens: one address, or a namespace's pods, on one port."""

    url: str
    ip: str | None  # an address: ipBlock <ip>/32 (or /128)
    namespace: str | None  # a Service: that namespace's pods
    port: int


def _port(parts) -> int:
    return parts.port or (443 if parts.scheme == "https" else 80)


def target(gm: dict) -> Target | None:
    """The address in `gpuMetrics` (filled or raw values), or None when GPU-aware culling is off.
    Raises ValueError with a sentence when the policy could not name it."""
    url = (gm or {}).get("prometheusUrl") or ""
    if not url:
        return None
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = gm.get("port") or _port(parts)
    try:
        return Target(url, str(ipaddress.ip_address(host)), None, port)
    except ValueError:
        pass
    for suffix in SERVICE_SUFFIXES:
        if host.endswith(suffix):
            labels = host[: -len(suffix)].split(".")
            if len(labels) == 2 and all(labels):
                return Target(url, None, labels[1], port)
    raise ValueError(f"{host!r} is neither an IP address nor a cluster Service name (<name>.<namespace>.svc): "
                     "the chart's NetworkPolicy could not open it to the hub")


def exporters(gm: dict) -> dict:
    """The exporters by key: the schema's presets (dcgm, amd) with the operator's fields over them, and the
    operator's own. An override of one field (say dcgm's metric) keeps the preset's other fields."""
    presets = default_of("gpuMetrics.exporters")
    fields = _defaults("gpuExporter")
    own = (gm or {}).get("exporters") or {}
    out = {key: {**fields, **preset, **(own.get(key) or {})} for key, preset in presets.items()}
    for key, exp in own.items():
        if key not in presets:
            out[key] = {**fields, **(exp or {})}
    return out


def _defaults(definition: str) -> dict:
    """The defaults of a `$defs` object's fields (a rule or exporter given in part)."""
    from .schema import schema

    return {k: v["default"] for k, v in schema()["$defs"][definition]["properties"].items() if "default" in v}


def idle_rules(data: dict):
    """(path, rule) for every `idle` in the catalog: accelerators' and resources'."""
    cat = data.get("catalog") if isinstance(data.get("catalog"), dict) else {}
    for section in ("accelerators", "resources"):
        table = cat.get(section) if isinstance(cat.get(section), dict) else {}
        for key, item in table.items():
            if isinstance(item, dict) and isinstance(item.get("idle"), dict):
                yield ("catalog", section, key, "idle"), item["idle"]


def problems(data: dict) -> list:
    """The URL's address, `idle.exporter` naming an exporter, a warning shorter than the window, and rules
    that cannot apply because no Prometheus is named."""
    from .source import Problem

    gm = data.get("gpuMetrics") if isinstance(data.get("gpuMetrics"), dict) else {}
    out = []
    try:
        tgt = target(gm)
    except ValueError as exc:
        out.append(Problem("error", ("gpuMetrics", "prometheusUrl"), str(exc)))
        tgt = False
    known = exporters(gm)
    rules = list(idle_rules(data))
    for path, rule in rules:
        name = rule.get("exporter")
        if isinstance(name, str) and name not in known:
            out.append(Problem("error", path + ("exporter",),
                               f"unknown exporter '{name}'; choose one of {', '.join(sorted(known))} or define it under gpuMetrics.exporters"))
        full = {**_defaults("gpuIdle"), **rule}
        minutes, warn = full.get("minutes"), full.get("warnMinutes")
        if all(isinstance(v, int | float) and not isinstance(v, bool) for v in (minutes, warn)) and warn >= minutes:
            out.append(Problem("error", path + ("warnMinutes",), f"{warn} is not less than minutes ({minutes}): the warning would come before the GPU was idle at all"))
    if rules and tgt is None:
        out.append(Problem("warning", rules[0][0], "gpuMetrics.prometheusUrl is empty: GPU idle rules are not applied, "
                                                    "every server follows sessions.idleCullMinutes"))
    return out
