"""One tracking server for every xdist worker of a test run.

A server with PostgreSQL behind it takes seconds of both cores to start. Under xdist the
controller starts one while its workers start and run other tests, and writes where it
listens to a file it hands each worker; a worker's ``tracking_server`` fixture waits for that
file. Every test records into an experiment of its own, so the workers share the server as
users of a team do.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import tempfile
import threading
from pathlib import Path

import servers
from replaying import wait_until

# The key of the file's path in xdist's ``workerinput``.
WORKERINPUT_KEY = "mlflow_tree_tracking_server"
# Bounds on a busy machine, not measurements: starting, and stopping once the run is over.
_START_LIMIT = 600.0
_STOP_LIMIT = 120.0


class SharedServer:
    """A thread of the controller that starts PostgreSQL and ``mlflow server``, writes where the
    server listens (or why it could not start) to ``file`` and stops both on ``stop()``."""

    def __init__(self) -> None:
        self._dir = Path(tempfile.mkdtemp(prefix="mlflow-tree-tests-"))
        self.file = self._dir / "server.json"
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="tracking-server", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        try:
            with servers.tracking_server(self._dir / "server") as server:
                _publish(self.file, dataclasses.asdict(server))
                self._stopping.wait()
        except Exception as error:
            # Each worker's first test that needs the server reports it.
            _publish(self.file, {"error": f"the shared tracking server failed: {error}"})

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join(timeout=_STOP_LIMIT)
        shutil.rmtree(self._dir, ignore_errors=True)


def _publish(file: Path, data: dict[str, object]) -> None:
    # Renamed into place: a worker never reads half a file.
    partial = file.with_suffix(".partial")
    partial.write_text(json.dumps(data, default=str), encoding="utf-8")
    partial.replace(file)


def shared(file: Path) -> servers.TrackingServer:
    """The server the controller started, once it is up; ``ServerError`` if it failed."""
    wait_until(file.exists, _START_LIMIT, "the controller's tracking server")
    data = json.loads(file.read_text(encoding="utf-8"))
    if "error" in data:
        raise servers.ServerError(data["error"])
    return servers.TrackingServer(**{**data, "log": Path(data["log"]), "pids": tuple(data["pids"])})
