"""Totals over the usage records for a period, grouped by team, person, resource and/or accelerator.

Computed in the database (one GROUP BY), so a million records do not pass through Python. Each record
counts only for the part of its life inside [start, end); a server still running counts up to `now`.
Failed starts are counted, but charge no hours (the server never ran).
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from datetime import UTC, datetime

from .tables import TABLE

GROUPS = ("team", "person", "resource", "accelerator")
FIELDS = ("gpu_hours", "server_hours", "cpu_core_hours", "sessions", "failed_starts")
DAY = 86400


def parse_time(text: str, flag: str) -> float:
    """A period's end as `teamhub usage` and the admins' page take it: a date (2026-11-01, midnight UTC) or an
    ISO time (2026-11-01T12:00:00Z); ValueError with a sentence naming `flag` otherwise."""
    try:
        t = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{flag} {text!r}: give a date like 2026-11-01 or a time like 2026-11-01T12:00:00Z") from None
    return (t if t.tzinfo else t.replace(tzinfo=UTC)).timestamp()


@dataclass(frozen=True)
class Period:
    start: float
    end: float
    now: float


def overlap_sql() -> str:
    """Seconds of a record inside the period, portable between SQLite and PostgreSQL (no LEAST/GREATEST)."""
    end = "COALESCE(ended, :now)"
    return (f"((CASE WHEN {end} < :end THEN {end} ELSE :end END) - "
            "(CASE WHEN started > :start THEN started ELSE :start END))")


def query(con, period: Period, by: tuple = ("team",), where: str = "", params: dict | None = None) -> list[dict]:
    """Rows of totals, one per group, sorted by the group keys. `con`: a SQLAlchemy connection."""
    from sqlalchemy import text

    for g in by:
        if g not in GROUPS:
            raise ValueError(f"cannot group by {g!r}; choose from {', '.join(GROUPS)}")
    ran = "CASE WHEN end_reason = 'failed-start' THEN 0 ELSE 1 END"
    secs = f"({overlap_sql()} * {ran})"
    cols = ", ".join(by)
    sql = (f"SELECT {cols + ', ' if cols else ''}"
           f"SUM({secs} * gpus) / 3600.0, SUM({secs}) / 3600.0, SUM({secs} * COALESCE(cpu, 0)) / 3600.0, "
           f"SUM({ran}), SUM(1 - {ran}) FROM {TABLE} "
           f"WHERE started < :end AND COALESCE(ended, :now) > :start {where}"
           + (f" GROUP BY {cols} ORDER BY {cols}" if cols else ""))
    rows = con.execute(text(sql), {"start": period.start, "end": period.end, "now": period.now, **(params or {})}).all()
    out = []
    for row in rows:
        keys, values = row[:len(by)], row[len(by):]
        if values[3] is None:  # no record at all (an aggregate without GROUP BY still returns one row)
            continue
        item = dict(zip(by, keys, strict=True))
        item.update(gpu_hours=round(float(values[0] or 0), 4), server_hours=round(float(values[1] or 0), 4),
                    cpu_core_hours=round(float(values[2] or 0), 4), sessions=int(values[3] or 0),
                    failed_starts=int(values[4] or 0))
        out.append(item)
    return out


def render(rows: list[dict], by: tuple, fmt: str) -> str:
    columns = [*by, *FIELDS]
    if fmt == "json":
        return json.dumps(rows, indent=2)
    if fmt == "csv":
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        for row in rows:
            writer.writerow({c: "" if row.get(c) is None else row[c] for c in columns})
        return buf.getvalue().rstrip("\n")
    table = [[c.upper().replace("_", "-") for c in columns]]
    for row in rows:
        table.append([("-" if row.get(c) is None else f"{row[c]:.2f}" if isinstance(row[c], float) else str(row[c]))
                      for c in columns])
    widths = [max(len(r[i]) for r in table) for i in range(len(columns))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip() for r in table]
    return "\n".join(lines) + ("" if rows else "\n(no usage in this period)")
