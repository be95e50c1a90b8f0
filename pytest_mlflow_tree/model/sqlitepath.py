"""A ``sqlite:///`` tracking store's URI and database file: the one place that parses them."""

from __future__ import annotations

import contextlib
from pathlib import Path

SQLITE_PREFIX = "sqlite:///"


def sqlite_uri(path: Path | str) -> str:
    return SQLITE_PREFIX + str(path)


def sqlite_path(uri: str) -> Path | None:
    if not uri.startswith(SQLITE_PREFIX):
        return None
    path = uri[len(SQLITE_PREFIX) :].partition("?")[0]
    return None if path in ("", ":memory:") else Path(path)


def absolute_uri(uri: str) -> str:
    """Pin a relative SQLite path to the current directory, as MLflow resolves it."""
    if not uri.startswith(SQLITE_PREFIX) or uri.startswith(SQLITE_PREFIX + "/"):
        return uri
    path, sep, query = uri[len(SQLITE_PREFIX) :].partition("?")
    if path in ("", ":memory:"):
        return uri
    return sqlite_uri(Path(path).resolve()) + sep + query


def short_uri(uri: str) -> str | None:
    """``sqlite:///<file>`` for a database right in the current directory, as a user types it."""
    if not uri.startswith(SQLITE_PREFIX):
        return None
    path = Path(uri[len(SQLITE_PREFIX) :])
    return sqlite_uri(path.name) if path.parent == Path.cwd() else None


def fold_in_wal(path: Path) -> None:
    """Leave the database whole in its main file, for a copy taken right after the upload.

    A database in WAL mode (another program may have switched it) keeps recent commits in its
    ``-wal`` file until a checkpoint. Nothing to do in SQLite's default mode.
    """
    # Imported here: the pytest process reads URIs from this module and never opens the file.
    import sqlite3

    with (
        contextlib.suppress(sqlite3.Error),
        contextlib.closing(sqlite3.connect(path, timeout=5)) as connection,
    ):
        mode = connection.execute("PRAGMA journal_mode").fetchone()
        if mode and str(mode[0]).lower() == "wal":
            connection.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
