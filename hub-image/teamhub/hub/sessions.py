"""Session deadlines: start + chosen minutes, kept in the spawner's persisted state."""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime
from pathlib import Path

# Tests only (the chart never sets it): a file holding seconds to add to the clock, so a test moves a
# running session past its deadline without waiting and without shortening what people may choose.
TEST_CLOCK_ENV = "TEAMHUB_TEST_CLOCK_FILE"


def test_clock(environ=os.environ) -> Path | None:
    return Path(environ[TEST_CLOCK_ENV]) if environ.get(TEST_CLOCK_ENV) else None


def now(environ=os.environ) -> float:
    clock = test_clock(environ)
    if clock is None:
        return time.time()
    try:
        return time.time() + float(clock.read_text() or 0)
    except FileNotFoundError:
        return time.time()


def poll_seconds(check_seconds: int, environ=os.environ) -> int:
    """The hub's poll interval, sessions.budgetCheckSeconds (deadlines and budgets are checked at every poll):
    every second under the test clock, so a moved clock is seen at once."""
    return 1 if test_clock(environ) else check_seconds


def deadline_after(minutes: int, at: float | None = None) -> float:
    return (now() if at is None else at) + minutes * 60


def iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def env_for(deadline: float, minutes: int) -> dict:
    """Environment for an in-lab countdown."""
    return {
        "TEAMHUB_SESSION_END": iso(deadline),
        "TEAMHUB_SESSION_END_EPOCH": str(int(deadline)),
        "TEAMHUB_SESSION_MINUTES": str(minutes),
    }


def expired(deadline: float | None, at: float | None = None) -> bool:
    return deadline is not None and (now() if at is None else at) >= deadline
