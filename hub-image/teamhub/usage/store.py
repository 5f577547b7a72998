"""The table `teamhub_usage`: one row per server start, written by the hub, read by `teamhub usage`.

Times are seconds since the epoch (floats) from `clock.now()` (teamhub/clock.py), so the test clock moves them too. A row is
opened when a checked start begins (`ended` NULL), confirmed with `last_seen` by the polls that find the
server alive, and closed with `ended` and `end_reason` (REASONS). A server found gone by a poll (it died, or
vanished while the hub was down) is closed at `last_seen`, the last moment it was known alive, as `lost`.

Migrations are numbered steps (MIGRATIONS) recorded in `teamhub_usage_version`; `migrate(url)` runs from
`teamhub.db.migrate.prepare`, after JupyterHub's own migration, on SQLite and PostgreSQL alike.
"""

from __future__ import annotations

from dataclasses import dataclass

from .tables import TABLE

VERSION_TABLE = "teamhub_usage_version"
# Why a server ended. "lost": found gone by a poll (crashed, or vanished while the hub was down); "hub": the
# hub stopped it on its own shutdown (local mode); "stopped": by the person or an admin through the API.
REASONS = ("stopped", "deadline", "idle-cull", "gpu-idle", "failed-start", "admin", "budget", "lost", "hub")

MIGRATIONS = [
    (1, [
        f"CREATE TABLE IF NOT EXISTS {TABLE} (id {{ident}}, server VARCHAR(255) NOT NULL, person VARCHAR(255) NOT NULL, "
        "team VARCHAR(255), resource VARCHAR(255) NOT NULL, accelerator VARCHAR(255), gpus INTEGER NOT NULL DEFAULT 0, "
        "gpu_kind VARCHAR(255), cpu DOUBLE PRECISION, memory BIGINT, started DOUBLE PRECISION NOT NULL, "
        "ended DOUBLE PRECISION, last_seen DOUBLE PRECISION, end_reason VARCHAR(32))",
        f"CREATE INDEX IF NOT EXISTS ix_{TABLE}_started ON {TABLE} (started)",
        f"CREATE INDEX IF NOT EXISTS ix_{TABLE}_open ON {TABLE} (ended)",
        f"CREATE INDEX IF NOT EXISTS ix_{TABLE}_team ON {TABLE} (team, started)",
        f"CREATE INDEX IF NOT EXISTS ix_{TABLE}_team_open ON {TABLE} (team, ended)",  # a team's running servers
    ]),
    (2, ["daily"]),  # the daily summaries of closed records (usage/daily.py), filled from the records there are
    # `gpus` is the GPUs a server holds, a partition or a capacity share counted as its fraction of a whole GPU
    # (issue 27): a float. SQLite keeps a non-integral value in an INTEGER column as REAL, so only PostgreSQL
    # changes the column's type.
    (3, ["gpus-fractional"]),
]
# How often a running server's `last_seen` is written: the hub polls every server every few seconds
# (sessions.budgetCheckSeconds), and a commit per poll per server was the store's main cost. A server found gone
# ends at most this much earlier than it really stopped; a start's first confirmation is always written
# (a record closed as lost ends there).
SEEN_EVERY = 60
COLUMNS = ("server", "person", "team", "resource", "accelerator", "gpus", "gpu_kind", "cpu", "memory", "started")


def make_engine(url: str, busy_timeout: float = 30):
    from sqlalchemy import create_engine

    sqlite = url.startswith("sqlite")
    # SQLite: wait for JupyterHub's own writes instead of failing at once.
    return create_engine(url, connect_args={"timeout": busy_timeout} if sqlite else {"connect_timeout": 10})


def migrate(url: str) -> int:
    """Bring the usage tables to the newest version; returns it."""
    from sqlalchemy import text

    engine = make_engine(url)
    ident = "INTEGER PRIMARY KEY AUTOINCREMENT" if engine.dialect.name == "sqlite" else "BIGSERIAL PRIMARY KEY"
    try:
        with engine.begin() as con:
            con.execute(text(f"CREATE TABLE IF NOT EXISTS {VERSION_TABLE} (version INTEGER NOT NULL)"))
            row = con.execute(text(f"SELECT MAX(version) FROM {VERSION_TABLE}")).first()
            current = (row[0] if row else None) or 0
            for version, statements in MIGRATIONS:
                if version <= current:
                    continue
                for sql in statements:
                    if sql == "daily":
                        from . import daily

                        for create in daily.CREATE:
                            con.execute(text(create))
                        daily.rebuild(con)
                    elif sql == "gpus-fractional":
                        if engine.dialect.name == "postgresql":
                            con.execute(text(f"ALTER TABLE {TABLE} ALTER COLUMN gpus TYPE DOUBLE PRECISION"))
                    else:
                        con.execute(text(sql.format(ident=ident)))
                con.execute(text(f"INSERT INTO {VERSION_TABLE} (version) VALUES (:v)"), {"v": version})
                current = version
        return current
    finally:
        engine.dispose()


@dataclass
class Store:
    """The hub's writer (one per hub process). Its writes keep `ledger` (usage/ledger.py) in step, so what the
    hub reads often (metrics, budgets) comes from memory."""

    url: str
    busy_timeout: float = 30  # seconds a SQLite write waits for JupyterHub's (tests make it short)

    def __post_init__(self):
        self.engine = make_engine(self.url, self.busy_timeout)
        self._seen: dict = {}  # open record -> the last `last_seen` written
        self._ledger = None

    @property
    def ledger(self):
        """Restored from the database at first use (the hub calls `restore` at start, before it serves)."""
        if self._ledger is None:
            self.restore()
        return self._ledger

    def restore(self) -> None:
        from .ledger import Ledger

        ledger = Ledger(self.engine)
        ledger.restore()
        self._ledger = ledger

    def _run(self, sql: str, params: dict):
        from sqlalchemy import text

        with self.engine.begin() as con:
            return con.execute(text(sql), params)

    def open(self, now: float, **fields) -> int:
        from sqlalchemy import text

        from .ledger import Rec

        ledger = self.ledger
        params = {k: fields.get(k) for k in COLUMNS if k != "started"}
        params["started"] = now
        cols = ", ".join(COLUMNS)
        marks = ", ".join(f":{c}" for c in COLUMNS)
        with self.engine.begin() as con:
            if self.engine.dialect.name == "postgresql":
                record = con.execute(text(f"INSERT INTO {TABLE} ({cols}) VALUES ({marks}) RETURNING id"), params).scalar_one()
            else:
                record = con.execute(text(f"INSERT INTO {TABLE} ({cols}) VALUES ({marks})"), params).lastrowid
        ledger.opened(record, Rec(params["server"], params["team"], params["resource"], params["accelerator"],
                                  params["gpus"] or 0, params["cpu"], now))
        return record

    def seen(self, record: int, now: float) -> None:
        written = self._seen.get(record)
        if written is not None and 0 <= now - written < SEEN_EVERY:
            return
        ledger = self.ledger
        self._run(f"UPDATE {TABLE} SET last_seen = :now WHERE id = :id AND ended IS NULL", {"now": now, "id": record})
        self._seen[record] = now
        ledger.seen(record, now)

    def close(self, record: int, now: float, reason: str, at_last_seen: bool = False) -> bool:
        """Close an open record (a closed one stays as it is); True when this call closed it."""
        assert reason in REASONS, reason
        from sqlalchemy import text

        from . import daily

        ledger = self.ledger
        end = "COALESCE(last_seen, started)" if at_last_seen else ":now"
        with self.engine.begin() as con:
            result = con.execute(text(f"UPDATE {TABLE} SET ended = {end}, end_reason = :reason WHERE id = :id AND ended IS NULL"),
                                 {"now": now, "reason": reason, "id": record})
            if result.rowcount == 1:
                daily.summarize(con, [record])  # the admins' page reads closed records from the daily summaries
        self._seen.pop(record, None)
        if result.rowcount == 1:
            ledger.closed(record, None if at_last_seen else now, reason)
        return result.rowcount == 1

    def server_states(self) -> list[dict]:
        """The persisted spawner states of the servers JupyterHub's database calls running or starting (its
        `spawners` rows with a server); none before JupyterHub first created its tables."""
        import json

        from sqlalchemy import inspect, text

        with self.engine.connect() as con:
            if not inspect(con).has_table("spawners"):
                return []
            rows = con.execute(text("SELECT state FROM spawners WHERE server_id IS NOT NULL")).scalars().all()
        states = [json.loads(r) if isinstance(r, str) else r for r in rows]
        return [s for s in states if isinstance(s, dict)]

    def close_unconfirmed(self, held) -> int:
        """At hub start, before the ledger is restored: open records that no running server holds (`held`: their
        ids) end as lost, when they were last seen alive (or at their start). A hub that died mid-start, or a
        database restored from an older backup, leaves such records; a held one stays open for JupyterHub's check
        of its server (adopted, or found gone and closed the same way)."""
        from sqlalchemy import text

        from . import daily

        held = sorted({int(r) for r in held})
        keep = f" AND id NOT IN ({', '.join(str(r) for r in held)})" if held else ""
        with self.engine.begin() as con:
            ids = [r[0] for r in con.execute(text(f"SELECT id FROM {TABLE} WHERE ended IS NULL{keep}"))]
            if ids:
                con.execute(text(f"UPDATE {TABLE} SET ended = COALESCE(last_seen, started), end_reason = 'lost' "
                                 f"WHERE id IN ({', '.join(str(int(i)) for i in ids)})"))
                daily.summarize(con, ids)
        self._ledger = None  # restored again at next use
        return len(ids)

    def totals(self, period, by: tuple) -> list[dict]:
        """totals.query's rows from the daily summaries (the admins' page runs this in a worker thread)."""
        from . import daily

        with self.engine.connect() as con:
            return daily.query(con, period, by, self.ledger.longest)

    def get(self, record: int) -> dict | None:
        from sqlalchemy import text

        with self.engine.connect() as con:
            row = con.execute(text(f"SELECT * FROM {TABLE} WHERE id = :id"), {"id": record}).mappings().first()
        return dict(row) if row else None

    def dispose(self) -> None:
        self.engine.dispose()
