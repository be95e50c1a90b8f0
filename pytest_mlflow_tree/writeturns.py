"""The upload workers take turns writing to SQLite, and hand the turn over without polling.

SQLite lets one connection write at a time. A connection that finds the write lock taken
polls for it: SQLite's busy handler sleeps 1, 2, 5, 10 ms and longer between tries, so the
lock often sits free while the waiting worker sleeps, and two workers write not much faster
than one. Instead, the workers share a semaphore: a worker takes it before its transaction's
first write and gives it back when the connection returns to SQLAlchemy's pool, which is
after the commit (or the rollback). The waiting worker wakes at once.

The turn is a courtesy, not the guard: SQLite's own lock keeps the writes safe as before, and
whatever does not take turns (the uploader's own writes, another session writing the same
file) meets that lock as before. A turn not given back in time (a worker killed while
writing) ends the courtesy in the process that waited for it, which then relies on SQLite
alone.
"""

from __future__ import annotations

import threading
from typing import Any, Protocol

# How long a worker waits for its turn before it stops taking turns. A turn normally lasts
# milliseconds; this bounds the cost of one never given back.
WAIT = 2.0

_WRITES = ("INSERT", "UPDATE", "DELETE", "REPLACE")


class Turn(Protocol):
    """A semaphore the workers share (``multiprocessing.Lock``)."""

    def acquire(self, block: bool = ..., timeout: float | None = ...) -> bool: ...

    def release(self) -> None: ...


class WriteTurns:
    """Takes ``turn`` around each SQLite write transaction of this process's SQLAlchemy."""

    def __init__(self, turn: Turn, wait: float = WAIT) -> None:
        self._turn = turn
        self._wait = wait
        # The DBAPI connection whose transaction holds the turn, if any.
        self._holder: object | None = None
        self._given_up = False
        self._state = threading.Lock()

    @property
    def given_up(self) -> bool:
        """Whether a turn was not given back in time, so this process writes without turns."""
        return self._given_up

    def install(self) -> None:
        """Listen to every engine and pool of this process (its one MLflow store's)."""
        from sqlalchemy import event
        from sqlalchemy.engine import Engine
        from sqlalchemy.pool import Pool

        event.listen(Engine, "before_cursor_execute", self._before_execute)
        event.listen(Pool, "checkin", self._checked_in)

    def _before_execute(
        self,
        connection: Any,
        _cursor: Any,
        statement: str,
        _parameters: Any,
        _context: Any,
        _executemany: bool,
    ) -> None:
        if self._holder is not None or self._given_up:
            # Another statement of the transaction holding the turn, or of a second
            # connection of this process, which must not wait for its own process's turn.
            return
        if connection.dialect.name != "sqlite" or not _writes(statement):
            return
        dbapi_connection = connection.connection.dbapi_connection
        if self._turn.acquire(timeout=self._wait):
            with self._state:
                self._holder = dbapi_connection
        else:
            self._given_up = True

    def _checked_in(self, dbapi_connection: Any, _record: Any) -> None:
        # An invalidated connection comes back as None; its transaction has ended too.
        with self._state:
            if self._holder is None:
                return
            if dbapi_connection is not None and dbapi_connection is not self._holder:
                return
            self._holder = None
        self._turn.release()


def _writes(statement: str) -> bool:
    return statement.lstrip()[:7].upper().startswith(_WRITES)
