"""The table `teamhub_usage`: one row per server start, written by the hub, read by `teamhub usage`.

Times are seconds since the epoch (floats) from `sessions.now()`, so the test clock moves them too. A row is
opened when a checked start begins (`ended` NULL), confirmed with `last_seen` by the polls that find the
server alive, and closed with `ended` and `end_reason` (REASONS). A server found gone by a poll (it died, or
vanished while the hub was down) is closed at `last_seen`, the last moment it was known alive, as `lost`.

Migrations are numbered steps (MIGRATIONS) recorded in `teamhub_usage_version`; `migrate(url)` runs from
`teamhub.db.migrate.prepare`, after JupyterHub's own migration, on SQLite and PostgreSQL alike.
"""

from __future__ import annotations

from dataclasses import dataclass

TABLE = "teamhub_usage"
VERSION_TABLE = "teamhub_usage_version"
# Why a server ended. "lost": found gone by a poll (crashed, or vanished while the hub was down); "hub": the
# hub stopped it on its own shutdown (local mode); "stopped": by the person or an admin through the API.
REASONS = ("stopped", "deadline", "idle-cull", "failed-start", "admin", "budget", "lost", "hub")

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
]
# How long a sum over closed records is reused. Records leaving the window meanwhile still count for at most
# this long: a budget comes back up to a minute late, never early.
CACHE_SECONDS = 60
# How often a running server's `last_seen` is written: the hub polls every server every 15 s
# (sessions.POLL_SECONDS), and a commit per poll per server was the store's main cost. A server found gone
# ends at most this much earlier than it really stopped; a start's first confirmation is always written
# (a record closed as lost ends there).
SEEN_EVERY = 60
COLUMNS = ("server", "person", "team", "resource", "accelerator", "gpus", "gpu_kind", "cpu", "memory", "started")


def make_engine(url: str):
    from sqlalchemy import create_engine

    sqlite = url.startswith("sqlite")
    # SQLite: wait for JupyterHub's own writes instead of failing at once.
    return create_engine(url, connect_args={"timeout": 30} if sqlite else {"connect_timeout": 10})


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
                    con.execute(text(sql.format(ident=ident)))
                con.execute(text(f"INSERT INTO {VERSION_TABLE} (version) VALUES (:v)"), {"v": version})
                current = version
        return current
    finally:
        engine.dispose()


@dataclass
class Store:
    """The hub's writer (one per hub process)."""

    url: str

    def __post_init__(self):
        self.engine = make_engine(self.url)
        # Sums over closed records (they no longer change), by key, for CACHE_SECONDS: the budget check at every
        # start and poll stays cheap with many records. Cleared whenever this hub closes a record.
        self._cache: dict = {}
        self._seen: dict = {}  # open record -> the last `last_seen` written

    def cached(self, key, now: float, compute):
        hit = self._cache.get(key)
        if hit is None or not (hit[0] <= now < hit[0] + CACHE_SECONDS):
            hit = self._cache[key] = (now, compute())
        return hit[1]

    def _run(self, sql: str, params: dict):
        from sqlalchemy import text

        with self.engine.begin() as con:
            return con.execute(text(sql), params)

    def open(self, now: float, **fields) -> int:
        from sqlalchemy import text

        params = {k: fields.get(k) for k in COLUMNS if k != "started"}
        params["started"] = now
        cols = ", ".join(COLUMNS)
        marks = ", ".join(f":{c}" for c in COLUMNS)
        with self.engine.begin() as con:
            if self.engine.dialect.name == "postgresql":
                return con.execute(text(f"INSERT INTO {TABLE} ({cols}) VALUES ({marks}) RETURNING id"), params).scalar_one()
            return con.execute(text(f"INSERT INTO {TABLE} ({cols}) VALUES ({marks})"), params).lastrowid

    def seen(self, record: int, now: float) -> None:
        written = self._seen.get(record)
        if written is not None and 0 <= now - written < SEEN_EVERY:
            return
        self._run(f"UPDATE {TABLE} SET last_seen = :now WHERE id = :id AND ended IS NULL", {"now": now, "id": record})
        self._seen[record] = now

    def close(self, record: int, now: float, reason: str, at_last_seen: bool = False) -> bool:
        """Close an open record (a closed one stays as it is); True when this call closed it."""
        assert reason in REASONS, reason
        end = "COALESCE(last_seen, started)" if at_last_seen else ":now"
        result = self._run(f"UPDATE {TABLE} SET ended = {end}, end_reason = :reason WHERE id = :id AND ended IS NULL",
                           {"now": now, "reason": reason, "id": record})
        self._cache.clear()
        self._seen.pop(record, None)
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
        """At hub start: open records that no running server holds (`held`: their ids) end as lost, when they were
        last seen alive (or at their start). A hub that died mid-start, or a database restored from an older
        backup, leaves such records; a held one stays open for JupyterHub's check of its server (adopted, or
        found gone and closed the same way)."""
        held = sorted({int(r) for r in held})
        keep = f" AND id NOT IN ({', '.join(str(r) for r in held)})" if held else ""
        result = self._run(f"UPDATE {TABLE} SET ended = COALESCE(last_seen, started), end_reason = 'lost' "
                           f"WHERE ended IS NULL{keep}", {})
        self._cache.clear()
        return result.rowcount

    def get(self, record: int) -> dict | None:
        from sqlalchemy import text

        with self.engine.connect() as con:
            row = con.execute(text(f"SELECT * FROM {TABLE} WHERE id = :id"), {"id": record}).mappings().first()
        return dict(row) if row else None

    def dispose(self) -> None:
        self.engine.dispose()
