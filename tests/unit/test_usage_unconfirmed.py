"""At hub start, open usage records that no running server holds end as `lost` (issue 24): a hub killed during a
start, or a database restored from an older backup, leaves them. Records held in a running server's persisted
state stay open for JupyterHub's check of that server. JupyterHub's own tables (jupyterhub.orm) make the database."""

from __future__ import annotations

from jupyterhub import orm
from teamhub.hub.teamhubmixin import STATE_KEY, records_held
from teamhub.usage import store
from teamhub.usage.record import KEY


def open_record(s: store.Store, person: str, started: float, seen: float | None = None) -> int:
    record = s.open(started, server=f"{person}/", person=person, team="t", resource="cpu-small", gpus=0)
    if seen is not None:
        s.seen(record, seen)
    return record


def spawner(db, person: str, record: int, running: bool) -> None:
    user = orm.User(name=person)
    db.add(user)
    db.commit()
    sp = orm.Spawner(user=user, name="", state={"pod_name": f"teamhub-{person}", STATE_KEY: {KEY: record, "team": "t"}})
    if running:
        sp.server = orm.Server()
    db.add(sp)
    db.commit()


def test_only_records_no_running_server_holds_are_closed_as_lost(tmp_path):
    url = f"sqlite:///{tmp_path / 'jupyterhub.sqlite'}"
    db = orm.new_session_factory(url)()
    store.migrate(url)
    s = store.Store(url)
    try:
        held = open_record(s, "adopted", 1000.0)  # its pod was Pending when the hub died: never seen yet
        stopped = open_record(s, "stopped-row", 1000.0, seen=1100.0)  # its spawner row has no server any more
        forgotten = open_record(s, "forgotten", 1000.0, seen=1200.0)  # no spawner row at all (older backup)
        unseen = open_record(s, "unseen", 1000.0)
        done = open_record(s, "done", 900.0)
        s.close(done, 950.0, "stopped")
        spawner(db, "adopted", held, running=True)
        spawner(db, "stopped-row", stopped, running=False)

        assert records_held(s.server_states()) == {held}
        assert s.close_unconfirmed(records_held(s.server_states())) == 3
        rec = {r: s.get(r) for r in (held, stopped, forgotten, unseen, done)}
        assert rec[held]["ended"] is None and rec[held]["end_reason"] is None
        assert (rec[stopped]["ended"], rec[stopped]["end_reason"]) == (1100.0, "lost")  # when last seen alive
        assert (rec[forgotten]["ended"], rec[forgotten]["end_reason"]) == (1200.0, "lost")
        assert (rec[unseen]["ended"], rec[unseen]["end_reason"]) == (1000.0, "lost")  # never seen: no time counted
        assert (rec[done]["ended"], rec[done]["end_reason"]) == (950.0, "stopped")  # a closed record stays as it was
        assert s.close_unconfirmed(records_held(s.server_states())) == 0
    finally:
        s.dispose()
        db.close()


def test_a_database_jupyterhub_never_opened_holds_nothing(tmp_path):
    url = f"sqlite:///{tmp_path / 'fresh.sqlite'}"
    store.migrate(url)
    s = store.Store(url)
    try:
        record = open_record(s, "someone", 10.0)
        assert s.server_states() == []
        assert s.close_unconfirmed(records_held([])) == 1 and s.get(record)["end_reason"] == "lost"
    finally:
        s.dispose()
