"""Cross-references of `scheduling.userPlaceholders` (issue 30), for `teamhub validate` and the hub's start: every
node kind names a placement of the catalog, a resource and, when it offers accelerators, exactly one of them. The
chart refuses the same (templates/user-placeholders/placeholders.yaml), with less context."""

from __future__ import annotations

from .source import Problem


def _map(value) -> dict:
    return value if isinstance(value, dict) else {}


def problems(data: dict) -> list[Problem]:
    resources = _map(_map(_map(data).get("catalog")).get("resources"))
    kinds = _map(_map(_map(data.get("scheduling")).get("userPlaceholders")).get("nodeKinds"))
    out = []
    for kind, want in kinds.items():
        want, base = _map(want), ("scheduling", "userPlaceholders", "nodeKinds", kind)
        key, acc = want.get("resource"), want.get("accelerator")
        if not isinstance(key, str):
            continue  # the schema says what is wrong
        if key not in resources:
            out.append(Problem("error", base + ("resource",), f"unknown resource '{key}'; placeholders reserve the size of a "
                                                                "resource of catalog.resources"))
            continue
        offered = [a for a in _map(resources[key]).get("accelerators") or () if isinstance(a, str)]
        if offered and acc not in offered:
            where = base + ("accelerator",) if acc is not None else base
            out.append(Problem("error", where, f"resource '{key}' offers accelerators {', '.join(offered)}: name the one "
                                               "whose nodes these placeholders keep room on (accelerator)"))
        elif not offered and acc is not None:
            out.append(Problem("error", base + ("accelerator",), f"resource '{key}' offers no accelerators; leave accelerator out"))
    return out
