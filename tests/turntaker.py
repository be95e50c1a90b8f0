"""An upload worker in a process of its own, set up as the uploader sets up its workers.

``serve`` runs in a process the test starts. It makes the MLflow calls the test sends it over
a pipe, each answered with ``("ok", result)`` or ``("error", message)``, until ``stop``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any

from pytest_mlflow_tree import uploadprocs, writeturns


def _test_run(client: Any, experiment_id: str, name: str, tags: dict[str, str]) -> str:
    """The three calls the workers make for a test."""
    from mlflow.entities import Metric

    run = client.create_run(experiment_id, run_name=name, tags=tags)
    run_id = str(run.info.run_id)
    now = int(time.time() * 1000)
    client.log_batch(run_id, metrics=[Metric("duration", 0.5, now, 0)])
    client.set_terminated(run_id, "FINISHED", end_time=now)
    return run_id


def _given_up(_client: Any) -> bool:
    turns: writeturns.WriteTurns = uploadprocs._worker["turns"]
    return turns.given_up


_COMMANDS: dict[str, Callable[..., Any]] = {"test_run": _test_run, "given_up": _given_up}


def serve(uri: str, turn: writeturns.Turn, commands: Connection) -> None:
    setup = uploadprocs.WorkerSetup(
        uri=uri, store=uri, give_up=5.0, follow_pid=None, uploader_pid=os.getppid()
    )
    uploadprocs._init_worker(setup, turn)
    client = uploadprocs._worker["client"]
    while True:  # ends with "stop", or with the test process (see _init_worker)
        command, *args = commands.recv()
        if command == "stop":
            return
        try:
            commands.send(("ok", _COMMANDS[command](client, *args)))
        except Exception as error:
            commands.send(("error", f"{type(error).__name__}: {error}"))
