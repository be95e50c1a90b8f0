"""The uploader: read a journal (following it while pytest writes it) and apply it to MLflow.

Started by the plugin as ``python -m pytest_mlflow_tree.upload`` in its own process, so that
MLflow's CPU-heavy client never competes with the tests for the GIL; also the engine behind
``pytest-mlflow-tree replay``.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import threading
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

from pytest_mlflow_tree.model import journal, quiet, redact, retries, sqlitepath, started
from pytest_mlflow_tree.model.compact import CompactFilter
from pytest_mlflow_tree.model.records import Header
from pytest_mlflow_tree.model.retries import Patience, ServerUnavailable
from pytest_mlflow_tree.model.status import Status
from pytest_mlflow_tree.model.stores import (
    full_mlflow_installed,
    missing_store_message,
    needs_full_mlflow,
    use_server_for_this_process,
)
from pytest_mlflow_tree.read.from_journal import SessionBuilder
from pytest_mlflow_tree.upload import dbcheck, journallock, newstore
from pytest_mlflow_tree.upload.anchor import AnchorError
from pytest_mlflow_tree.upload.tree import Progress, TreeUploader

# How often the status file is rewritten while records stream in.
_STATUS_INTERVAL = 0.2
# How often it is rewritten anyway, so that pytest sees calls waiting on a silent store.
_HEARTBEAT = 0.5

# Threads uploading tests to a tracking server at once. Enough to hide the server's latency on
# a few cores without flooding a shared server.
DEFAULT_SERVER_WORKERS = 8

# How often the last status is tried again while its directory is gone (a test deleted it;
# pytest writes it again once the tests are over), and for how long at most: pytest stops
# waiting for the uploader before.
_STATUS_RETRY = 0.05
_STATUS_WAIT = 600.0
_STATUS_RETRIES = round(_STATUS_WAIT / _STATUS_RETRY)

# Seconds without an answer from the tracking store before the upload gives up (the journal
# keeps the rest for replay). Also the default of --mlflow-tree-stall.
DEFAULT_GIVE_UP = 4.0
# The replay command's bound for a store that takes its connections and then fails, cuts or
# holds them: the user asked for this upload, and a slow or busy store that answers now and
# then is waited for (each answer starts the bound again). A refused connection still gets
# DEFAULT_GIVE_UP: nothing listens there.
REPLAY_SLOW_GIVE_UP = 300.0
# A tracking server that holds requests without answering may be slow rather than gone (a cold
# server imports its handlers on the first calls, a loaded one queues them): after the last
# test, the live upload gives it this many times its bound before giving up on it.
SLOW_FACTOR = 5


class StoreUnavailable(Exception):
    """The tracking URI needs something this installation lacks."""


# Set to "public" to write to a SQL store through MLflow's public client, not in batches.
SQL_WRITER_ENV = "PYTEST_MLFLOW_TREE_SQL_WRITER"


def workers_for(uri: str, requested: int | None) -> int:
    """How many threads upload tests at once.

    A server gains from threads that hide its latency. A database store does not: MLflow's
    client spends its time in Python under one GIL, and the batched writer needs none.
    """
    if requested is not None:
        return max(1, requested)
    return DEFAULT_SERVER_WORKERS if uri.startswith(("http://", "https://")) else 1


def with_parent(header: Header, parent: str) -> Header:
    """``header`` attached to another parent run, or to none when ``parent`` is empty."""
    changed = dict(header)
    changed.pop("parent_run_id", None)
    if parent:
        changed["parent_run_id"] = parent
    return changed  # type: ignore[return-value]


def follows(pid: int | None) -> Callable[[], bool]:
    """Whether to keep waiting for the store: while the pytest process ``pid`` runs."""
    if pid is None:
        return lambda: False
    return lambda: _alive(pid)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def choose_writer(client: Any, uri: str, requested: str) -> tuple[bool, str | None]:
    """(whether to write in batches, why not when a SQL store is written another way)."""
    from pytest_mlflow_tree.upload import sqlwriter

    if not needs_full_mlflow(uri):
        return False, None
    if requested == "public":
        return False, "asked for (--public-client or $" + SQL_WRITER_ENV + "=public)"
    store = sqlwriter.sql_store(client)
    if store is None:
        return False, "the tracking store is not MLflow's SQL store"
    return (False, problem) if (problem := sqlwriter.schema_problem(store.engine)) else (True, None)


def run(
    path: Path,
    tracking_uri: str | None = None,
    experiment: str | None = None,
    follow_pid: int | None = None,
    status_path: Path | None = None,
    on_progress: Callable[[Progress], None] | None = None,
    workers: int | None = None,
    log_traceback: bool = False,
    parent: str | None = None,
    give_up: float = DEFAULT_GIVE_UP,
    sql_writer: str = "auto",
    slow_give_up: float | None = None,
    source: BinaryIO | None = None,
) -> Status:
    """Upload one journal; return the final status. Raises nothing: errors land in the status.

    ``source``: the journal already open (pytest hands it over so), read instead of ``path``.

    ``log_traceback`` prints unexpected errors' tracebacks to stderr: the uploader process's
    stderr is its log file, while the replay command shows the user one line instead.
    ``sql_writer``: "public" writes to a SQL store through MLflow's public client rather than
    in batches (see ``sqlwriter``); so does ``$PYTEST_MLFLOW_TREE_SQL_WRITER=public``.
    ``give_up`` and ``slow_give_up``: see ``retries.Patience``.
    """
    status = Status()
    last_write = 0.0
    # Upload threads report answers; one writer of the status file at a time.
    writing = threading.Lock()

    # Set once MLflow is imported.
    patience: Patience | None = None

    def write_status(force: bool = False) -> None:
        nonlocal last_write
        with writing:
            now = time.monotonic()
            if status_path is not None and (force or now - last_write >= _STATUS_INTERVAL):
                status.write(status_path)
                last_write = now

    def report(progress: Progress, force: bool = False) -> None:
        status.applied = progress.applied
        status.pooled = progress.pooled
        status.session_run_id = progress.session_run_id
        status.experiment_id = progress.experiment_id
        write_status(force)
        if on_progress is not None:
            on_progress(progress)

    keep_waiting = follows(follow_pid)
    # Set when the journal has its end: pytest has run its tests and only waits for this
    # upload, which decides from then on, within its bounds, whether the store is gone.
    tests_over = threading.Event()
    # Set for a tracking server: the bounds after the last test (--mlflow-tree-stall) are for
    # servers; a database store is waited for as long as pytest waits.
    server = threading.Event()

    def keep_trying() -> bool:
        # While tests run, a store that fails may come back before the session ends.
        return keep_waiting() and not (tests_over.is_set() and server.is_set())

    stopped = threading.Event()

    def heartbeat() -> None:
        # Bounded by the upload: run() sets ``stopped`` on every way out.
        while not stopped.wait(_HEARTBEAT):
            write_status(force=True)
            if patience is None or follow_pid is None or not server.is_set():
                continue
            # Looked for here, not where records are read: that may wait on the store.
            if not tests_over.is_set() and journal.ended(path):
                tests_over.set()
                patience.restart()
            if not keep_trying():
                _give_up_if_silent(patience, SLOW_FACTOR * give_up, status, write_status)

    beating = threading.Thread(target=heartbeat, name="mlflow-tree-heartbeat", daemon=True)
    uploader: TreeUploader | None = None

    def idle() -> None:
        if uploader is not None:
            uploader.idle()

    def other_upload() -> None:
        print(
            f"pytest-mlflow-tree: {path} is being uploaded by another process; waiting for it",
            file=sys.stderr,
            flush=True,
        )

    # Released last, once the status says how this upload ended.
    lock = contextlib.ExitStack()
    try:
        lock.enter_context(journallock.held(path, other_upload, source))
        records = journal.follow(path, keep_waiting, on_idle=idle, source=source)
        first = next(records, None)
        if first is None:
            raise journal.JournalError(f"{path} is empty")
        header: Header = journal.check_header(first, path)
        if parent is not None:
            header = with_parent(header, parent)
        uri = tracking_uri or os.environ.get("MLFLOW_TRACKING_URI") or header["tracking_uri"]
        status.tracking_uri = redact.url(uri)
        if not needs_full_mlflow(uri):
            server.set()
        if needs_full_mlflow(uri) and not full_mlflow_installed():
            raise StoreUnavailable(missing_store_message(uri))
        store = f"the tracking store {redact.url(uri)}"
        retries.check_listening(uri, store)
        quiet.apply_to_process()
        use_server_for_this_process(uri)
        if needs_full_mlflow(uri):
            if (database := sqlitepath.sqlite_path(uri)) is not None:
                newstore.create(database)
            dbcheck.check(
                uri,
                store,
                Patience(give_up, store=store, keep_trying=keep_trying, slow_give_up=slow_give_up),
            )
        from mlflow.tracking import MlflowClient

        from pytest_mlflow_tree.upload import mlflow_limits

        quiet.silence_loggers()
        client = MlflowClient(tracking_uri=uri)
        builder = SessionBuilder(header, uri)
        limits = mlflow_limits.installed()
        patience = Patience(
            give_up, store=store, keep_trying=keep_trying, slow_give_up=slow_give_up
        )
        requested = sql_writer if sql_writer != "auto" else os.environ.get(SQL_WRITER_ENV, "auto")
        batched, why_not = patience.call(choose_writer, client, uri, requested)
        if needs_full_mlflow(uri):
            status.writer = "batched" if batched else "public"
        if why_not is not None:
            print(f"pytest-mlflow-tree: writing with MLflow's client: {why_not}", file=sys.stderr)
        uploader = TreeUploader(
            client,
            header,
            limits,
            experiment=experiment,
            on_progress=report,
            workers=workers_for(uri, workers),
            files_root=path.parent,
            patience=patience,
            on_run=builder.ran,
            batched=batched,
        )
        # MLflow is imported: from now on, the store's silence counts.
        status.ready_at = time.time()
        write_status(force=True)
        if status_path is not None:
            beating.start()
        uploader.start()
        compact = CompactFilter()
        uploader.apply_all(compact(builder.watch(started.with_killed_tests(records))))
        uploader.progress.applied += compact.dropped
        from pytest_mlflow_tree.read import description, html_report

        # From what was just sent, not read back: that would cost time per test.
        session = builder.session(uploader.progress.experiment_id)
        if uploader.resumed and session is not None:
            # This journal holds only the re-run tests; the others are in the store.
            session = html_report.read_back(client, uri, session.run_id)
        for problem in (
            html_report.attach(client, session),
            description.attach(client, session, uploader.session_uuid, limits),
        ):
            if problem is not None:
                print(f"pytest-mlflow-tree: {problem}", file=sys.stderr)
        database = sqlitepath.sqlite_path(uri)
        if database is not None:
            sqlitepath.fold_in_wal(database)
        status.done = True
    except (
        journal.JournalError,
        StoreUnavailable,
        ServerUnavailable,
        dbcheck.DatabaseUnusable,
    ) as exc:
        status.error = redact.url(str(exc))
    except AnchorError as exc:
        status.error = (
            f"{exc}; to attach it elsewhere, replay with --parent RUN_ID (or --parent '')"
        )
    except Exception as exc:
        status.error = redact.url(f"{type(exc).__name__}: {exc}".strip())
        if log_traceback:
            # MLflow's messages name the request's URL, credentials included.
            sys.stderr.write(redact.url(traceback.format_exc()))
    stopped.set()
    if beating.is_alive():
        beating.join(timeout=5)
    if uploader is not None:
        report(uploader.progress, force=True)
    if status_path is not None:
        _write_last(status, status_path, keep_waiting)
    lock.close()
    return status


def _write_last(status: Status, path: Path, keep_waiting: Callable[[], bool]) -> None:
    """Write the final status, waiting for its directory while pytest runs: pytest reads it."""
    for _ in range(_STATUS_RETRIES):
        if status.write(path) or not keep_waiting():
            return
        time.sleep(_STATUS_RETRY)


def _give_up_if_silent(
    patience: Patience, bound: float, status: Status, write_status: Callable[[bool], None]
) -> None:
    """End this process if its calls have waited ``bound`` seconds with no answer to any.

    The calls cannot be interrupted: the upload ends here, its status saying why; the journal
    keeps what was not uploaded.
    """
    silent = patience.silent()
    if silent <= bound:
        return
    status.error = f"{patience.store} has not answered requests it accepted for {silent:.1f} s"
    write_status(True)
    exit_now(1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pytest_mlflow_tree.upload")
    parser.add_argument("journal", type=Path)
    parser.add_argument(
        "--journal-on-stdin", action="store_true", help="read JOURNAL from stdin, already open"
    )
    parser.add_argument("--follow-pid", type=int, help="follow the journal while PID lives")
    parser.add_argument("--status", type=Path, help="write progress to this JSON file")
    parser.add_argument("--workers", type=int, help="concurrent test uploads")
    parser.add_argument(
        "--give-up",
        type=float,
        default=DEFAULT_GIVE_UP,
        help="seconds without an answer from the store before giving up",
    )
    args = parser.parse_args(argv)
    # Below the tests in the CPU queue: recording must not slow down or distort what it records.
    with contextlib.suppress(OSError):
        os.nice(10)
    status = run(
        args.journal,
        follow_pid=args.follow_pid,
        status_path=args.status,
        workers=args.workers,
        log_traceback=True,
        give_up=args.give_up,
        source=sys.stdin.buffer if args.journal_on_stdin else None,
    )
    return 0 if status.done else 1


def exit_now(code: int) -> None:
    """End the process without tearing down the interpreter.

    Everything is written by now: MLflow's calls are committed, the status file is written.
    Tearing down MLflow's modules takes noticeable time, which pytest would wait for at the end
    of every session.
    """
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(code)
