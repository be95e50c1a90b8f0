"""Which faults are worth repeating a call for, and for how long.

``fault`` is given the errors MLflow's client really raises (against a port that refuses, a
server on 127.0.0.1 that answers a status, cuts or holds requests, a locked SQLite file) and
tells them apart by type and HTTP status. ``Patience`` runs on a fake clock.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import servers

from pytest_mlflow_tree.model import quiet, retries
from pytest_mlflow_tree.model.retries import Patience, ServerUnavailable


@pytest.fixture(autouse=True)
def _mlflow_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    # As in the uploader: MLflow's own retries off, and a short timeout for the silent server.
    for name, value in {**quiet.QUIET_ENV, **quiet.FORCED_ENV}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "1")


@contextlib.contextmanager
def _server(behaviour: str) -> Iterator[str]:
    """A server on 127.0.0.1 that answers every request with ``behaviour``: a status code,
    "cut" (closes the connection unanswered) or "hold" (answers nothing until it stops)."""
    stopping = threading.Event()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _any(self) -> None:
            if behaviour == "cut":
                self.close_connection = True
                return
            if behaviour == "hold":
                stopping.wait(30)
                return
            body = b"not json"
            self.send_response(int(behaviour))
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = _any

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    # Its shutdown waits for the loop's next look: a short poll keeps each test short.
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        stopping.set()
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def _error_of(call: Callable[[], Any]) -> BaseException:
    with pytest.raises(Exception) as caught:  # noqa: PT011 - whatever MLflow raises
        call()
    return caught.value


def _mlflow_error(uri: str) -> BaseException:
    from mlflow.tracking import MlflowClient

    return _error_of(lambda: MlflowClient(tracking_uri=uri).get_run("0" * 32))


def test_a_refused_connection() -> None:
    with servers.refused_port() as port:
        error = _mlflow_error(f"http://127.0.0.1:{port}")
    assert retries.fault(error) == retries.REFUSED


@pytest.mark.parametrize("status", [500, 502, 503, 504, 429])
def test_a_transient_status(status: int) -> None:
    with _server(str(status)) as url:
        error = _mlflow_error(url)
    assert retries.fault(error) == f"HTTP {status}"


@pytest.mark.parametrize("status", [400, 401, 403, 404])
def test_a_status_that_is_the_servers_answer(status: int) -> None:
    with _server(str(status)) as url:
        error = _mlflow_error(url)
    assert retries.fault(error) is None


def test_a_connection_closed_without_an_answer() -> None:
    with _server("cut") as url:
        error = _mlflow_error(url)
    assert retries.fault(error) == retries.CLOSED


def test_a_request_held_past_the_timeout() -> None:
    with _server("hold") as url:
        error = _mlflow_error(url)
    assert retries.fault(error) == retries.TIMED_OUT


def test_a_locked_sqlite_database(tmp_path: Path) -> None:
    path = tmp_path / "locked.db"
    with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as holder:
        holder.execute("BEGIN EXCLUSIVE")
        with contextlib.closing(sqlite3.connect(path, timeout=0)) as other:
            error = _error_of(lambda: other.execute("CREATE TABLE t (x)"))
        holder.execute("ROLLBACK")
    assert retries.fault(error) == retries.LOCKED


def test_a_message_that_only_reads_like_a_fault_is_not_one() -> None:
    from mlflow.exceptions import MlflowException

    error = MlflowException("timed out: connection refused, database is locked, error code 503")
    assert retries.fault(error) is None


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def _failing(clock: _Clock, error: BaseException, slow: float, then: int) -> Callable[[], str]:
    """A call that takes ``slow`` seconds and fails with ``error`` ``then`` times, then works."""
    calls = iter(range(then + 1))

    def call() -> str:
        clock.now += slow
        if next(calls) < then:
            raise error
        return "answered"

    return call


def _cut() -> BaseException:
    with _server("cut") as url:
        return _mlflow_error(url)


def _refused() -> BaseException:
    with servers.refused_port() as port:
        return _mlflow_error(f"http://127.0.0.1:{port}")


def test_a_slow_store_that_then_cuts_a_request_is_given_up_on_within_the_bound() -> None:
    clock = _Clock()
    patience = Patience(4.0, clock=clock, sleep=clock.sleep)
    with pytest.raises(ServerUnavailable, match="connection closed"):
        patience.call(_failing(clock, _cut(), slow=6.0, then=1))


def test_a_slow_store_that_then_cuts_a_request_is_waited_for_with_a_slow_bound() -> None:
    """The replay command's patience: a store that takes connections is there."""
    clock = _Clock()
    patience = Patience(4.0, clock=clock, sleep=clock.sleep, slow_give_up=300.0)
    assert patience.call(_failing(clock, _cut(), slow=6.0, then=20)) == "answered"
    assert patience.retried == 20


def test_a_refused_connection_is_given_up_on_whatever_the_slow_bound() -> None:
    clock = _Clock()
    patience = Patience(4.0, clock=clock, sleep=clock.sleep, slow_give_up=300.0)
    patience.answer()  # it was there once
    with pytest.raises(ServerUnavailable, match="connection refused"):
        patience.call(_failing(clock, _refused(), slow=0.0, then=1000))
    assert clock.now < 10
