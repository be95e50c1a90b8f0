"""A database store that cannot be used is reported at once, not after MLflow's retries.

MLflow creates its SQL store's engine with repeated attempts and growing pauses, whatever the
reason: a refused port, a wrong password or a file that is not a database. One connection made
here first tells which, within the upload's own time bound.
"""

from __future__ import annotations

from typing import Any

from pytest_mlflow_tree.model import redact
from pytest_mlflow_tree.model.retries import Patience, ServerUnavailable
from pytest_mlflow_tree.model.sqlitepath import sqlite_path


class DatabaseUnusable(Exception):
    """The database answered, and its answer means the upload cannot go on."""


# Where a database server listens when its URI names no port.
_DEFAULT_PORTS = {"postgresql": 5432, "mysql": 3306, "mssql": 1433}
# Seconds to wait for a TCP connection to the database server.
_CONNECT_TIMEOUT = 5.0


def _connect(uri: str) -> None:
    import socket

    import sqlalchemy
    from sqlalchemy.pool import NullPool

    url = sqlalchemy.make_url(uri)
    port = url.port or _DEFAULT_PORTS.get(url.get_backend_name())
    if url.host and port:
        # A server that is not there refuses the connection: an error of its own type, where
        # database drivers report it only in their message, like a wrong password.
        socket.create_connection((url.host, port), timeout=_CONNECT_TIMEOUT).close()
    engine = sqlalchemy.create_engine(uri, poolclass=NullPool)
    try:
        with engine.connect():
            pass
        sqlalchemy.inspect(engine).get_table_names()
    finally:
        engine.dispose()


def check(uri: str, store: str, patience: Patience) -> None:
    """Raise ``ServerUnavailable`` (not reached in time) or ``DatabaseUnusable`` (its answer)."""
    path = sqlite_path(uri)
    if path is not None and not path.exists():
        return  # a new local store: MLflow creates it
    try:
        patience.call(_connect, uri)
    except Exception as exc:
        if isinstance(exc, ServerUnavailable):
            raise
        raise DatabaseUnusable(f"{store} cannot be used: {_first_line(exc)}") from None


def _first_line(error: Any) -> str:
    # SQLAlchemy appends the statement and a link to its error page after the first line.
    text = str(getattr(error, "orig", None) or error).strip()
    return redact.url((text.splitlines() or [type(error).__name__])[0])
