"""The upload workers take turns writing to SQLite (see ``writeturns``).

A worker process, set up as the uploader sets up its workers, writes runs on the test's
command while the test holds or frees the turn the workers share. What must hold: it writes
only in its turn and as soon as it gets it; it gives the turn back after every transaction,
a refused one too; and a turn never given back costs it one bounded wait, after which it
writes on without turns and loses nothing.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Any

import pytest
import turntaker
from conftest import Store

from pytest_mlflow_tree import sqlite_tuning, writeturns

# Bounds each answer of the worker: its start imports MLflow, slow on a loaded machine.
ANSWER_TIMEOUT = 120
# How long the worker is given to write a run it must not write.
NOT_WRITTEN_WITHIN = 1.5


@dataclass
class Worker:
    turn: writeturns.Turn
    pipe: Connection
    process: BaseProcess

    def send(self, command: str, *args: Any) -> None:
        self.pipe.send((command, *args))

    def answer(self, timeout: float = ANSWER_TIMEOUT) -> tuple[str, Any]:
        assert self.pipe.poll(timeout), f"the worker did not answer within {timeout} s"
        kind, value = self.pipe.recv()
        return str(kind), value

    def ask(self, command: str, *args: Any) -> Any:
        self.send(command, *args)
        kind, value = self.answer()
        assert kind == "ok", value
        return value


@pytest.fixture
def worker(store: Store) -> Iterator[Worker]:
    assert store.path is not None
    # As the uploader leaves the store before its workers start.
    sqlite_tuning.enable_wal(store.path)
    # Spawned: forking this process (it runs threads) would not be safe.
    context = multiprocessing.get_context("spawn")
    turn = context.Lock()
    ours, theirs = context.Pipe()
    process = context.Process(
        target=turntaker.serve, args=(store.uri, turn, theirs), name="turntaker", daemon=True
    )
    process.start()
    try:
        yield Worker(turn, ours, process)
    finally:
        with contextlib.suppress(OSError):
            ours.send(("stop",))
        process.join(timeout=10)
        if process.is_alive():
            process.kill()
            process.join(timeout=10)


def _runs(store: Store, experiment_id: str) -> dict[str, str]:
    """Run name -> status, as a user reads them back."""
    runs = store.client().search_runs([experiment_id])
    return {run.info.run_name: run.info.status for run in runs}


def test_a_worker_writes_only_in_its_turn_and_at_once_when_it_gets_it(
    store: Store, worker: Worker
) -> None:
    experiment_id = store.client().create_experiment("turns")
    worker.ask("test_run", experiment_id, "first", {})
    # Given back after the first test's transactions, so the test can take it.
    assert worker.turn.acquire(timeout=10), "the worker kept its turn after writing"
    try:
        worker.send("test_run", experiment_id, "second", {})
        assert not worker.pipe.poll(NOT_WRITTEN_WITHIN), "the worker wrote out of turn"
        assert _runs(store, experiment_id) == {"first": "FINISHED"}
    finally:
        worker.turn.release()
    assert worker.answer()[0] == "ok"
    assert _runs(store, experiment_id) == {"first": "FINISHED", "second": "FINISHED"}
    assert not worker.ask("given_up")


def test_a_transaction_the_database_refuses_gives_the_turn_back(
    store: Store, worker: Worker
) -> None:
    assert store.path is not None
    experiment_id = store.client().create_experiment("turns")
    # The run's row is written first, then the database refuses its tags: the transaction
    # has written, holds the turn, and is rolled back.
    with contextlib.closing(sqlite3.connect(store.path)) as connection:
        connection.execute(
            "CREATE TRIGGER refuse BEFORE INSERT ON tags WHEN NEW.value = 'refused' "
            "BEGIN SELECT RAISE(ABORT, 'refused by the test'); END"
        )
        connection.commit()
    worker.send("test_run", experiment_id, "refused", {"verdict": "refused"})
    kind, message = worker.answer()
    assert kind == "error"
    assert "refused by the test" in message
    assert worker.turn.acquire(timeout=10), "the turn was not given back after a rollback"
    worker.turn.release()
    worker.ask("test_run", experiment_id, "accepted", {"verdict": "fine"})
    assert _runs(store, experiment_id) == {"accepted": "FINISHED"}


def test_a_turn_never_given_back_costs_one_wait_then_the_worker_writes_without_turns(
    store: Store, worker: Worker
) -> None:
    experiment_id = store.client().create_experiment("turns")
    worker.ask("test_run", experiment_id, "before", {})
    # Taken and never given back, as by a worker killed while it wrote.
    assert worker.turn.acquire(timeout=10)
    assert not worker.ask("given_up")
    after = [f"after-{number}" for number in range(3)]
    for name in after:
        worker.ask("test_run", experiment_id, name, {})
    assert worker.ask("given_up")
    assert _runs(store, experiment_id) == dict.fromkeys(["before", *after], "FINISHED")
