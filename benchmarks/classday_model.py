"""The class day's pure parts (benchmarks/class_day.py replays it on the cluster tier): who arrives when, how long
each works, who leaves an idle GPU behind, and the figures computed from what happened. No cluster, no clock:
times are simulated minutes since the day began, so tests/unit/test_class_day_model.py checks the maths alone.

A day: `students` people of one course, `gpus` GPUs of one kind, `minutes` long, ending at a deadline. Arrivals
peak an hour or so before the deadline (most of them from a triangular distribution, the rest uniform over the
day). Each person computes for a while (lognormal, 10-150 min) once the notebook runs; a share of them then
leave the notebook open with the GPU idle (an open tab, a finished cell) for an hour or more before closing it.
A person turned away retries every `retry` minutes; anyone without a notebook `patience` minutes after arriving
gives up. The same seed gives the same people for every policy.
"""

from __future__ import annotations

import math
import random
import statistics
from dataclasses import dataclass, field

# What the replay records, per person (times in simulated minutes since the day began):
ARRIVE, REFUSED, READY, IDLE, END = "arrive", "refused", "ready", "idle", "end"
# END's reasons: the person closed it, the culler stopped it, the day (deadline) ended, gave up waiting
STOPPED, CULLED, DAY_END, GAVE_UP = "stopped", "culled", "day-end", "gave-up"


@dataclass(frozen=True)
class Day:
    students: int = 60
    gpus: int = 8
    minutes: float = 240.0  # the evening before a deadline, which is at its end
    seed: int = 20261207
    peak_before_deadline: float = 60.0  # minutes: when most arrive
    peaked_share: float = 0.75  # the rest arrive uniformly over the day
    work_median: float = 25.0  # minutes of computing once the notebook runs (lognormal)
    work_spread: float = 0.6  # its sigma
    idle_share: float = 0.4  # leave the GPU idle afterwards...
    idle_minutes: tuple = (60.0, 180.0)  # ...for this long (uniform) before closing the notebook
    retry: float = 5.0  # a refused start is tried again this many minutes later
    patience: float = 90.0  # without a notebook this long after arriving, the person gives up


@dataclass(frozen=True)
class Person:
    name: str
    arrive: float  # minutes since the day began
    work: float  # minutes of GPU computing once the notebook runs
    idle_after: float  # minutes the notebook then stays open with the GPU idle (0: closed at once)


def people(day: Day) -> list[Person]:
    """The day's people, by arrival, from `day.seed` alone."""
    rng = random.Random(day.seed)
    out = []
    for i in range(day.students):
        if rng.random() < day.peaked_share:
            arrive = rng.triangular(0.0, day.minutes - 10.0, max(0.0, day.minutes - day.peak_before_deadline))
        else:
            arrive = rng.uniform(0.0, day.minutes - 10.0)
        work = min(150.0, max(10.0, rng.lognormvariate(math.log(day.work_median), day.work_spread)))
        idle = rng.uniform(*day.idle_minutes) if rng.random() < day.idle_share else 0.0
        out.append(Person(f"s{i + 1:02d}", round(arrive, 2), round(work, 2), round(idle, 2)))
    return sorted(out, key=lambda p: (p.arrive, p.name))


@dataclass
class Event:
    person: str
    kind: str  # ARRIVE, REFUSED, READY, IDLE (the GPU stopped computing), END
    at: float  # simulated minutes
    reason: str = ""  # END only


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100); NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def _overlap(a: float, b: float, lo: float, hi: float) -> float:
    return max(0.0, min(b, hi) - max(a, lo))


@dataclass
class Figures:
    turned_away: int  # start attempts refused
    unserved: int  # people who never got a notebook (gave up, or the deadline came)
    served: int
    waits: list = field(default_factory=list)  # minutes from arrival to a running notebook, served people only
    busy_gpu_hours: float = 0.0  # GPU held by a notebook that computes
    idle_gpu_hours: float = 0.0  # GPU held by a notebook that does not
    capacity_gpu_hours: float = 0.0
    culled: int = 0  # servers the culler stopped
    culled_busy: int = 0  # ... of them while still computing (must be 0)

    @property
    def wait_median(self) -> float:
        return statistics.median(self.waits) if self.waits else float("nan")

    @property
    def wait_p95(self) -> float:
        return percentile(self.waits, 95)

    @property
    def used_share(self) -> float:
        """The day's GPU capacity that went to computing notebooks."""
        return self.busy_gpu_hours / self.capacity_gpu_hours if self.capacity_gpu_hours else float("nan")

    @property
    def held_share(self) -> float:
        """The day's GPU capacity held by notebooks, computing or not."""
        held = self.busy_gpu_hours + self.idle_gpu_hours
        return held / self.capacity_gpu_hours if self.capacity_gpu_hours else float("nan")


def figures(events: list[Event], day: Day, gpus_per_server: float = 1.0) -> Figures:
    """The day's figures from what happened. A notebook holds its GPU from READY to END; it computes until its
    IDLE event (none: until END). Everything is cut at the end of the day."""
    by_person: dict[str, list[Event]] = {}
    for e in sorted(events, key=lambda e: e.at):
        by_person.setdefault(e.person, []).append(e)
    out = Figures(turned_away=sum(1 for e in events if e.kind == REFUSED), unserved=0, served=0,
                  capacity_gpu_hours=day.gpus * day.minutes / 60)
    for name, seen in by_person.items():
        kinds = {e.kind: e for e in seen}
        if ARRIVE not in kinds:
            raise ValueError(f"{name}: events without an arrival: {seen}")
        if READY not in kinds:
            out.unserved += 1
            continue
        out.served += 1
        ready = kinds[READY].at
        out.waits.append(ready - kinds[ARRIVE].at)
        end = kinds[END].at if END in kinds else day.minutes
        idle = min(kinds[IDLE].at, end) if IDLE in kinds else end
        out.busy_gpu_hours += _overlap(ready, idle, 0.0, day.minutes) * gpus_per_server / 60
        out.idle_gpu_hours += _overlap(idle, end, 0.0, day.minutes) * gpus_per_server / 60
        if END in kinds and kinds[END].reason == CULLED:
            out.culled += 1
            out.culled_busy += IDLE not in kinds or kinds[IDLE].at > kinds[END].at
    return out


def ideal(day: Day) -> Figures:
    """An oracle's day for comparison: nobody waits for an administrative reason, GPUs go back the moment a person
    stops computing, first come first served; same people. Wait comes only from the GPUs being busy."""
    free = [0.0] * day.gpus  # when each GPU is next free
    events: list[Event] = []
    for p in people(day):
        events.append(Event(p.name, ARRIVE, p.arrive))
        gpu = min(range(day.gpus), key=lambda g: free[g])
        start = max(p.arrive, free[gpu])
        if start - p.arrive > day.patience or start >= day.minutes:
            events.append(Event(p.name, END, min(p.arrive + day.patience, day.minutes), GAVE_UP))
            continue
        events.append(Event(p.name, READY, start))
        free[gpu] = start + p.work
        events.append(Event(p.name, END, start + p.work, STOPPED))
    return figures(events, day)


HEADER = ("policy", "turned away", "unserved", "wait median", "wait p95", "GPU-h busy", "GPU-h idle", "capacity used",
          "held", "culled")


def row(policy: str, f: Figures) -> list[str]:
    return [policy, str(f.turned_away), f"{f.unserved}/{f.served + f.unserved}", f"{f.wait_median:.0f} min",
            f"{f.wait_p95:.0f} min", f"{f.busy_gpu_hours:.1f}", f"{f.idle_gpu_hours:.1f}", f"{f.used_share:.0%}",
            f"{f.held_share:.0%}", str(f.culled) + (f" ({f.culled_busy} busy!)" if f.culled_busy else "")]


def table(rows: list[list[str]]) -> str:
    """A Markdown table (for the README as printed)."""
    lines = ["| " + " | ".join(HEADER) + " |", "| --- |" + " ---: |" * (len(HEADER) - 1)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)
