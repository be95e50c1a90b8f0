"""Test uploads in two worker processes, for a local SQLite store.

MLflow's SQL store spends its time in Python (SQLAlchemy sessions and statements), under one
GIL per process. Threads do not help there, but two processes do: each keeps one core busy,
and SQLite in WAL mode lets one write while the other prepares its next transaction. They take
turns at writing, handed over at each commit (see ``writeturns``); SQLite's own lock, with the
20 s busy timeout MLflow sets, still keeps them safe. Three writer processes were slower than
two on two cores.

Workers must be forked from a process that has imported MLflow (spawning each would pay the
import in each), and forking is only safe from a process that runs one thread. When tests
already wait as the uploader has imported MLflow (a quick suite, a journal upload) and MLflow
has created the database before, the uploader forks them from itself at that moment: it runs
one thread then (see ``onethread``) and has opened no database connection yet, and the workers
are ready as soon as the uploader. Otherwise (tests pile up only later, or the uploader must
create the database first) the workers are started once the uploader runs threads (heartbeat,
upload threads), so they are forked from a forkserver that imports MLflow once, started in the
background as soon as the backlog calls for it, while the uploader keeps writing by itself.
Small suites start neither: the workers cost about a second of CPU and two processes' memory.
"""

from __future__ import annotations

import contextlib
import gc
import multiprocessing
import multiprocessing.forkserver
import os
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pytest_mlflow_tree import writeturns
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


# Bytes of a typical record (a passing test's), for the estimate before a record is read.
_TYPICAL_RECORD_BYTES = 500


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
        # The header alone (the first line) says little about the records' size.
        mean = self._read_bytes / self._read_lines if self._read_lines > 1 else None
        self._waiting = int(max(0, unread) / (mean or _TYPICAL_RECORD_BYTES))
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


def single_threaded() -> bool:
    """Whether this process runs one thread, so that forking it is safe (Linux tells; else no)."""
    try:
        return len(os.listdir("/proc/self/task")) == 1
    except OSError:
        return False


@dataclass(frozen=True)
class WorkerSetup:
    """What a worker needs to reach the store; plain data, so it pickles."""

    uri: str
    store: str
    give_up: float
    # The pytest process a live upload follows: while it lives, the store is waited for.
    follow_pid: int | None
    uploader_pid: int


@dataclass(frozen=True)
class SessionSetup:
    """What a worker needs to write one journal's tests, known once the uploader has started.

    Sent with every test, so that workers started before it was known write with it too.
    """

    header: Header
    limits: Limits
    experiment_id: str
    resumed_by: str | None
    files_root: Path | None


def _init_worker(setup: WorkerSetup, turn: writeturns.Turn) -> None:
    # What the forkserver or the uploader imported lives as long as this worker: out of its
    # collections, so that they neither scan it nor copy its pages (see ``frozenimports``).
    gc.freeze()
    # Watch first: an uploader killed while this worker still sets up must end it too.
    threading.Thread(
        target=_end_with, args=(setup.uploader_pid,), name="mlflow-tree-watch", daemon=True
    ).start()
    from pytest_mlflow_tree import quiet, sqlite_tuning

    quiet.apply_to_process()
    from mlflow.tracking import MlflowClient

    from pytest_mlflow_tree.retries import Patience
    from pytest_mlflow_tree.upload import follows

    quiet.silence_loggers()
    sqlite_tuning.relax_sync_on_connect()
    _worker["turns"] = writeturns.WriteTurns(turn)
    _worker["turns"].install()
    _worker["patience"] = Patience(
        setup.give_up, store=setup.store, keep_trying=follows(setup.follow_pid)
    )
    _worker["client"] = MlflowClient(tracking_uri=setup.uri)


def _writer(session: SessionSetup) -> Any:
    """This worker's ``RunWriter`` for ``session``, made on its first test."""
    if _worker.get("session") != session:
        from pytest_mlflow_tree.uploader import RunWriter

        writer = RunWriter(
            _worker["client"],
            session.header,
            session.limits,
            session.experiment_id,
            patience=_worker["patience"],
        )
        writer.files_root = session.files_root
        writer.resumed_by = session.resumed_by
        _worker["writer"], _worker["session"] = writer, session
    return _worker["writer"]


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
    session: SessionSetup,
    record: RunRecord,
    parent_id: str,
    known: Any,
    root_run_id: str | None,
) -> tuple[str, float]:
    """One test, in a worker: its run id, and until when a lost ``create_run`` may linger."""
    writer = _writer(session)
    writer.root_run_id = root_run_id
    return writer.upload_test(record, parent_id, known), writer.unsure_until


class WorkerPool:
    """Two writer processes, started once the backlog calls for them.

    Forked from the uploader itself when it asks early, while it runs one thread: the workers
    then share its imported MLflow and start within a fraction of a second. Later (the uploader
    runs threads by then), forked from the forkserver in the background, while the uploader
    writes on by itself.
    """

    def __init__(self, setup: WorkerSetup, backlog: Backlog) -> None:
        self._setup = setup
        self._backlog = backlog
        self._session: SessionSetup | None = None
        self._executor: ProcessPoolExecutor | None = None
        self._ready = threading.Event()
        self._starter: threading.Thread | None = None
        self.error: BaseException | None = None
        # The workers' process ids, once they run (for the log and the tests).
        self.pids: list[int] = []
        # What they were forked from, once started: "uploader" or "forkserver".
        self.forked_from: str | None = None

    def configure(self, session: SessionSetup) -> None:
        self._session = session

    @property
    def started(self) -> bool:
        return self._starter is not None

    def wanted(self) -> bool:
        return not self.started and self._backlog.waiting() >= MIN_BACKLOG

    def fork_now(self) -> bool:
        """Fork the workers from this process now, if that is safe; whether it did.

        From the thread that makes the caller's MLflow calls, before it has made any: the
        workers must not inherit a database connection.
        """
        if not single_threaded():
            return False
        try:
            executor = self._new_executor("fork")
            # The first submit forks both workers, before the executor starts its own thread.
            futures = [executor.submit(_ready) for _ in range(PROCESSES)]
        except Exception as error:
            self._failed(error)
            return False
        self._executor = executor
        self.forked_from = "uploader"
        self._start(lambda: self._wait_for(futures))
        return True

    def start(self) -> None:
        """Start the workers from the forkserver, without waiting: the caller writes on."""

        def start_them() -> None:
            _warm_up()
            self._executor = self._new_executor("forkserver")
            self._wait_for([self._executor.submit(_ready) for _ in range(PROCESSES)])

        self.forked_from = "forkserver"
        self._start(start_them)

    def _new_executor(self, method: str) -> ProcessPoolExecutor:
        context = multiprocessing.get_context(method)
        return ProcessPoolExecutor(
            PROCESSES, context, initializer=_init_worker, initargs=(self._setup, context.Lock())
        )

    def _start(self, start_them: Callable[[], None]) -> None:
        def run() -> None:
            try:
                start_them()
            except Exception as error:
                self._failed(error)
                return
            self._ready.set()

        self._starter = threading.Thread(target=run, name="mlflow-tree-workers", daemon=True)
        self._starter.start()

    def _failed(self, error: BaseException) -> None:
        # The uploader writes on by itself: slower, nothing lost.
        self.error = error
        print(
            f"pytest-mlflow-tree: worker processes did not start ({error}): one writer",
            file=sys.stderr,
        )

    def _wait_for(self, futures: list[Future[int]]) -> None:
        # Each worker runs its initializer before its first task: wait for both.
        self.pids = sorted({future.result() for future in futures})

    @property
    def executor(self) -> ProcessPoolExecutor | None:
        """The running workers, or ``None`` while they start (or if they could not)."""
        return self._executor if self._ready.is_set() else None

    def submit(
        self, record: RunRecord, parent_id: str, known: Any, root_run_id: str | None
    ) -> Future[tuple[str, float]]:
        if self.executor is None or self._session is None:
            raise RuntimeError("the workers are not running")
        return self.executor.submit(
            _upload_test, self._session, record, parent_id, known, root_run_id
        )

    def shutdown(self) -> None:
        if self._starter is not None:
            # Bounded: starting the workers takes seconds; a hung start is left to its daemon.
            self._starter.join(timeout=60)
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
