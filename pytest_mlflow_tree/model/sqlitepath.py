"""A ``sqlite:///`` tracking store's database file."""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path


def sqlite_path(uri: str) -> Path | None:
    prefix = "sqlite:///"
    if not uri.startswith(prefix):
        return None
    path = uri[len(prefix) :].partition("?")[0]
    return None if path in ("", ":memory:") else Path(path)


def fold_in_wal(path: Path) -> None:
    """Leave the database whole in its main file, for a copy taken right after the upload.

    A database in WAL mode (switched by another program or an earlier version) keeps recent
    commits in its ``-wal`` file until a checkpoint. Nothing to do in SQLite's default mode.
    """
    with (
        contextlib.suppress(sqlite3.Error),
        contextlib.closing(sqlite3.connect(path, timeout=5)) as connection,
    ):
        mode = connection.execute("PRAGMA journal_mode").fetchone()
        if mode and str(mode[0]).lower() == "wal":
            connection.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
