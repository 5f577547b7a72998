"""Daily summaries of closed records (table `teamhub_usage_daily`, migration 2): the admins' page over a term.

`totals.query` groups every record of a period: over a term of records (10^6) the page took seconds. Here a
closed record is added, when it closes (in the same transaction), to one row per UTC day it overlaps and per
(team, resource, accelerator): its seconds inside that day (server, GPU, CPU-core), and whether it
started that day or was carried in from an earlier one. A period's totals (`query`) are then:
- whole days inside the period from this table (sessions: those started on these days, plus those carried into
  the first one when the period starts at midnight);
- the partial days at either end from the records themselves, found by the `started` index within the longest
  record's length (`max_length`) before the edge; a record's session counts at the start edge, or at the end
  edge when it started there;
- the open records (few, `ended` index) over the whole period, up to now.
Each record counts once, for its part inside the period: the same answer as `totals.query` (tests hold them equal).
Grouped by person, the page reads the records (`totals.query`): per person, days do not shrink a term.
"""

from __future__ import annotations

import math
from collections import defaultdict

from .tables import TABLE

# Without the person: a few rows a day, whatever the number of records. Totals grouped by person are as many
# rows as records, nearly, so those come from the records themselves (totals.query: measured faster).
DAILY = "teamhub_usage_daily"
DAY = 86400
KEYS = ("team", "resource", "accelerator")  # '' for None: a unique index treats NULLs as distinct
VALUES = ("gpu_seconds", "server_seconds", "cpu_seconds", "started_sessions", "carried_sessions", "started_failed",
          "carried_failed")


def _create(table: str, keys: tuple) -> list[str]:
    return [
        f"CREATE TABLE IF NOT EXISTS {table} (day DOUBLE PRECISION NOT NULL, "
        + "".join(f"{k} VARCHAR(255) NOT NULL, " for k in keys)
        + "gpu_seconds DOUBLE PRECISION NOT NULL DEFAULT 0, server_seconds DOUBLE PRECISION NOT NULL DEFAULT 0, "
        "cpu_seconds DOUBLE PRECISION NOT NULL DEFAULT 0, started_sessions INTEGER NOT NULL DEFAULT 0, "
        "carried_sessions INTEGER NOT NULL DEFAULT 0, started_failed INTEGER NOT NULL DEFAULT 0, "
        "carried_failed INTEGER NOT NULL DEFAULT 0)",
        f"CREATE UNIQUE INDEX IF NOT EXISTS ix_{table}_key ON {table} (day, {', '.join(keys)})",
    ]


CREATE = _create(DAILY, KEYS)
RECORD = "team, resource, accelerator, gpus, cpu, started, ended, end_reason"


def rows_of(team, resource, accelerator, gpus, cpu, started, ended, reason) -> list[tuple]:
    """A closed record as (day, keys..., values...) rows, one per UTC day it overlaps (one for a zero-length one)."""
    failed = reason == "failed-start"
    keys = (team or "", resource, accelerator or "")
    first = math.floor(started / DAY) * DAY
    out, day = [], first
    while True:
        secs = 0.0 if failed else max(min(ended, day + DAY) - max(started, day), 0.0)
        here = day == first
        out.append((day, *keys, secs * (gpus or 0), secs, secs * (cpu or 0), int(here and not failed),
                    int(not here and not failed), int(here and failed), int(not here and failed)))
        day += DAY
        if day >= ended:
            return out


def _merged(rows) -> list[tuple]:
    acc: dict = defaultdict(lambda: [0.0, 0.0, 0.0, 0, 0, 0, 0])
    for row in rows:
        a = acc[row[:-len(VALUES)]]
        for i, v in enumerate(row[-len(VALUES):]):
            a[i] += v
    return [(*k, *v) for k, v in acc.items()]


def add(con, rows: list[tuple]) -> None:
    """Add (day, team, resource, accelerator, values...) rows (SQLite and PostgreSQL alike: INSERT ... ON CONFLICT
    DO UPDATE)."""
    from sqlalchemy import text

    if not rows:
        return
    cols = ("day", *KEYS, *VALUES)
    sql = (f"INSERT INTO {DAILY} ({', '.join(cols)}) VALUES ({', '.join(':' + c for c in cols)}) "
           f"ON CONFLICT (day, {', '.join(KEYS)}) DO UPDATE SET "
           + ", ".join(f"{v} = {DAILY}.{v} + excluded.{v}" for v in VALUES))
    con.execute(text(sql), [dict(zip(cols, r, strict=True)) for r in _merged(rows)])


def summarize(con, ids: list[int]) -> None:
    """Add the records `ids` (just closed, in this transaction) to the table."""
    from sqlalchemy import text

    rows = []
    for i in range(0, len(ids), 500):
        chunk = ", ".join(str(int(x)) for x in ids[i:i + 500])
        for rec in con.execute(text(f"SELECT {RECORD} FROM {TABLE} WHERE id IN ({chunk}) AND ended IS NOT NULL")):
            rows += rows_of(*rec)
    add(con, rows)


def rebuild(con) -> None:
    """The table from every closed record (migration 2, and after records were written around the store)."""
    from sqlalchemy import text

    con.execute(text(f"DELETE FROM {DAILY}"))
    result = con.execute(text(f"SELECT {RECORD} FROM {TABLE} WHERE ended IS NOT NULL"))
    while chunk := result.fetchmany(50_000):  # in chunks: a term of records does not fit in memory at once
        add(con, [row for rec in chunk for row in rows_of(*rec)])


def max_length(con) -> float:
    from sqlalchemy import text

    return float(con.execute(text(f"SELECT MAX(ended - started) FROM {TABLE} WHERE ended IS NOT NULL")).scalar() or 0)


def query(con, period, by: tuple, longest: float) -> list[dict]:
    """totals.query's rows for `period` grouped `by`, from the summaries; `longest`: no closed record lasted
    longer (`max_length`, kept by the hub's store)."""
    from sqlalchemy import text

    from . import totals

    if "person" in by:
        return totals.query(con, period, by)
    for g in by:
        if g not in totals.GROUPS:
            raise ValueError(f"cannot group by {g!r}; choose from {', '.join(totals.GROUPS)}")
    start, end, now = period.start, period.end, period.now
    d0, d1 = math.ceil(start / DAY) * DAY, math.floor(end / DAY) * DAY
    acc: dict = defaultdict(lambda: [0.0, 0.0, 0.0, 0, 0])  # gpu, server, cpu seconds; sessions; failed
    group = ", ".join(f"COALESCE({g}, '')" for g in by)
    sel = f"{group + ', ' if group else ''}"
    tail = f" GROUP BY {group}" if group else ""

    def take(rows):
        for row in rows:
            a = acc[tuple(row[:len(by)])]
            for i, v in enumerate(row[len(by):]):
                a[i] += float(v or 0)

    def raw(lo: float, hi: float, where: str, count: str):
        """Closed (or open) records' part inside [lo, hi); sessions counted where `count` holds."""
        ran = "CASE WHEN end_reason = 'failed-start' THEN 0 ELSE 1 END"
        end_ = "COALESCE(ended, :now)"
        secs = (f"(((CASE WHEN {end_} < :hi THEN {end_} ELSE :hi END) - "
                f"(CASE WHEN started > :lo THEN started ELSE :lo END)) * {ran})")
        sql = (f"SELECT {sel}SUM({secs} * gpus), SUM({secs}), SUM({secs} * COALESCE(cpu, 0)), "
               f"SUM(CASE WHEN {count} THEN {ran} ELSE 0 END), SUM(CASE WHEN {count} THEN 1 - {ran} ELSE 0 END) "
               f"FROM {TABLE} WHERE started < :hi AND {end_} > :lo {where}{tail}")
        take(con.execute(text(sql), {"lo": lo, "hi": hi, "now": now, "bound": lo - longest, "d1": d1}))

    closed = "AND ended IS NOT NULL AND started >= :bound"
    if d0 >= d1:  # no whole day inside: the records themselves
        raw(start, end, closed, "1 = 1")
    else:
        if start < d0:
            raw(start, d0, closed, "1 = 1")
        if d1 < end:
            raw(d1, end, closed, "started >= :d1")
        carried = "carried_sessions" if start == d0 else "0"
        carried_failed = "carried_failed" if start == d0 else "0"
        daily_group = ", ".join(by)
        take(con.execute(text(
            f"SELECT {daily_group + ', ' if by else ''}SUM(gpu_seconds), SUM(server_seconds), SUM(cpu_seconds), "
            f"SUM(started_sessions + CASE WHEN day = :d0 THEN {carried} ELSE 0 END), "
            f"SUM(started_failed + CASE WHEN day = :d0 THEN {carried_failed} ELSE 0 END) "
            f"FROM {DAILY} WHERE day >= :d0 AND day < :d1{' GROUP BY ' + daily_group if by else ''}"), {"d0": d0, "d1": d1}))
    raw(start, end, "AND ended IS NULL", "1 = 1")  # the open records, up to now
    out = []
    for keys in sorted(acc):
        g, s, c, n, f = acc[keys]
        if n == 0 and f == 0 and s == 0:
            continue
        item = {k: (v or None) if k in ("team", "accelerator") else v for k, v in zip(by, keys, strict=True)}
        item.update(gpu_hours=round(g / 3600, 4), server_hours=round(s / 3600, 4), cpu_core_hours=round(c / 3600, 4),
                    sessions=int(n), failed_starts=int(f))
        out.append(item)
    return out
