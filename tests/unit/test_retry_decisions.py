"""Which errors are worth repeating a call for, and for how long, on a fake clock.

The errors are built as MLflow's client, urllib3, requests, SQLite and SQLAlchemy raise them;
the end-to-end tests raise them for real.
"""

from __future__ import annotations

import http.client
import sqlite3
import time
from collections.abc import Callable
from typing import Any, cast

import pytest
import requests
import sqlalchemy.exc
from urllib3.exceptions import (
    MaxRetryError,
    NewConnectionError,
    ProtocolError,
    ReadTimeoutError,
    ResponseError,
)

from pytest_mlflow_tree.model import retries
from pytest_mlflow_tree.model.retries import (
    CLOSED,
    LOCKED,
    REFUSED,
    TIMED_OUT,
    Patience,
    ServerUnavailable,
    fault,
)


def gave_up(reason: Exception) -> MaxRetryError:
    """What urllib3 raises with its retries off."""
    return MaxRetryError(cast(Any, None), "/api/2.0/mlflow/runs/create", reason)


def status(code: int) -> MaxRetryError:
    return gave_up(ResponseError(ResponseError.SPECIFIC_ERROR.format(status_code=code)))


def refused() -> Exception:
    return NewConnectionError(cast(Any, None), "Failed to establish a new connection: refused")


def locked(code: int | None = None, message: str = "database is locked") -> sqlite3.Error:
    error = sqlite3.OperationalError(message)
    if code is not None:
        error.sqlite_errorcode = code  # type: ignore[attr-defined]
    return error


def wrapped(error: BaseException) -> BaseException:
    """``error`` as the cause of another, as MLflow's client raises it."""
    try:
        raise RuntimeError("API request failed") from error
    except RuntimeError as outer:
        return outer


# -- fault ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (ConnectionRefusedError(), REFUSED),
        (refused(), REFUSED),
        (requests.exceptions.ConnectionError(gave_up(refused())), REFUSED),
        (TimeoutError(), TIMED_OUT),
        (requests.exceptions.ReadTimeout(), TIMED_OUT),
        (ReadTimeoutError(cast(Any, None), "/", "read timed out"), TIMED_OUT),
        (status(503), "HTTP 503"),
        (status(429), "HTTP 429"),
        (status(500), "HTTP 500"),
        (ConnectionResetError(), CLOSED),
        (BrokenPipeError(), CLOSED),
        (http.client.RemoteDisconnected("closed"), CLOSED),
        (http.client.IncompleteRead(b"partial"), CLOSED),
        (ProtocolError("Connection aborted.", ConnectionResetError()), CLOSED),
        (requests.exceptions.ChunkedEncodingError(), CLOSED),
        (locked(), LOCKED),
        (locked(message="database table is locked"), LOCKED),
        (locked(5, "anything"), LOCKED),
        (locked(6, "anything"), LOCKED),
    ],
)
def test_transient_faults(error: BaseException, reason: str) -> None:
    assert fault(error) == reason
    assert fault(wrapped(error)) == reason


@pytest.mark.parametrize(
    "error",
    [
        ValueError("connection refused"),
        RuntimeError("RESOURCE_DOES_NOT_EXIST: database is locked"),
        KeyError("run"),
        PermissionError("denied"),
        status(400),
        status(404),
        status(403),
        gave_up(ResponseError(ResponseError.GENERIC_ERROR)),
        locked(message="database is locked (and more)"),
        locked(1, "database is locked"),
        locked(message="no such table: runs"),
    ],
)
def test_errors_that_repeating_will_not_mend(error: BaseException) -> None:
    assert fault(error) is None
    assert fault(wrapped(error)) is None


def test_a_refusal_is_told_from_the_timeout_it_subclasses() -> None:
    assert fault(gave_up(refused())) == REFUSED


def test_sqlalchemy_keeps_the_drivers_error_in_orig() -> None:
    error = sqlalchemy.exc.OperationalError("INSERT", {}, locked())
    assert fault(error) == LOCKED


def test_sqlalchemys_lost_connection() -> None:
    lost = sqlalchemy.exc.DBAPIError("SELECT 1", {}, Exception("gone"), connection_invalidated=True)
    assert fault(lost) == CLOSED


def handling_a_reset() -> BaseException:
    try:
        try:
            raise ConnectionResetError
        except ConnectionResetError:
            raise KeyError("while handling")  # noqa: B904
    except KeyError as error:
        return error


def test_an_error_raised_while_handling_a_fault_is_one() -> None:
    assert fault(handling_a_reset()) == CLOSED


def test_a_chain_that_loops_ends() -> None:
    first, second = ValueError("a"), ValueError("b")
    first.__cause__, second.__cause__ = second, first
    assert fault(first) is None


# -- Patience ---------------------------------------------------------------------------------


class Clock:
    """Time that passes only when told: by ``sleep``, or by a call that takes time."""

    def __init__(self) -> None:
        self.now = 0.0
        self.pauses: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.pauses.append(seconds)
        self.now += seconds


def patience(clock: Clock, give_up: float = 5.0, **options: Any) -> Patience:
    return Patience(give_up, "the store", clock=clock, sleep=clock.sleep, **options)


def failing(
    clock: Clock, errors: list[BaseException], takes: float = 0.0, forever: bool = False
) -> Callable[[], str]:
    """A call that takes ``takes`` seconds and raises ``errors`` in turn, then answers."""

    def call() -> str:
        clock.now += takes
        if errors:
            raise errors[0] if forever else errors.pop(0)
        return "answer"

    return call


def test_an_answer_at_once() -> None:
    clock = Clock()
    answers: list[int] = []
    waiting = patience(clock, on_answer=lambda: answers.append(1))
    assert waiting.call(lambda x: x * 2, 21) == 42
    assert (waiting.answered, waiting.retried, clock.pauses, answers) == (True, 0, [], [1])


def test_transient_faults_are_repeated_with_growing_pauses() -> None:
    clock = Clock()
    waiting = patience(clock)
    errors: list[BaseException] = [ConnectionResetError(), status(503), TimeoutError()]
    assert waiting.call(failing(clock, errors)) == "answer"
    assert clock.pauses == [0.05, 0.1, 0.2]
    assert waiting.retried == 3


def test_an_error_that_is_not_transient_is_raised_at_once() -> None:
    clock = Clock()
    with pytest.raises(KeyError):
        patience(clock).call(failing(clock, [KeyError("run")]))
    assert clock.pauses == []


def test_pauses_grow_to_a_second_at_most() -> None:
    clock = Clock()
    waiting = patience(clock, give_up=100.0)
    waiting.answer()
    waiting.call(failing(clock, [ConnectionResetError() for _ in range(10)]))
    assert clock.pauses[-1] == 1.0
    assert max(clock.pauses) == 1.0


def test_a_store_that_stays_silent_is_given_up_on_without_sleeping_past_the_bound() -> None:
    clock = Clock()
    waiting = patience(clock, give_up=1.0)
    waiting.answer()
    with pytest.raises(ServerUnavailable, match=r"the store did not answer .*closed"):
        waiting.call(failing(clock, [ConnectionResetError()], forever=True))
    assert clock.pauses == [0.05, 0.1, 0.2, 0.4]
    assert clock.now <= 1.0


def test_silence_counts_from_when_an_unanswered_call_was_sent() -> None:
    clock = Clock()
    waiting = patience(clock, give_up=5.0)
    waiting.answer()
    with pytest.raises(ServerUnavailable):
        waiting.call(failing(clock, [TimeoutError()], takes=6.0))
    assert clock.pauses == []


def test_an_error_status_is_an_answer_and_silence_counts_from_it() -> None:
    clock = Clock()
    waiting = patience(clock, give_up=5.0)
    waiting.answer()
    assert waiting.call(failing(clock, [status(503)], takes=6.0)) == "answer"
    assert clock.pauses == [0.05]


def test_http_500_is_repeated_a_few_times_only() -> None:
    clock = Clock()
    with pytest.raises(MaxRetryError):
        patience(clock, give_up=1000.0).call(failing(clock, [status(500)], forever=True))
    assert len(clock.pauses) == 3


def test_a_transient_status_is_repeated_until_the_bound() -> None:
    clock = Clock()
    with pytest.raises(ServerUnavailable, match="HTTP 503"):
        patience(clock, give_up=10.0).call(failing(clock, [status(503)], forever=True))
    assert len(clock.pauses) > 10


def test_a_store_that_never_answered_and_refuses_is_given_up_on_within_a_second() -> None:
    clock = Clock()
    waiting = patience(clock, give_up=60.0, keep_trying=lambda: True)
    with pytest.raises(ServerUnavailable, match="connection refused"):
        waiting.call(failing(clock, [ConnectionRefusedError()], forever=True))
    assert clock.now <= 1.0


def test_a_store_that_answered_before_is_waited_for_the_whole_bound_when_it_refuses() -> None:
    clock = Clock()
    waiting = patience(clock, give_up=3.0)
    waiting.answer()
    with pytest.raises(ServerUnavailable):
        waiting.call(failing(clock, [ConnectionRefusedError()], forever=True))
    assert 2.0 < clock.now <= 3.0


def test_a_live_upload_keeps_waiting_while_pytest_runs() -> None:
    clock = Clock()
    running = iter([True] * 20 + [False])
    waiting = patience(clock, give_up=1.0, keep_trying=lambda: next(running))
    waiting.answer()
    with pytest.raises(ServerUnavailable):
        waiting.call(failing(clock, [ConnectionResetError()], forever=True))
    assert clock.now > 10.0


def test_a_slow_store_has_a_bound_of_its_own_but_a_refusal_does_not() -> None:
    clock = Clock()
    waiting = patience(clock, give_up=1.0, slow_give_up=30.0)
    waiting.answer()
    # Five calls held a second each, past ``give_up`` but within ``slow_give_up``.
    assert waiting.call(failing(clock, [TimeoutError()] * 5, takes=1.0)) == "answer"
    assert clock.now > 5.0
    start = clock.now
    with pytest.raises(ServerUnavailable):
        waiting.call(failing(clock, [ConnectionRefusedError()], forever=True))
    assert clock.now - start <= 1.0


def test_silent_counts_the_oldest_unanswered_call() -> None:
    clock = Clock()
    waiting = patience(clock)
    assert waiting.silent() == 0.0
    seen: list[float] = []

    def slow() -> None:
        clock.now += 3.0
        seen.append(waiting.silent())

    waiting.call(slow)
    assert seen == [3.0]
    assert waiting.silent() == 0.0


def test_restart_counts_the_silence_from_now() -> None:
    clock = Clock()
    waiting = patience(clock)
    seen: list[float] = []

    def held() -> None:
        clock.now += 4.0
        waiting.restart()
        clock.now += 1.0
        seen.append(waiting.silent())

    waiting.call(held)
    assert seen == [1.0]


# -- retry_locked -----------------------------------------------------------------------------


def test_a_locked_database_is_retried_in_the_pytest_process(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = Clock()
    monkeypatch.setattr(time, "sleep", clock.sleep)
    assert retries.retry_locked(failing(clock, [locked(), locked()])) == "answer"
    assert clock.pauses == [0.01, 0.02]


def test_retry_locked_raises_other_errors_at_once_and_gives_up_on_a_lock(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = Clock()
    monkeypatch.setattr(time, "sleep", clock.sleep)
    with pytest.raises(ConnectionResetError):
        retries.retry_locked(failing(clock, [ConnectionResetError()]))
    with pytest.raises(sqlite3.OperationalError):
        retries.retry_locked(failing(clock, [locked()], forever=True))
    assert len(clock.pauses) == 7
