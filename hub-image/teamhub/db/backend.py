"""The interface every database backend implements: only what differs between SQLite and PostgreSQL.

`settings.backend` chooses the backend once, from `hub.db`; the rest of the package (schema.py, log.py,
backups.py, migrate.py, plan.py) is the same code for every database and calls these methods.
"""

from __future__ import annotations

import datetime as dt
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar


class DatabaseError(Exception):
    """The database cannot be used as it is; the message says why and what to do."""


def now() -> str:
    """The time in backup names, log rows and renamed files."""
    return dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")


@dataclass
class Backend(ABC):
    type: ClassVar[str]  # the value of hub.db.type
    ext: ClassVar[str]  # backup file extension: jupyterhub-<version>.rev-<rev>.<time>.<ext>
    id_column: ClassVar[str]  # an auto-incrementing primary key in this database's SQL (the log table)
    copy_errors: ClassVar[tuple[type[Exception], ...]] = (OSError,)  # what a failed copy_to raises

    url: str  # SQLAlchemy URL, with the password
    display_url: str  # the same without the password
    data_dir: Path
    backup_dir: Path
    keep: int
    path: Path | None = None  # the database file, for a database that is one

    @classmethod
    @abstractmethod
    def from_settings(cls, db: dict, data_dir: Path, backup_dir: Path, keep: int, env) -> Backend:
        """The backend for `hub.db` (filled with the schema's defaults): its URL, and the same for display."""

    def engine(self):
        from sqlalchemy import create_engine

        return create_engine(self.url, connect_args=self.connect_args())

    def connect_args(self) -> dict:
        return {}

    def exists(self) -> bool:
        """False only for a database file that is not there (not created yet, or its volume not mounted)."""
        return True

    def ready(self) -> None:  # noqa: B027 (a server database needs nothing)
        """Make the place of the database, before the hub creates it."""

    @abstractmethod
    def present(self) -> bool:
        """Whether there is a database to read (False: nothing yet). Raises DatabaseError when it exists but
        cannot be used, with a message that says what to do."""

    @abstractmethod
    def read_error(self, exc: Exception) -> DatabaseError:
        """The error for a database that `present` accepted but SQLAlchemy could not read."""

    @abstractmethod
    def copy_to(self, out: Path) -> None:
        """Write a backup of the database to `out`."""

    @abstractmethod
    def migration_backup(self, revision: str, head: str, env, say):
        """The backup taken before a schema upgrade from `revision` to `head` (a backups.Backup), or None when
        the operator took their own; raises DatabaseError when the upgrade must not go ahead."""

    @abstractmethod
    def set_aside(self) -> Path | None:
        """Keep the current database before a restore replaces it; where it was kept."""

    @abstractmethod
    def put_back(self, backup: Path) -> None:
        """Make the database the content of `backup` (the hub must be stopped)."""
