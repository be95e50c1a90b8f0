"""Retry MLflow calls through transient faults, within a time bound, without duplicating runs.

MLflow's own HTTP retries are turned off in the uploader (see ``quiet``): urllib3 would repeat
any request, ``create_run`` included, and a ``create_run`` whose answer was lost would then
make a second run. The uploader retries here instead, where a lost ``create_run`` is looked up
by its tags before it is sent again (see ``uploader.RunWriter.create``).

The bound is time without an answer, not a count of attempts: a server that answers some
requests is making progress and is waited for; one that answers nothing for ``give_up``
seconds is given up on, and the journal keeps what was not uploaded.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")

# Fault reasons, as short as the warning line they end up in.
REFUSED = "connection refused"
CLOSED = "connection closed without an answer"
TIMED_OUT = "no answer in time"
LOCKED = "database is locked"

# A server that refuses connections before it ever answered is not there: waiting the full
# bound for it only delays the test run's end.
_NEVER_ANSWERED_GIVE_UP = 1.0
# The statuses MLflow's client counts as transient. An HTTP 500 may be the server's final word
# on a request (a value its database rejects): repeat such a request a few times only. The
# others (502, 503, 504, 429, 408) say "try again" and are repeated within the time bound like
# a closed connection.
_TRANSIENT_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
_STATUS_ATTEMPTS = 4
_FINAL_WORD = "HTTP 500"
_FIRST_PAUSE = 0.05
_MAX_PAUSE = 1.0
# The time bound ends a failing call's attempts, except while pytest still runs its tests
# (``keep_trying``): then this count does, after at least a week of pauses at the longest.
_MAX_ATTEMPTS = round(7 * 24 * 3600 / _MAX_PAUSE)
# SQLite's result codes for a database another connection holds (SQLITE_BUSY, SQLITE_LOCKED).
_SQLITE_BUSY = frozenset({5, 6})


class ServerUnavailable(Exception):
    """The tracking store stopped answering for longer than the bound allows."""


def _chain(error: BaseException) -> list[BaseException]:
    """``error`` and what caused it: causes, contexts, and the errors libraries wrap."""
    seen: list[BaseException] = []
    todo: list[BaseException] = [error]
    while todo and len(seen) < 40:
        current = todo.pop(0)
        if any(current is e for e in seen):
            continue
        seen.append(current)
        # urllib3's MaxRetryError keeps its cause in ``reason``; SQLAlchemy's errors keep the
        # database driver's in ``orig``; urllib3's ProtocolError carries the socket's in args.
        wrapped = [current.__cause__, current.__context__]
        wrapped += [getattr(current, "reason", None), getattr(current, "orig", None)]
        wrapped += list(current.args)
        todo += [e for e in wrapped if isinstance(e, BaseException)]
    return seen


def _status(error: BaseException) -> int | None:
    """The HTTP status of a response MLflow's client refused to take (its retries are off)."""
    from urllib3.exceptions import ResponseError

    if not isinstance(error, ResponseError):
        return None
    # urllib3 gives the status only inside its own message template: read it back from there.
    before, _, after = ResponseError.SPECIFIC_ERROR.partition("{status_code}")
    text = str(error)
    if not (text.startswith(before) and text.endswith(after)):
        return None
    code = text[len(before) : len(text) - len(after)]
    return int(code) if code.isdigit() else None


def _sqlite_busy(error: BaseException) -> bool:
    import sqlite3

    if not isinstance(error, sqlite3.OperationalError):
        return False
    code = getattr(error, "sqlite_errorcode", None)
    if code is None:
        # Python 3.10 has no result code on the error: its whole message is SQLite's fixed
        # text for the code (sqlite3_errstr), compared whole, not searched.
        return str(error) in ("database is locked", "database table is locked")
    return code in _SQLITE_BUSY


def _closed(error: BaseException) -> bool:
    import http.client

    import requests
    from urllib3.exceptions import ProtocolError

    if isinstance(error, ConnectionError | http.client.IncompleteRead | ProtocolError):
        return True
    if isinstance(error, requests.exceptions.ChunkedEncodingError):
        return True
    # SQLAlchemy's word that the database connection was lost.
    return bool(getattr(error, "connection_invalidated", False))


def _timed_out(error: BaseException) -> bool:
    import requests
    import urllib3.exceptions

    return isinstance(
        error, TimeoutError | requests.exceptions.Timeout | urllib3.exceptions.TimeoutError
    )


def fault(error: BaseException) -> str | None:
    """A short reason when ``error`` is transient (worth repeating the call), else ``None``.

    Told by the types of the errors in the chain and the HTTP status, never by their text: a
    message is worded for people and changes between versions.
    """
    chain = _chain(error)
    from urllib3.exceptions import NewConnectionError

    # Refused, or not reached at all (no such host): nothing there answers.
    if any(isinstance(e, ConnectionRefusedError | NewConnectionError) for e in chain):
        return REFUSED
    if any(_timed_out(e) for e in chain):
        return TIMED_OUT
    for e in chain:
        status = _status(e)
        if status is not None:
            return f"HTTP {status}" if status in _TRANSIENT_STATUSES else None
    if any(_sqlite_busy(e) for e in chain):
        return LOCKED
    if any(_closed(e) for e in chain):
        return CLOSED
    return None


class Patience:
    """Repeats calls that failed for a transient reason; shared by all upload threads.

    ``give_up`` counts seconds since the store last answered any call (or since the failing
    call was sent, if later; since its error status came, for a call answered with one).
    ``keep_trying`` lets a live upload keep waiting while pytest still runs its tests: the
    server may come back before the session ends. ``slow_give_up`` (default ``give_up``) is
    the bound for a store that takes connections and then fails, cuts or holds them: it is
    there, maybe only slow or busy. A refused connection is always bound by ``give_up``:
    nothing listens.
    """

    def __init__(
        self,
        give_up: float,
        store: str = "the tracking store",
        keep_trying: Callable[[], bool] = lambda: False,
        on_answer: Callable[[], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        slow_give_up: float | None = None,
    ) -> None:
        self.give_up = give_up
        self.slow_give_up = give_up if slow_give_up is None else slow_give_up
        self.store = store
        self._keep_trying = keep_trying
        self._on_answer = on_answer
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._last_answer: float | None = None
        # When the store's silence began: the failing calls were sent, or answered an error.
        self._failing_since: float | None = None
        self.answered = False
        # Calls repeated after a transient fault, for the log.
        self.retried = 0
        # Calls waiting for the store's answer now: when each was sent.
        self._in_flight: dict[int, float] = {}
        self._calls = 0

    def silent(self) -> float:
        """Seconds calls have waited for the store with no answer to any since (0: none waits).

        A store that holds requests without answering may be slow, or gone: the caller decides.
        """
        with self._lock:
            if not self._in_flight:
                return 0.0
            since = min(self._in_flight.values())
            if self._last_answer is not None:
                since = max(since, self._last_answer)
            return self._clock() - since

    def restart(self) -> None:
        """Count the store's silence from now on, as if it had just answered (it has not)."""
        with self._lock:
            self._last_answer = self._clock()

    def answer(self) -> None:
        with self._lock:
            self._last_answer = self._clock()
            self._failing_since = None
            self.answered = True
        if self._on_answer is not None:
            self._on_answer()

    def call(self, function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        pause = _FIRST_PAUSE
        status_failures = 0
        for _attempt in range(_MAX_ATTEMPTS):
            sent = self._clock()
            with self._lock:
                self._calls += 1
                token = self._calls
                self._in_flight[token] = sent
            try:
                result = function(*args, **kwargs)
            except Exception as error:
                with self._lock:
                    self._in_flight.pop(token, None)
                reason = fault(error)
                if reason is None:
                    raise
                if reason == _FINAL_WORD:
                    status_failures += 1
                    if status_failures >= _STATUS_ATTEMPTS:
                        raise
                # An error status (or SQLite's "busy") is the store's answer: it is there, and
                # its silence starts after it. A cut or a timeout answered nothing since the
                # call was sent.
                answered = reason.startswith("HTTP ") or reason == LOCKED
                began = self._clock() if answered else sent
                self._wait_or_give_up(reason, began, error, pause)
                pause = min(pause * 2, _MAX_PAUSE)
                continue
            with self._lock:
                self._in_flight.pop(token, None)
            self.answer()
            return result
        raise ServerUnavailable("too many attempts")

    def _wait_or_give_up(self, reason: str, began: float, error: Exception, pause: float) -> None:
        with self._lock:
            if self._failing_since is None or began < self._failing_since:
                self._failing_since = began
            since = max(self._failing_since, self._last_answer or self._failing_since)
            answered = self.answered
        never_there = reason == REFUSED and not answered
        bound = self.give_up if reason == REFUSED else self.slow_give_up
        if never_there:
            bound = min(bound, _NEVER_ANSWERED_GIVE_UP)
        out_of_time = self._clock() - since + pause > bound
        if out_of_time and (never_there or not self._keep_trying()):
            raise ServerUnavailable(
                f"{self.store} did not answer for {self._clock() - since:.1f} s ({reason})"
            ) from error
        with self._lock:
            self.retried += 1
        self._sleep(pause)


_PROXY_VARIABLES = ("http_proxy", "https_proxy", "all_proxy")
_LISTEN_PAUSE = 0.1


def check_listening(uri: str, store: str, window: float = _NEVER_ANSWERED_GIVE_UP) -> None:
    """Raise ``ServerUnavailable`` if nothing listens at a tracking server's address.

    Costs one TCP connect, before MLflow's slow import: a server that is not running is
    reported at once. Through an HTTP proxy the server's address is not ours to test.
    """
    import os
    import socket
    import urllib.parse

    parts = urllib.parse.urlsplit(uri)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return
    if any(os.environ.get(name) or os.environ.get(name.upper()) for name in _PROXY_VARIABLES):
        return
    port = parts.port or (443 if parts.scheme == "https" else 80)
    started = time.monotonic()
    # Every refused attempt pauses: the window is over before the attempts are.
    for _attempt in range(math.ceil(window / _LISTEN_PAUSE) + 2):
        try:
            with socket.create_connection((parts.hostname, port), timeout=window):
                return
        except ConnectionRefusedError as error:
            waited = time.monotonic() - started
            if waited >= window:
                raise ServerUnavailable(
                    f"{store} did not answer for {waited:.1f} s ({REFUSED})"
                ) from error
            time.sleep(_LISTEN_PAUSE)
        except OSError:
            return  # not a plain refusal (name lookup, routing): MLflow's calls will say


# SQLite answers "database is locked" when two writers' transactions meet in a way its busy
# timeout does not cover (a read upgraded to a write in WAL mode), for example when two pytest
# sessions record into one file at once. Each MLflow call is one transaction, rolled back whole
# on that error, so repeating it is safe. (The uploader's own calls go through
# Patience, which covers this too; this is for callers in the pytest process.)
_LOCKED_ATTEMPTS = 8


def retry_locked(call: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    for attempt in range(_LOCKED_ATTEMPTS):
        try:
            return call(*args, **kwargs)
        except Exception as exc:
            if fault(exc) != LOCKED or attempt == _LOCKED_ATTEMPTS - 1:
                raise
            time.sleep(0.01 * 2**attempt)
    raise AssertionError("unreachable")
