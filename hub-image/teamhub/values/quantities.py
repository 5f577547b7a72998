"""Kubernetes quantities as numbers, so request <= limit can be compared and quotas counted."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

_SUFFIX = {
    "": 1, "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15, "E": 10**18,
    "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60,
}
_MEMORY = re.compile(r"^([0-9]+(?:\.[0-9]+)?)([KMGTPE]i|[kMGTPE])?$")
_MISTAKE = re.compile(r"^([0-9]+(?:\.[0-9]+)?)\s*([kKMGTPE])(i?)[bB]$")


def cpu_cores(value) -> Decimal | None:
    """2 -> 2, "500m" -> 0.5; None when it is not a CPU quantity (also NaN and infinity, which compare with nothing)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return None
    try:
        cores = Decimal(value[:-1]) / 1000 if isinstance(value, str) and value.endswith("m") else Decimal(str(value))
    except InvalidOperation:
        return None
    return cores if cores.is_finite() else None


def memory_bytes(value) -> Decimal | None:
    """"4Gi" -> 4294967296; None when it is not a memory quantity."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, str):
        m = _MEMORY.match(value)
        if m:
            return Decimal(m.group(1)) * _SUFFIX[m.group(2) or ""]
    return None


def memory_hint(value) -> str | None:
    """For a common mistake like "4GB", the two spellings Kubernetes accepts."""
    if isinstance(value, str):
        m = _MISTAKE.match(value.strip())
        if m:
            number, unit = m.group(1), m.group(2).upper() if m.group(2) != "k" else "k"
            decimal_unit = "k" if unit == "K" else unit
            binary_unit = ("K" if unit in "kK" else unit) + "i"
            return f"write {number}{decimal_unit} or {number}{binary_unit}"
    return None


def format_cpu(value) -> str:
    cores = cpu_cores(value)
    if cores is None:
        return str(value)
    return f"{cores.normalize():f}".rstrip(".")


def format_memory(value) -> str:
    if isinstance(value, int):
        return f"{value / 2**30:.1f}Gi"
    return str(value)
