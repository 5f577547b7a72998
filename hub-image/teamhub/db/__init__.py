"""The hub database before JupyterHub opens it: where it is, backups before every schema change, the upgrade
itself, and restores. `teamhub db` is cli/db.py.

- `backend.py`: the interface of a database backend (what differs between databases), `DatabaseError`
- `sqlite.py`, `postgres.py`: the two backends (file checks and the online backup API; URL, pg_dump, pg_restore)
- `settings.py`: the backend for `hub.db`, chosen once; the values file as `teamhub db` reads it
- `schema.py`: JupyterHub's alembic head and the revision a database is at
- `log.py`: the table `teamhub_db_log` (every start, migration and restore, with the helm revision)
- `backups.py`: backup names, taking, rotating, restoring now or at the next matching start
- `migrate.py`: `prepare`, what the hub runs at start: restore if scheduled, back up, JupyterHub's and the
  usage tables' upgrade
- `plan.py`: `status` and what the operator scripts ask of it (`upgrade_plan`, `rollback_plan`)
"""
