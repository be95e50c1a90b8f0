"""Test uploads in two worker processes, for a local SQLite store.

MLflow's SQL store spends its time in Python (SQLAlchemy sessions and statements), under one
GIL per process. Threads do not help there, but two processes do: each keeps one core busy,
and SQLite in WAL mode lets one write while the other prepares its next transaction (MLflow
sets a 20 s busy timeout on every connection, so they wait for each other's commits instead of
failing). Three writer processes were slower than two on two cores.

The workers are forked from a forkserver that has imported MLflow once, in one thread (see
``onethread``): the uploader process has threads running (heartbeat, journal follower), so
forking it directly is unsafe, and spawning each worker would pay MLflow's import in each.
Starting them costs about a second of CPU, so they are started only once enough tests wait in
the journal, and the uploader keeps writing by itself until they are ready. The forkserver is
started as soon as the backlog calls for it, while the uploader still imports MLflow itself.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import multiprocessing.forkserver
import os
import sys
import threading
import time
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pytest_mlflow_tree.limits import Limits
from pytest_mlflow_tree.records import Header, RunRecord

# Worker processes writing tests at once (see the module docstring).
PROCESSES = 2
# Tests waiting in the journal before the workers are worth their start.
MIN_BACKLOG = 150

# What each worker process writes with, set once by the pool's initializer. Per-process state
# is how ProcessPoolExecutor gives each worker its own client and database connections without
# sending them with every task; it lives in worker processes only, never in the uploader.
_worker: dict[str, Any] = {}

# How often a worker checks that the uploader still runs.
_WATCH_INTERVAL = 0.5

_PRELOAD = [
    # First: it keeps the imports below from starting threads (see its docstring).
    "pytest_mlflow_tree.onethread",
    "pytest_mlflow_tree.uploadprocs",
    "pytest_mlflow_tree.uploader",
    "mlflow.tracking",
    "mlflow.store.tracking.sqlalchemy_store",
]


def available() -> bool:
    """Whether this platform can start workers safely (a forkserver); else one writer."""
    return "forkserver" in multiprocessing.get_all_start_methods()


class Backlog:
    """How many records wait in a journal being read: unread bytes / mean bytes per record."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._read_bytes = 0
        self._read_lines = 0
        self._checked = 0.0
        self._waiting = 0

    def line_read(self, size: int) -> None:
        self._read_bytes += size
        self._read_lines += 1

    def waiting(self) -> int:
        now = time.monotonic()
        if now - self._checked < 0.1 or not self._read_lines:
            return self._waiting
        self._checked = now
        try:
            unread = self._path.stat().st_size - self._read_bytes
        except OSError:
            return self._waiting
        self._waiting = max(0, unread) * self._read_lines // max(1, self._read_bytes)
        return self._waiting


def _warm_up() -> None:
    """Start the forkserver, which imports MLflow once for all workers."""
    multiprocessing.get_context("forkserver").set_forkserver_preload(_PRELOAD)
    multiprocessing.forkserver.ensure_running()


def warm_up_when_needed(backlog: Backlog, stopped: threading.Event) -> None:
    """In the background: start the forkserver once the backlog calls for workers."""

    def watch() -> None:
        while not stopped.wait(_WATCH_INTERVAL / 5):  # ends with the upload
            if backlog.waiting() >= MIN_BACKLOG:
                # A forkserver that cannot start is reported when the workers are started.
                with contextlib.suppress(Exception):
                    _warm_up()
                return

    threading.Thread(target=watch, name="mlflow-tree-warm-up", daemon=True).start()


@dataclass(frozen=True)
class Options:
    """How the uploader's workers reach the store, and how it tells when to start them."""

    uri: str
    store: str
    backlog: Backlog
    follow_pid: int | None = None


@dataclass(frozen=True)
class WriterSetup:
    """All a worker needs to build its own ``RunWriter``; plain data, so it pickles."""

    uri: str
    header: Header
    limits: Limits
    experiment_id: str
    resumed_by: str | None
    files_root: Path | None
    give_up: float
    store: str
    # The pytest process a live upload follows: while it lives, the store is waited for.
    follow_pid: int | None
    uploader_pid: int


def _init_worker(setup: WriterSetup) -> None:
    # Watch first: an uploader killed while this worker still sets up must end it too.
    threading.Thread(
        target=_end_with, args=(setup.uploader_pid,), name="mlflow-tree-watch", daemon=True
    ).start()
    from pytest_mlflow_tree import quiet, sqlite_tuning

    quiet.apply_to_process()
    from mlflow.tracking import MlflowClient

    from pytest_mlflow_tree.retries import Patience
    from pytest_mlflow_tree.upload import follows
    from pytest_mlflow_tree.uploader import RunWriter

    quiet.silence_loggers()
    sqlite_tuning.relax_sync_on_connect()
    patience = Patience(setup.give_up, store=setup.store, keep_trying=follows(setup.follow_pid))
    writer = RunWriter(
        MlflowClient(tracking_uri=setup.uri),
        setup.header,
        setup.limits,
        setup.experiment_id,
        patience=patience,
    )
    writer.files_root = setup.files_root
    writer.resumed_by = setup.resumed_by
    _worker["writer"] = writer


def _end_with(pid: int) -> None:
    """End this worker once the uploader is gone (killed, say).

    Nothing else would: a worker waits for tasks on a queue it holds both ends of, and the
    forkserver it was forked from does not end its children. A transaction cut off here is
    never committed, so the database stays sound, and the journal keeps the test for replay.
    """
    from pytest_mlflow_tree.upload import follows

    uploader_alive = follows(pid)
    while uploader_alive():  # ends with this process
        time.sleep(_WATCH_INTERVAL)
    os._exit(1)


def _ready() -> int:
    return os.getpid()


def _upload_test(
    record: RunRecord, parent_id: str, known: Any, root_run_id: str | None
) -> tuple[str, float]:
    """One test, in a worker: its run id, and until when a lost ``create_run`` may linger."""
    writer = _worker["writer"]
    writer.root_run_id = root_run_id
    return writer.upload_test(record, parent_id, known), writer.unsure_until


class WorkerPool:
    """Two writer processes, started in the background once the backlog calls for them."""

    def __init__(self, setup: WriterSetup, backlog: Backlog) -> None:
        self._setup = setup
        self._backlog = backlog
        self._executor: ProcessPoolExecutor | None = None
        self._ready = threading.Event()
        self._starter: threading.Thread | None = None
        self.error: BaseException | None = None
        # The workers' process ids, once they run (for the log and the tests).
        self.pids: list[int] = []

    def wanted(self) -> bool:
        return self._starter is None and self._backlog.waiting() >= MIN_BACKLOG

    def start(self) -> None:
        """Start the workers without waiting for them: the caller writes on meanwhile."""
        self._starter = threading.Thread(
            target=self._start, name="mlflow-tree-workers", daemon=True
        )
        self._starter.start()

    def _start(self) -> None:
        try:
            _warm_up()
            executor = ProcessPoolExecutor(
                PROCESSES,
                multiprocessing.get_context("forkserver"),
                initializer=_init_worker,
                initargs=(self._setup,),
            )
            self._executor = executor
            # Each worker runs its initializer before its first task: wait for both.
            futures = [executor.submit(_ready) for _ in range(PROCESSES)]
            self.pids = sorted({future.result() for future in futures})
        except Exception as error:
            # The uploader writes on by itself: slower, nothing lost.
            self.error = error
            print(
                f"pytest-mlflow-tree: worker processes did not start ({error}): one writer",
                file=sys.stderr,
            )
            return
        self._ready.set()

    @property
    def executor(self) -> ProcessPoolExecutor | None:
        """The running workers, or ``None`` while they start (or if they could not)."""
        return self._executor if self._ready.is_set() else None

    def submit(
        self, record: RunRecord, parent_id: str, known: Any, root_run_id: str | None
    ) -> Future[tuple[str, float]]:
        if self._executor is None:
            raise RuntimeError("the workers are not running")
        return self._executor.submit(_upload_test, record, parent_id, known, root_run_id)

    def shutdown(self) -> None:
        if self._starter is not None:
            # Bounded: starting the workers takes seconds; a hung start is left to its daemon.
            self._starter.join(timeout=60)
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
