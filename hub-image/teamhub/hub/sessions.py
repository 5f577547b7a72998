"""Session deadlines: start + chosen minutes, kept in the spawner's persisted state (time from teamhub/clock.py)."""

from __future__ import annotations

import os

from ..clock import iso, now, test_clock


def poll_seconds(check_seconds: int, environ=os.environ) -> int:
    """The hub's poll interval, sessions.budgetCheckSeconds (deadlines and budgets are checked at every poll):
    every second under the test clock, so a moved clock is seen at once."""
    return 1 if test_clock(environ) else check_seconds


def deadline_after(minutes: int, at: float | None = None) -> float:
    return (now() if at is None else at) + minutes * 60


def env_for(deadline: float, minutes: int) -> dict:
    """Environment for an in-lab countdown."""
    return {
        "TEAMHUB_SESSION_END": iso(deadline),
        "TEAMHUB_SESSION_END_EPOCH": str(int(deadline)),
        "TEAMHUB_SESSION_MINUTES": str(minutes),
    }


def expired(deadline: float | None, at: float | None = None) -> bool:
    return deadline is not None and (now() if at is None else at) >= deadline
