"""What the hub reads about usage many times a second, kept in memory (issue 24).

A scrape of /hub/metrics, a budget check at every start and poll and the launch page's budget lines used to
run SQL on the hub's event loop; with a term of records (10^6) a scrape froze every request for seconds. The
ledger answers them from memory instead:

- the open records (restored at hub start, then kept by the store's own writes: open, a written `last_seen`,
  close), so servers running, GPUs in use and what running servers consume cost nothing to read;
- counters of closed records' server- and GPU-seconds per (team, resource), restored at start with one sum
  and grown by each close: the metrics' counters cost the same at ten records and ten million;
- per budget (team, kind, window), the sum over closed records in the window (`Window.base`), computed once
  synchronously (hub start), then refreshed every CACHE_SECONDS in a worker thread while the stale one is
  used (a budget comes back up to that much late, never early).

A refresh's sum leaves out the records open when it began (`Window.excluded`) and those opened after
(`id > Window.max_id`); records closed since are kept in `recent` and added in memory. So a record is counted
exactly once whatever the order of closes and refreshes.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from dataclasses import dataclass

from .tables import TABLE
from .totals import overlap_sql

# How long a window's sum over closed records is reused before a refresh starts. Records leaving the window
# meanwhile still count for at most this long: a budget comes back up to a minute late, never early.
CACHE_SECONDS = 60
log = logging.getLogger("JupyterHub")


def amount(kind: str, gpus, cpu) -> float:
    """What one record draws per second on a budget of `kind`: its GPUs, or its CPU cores."""
    return float(gpus or 0) if kind == "gpu" else float(cpu or 0)


@dataclass
class Rec:
    server: str
    team: str | None
    resource: str
    accelerator: str | None
    gpus: float  # GPUs held: a partition or a capacity share counts as its fraction of a GPU
    cpu: float | None
    started: float
    last_seen: float | None = None  # as written in the database (the metrics' counters read it)
    ended: float | None = None
    failed: bool = False  # ended as a failed start: charges nothing


@dataclass
class Window:
    base: float  # unit-seconds of closed records inside [at - days, at], excluding below
    at: float
    excluded: frozenset  # ids open when the sum was taken: counted from memory
    max_id: int  # ids above it were opened after: counted from memory


def _overlap(rec: Rec, start: float, end: float) -> float:
    return max(min(rec.ended if rec.ended is not None else end, end) - max(rec.started, start), 0.0)


class Ledger:
    def __init__(self, engine):
        self.engine = engine
        self.open: dict[int, Rec] = {}
        self.recent: dict[int, Rec] = {}  # closed by this hub since a window's sum was taken
        self.counters: dict[tuple, list] = {}  # (team, resource) -> [server-seconds, GPU-seconds] of closed records
        self.ends: dict[tuple, int] = {}  # (team, resource, end reason) -> closed records (teamhub_server_ends_total)
        self.windows: dict[tuple, Window] = {}
        self.max_id = 0
        self.longest = 0.0  # seconds: no closed record lasted longer (daily.query bounds its scans with it)
        self.changes = 0  # grows at every open and close (callers cache on it)
        self._moving: tuple = (None, frozenset())  # (what it was computed at, teams with an open or a recent record)
        self.generation = 0  # grows whenever windows are summed (a first use, a refresh applied)
        self._span = (float("inf"), float("-inf"))  # (earliest, latest) `at` of the windows
        self._refreshing = False
        self._lock = threading.Lock()  # the sync first sum of a window vs. a refresh thread's apply

    # --- restored at hub start ------------------------------------------------------------------
    def restore(self) -> None:
        from sqlalchemy import text

        secs = "(COALESCE(ended, last_seen, started) - started)"
        with self.engine.connect() as con:
            for row in con.execute(text(f"SELECT id, server, team, resource, accelerator, gpus, cpu, started, last_seen FROM {TABLE} "
                                        "WHERE ended IS NULL")):
                self.open[row[0]] = Rec(*row[1:])
            # one pass over the closed records: the counters, and the longest record (failed starts included)
            ran = "CASE WHEN end_reason = 'failed-start' THEN 0 ELSE 1 END"
            for team, res, n, sec, gsec, longest in con.execute(text(
                    f"SELECT team, resource, SUM({ran}), SUM({secs} * {ran}), SUM({secs} * gpus * {ran}), MAX(ended - started) "
                    f"FROM {TABLE} WHERE ended IS NOT NULL GROUP BY team, resource")):
                if n:  # failed starts alone charge nothing and make no series
                    self.counters[(team or "", res)] = [float(sec or 0), float(gsec or 0)]
                self.longest = max(self.longest, float(longest or 0))
            for team, res, reason, n in con.execute(text(
                    f"SELECT team, resource, end_reason, COUNT(*) FROM {TABLE} WHERE ended IS NOT NULL GROUP BY team, resource, end_reason")):
                self.ends[(team or "", res, reason or "")] = int(n)
            self.max_id = int(con.execute(text(f"SELECT MAX(id) FROM {TABLE}")).scalar() or 0)

    # --- the store's writes ------------------------------------------------------------------------
    def opened(self, record: int, rec: Rec) -> None:
        self.open[record] = rec
        self.max_id = max(self.max_id, record)
        self.changes += 1

    def seen(self, record: int, at: float) -> None:
        rec = self.open.get(record)
        if rec is not None:
            rec.last_seen = at

    def closed(self, record: int, ended: float | None, reason: str) -> None:
        """`ended` None: at the record's last written `last_seen` (or its start)."""
        rec = self.open.pop(record, None)
        if rec is None:
            return
        rec.ended = ended if ended is not None else (rec.last_seen if rec.last_seen is not None else rec.started)
        rec.failed = reason == "failed-start"
        self.longest = max(self.longest, rec.ended - rec.started)
        if not rec.failed:
            c = self.counters.setdefault((rec.team or "", rec.resource), [0.0, 0.0])
            c[0] += rec.ended - rec.started
            c[1] += (rec.ended - rec.started) * rec.gpus
        key = (rec.team or "", rec.resource, reason)
        self.ends[key] = self.ends.get(key, 0) + 1
        self.recent[record] = rec
        self.changes += 1

    # --- metrics -------------------------------------------------------------------------------------
    def running(self) -> dict[tuple, list]:
        """(team, resource, accelerator) -> [servers, GPUs] of the open records."""
        out: dict[tuple, list] = {}
        for rec in list(self.open.values()):
            row = out.setdefault((rec.team or "", rec.resource, rec.accelerator or ""), [0, 0])
            row[0] += 1
            row[1] += rec.gpus
        return out

    def seconds(self) -> dict[tuple, tuple]:
        """(team, resource) -> (server-seconds, GPU-seconds): closed records to their end, open ones to when they
        were last seen alive (closing one never takes seconds back, so these only grow)."""
        out = {k: list(v) for k, v in self.counters.items()}
        for rec in list(self.open.values()):
            secs = (rec.last_seen if rec.last_seen is not None else rec.started) - rec.started
            row = out.setdefault((rec.team or "", rec.resource), [0.0, 0.0])
            row[0] += secs
            row[1] += secs * rec.gpus
        return {k: tuple(v) for k, v in out.items()}

    # --- budgets ----------------------------------------------------------------------------------------
    def use(self, team: str, kind: str, days: int, now: float, exclude: str | None = None) -> tuple[float, float]:
        """(unit-hours used in the `days` before now, running servers counted up to now; units the team's open
        records draw now, leaving out server `exclude`'s: a start about to replace it)."""
        window = self._window((team, kind, days), now)
        if team not in self._moving_teams():
            return window.base / 3600, 0.0  # what the loops below add for a team with no such record: nothing
        start = now - days * 86400
        used = window.base
        for record, rec in list(self.recent.items()):
            if rec.team == team and not rec.failed and (record in window.excluded or record > window.max_id):
                used += _overlap(rec, start, now) * amount(kind, rec.gpus, rec.cpu)
        rate = 0.0
        for rec in list(self.open.values()):
            if rec.team != team:
                continue
            a = amount(kind, rec.gpus, rec.cpu)
            used += _overlap(rec, start, now) * a
            if rec.server != exclude:
                rate += a
        return used / 3600, rate

    def still(self, team: str, budgets, now: float) -> tuple | None:
        """For a team whose use does not move (see `_moving_teams`): the window sums of its budgets (catalog.Budget),
        which are then all that its budget figures depend on; None for the others."""
        if team in self._moving_teams():
            return None
        return tuple(self._window((team, b.kind, b.window_days), now).base for b in budgets)

    def stamp(self, now: float) -> tuple | None:
        """(a version of everything the budget figures of a team with no open or recent record depend on, the teams
        that have one), or None when a window is due for its refresh at `now` (then `use` and `still`, which start it,
        must be asked). While the version stays, such a team's figures stay: a caller may keep them."""
        earliest, latest = self._span
        if not (latest <= now < earliest + CACHE_SECONDS):
            return None
        return (self, self.changes, self.generation), self._moving_teams()

    def _moving_teams(self) -> frozenset:
        """The teams whose use moves with the clock or is counted from memory: those with an open record or one in
        `recent`. Every other team's use is its window's sum (the launch page asks for 20 teams' on every view)."""
        at = (self.changes, len(self.open), len(self.recent))
        if self._moving[0] != at:
            self._moving = (at, frozenset(r.team for r in list(self.open.values()) + list(self.recent.values())))
        return self._moving[1]

    def _window(self, key: tuple, now: float) -> Window:
        window = self.windows.get(key)
        if window is None:  # first use (hub start, or a team's first budget check): once, synchronously
            snapshot = self._snapshot()
            with self._lock:
                window = self.windows[key] = Window(self._sum(key, now, *snapshot), now, *snapshot)
                self.generation += 1
                self._span = (min(self._span[0], now), max(self._span[1], now))
        elif not (window.at <= now < window.at + CACHE_SECONDS):
            self._refresh(now)  # in a worker thread under the hub's loop: this check still reads the stale sum
            window = self.windows[key]
        return window

    def _snapshot(self) -> tuple[frozenset, int]:
        return frozenset(self.open), self.max_id

    def _sum(self, key: tuple, now: float, excluded: frozenset, max_id: int) -> float:
        from sqlalchemy import text

        team, kind, days = key
        col = "gpus" if kind == "gpu" else "COALESCE(cpu, 0)"
        skip = f"AND id NOT IN ({', '.join(str(int(i)) for i in excluded)})" if excluded else ""
        sql = (f"SELECT SUM({overlap_sql()} * {col}) FROM {TABLE} WHERE team = :team AND started < :end "
               f"AND ended IS NOT NULL AND ended > :start AND id <= :max_id "
               f"AND (end_reason IS NULL OR end_reason != 'failed-start') {skip}")
        with self.engine.connect() as con:
            value = con.execute(text(sql), {"team": team, "start": now - days * 86400, "end": now, "now": now,
                                            "max_id": max_id}).scalar()
        return float(value or 0)

    def _refresh(self, now: float) -> None:
        """Every window's sum again, in a worker thread when the hub's event loop runs (else here and now)."""
        if self._refreshing:
            return
        keys, snapshot = list(self.windows), self._snapshot()

        def compute():
            return {key: Window(self._sum(key, now, *snapshot), now, *snapshot) for key in keys}

        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self._apply(compute())
            return
        self._refreshing = True

        def done(fut):
            self._refreshing = False
            if fut.exception() is not None:  # the stale sums stay; the next check tries again
                log.warning("usage ledger: refreshing budget windows failed: %s", str(fut.exception()).splitlines()[0])
            else:
                self._apply(fut.result())

        loop.run_in_executor(None, compute).add_done_callback(done)

    def _apply(self, fresh: dict) -> None:
        with self._lock:
            self.windows.update(fresh)
            self.generation += 1
            ats = [w.at for w in self.windows.values()]
            self._span = (min(ats), max(ats)) if ats else (float("inf"), float("-inf"))
            # a closed record no window needs from memory any more is in every window's sum
            for record in [r for r in self.recent if all(r not in w.excluded and r <= w.max_id for w in self.windows.values())]:
                del self.recent[record]
