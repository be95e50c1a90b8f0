"""A new local SQLite store, created whole before anyone uses it.

MLflow creates its tables the first time a process opens an empty database. Two sessions started
together on a fresh ``mlflow.db`` both do, and one of them fails in the middle of the migrations
(a table that already exists, a column added twice). Here the tables are made in a file of this
process's own next to the database, which is then linked into place: a hard link is never made
over an existing file, so of two processes one puts its file in place and the other, finding the
database there, uses that one. Both are whole. No lock is taken, so a process that dies leaves
none behind; at worst a file of its own, which nothing reads.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from pathlib import Path

from pytest_mlflow_tree.model import quiet
from pytest_mlflow_tree.model.sqlitepath import sqlite_uri


def create(path: Path) -> None:
    """Make the SQLite store ``path`` if it does not exist yet; nothing if it does.

    Where the database's directory takes no hard links, MLflow creates the store itself, as
    it would without this. For the uploader's process only: it silences MLflow's logging
    process-wide.
    """
    if path.exists() or not path.parent.is_dir():
        return  # a missing directory: MLflow's own error names it
    staged = path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}.new")
    try:
        _migrate(staged)
        with contextlib.suppress(FileExistsError):
            os.link(staged, path)
    except Exception:
        # Whatever stops this (a read-only directory, no hard links) MLflow meets or gets
        # round itself, and its message is the one its users know.
        return
    finally:
        with contextlib.suppress(OSError):
            staged.unlink()


def _migrate(path: Path) -> None:
    import sqlalchemy
    from mlflow.store.db.utils import _initialize_tables
    from sqlalchemy.pool import NullPool

    # MLflow is imported: keep its migrations' log lines out of the replay's output.
    quiet.silence_loggers()
    # No pool: every connection is closed when disposed, before the file is linked into place.
    engine = sqlalchemy.create_engine(sqlite_uri(path), poolclass=NullPool)
    try:
        _initialize_tables(engine)  # type: ignore[no-untyped-call]
    finally:
        engine.dispose()
