"""Checks on accelerators requested by Dynamic Resource Allocation (issue 27) that a schema cannot state.

A DeviceClass's CEL is compiled here, so a selector that does not parse (or names another variable than
`device`) is found by `teamhub validate` instead of by the API server at `helm upgrade`, or worse, by the
scheduler at the first start. The parser is cel-python's (`celpy`, pinned in hub-image/requirements.txt): it
checks CEL's grammar and our identifier rule, not Kubernetes' type checks (the API server still has the last
word); the optional syntax (`?.`, `[?...]`) is not part of its grammar and is refused.
"""

from __future__ import annotations

import difflib

from .source import Problem

MACROS = frozenset({"all", "exists", "exists_one", "map", "filter"})  # their first argument binds a variable
VARIABLES = frozenset({"device"})  # what a DeviceClass selector sees (resource.k8s.io/v1)


def _map(value) -> dict:
    return value if isinstance(value, dict) else {}


def _list(value) -> list:
    return value if isinstance(value, list) else []


def cel_problem(expression: str) -> str | None:
    """Why `expression` is no DeviceClass selector, in a sentence, or None."""
    import celpy  # only when there is CEL to check: it loads a grammar

    try:
        ast = celpy.Environment().compile(expression)
    except celpy.CELParseError as exc:
        line, column = getattr(exc, "line", None), getattr(exc, "column", None)
        if line is None or column is None:
            return "the CEL expression does not compile"
        text = expression.splitlines()[line - 1] if expression.splitlines() else ""
        near = text[max(column - 1, 0):][:20] or "the end"
        return f"the CEL expression does not compile: look near {near!r} (line {line}, column {column})"
    bound, used = set(), []
    for tree in ast.iter_subtrees():
        if tree.data == "member_dot_arg" and len(tree.children) > 2 and str(tree.children[1]) in MACROS:
            names = [t for t in tree.children[2].scan_values(lambda v: getattr(v, "type", "") == "IDENT")]
            if names:
                bound.add(str(names[0]))
        if tree.data == "primary" and tree.children and getattr(tree.children[0], "data", "") == "ident":
            used.append(str(tree.children[0].children[0]))
    unknown = [n for n in dict.fromkeys(used) if n not in VARIABLES and n not in bound]
    if unknown:
        return f"the CEL expression uses {', '.join(repr(n) for n in unknown)}: a DeviceClass selector knows only 'device'"
    return None


def _bytes(value):
    from .quantities import memory_bytes

    return memory_bytes(value) if value is not None else None


def _part_problems(path: tuple, cls: dict) -> list[Problem]:
    """A class's `memory` is a part of its `gpu`: it needs one, and cannot be more than the whole."""
    part, whole = _bytes(cls.get("memory")), _bytes(_map(cls.get("gpu")).get("memory"))
    if part is None:
        return []
    if not cls.get("gpu"):
        return [Problem("error", path + ("memory",), "memory is what one part of a GPU has: say which GPU it is a part of "
                                                     "with gpu: {name: ..., memory: ...}")]
    if whole is not None and part > whole:
        return [Problem("error", path + ("memory",), f"a part of {cls.get('memory')} cannot be bigger than its whole GPU's "
                                                     f"{_map(cls.get('gpu')).get('memory')}")]
    return []


def _share_problems(path: tuple, alt: dict, cls: dict) -> list[Problem]:
    """A capacity share of memory bigger than one device of the class could never be allocated."""
    share = _bytes(_map(alt.get("capacity")).get("memory"))
    device = cls.get("memory") if cls.get("memory") is not None else _map(cls.get("gpu")).get("memory")
    if share is not None and _bytes(device) is not None and share > _bytes(device):
        return [Problem("error", path + ("capacity", "memory"), (
            f"a share of {_map(alt.get('capacity')).get('memory')} is more than the {device} one device of "
            f"'{alt.get('deviceClass')}' has: no start could ever get it"))]
    return []


def problems(data: dict) -> list[Problem]:
    cat = _map(data.get("catalog"))
    classes, accs = _map(cat.get("deviceClasses")), _map(cat.get("accelerators"))
    queue_on = _map(data.get("queue")).get("enabled") is True
    out: list[Problem] = []
    used: set = set()
    for kind, acc in accs.items():
        devices = _map(_map(acc).get("devices"))
        if not devices:
            continue
        base = ("catalog", "accelerators", kind, "devices")
        if queue_on:
            out.append(Problem("error", base, (
                "with queue.enabled a kind cannot ask for devices by DRA yet: Kueue counts DRA claims only with its alpha "
                "gates DynamicResourceAllocation and DRAExtendedResources and resources.deviceClassMappings, and without "
                "them these GPUs would go uncounted; use gpu (an extended resource) for queued kinds")))
        alternatives = [(base + ("firstAvailable", i), _map(a)) for i, a in enumerate(_list(devices.get("firstAvailable")))]
        for path, alt in alternatives or [(base, devices)]:
            ref = alt.get("deviceClass")
            if not isinstance(ref, str):
                continue
            used.add(ref)
            out += _share_problems(path, alt, _map(classes.get(ref)))
            if ref not in classes and "." not in ref:
                close = difflib.get_close_matches(ref, list(classes), n=1, cutoff=0.6)
                hint = f" (did you mean '{close[0]}'?)" if close else ""
                out.append(Problem("warning", path + ("deviceClass",), (
                    f"'{ref}' is not a key of catalog.deviceClasses, so it must be a DeviceClass the cluster already has{hint}")))
    for key, cls in classes.items():
        out += _part_problems(("catalog", "deviceClasses", key), _map(cls))
        cel = _map(cls).get("cel")
        if isinstance(cel, str) and cel.strip():
            why = cel_problem(cel)
            if why:
                out.append(Problem("error", ("catalog", "deviceClasses", key, "cel"), why))
        if key not in used:
            out.append(Problem("warning", ("catalog", "deviceClasses", key), "no accelerator's devices name this DeviceClass"))
    return out
