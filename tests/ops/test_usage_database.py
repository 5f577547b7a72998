"""Usage records (issue 14) on real databases: the table is created and migrated with the hub database on
SQLite and PostgreSQL, kept in its backups, written by a real hub on PostgreSQL, and `teamhub usage` reads
it from a URL or a file, clipping every record to the period asked for."""

from __future__ import annotations

import json
import sqlite3
import time

import pytest
import yaml
from hubprocess import HubProcess, demo_values
from support import run_teamhub, tree_env
from teamhub.auth.passwords import hash_password
from teamhub.db import backups, migrate, settings, sqlite
from teamhub.usage import store, totals

from .test_database import pg, pg_values  # noqa: F401 -- the module's real PostgreSQL server

DAY = 86400
T0 = 1_780_000_000.0  # 2026-05-28T20:26:40Z


def fill(url: str) -> None:
    """Three people in two teams: an hour on 2 GPUs, a failed start, a session crossing the period's start."""
    s = store.Store(url)
    try:
        a = s.open(T0, server="local:alice/", person="local:alice", team="cv", resource="gpu", accelerator="mi300x", gpus=2,
                   gpu_kind="amd.com/gpu", cpu=4.0, memory=16 * 2**30)
        s.seen(a, T0 + 1800)
        assert s.close(a, T0 + 3600, "stopped")
        assert not s.close(a, T0 + 7200, "deadline")  # a closed record stays as it was
        b = s.open(T0 + 100, server="local:bob/", person="local:bob", team="cv", resource="cpu", gpus=0, cpu=2.0)
        s.close(b, T0 + 400, "failed-start")
        c = s.open(T0 - 3600, server="local:carol/", person="local:carol", team="nlp", resource="cpu", gpus=0, cpu=1.0)
        s.seen(c, T0 + 1800)
        assert s.close(c, T0 + 9999, "lost", at_last_seen=True)
        s.open(T0 + 3000, server="local:dan/", person="local:dan", team="nlp", resource="cpu", gpus=0, cpu=0.5)  # still running
    finally:
        s.dispose()


def check_totals(url: str) -> None:
    engine = store.make_engine(url)
    try:
        with engine.connect() as con:
            rows = totals.query(con, totals.Period(T0, T0 + DAY, now=T0 + 3600 + 3000), ("team",))
            by_person = {r["person"]: r for r in totals.query(con, totals.Period(T0, T0 + DAY, T0 + 6600), ("person",))}
    finally:
        engine.dispose()
    assert rows == [
        {"team": "cv", "gpu_hours": 2.0, "server_hours": 1.0, "cpu_core_hours": 4.0, "sessions": 1, "failed_starts": 1},
        # carol: only the half hour inside the period, up to when she was last seen; dan: running, counted up to now
        {"team": "nlp", "gpu_hours": 0.0, "server_hours": 1.5, "cpu_core_hours": 1.0, "sessions": 2, "failed_starts": 0},
    ]
    assert by_person["local:carol"]["server_hours"] == 0.5 and by_person["local:dan"]["server_hours"] == 1.0


def test_sqlite_migrated_with_the_hub_database_and_totals(tmp_path):
    result = migrate.prepare({}, tmp_path)
    assert store.migrate(result.url) == 3  # idempotent: already there
    fill(result.url)
    check_totals(result.url)
    backup = backups.backup(settings.backend({}, tmp_path))
    con = sqlite3.connect(backup.path)
    assert con.execute("SELECT COUNT(*) FROM teamhub_usage").fetchone()[0] == 4  # the records are in every backup
    con.close()


def test_postgres_migrated_backed_up_and_read_by_url(pg, tmp_path):  # noqa: F811
    pg.createdb("usage")
    env = {"TEAMHUB_DB_PASSWORD": pg.password}
    result = migrate.prepare(pg_values(pg, "usage"), tmp_path, env=env)
    assert pg.psql("usage", "SELECT MAX(version) FROM teamhub_usage_version") == "3"
    fill(result.url)
    check_totals(result.url)
    s = settings.backend(pg_values(pg, "usage"), tmp_path, env)
    dump = backups.backup(s)
    pg.psql("usage", "DELETE FROM teamhub_usage")
    backups.restore(s, dump.path.name)
    assert pg.psql("usage", "SELECT COUNT(*) FROM teamhub_usage") == "4"

    r = run_teamhub("usage", "--db", pg.url("usage"), "--from", "2026-05-28", "--to", "2026-05-30", "--by", "team,resource",
                    "--format", "csv", env=tree_env(**env))
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == "team,resource,gpu_hours,server_hours,cpu_core_hours,sessions,failed_starts"
    assert "cv,gpu,2.0,1.0,4.0,1,0" in lines and "cv,cpu,0.0,0.0,0.0,0,1" in lines


def quarter_gpu_hour(url: str) -> tuple:
    """A CPX partition of an MI300X (1/4 GPU, issue 27) for an hour: the record's `gpus`, and the GPU-hours."""
    s = store.Store(url)
    try:
        r = s.open(T0, server="local:erin/", person="local:erin", team="hpc", resource="gpu", accelerator="mi300x-quarter",
                   gpus=0.25, cpu=4.0)
        s.close(r, T0 + 3600, "stopped")
        (row,) = s.totals(totals.Period(T0, T0 + DAY, T0 + DAY), ("team",))
        return s.get(r)["gpus"], row["gpu_hours"]
    finally:
        s.dispose()


def test_a_share_of_a_gpu_is_kept_as_its_fraction_on_sqlite(tmp_path):
    assert quarter_gpu_hour(migrate.prepare({}, tmp_path).url) == (0.25, 0.25)


def test_a_share_of_a_gpu_is_kept_as_its_fraction_on_postgres(pg, tmp_path):  # noqa: F811
    pg.createdb("shares")
    result = migrate.prepare(pg_values(pg, "shares"), tmp_path, env={"TEAMHUB_DB_PASSWORD": pg.password})
    assert quarter_gpu_hour(result.url) == (0.25, 0.25)


def test_cli_reads_a_file_and_explains_bad_input(tmp_path):
    result = migrate.prepare({}, tmp_path)
    fill(result.url)
    db = tmp_path / sqlite.DB_FILE
    r = run_teamhub("usage", "--db", db, "--from", "2026-05-28", "--to", "2026-05-30", "--by", "accelerator", "--format", "json")
    assert r.returncode == 0, r.stderr
    rows = {row["accelerator"]: row for row in json.loads(r.stdout)}
    assert rows["mi300x"]["gpu_hours"] == 2.0 and rows[None]["failed_starts"] == 1
    r = run_teamhub("usage", "--db", db, "--from", "2026-05-28", "--to", "2026-05-30", "--by", "person")
    assert r.returncode == 0 and r.stdout.splitlines()[0].split() == [
        "PERSON", "GPU-HOURS", "SERVER-HOURS", "CPU-CORE-HOURS", "SESSIONS", "FAILED-STARTS"]
    for args, message in ((("--by", "team,colour"), "cannot group by colour"), (("--from", "yesterday"), "--from 'yesterday'"),
                          (("--from", "2026-06-02", "--to", "2026-06-01"), "--from must be before --to")):
        r = run_teamhub("usage", "--db", db, *args)
        assert r.returncode == 2 and message in r.stderr and "Traceback" not in r.stderr, r.stderr
    r = run_teamhub("usage", "--db", tmp_path / "missing.sqlite")
    assert r.returncode == 2 and "no such database file" in r.stderr


def test_a_real_hub_on_postgres_records_a_session(pg, tmp_path):  # noqa: F811
    pg.createdb("usagehub")
    values = demo_values()
    values["hub"] = pg_values(pg, "usagehub")["hub"]
    values["auth"]["local"]["users"]["bob"]["passwordHash"] = hash_password("usage-pg-pass", 4)
    (tmp_path / "values.yaml").write_text(yaml.safe_dump(values, sort_keys=False))
    hub = HubProcess(tmp_path / "values.yaml", tmp_path, extra_env={"TEAMHUB_DB_PASSWORD": pg.password})
    hub.start()
    try:
        api = hub.api(hub.token(hub.login("bob", "usage-pg-pass"), "local:bob"))
        assert api.post("/users/local:bob/server", json={"resource": "cpu-small"}).status_code in (201, 202)
        hub.wait_ready(api, "local:bob")
        row = pg.psql("usagehub", "SELECT person, resource, gpus, cpu, ended IS NULL, last_seen IS NOT NULL FROM teamhub_usage")
        assert row == "local:bob|cpu-small|0|2|t|t"
        assert api.delete("/users/local:bob/server").status_code in (202, 204)
        end = time.monotonic() + 60
        while pg.psql("usagehub", "SELECT end_reason FROM teamhub_usage") != "stopped":
            assert time.monotonic() < end, hub.log()[-3000:]
            time.sleep(0.25)
    finally:
        hub.stop()


@pytest.mark.parametrize("bad", ["sqlite:////nonexistent/dir/x.sqlite"])
def test_cli_unreadable_database_is_one_line(bad):
    r = run_teamhub("usage", "--db", bad)
    assert r.returncode == 1 and r.stderr.startswith("teamhub: cannot read usage records") and "Traceback" not in r.stderr


def test_budget_window_rates_and_kinds(tmp_path):
    from teamhub.catalog.access import RequestRefused
    from teamhub.catalog.model import Budget, Team
    from teamhub.usage import budget

    url = migrate.prepare({}, tmp_path).url
    fill(url)  # cv: 2 GPU-hours (alice) and 4 CPU-core-hours at T0..T0+1h
    team = Team("cv", "CV", "", (), (), (), (), (), None, None,
                (Budget("gpu", 3.0, 30), Budget("cpu", 100.0, 30)))
    engine = store.Store(url)  # the hub's store: budget sums over closed records are cached by it
    try:
        now = T0 + 2 * 3600
        # 1 GPU-hour left; this start's 1 GPU alone: the deadline is one hour away (the CPU budget allows more)
        assert budget.check(engine, team, 1, 2.0, "local:x/", now) == pytest.approx(now + 3600)
        assert budget.check(engine, team, 0, 0.0, "local:x/", now) is None  # draws on neither budget
        s = engine
        running = s.open(now, server="local:y/", person="local:y", team="cv", resource="gpu", gpus=2, cpu=1.0)
        assert budget.check(engine, team, 1, 2.0, "local:x/", now) == pytest.approx(now + 1200)  # 3 GPUs share the hour
        assert budget.over(engine, team, now) is None
        st = budget.over(engine, team, now + 1800)  # 2 GPUs for half an hour used the last hour
        assert st is not None and st.budget.kind == "gpu" and st.used == pytest.approx(3.0)
        with pytest.raises(RequestRefused) as refused:
            budget.check(engine, team, 1, 2.0, "local:x/", now + 1800)
        assert refused.value.status == 403 and "The team 'CV' has used 3 of its 3 GPU-hours in the last 30 days." in refused.value.message
        s.close(running, now + 1800, "budget")
        # 30 days later the old usage has left the window: everything is back
        later = T0 + 31 * DAY
        assert budget.check(engine, team, 1, 2.0, "local:x/", later) == pytest.approx(later + 3 * 3600)
        assert budget.overview(engine, team, later)[0] == {"unit": "GPU-hours", "used": 0.0, "amount": 3.0, "left": 3.0,
                                                            "days": 30, "minutes_for_one": 180}
    finally:
        engine.dispose()


def test_last_seen_is_written_at_most_every_seen_every_seconds(tmp_path):
    """Every poll confirms a running server; writing each confirmation was one commit per server per 30 s. The
    first one is always written (a start's confirmation), later ones once SEEN_EVERY has passed."""
    url = migrate.prepare({}, tmp_path).url
    s = store.Store(url)
    try:
        r = s.open(T0, server="local:a/", person="local:a", team="cv", resource="cpu", gpus=0, cpu=1.0)
        s.seen(r, T0 + 5)
        s.seen(r, T0 + 5 + store.SEEN_EVERY - 1)  # within SEEN_EVERY of the last write: nothing written
        assert s.get(r)["last_seen"] == T0 + 5
        s.seen(r, T0 + 5 + store.SEEN_EVERY)
        assert s.get(r)["last_seen"] == T0 + 5 + store.SEEN_EVERY
        assert s.close(r, T0 + 500, "lost", at_last_seen=True)
        assert s.get(r)["ended"] == T0 + 5 + store.SEEN_EVERY and r not in s._seen
    finally:
        s.dispose()


def test_a_database_failure_while_recording_is_one_warning(tmp_path, caplog):
    """A poll or stop must not fail because the records cannot be written (JupyterHub stops a server whose
    poll raises): the hooks log one WARNING and go on."""
    import logging
    from types import SimpleNamespace

    from teamhub.usage import record

    broken = store.Store(f"sqlite:///{tmp_path / 'missing' / 'x.sqlite'}")  # the folder does not exist
    try:
        spawner = SimpleNamespace(teamhub=SimpleNamespace(usage=broken), teamhub_info={"usage": 1}, teamhub_key="local:a/",
                                  log=logging.getLogger("test"))
        with caplog.at_level(logging.WARNING, logger="JupyterHub"):
            assert record.seen(spawner) is None
            assert record.closed(spawner, "stopped") is None
        warnings = [r.getMessage() for r in caplog.records if r.name == "JupyterHub"]
        assert len(warnings) == 2 and warnings[0].startswith("usage records: seen failed: ") and not caplog.records[0].exc_info
    finally:
        broken.dispose()


def sql_metrics(url: str) -> tuple[dict, dict]:
    """What the metrics were before the ledger: the SQL over every record that ran on each scrape."""
    from sqlalchemy import text

    engine = store.make_engine(url)
    secs = "(COALESCE(ended, last_seen, started) - started)"
    try:
        with engine.connect() as con:
            running = {(t or "", r, a or ""): [n, g] for t, r, a, n, g in con.execute(text(
                f"SELECT team, resource, accelerator, COUNT(*), SUM(gpus) FROM {store.TABLE} WHERE ended IS NULL "
                "GROUP BY team, resource, accelerator"))}
            seconds = {(t or "", r): (pytest.approx(float(s)), pytest.approx(float(g))) for t, r, s, g in con.execute(text(
                f"SELECT team, resource, SUM({secs}), SUM({secs} * gpus) FROM {store.TABLE} "
                "WHERE end_reason IS NULL OR end_reason != 'failed-start' GROUP BY team, resource"))}
    finally:
        engine.dispose()
    return running, seconds


def sql_window(url: str, team: str, kind: str, now: float) -> float:
    """GPU- (CPU-core-) hours of `team` in the 30 days before now, from the records (totals.query)."""
    engine = store.make_engine(url)
    try:
        with engine.connect() as con:
            rows = totals.query(con, totals.Period(now - 30 * DAY, now, now), (), "AND team = :team", {"team": team})
    finally:
        engine.dispose()
    return (rows[0]["gpu_hours"] if kind == "gpu" else rows[0]["cpu_core_hours"]) if rows else 0.0


def test_the_ledger_agrees_with_the_records_through_closes_refreshes_and_a_restart(tmp_path):
    """Issue 24: metrics and budgets read the store's in-memory ledger, not the table. Whatever the order of
    opens, confirmations, closes and window refreshes, it says what the records say; a restarted hub's ledger
    (restored from the table) says the same."""
    url = migrate.prepare({}, tmp_path).url
    fill(url)
    s = store.Store(url)
    try:
        now = T0 + 4 * 3600
        ledger = s.ledger
        assert (ledger.running(), ledger.seconds()) == sql_metrics(url)
        assert ledger.use("cv", "gpu", 30, now)[0] == pytest.approx(sql_window(url, "cv", "gpu", now), abs=1e-3)
        e = s.open(now, server="local:eve/", person="local:eve", team="cv", resource="gpu", accelerator="mi300x", gpus=1, cpu=2.0)
        s.seen(e, now + 600)
        assert (ledger.running(), ledger.seconds()) == sql_metrics(url)
        ledger._refresh(now + 900)  # a refresh (here synchronous) while eve's record is open ...
        s.close(e, now + 1200, "stopped")  # ... and eve's close after it: counted once, from memory
        assert ledger.use("cv", "gpu", 30, now + 1200)[0] == pytest.approx(sql_window(url, "cv", "gpu", now + 1200), abs=1e-3)
        ledger._refresh(now + 1300)  # now eve's record is in the window's sum, and no longer in memory
        assert e not in ledger.recent
        assert ledger.use("cv", "gpu", 30, now + 1300)[0] == pytest.approx(sql_window(url, "cv", "gpu", now + 1300), abs=1e-3)
        f = s.open(now + 1300, server="local:fay/", person="local:fay", team="cv", resource="gpu", gpus=2, cpu=1.0)
        s.close(f, now + 1400, "failed-start")  # charges nothing
        g = s.open(now + 1300, server="local:gus/", person="local:gus", team="cv", resource="gpu", gpus=1, cpu=1.0)
        s.seen(g, now + 1500)
        assert s.close(g, now + 9000, "lost", at_last_seen=True)  # ends at its last confirmation
        assert (ledger.running(), ledger.seconds()) == sql_metrics(url)
        for kind in ("gpu", "cpu"):
            assert ledger.use("cv", kind, 30, now + 1600)[0] == pytest.approx(sql_window(url, "cv", kind, now + 1600), abs=1e-3)
        used, rate = ledger.use("nlp", "cpu", 30, now + 1600, exclude="local:dan/")
        assert used == pytest.approx(sql_window(url, "nlp", "cpu", now + 1600), abs=1e-3) and rate == 0.0  # dan's own record left out
        assert ledger.use("nlp", "cpu", 30, now + 1600)[1] == 0.5
    finally:
        s.dispose()
    again = store.Store(url)  # the hub restarted
    try:
        assert (again.ledger.running(), again.ledger.seconds()) == sql_metrics(url)
        assert again.ledger.use("cv", "gpu", 30, now + 1600)[0] == pytest.approx(sql_window(url, "cv", "gpu", now + 1600), abs=1e-3)
    finally:
        again.dispose()


def test_budget_sentences_count_only_the_budgets_kind_and_straddling_records_in_part(tmp_path):
    """Issue 24: "has used 0.0 of its 0.02 GPU-hours" (rounded away) and "Budget returns from <now>" (a CPU-only
    record straddling the window's start set it) were wrong. At T0 + 30 days + 30 min, alice's hour on 2 GPUs
    straddles the window's start: its second half (1 GPU-hour) still counts, and leaves at 2 GPUs a second."""
    import asyncio

    from teamhub.catalog.model import Budget, Team
    from teamhub.clock import iso
    from teamhub.usage import budget

    url = migrate.prepare({}, tmp_path).url
    fill(url)  # also carol's CPU-only record straddling the window's start, and dan's running CPU server
    now = T0 + 30 * DAY + 1800
    s = store.Store(url)
    try:
        cv = Team("cv", "CV", "", (), (), (), (), (), None, None, (Budget("gpu", 1.0, 30),))
        with pytest.raises(budget.Exhausted) as refused:
            budget.check(s, cv, 1, 2.0, "local:x/", now)
        assert refused.value.message == "The team 'CV' has used 1 of its 1 GPU-hours in the last 30 days."
        message = asyncio.run(budget.explain(s, refused.value)).message
        # a minute for 1 GPU (60 GPU-s) is back once that much of alice's hour has left the window: it leaves at
        # 2 GPU-s a second, so 30 s from now
        assert f"Budget returns at {iso(now + 30)} as older usage leaves the window." in message, message
        # a tiny budget says what it used, not 0.0
        tiny = Team("cv", "CV", "", (), (), (), (), (), None, None, (Budget("gpu", 0.0005, 30),))
        with pytest.raises(budget.Exhausted) as refused:
            budget.check(s, tiny, 1, 2.0, "local:x/", T0 + 3600)
        assert refused.value.message.startswith("The team 'CV' has used 2 of its 0.0005 GPU-hours")
        # CPU-only records never move a GPU budget's return time
        nlp = Team("nlp", "NLP", "", (), (), (), (), (), None, None, (Budget("gpu", 0.01, 30),))
        assert budget.returns_at(s.engine, "nlp", nlp.budgets[0], 1.0, now) is None
    finally:
        s.dispose()


def test_a_start_the_budget_cannot_give_a_minute_is_refused(tmp_path):
    """Issue 24: a start whose capped deadline had already passed ran ("deadline in -0 s"). A budget with less
    than a minute left for this start (with the team's running servers drawing on it too) refuses it."""
    from teamhub.catalog.model import Budget, Team
    from teamhub.usage import budget

    url = migrate.prepare({}, tmp_path).url
    s = store.Store(url)
    try:
        team = Team("cv", "CV", "", (), (), (), (), (), None, None, (Budget("gpu", 3 / 60, 30),))  # 3 GPU-minutes
        assert budget.check(s, team, 1, 1.0, "local:a/", T0) == pytest.approx(T0 + 180)
        s.open(T0, server="local:a/", person="local:a", team="cv", resource="gpu", gpus=1, cpu=1.0)
        assert budget.check(s, team, 1, 1.0, "local:b/", T0) == pytest.approx(T0 + 90)
        s.open(T0, server="local:b/", person="local:b", team="cv", resource="gpu", gpus=1, cpu=1.0)
        assert budget.check(s, team, 1, 1.0, "local:c/", T0) == pytest.approx(T0 + 60)  # exactly a minute: given
        with pytest.raises(budget.Exhausted) as refused:
            budget.check(s, team, 1, 1.0, "local:c/", T0 + 1)  # 178 GPU-s left for 3 GPUs: under a minute
        assert refused.value.status == 403 and "has used 0.000556 of its 0.05 GPU-hours" in refused.value.message
        with pytest.raises(budget.Exhausted):
            budget.check(s, team, 1, 1.0, "local:c/", T0 + 200)  # used up: the capped deadline would have passed
    finally:
        s.dispose()


def test_a_budget_check_on_a_locked_database_is_a_503_with_a_sentence(tmp_path):
    """Issue 24: a budget the hub cannot read (SQLite locked by a long write) answered "400 Invalid user options"."""
    from types import SimpleNamespace

    from teamhub.catalog.access import RequestRefused
    from teamhub.catalog.model import Budget, Team
    from teamhub.usage import record

    url = migrate.prepare({}, tmp_path).url
    s = store.Store(url, busy_timeout=0.2)
    team = Team("cv", "CV", "", (), (), (), (), (), None, None, (Budget("gpu", 3.0, 30),))
    launch = SimpleNamespace(team="cv", gpu_count=1, resource=SimpleNamespace(cpu_request="2"))
    spawner = SimpleNamespace(teamhub=SimpleNamespace(usage=s, catalog=SimpleNamespace(teams={"cv": team})),
                              teamhub_key="local:a/")
    lock = sqlite3.connect(tmp_path / sqlite.DB_FILE)
    lock.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(RequestRefused) as refused:
            record.budget_cap(spawner, launch)
        assert refused.value.status == 503 and refused.value.message == record.UNREADABLE
    finally:
        lock.rollback()
        lock.close()
    try:
        assert record.budget_cap(spawner, launch) > T0  # the lock gone: the check answers again
    finally:
        s.dispose()


def test_the_daily_summaries_give_the_same_totals_as_the_records(tmp_path):
    """Issue 24: the admins' page reads whole days from `teamhub_usage_daily` (kept by every close, filled by
    migration 2) and only the partial days and open records from the records. For records crossing midnights,
    failed starts, lost ones and open ones, and periods starting at, before and inside a day, both agree."""
    import random

    from sqlalchemy import text
    from teamhub.usage import daily

    url = migrate.prepare({}, tmp_path).url
    s = store.Store(url)
    rnd = random.Random(24)
    day0 = (T0 // DAY) * DAY
    try:
        for i in range(300):
            started = day0 + rnd.uniform(-2 * DAY, 5 * DAY)
            r = s.open(started, server=f"local:p{i % 7}/", person=f"local:p{i % 7}", team=rnd.choice(("cv", "nlp", None)),
                       resource=rnd.choice(("cpu", "gpu")), accelerator=rnd.choice((None, "mi300x")), gpus=rnd.choice((0, 1, 2)),
                       cpu=rnd.choice((None, 1.0, 4.0)))
            kind = rnd.random()
            if kind < 0.1:
                continue  # still running
            if kind < 0.2:
                s.seen(r, started + rnd.uniform(0, DAY))
                s.close(r, started + 2 * DAY, "lost", at_last_seen=True)
            else:
                s.close(r, started + rnd.uniform(0, 1.5 * DAY), "failed-start" if kind < 0.3 else "stopped")
        now = day0 + 7 * DAY
        engine = store.make_engine(url)
        with engine.connect() as con:
            for start, end in ((day0, day0 + 3 * DAY), (day0 - 0.3 * DAY, day0 + 2.5 * DAY), (day0 + 0.2 * DAY, day0 + 0.7 * DAY),
                               (day0 + 0.5 * DAY, day0 + DAY), (day0 - 3 * DAY, now), (day0 + DAY, day0 + 1.5 * DAY)):
                period = totals.Period(start, end, now)
                for by in (("team",), ("resource", "accelerator", "team"), ("accelerator",), ()):
                    want = totals.query(con, period, by)
                    got = daily.query(con, period, by, s.ledger.longest)
                    assert got == [pytest.approx(w, abs=2e-4) for w in want], (start - day0, end - day0, by)
            summed = con.execute(text(f"SELECT SUM(server_seconds) FROM {daily.DAILY}")).scalar()
            daily.rebuild(con)  # what migration 2 makes of the same records
            assert con.execute(text(f"SELECT SUM(server_seconds) FROM {daily.DAILY}")).scalar() == pytest.approx(summed)
        engine.dispose()
        assert store.migrate(url) == 3
    finally:
        s.dispose()
