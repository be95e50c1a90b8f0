"""Faster, safe writes to a local SQLite tracking store.

MLflow opens SQLite in its default rollback-journal mode with full syncs: every commit waits for
the disk twice, and an upload makes three commits per test. WAL mode with ``synchronous=NORMAL``
waits for the disk only at checkpoints and still never corrupts the database; at worst a power
cut loses the last commits, which the journal (written first, kept until the upload is
complete) restores on replay. WAL also lets ``mlflow ui`` read while we write.
"""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path
from typing import Any


def sqlite_path(uri: str) -> Path | None:
    prefix = "sqlite:///"
    if not uri.startswith(prefix):
        return None
    path = uri[len(prefix) :].partition("?")[0]
    return None if path in ("", ":memory:") else Path(path)


def enable_wal(path: Path) -> None:
    """Switch the database file to WAL mode (a persistent property of the file).

    Done before MLflow creates its tables, so a new database is created in WAL mode by this one
    process. If another process holds the database, the switch waits briefly, then gives up:
    the upload works either way, only slower.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    with (
        contextlib.suppress(sqlite3.Error),
        contextlib.closing(sqlite3.connect(path, timeout=2)) as connection,
    ):
        connection.execute("PRAGMA journal_mode=WAL").fetchall()


def created_by_mlflow(path: Path) -> bool:
    """Whether MLflow has created its tables in the database file.

    MLflow creates and migrates a new database in the first process that opens it, unguarded
    in older releases: processes opening a new database at once must not race it.
    """
    with (
        contextlib.suppress(sqlite3.Error),
        contextlib.closing(sqlite3.connect(path, timeout=2)) as connection,
    ):
        query = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'alembic_version'"
        return connection.execute(query).fetchone() is not None
    return False


def _normal_sync(dbapi_connection: Any, _record: Any) -> None:
    if isinstance(dbapi_connection, sqlite3.Connection):
        dbapi_connection.execute("PRAGMA synchronous=NORMAL")


def relax_sync_on_connect() -> None:
    """``synchronous=NORMAL`` on every SQLite connection this process's SQLAlchemy opens."""
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    if not event.contains(Engine, "connect", _normal_sync):
        event.listen(Engine, "connect", _normal_sync)
