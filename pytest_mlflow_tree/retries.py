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
# An HTTP 500 may be the server's final word on a request (a value its database rejects):
# repeat such a request a few times only. The other transient statuses (502, 503, 504, 429,
# 408) say "try again" and are repeated within the time bound like a closed connection.
_STATUS_ATTEMPTS = 4
_FINAL_WORD = "HTTP 500"
_FIRST_PAUSE = 0.05
_MAX_PAUSE = 1.0


class ServerUnavailable(Exception):
    """The tracking store stopped answering for longer than the bound allows."""


def _chain(error: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    current: BaseException | None = error
    while current is not None and len(seen) < 20:
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen


def fault(error: BaseException) -> str | None:
    """A short reason when ``error`` is transient (worth repeating the call), else ``None``."""
    text = " ".join(str(e) for e in _chain(error))
    lowered = text.lower()
    if "database is locked" in lowered:
        return LOCKED
    if "connection refused" in lowered or "failed to establish a new connection" in lowered:
        return REFUSED
    if "timed out" in lowered or "timeout" in lowered:
        return TIMED_OUT
    for status in ("500", "502", "503", "504", "429", "408"):
        if f"too many {status} error responses" in lowered or f"error code {status}" in lowered:
            return f"HTTP {status}"
    names = {type(e).__name__ for e in _chain(error)}
    if names & {
        "ConnectionError",
        "ConnectionResetError",
        "ConnectionAbortedError",
        "RemoteDisconnected",
        "ProtocolError",
        "ChunkedEncodingError",
        "IncompleteRead",
        "BrokenPipeError",
    }:
        return CLOSED
    if "connection aborted" in lowered or "remote end closed" in lowered:
        return CLOSED
    return None


class Patience:
    """Repeats calls that failed for a transient reason; shared by all upload threads.

    ``give_up`` counts seconds since the store last answered any call (or since the failing
    call was sent, if later). ``keep_trying`` lets a live upload keep waiting while pytest
    still runs: the server may come back before the session ends.
    """

    def __init__(
        self,
        give_up: float,
        store: str = "the tracking store",
        keep_trying: Callable[[], bool] = lambda: False,
        on_answer: Callable[[], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.give_up = give_up
        self._store = store
        self._keep_trying = keep_trying
        self._on_answer = on_answer
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._last_answer: float | None = None
        # When the calls failing now were sent: the start of the store's silence.
        self._failing_since: float | None = None
        self.answered = False
        # Calls repeated after a transient fault, for the log.
        self.retried = 0
        # Calls waiting for the store's answer now: when each was sent.
        self._in_flight: dict[int, float] = {}
        self._calls = 0

    def waiting(self) -> tuple[float | None, float | None]:
        """(seconds the oldest call in flight has waited, seconds the store has kept failing).

        A store that fails (refuses, cuts, answers errors) is down or broken; one that holds a
        request without answering may just be slow. pytest's wait tells them apart by these.
        """
        with self._lock:
            now = self._clock()
            oldest = min(self._in_flight.values(), default=None)
            failing = self._failing_since
        return (
            None if oldest is None else now - oldest,
            None if failing is None else now - failing,
        )

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
        for _attempt in range(1_000_000):  # bounded by time below; this only bounds the loop
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
                self._wait_or_give_up(reason, sent, error, pause)
                pause = min(pause * 2, _MAX_PAUSE)
                continue
            with self._lock:
                self._in_flight.pop(token, None)
            self.answer()
            return result
        raise ServerUnavailable("too many attempts")

    def _wait_or_give_up(self, reason: str, sent: float, error: Exception, pause: float) -> None:
        with self._lock:
            if self._failing_since is None or sent < self._failing_since:
                self._failing_since = sent
            since = max(self._failing_since, self._last_answer or self._failing_since)
            answered = self.answered
        bound = self.give_up
        if reason == REFUSED and not answered:
            bound = min(bound, _NEVER_ANSWERED_GIVE_UP)
        out_of_time = self._clock() - since + pause > bound
        if out_of_time and (bound < self.give_up or not self._keep_trying()):
            raise ServerUnavailable(
                f"{self._store} did not answer for {self._clock() - since:.1f} s ({reason})"
            ) from error
        with self._lock:
            self.retried += 1
        self._sleep(pause)


_PROXY_VARIABLES = ("http_proxy", "https_proxy", "all_proxy")


def check_listening(uri: str, store: str, window: float = _NEVER_ANSWERED_GIVE_UP) -> None:
    """Raise ``ServerUnavailable`` if nothing listens at a tracking server's address.

    Costs one TCP connect, before MLflow's second-long import: a server that is not running is
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
    for _attempt in range(100):
        try:
            with socket.create_connection((parts.hostname, port), timeout=window):
                return
        except ConnectionRefusedError as error:
            waited = time.monotonic() - started
            if waited >= window:
                raise ServerUnavailable(
                    f"{store} did not answer for {waited:.1f} s ({REFUSED})"
                ) from error
            time.sleep(0.1)
        except OSError:
            return  # not a plain refusal (name lookup, routing): MLflow's calls will say
