"""Session deadlines: start + chosen minutes, kept in the spawner's persisted state."""

from __future__ import annotations

import time
from datetime import UTC, datetime


def deadline_after(minutes: int, now: float | None = None) -> float:
    return (time.time() if now is None else now) + minutes * 60


def iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def env_for(deadline: float, minutes: int) -> dict:
    """Environment for an in-lab countdown."""
    return {
        "TEAMHUB_SESSION_END": iso(deadline),
        "TEAMHUB_SESSION_END_EPOCH": str(int(deadline)),
        "TEAMHUB_SESSION_MINUTES": str(minutes),
    }


def expired(deadline: float | None, now: float | None = None) -> bool:
    return deadline is not None and (time.time() if now is None else now) >= deadline
