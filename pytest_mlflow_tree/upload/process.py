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
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from pytest_mlflow_tree.model import journal, quiet, redact, retries, sqlitepath, started
from pytest_mlflow_tree.model.compact import CompactFilter
from pytest_mlflow_tree.model.limits import Limits
from pytest_mlflow_tree.model.records import Header, Record
from pytest_mlflow_tree.model.retries import Patience, ServerUnavailable
from pytest_mlflow_tree.model.settings_table import DEFAULT_GIVE_UP_SECONDS, SQL_WRITER_ENV
from pytest_mlflow_tree.model.status import Progress, Status
from pytest_mlflow_tree.model.stores import (
    full_mlflow_installed,
    missing_store_message,
    needs_full_mlflow,
    use_server_for_this_process,
)
from pytest_mlflow_tree.read.from_journal import SessionBuilder
from pytest_mlflow_tree.read.readback import Session
from pytest_mlflow_tree.upload import dbcheck, journallock, newstore
from pytest_mlflow_tree.upload.anchor import AnchorError
from pytest_mlflow_tree.upload.tree import TreeUploader

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
# keeps the rest for replay): the default of --mlflow-tree-give-up-after.
DEFAULT_GIVE_UP = DEFAULT_GIVE_UP_SECONDS
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


@dataclass(frozen=True)
class Options:
    """How to upload a journal.

    ``tracking_uri`` and ``experiment``: where to, instead of the journal's (with
    ``$MLFLOW_TRACKING_URI`` between the two). ``follow_pid``: follow the journal while this
    pytest process runs. ``status_path``: write the status there as the upload goes.
    ``parent``: attach the session to this run instead (none when empty).
    ``log_traceback`` prints unexpected errors' tracebacks to stderr: the uploader process's
    stderr is its log file, while the replay command shows the user one line instead.
    ``sql_writer``: "public" writes to a SQL store through MLflow's public client rather than
    in batches (see ``sqlwriter``); so does ``$PYTEST_MLFLOW_TREE_SQL_WRITER=public``.
    ``give_up`` and ``slow_give_up``: see ``retries.Patience``.
    """

    tracking_uri: str | None = None
    experiment: str | None = None
    follow_pid: int | None = None
    status_path: Path | None = None
    on_progress: Callable[[Progress], None] | None = None
    workers: int | None = None
    log_traceback: bool = False
    parent: str | None = None
    give_up: float = DEFAULT_GIVE_UP
    sql_writer: str = "auto"
    slow_give_up: float | None = None


def run(path: Path, options: Options | None = None, source: BinaryIO | None = None) -> Status:
    """Upload one journal; return the final status. Raises nothing: errors land in the status.

    ``source``: the journal already open (pytest hands it over so), read instead of ``path``.
    """
    return Upload(path, options or Options(), source).run()


class Upload:
    """One upload of a journal and its status, written as it goes."""

    def __init__(self, path: Path, options: Options, source: BinaryIO | None) -> None:
        self.path = path
        self.options = options
        self.source = source
        self.status = Status()
        self._last_write = 0.0
        # Upload threads report answers; one writer of the status file at a time.
        self._writing = threading.Lock()
        # Set once MLflow is imported.
        self._patience: Patience | None = None
        self._keep_waiting = follows(options.follow_pid)
        # Set when the journal has its end: pytest has run its tests and only waits for this
        # upload, which decides from then on, within its bounds, whether the store is gone.
        self._tests_over = threading.Event()
        # Set for a tracking server: the bounds after the last test
        # (--mlflow-tree-give-up-after) are for servers; a database store is waited for as long
        # as pytest waits.
        self._server = threading.Event()
        self._stopped = threading.Event()
        self._beating = threading.Thread(
            target=self._heartbeat, name="mlflow-tree-heartbeat", daemon=True
        )
        self._uploader: TreeUploader | None = None

    def run(self) -> Status:
        # Released last, once the status says how this upload ended.
        lock = contextlib.ExitStack()
        try:
            lock.enter_context(journallock.held(self.path, self._other_upload, self.source))
            self._upload()
            self.status.done = True
        except Exception as exc:
            self.status.error = _error_text(exc, self.options.log_traceback)
        self._stop()
        lock.close()
        return self.status

    # -- the steps -----------------------------------------------------------------------------

    def _upload(self) -> None:
        records = journal.follow(
            self.path, self._keep_waiting, on_idle=self._idle, source=self.source
        )
        header = self._header(records)
        uri = self._open_store(header)
        from mlflow.tracking import MlflowClient

        from pytest_mlflow_tree.upload import mlflow_limits

        quiet.silence_loggers()
        client = MlflowClient(tracking_uri=uri)
        builder = SessionBuilder(header, uri)
        limits = mlflow_limits.installed()
        uploader = self._tree_uploader(client, header, uri, builder, limits)
        self._ready()
        uploader.start()
        compact = CompactFilter()
        uploader.apply_all(compact(builder.watch(started.with_killed_tests(records))))
        uploader.progress.applied += compact.dropped
        # From what was just sent, not read back: that would cost time per test.
        session = builder.session(uploader.progress.experiment_id)
        _attach_reports(client, uri, session, uploader, limits)
        database = sqlitepath.sqlite_path(uri)
        if database is not None:
            sqlitepath.fold_in_wal(database)

    def _header(self, records: Iterator[Record]) -> Header:
        """The journal's header, attached to the parent asked for."""
        first = next(records, None)
        if first is None:
            raise journal.JournalError(f"{self.path} is empty")
        header: Header = journal.check_header(first, self.path)
        if self.options.parent is not None:
            header = with_parent(header, self.options.parent)
        return header

    def _open_store(self, header: Header) -> str:
        """The tracking URI to upload to, once its store is there and ready for MLflow."""
        uri = self.options.tracking_uri or os.environ.get("MLFLOW_TRACKING_URI")
        uri = uri or header["tracking_uri"]
        self.status.tracking_uri = redact.url(uri)
        if not needs_full_mlflow(uri):
            self._server.set()
        if needs_full_mlflow(uri) and not full_mlflow_installed():
            raise StoreUnavailable(missing_store_message(uri))
        store = _store_name(uri)
        retries.check_listening(uri, store)
        quiet.apply_to_process()
        use_server_for_this_process(uri)
        if needs_full_mlflow(uri):
            if (database := sqlitepath.sqlite_path(uri)) is not None:
                newstore.create(database)
            dbcheck.check(uri, store, self._new_patience(store))
        return uri

    def _new_patience(self, store: str) -> Patience:
        options = self.options
        return Patience(
            options.give_up,
            store=store,
            keep_trying=self._keep_trying,
            slow_give_up=options.slow_give_up,
        )

    def _tree_uploader(
        self, client: Any, header: Header, uri: str, builder: SessionBuilder, limits: Limits
    ) -> TreeUploader:
        options = self.options
        patience = self._patience = self._new_patience(_store_name(uri))
        requested = options.sql_writer
        if requested == "auto":
            requested = os.environ.get(SQL_WRITER_ENV, "auto")
        batched, why_not = patience.call(choose_writer, client, uri, requested)
        if needs_full_mlflow(uri):
            self.status.writer = "batched" if batched else "public"
        if why_not is not None:
            print(f"pytest-mlflow-tree: writing with MLflow's client: {why_not}", file=sys.stderr)
        self._uploader = TreeUploader(
            client,
            header,
            limits,
            experiment=options.experiment,
            on_progress=self._report,
            workers=workers_for(uri, options.workers),
            files_root=self.path.parent,
            patience=patience,
            on_run=builder.ran,
            batched=batched,
        )
        return self._uploader

    def _ready(self) -> None:
        """MLflow is imported: from now on, the store's silence counts."""
        self.status.ready_at = time.time()
        self._write_status(force=True)
        if self.options.status_path is not None:
            self._beating.start()

    def _stop(self) -> None:
        """The upload has ended, well or not: the final status."""
        self._stopped.set()
        if self._beating.is_alive():
            self._beating.join(timeout=5)
        if self._uploader is not None:
            self._report(self._uploader.progress, force=True)
        if self.options.status_path is not None:
            _write_last(self.status, self.options.status_path, self._keep_waiting)

    # -- as the upload goes --------------------------------------------------------------------

    def _write_status(self, force: bool = False) -> None:
        with self._writing:
            now = time.monotonic()
            path = self.options.status_path
            if path is not None and (force or now - self._last_write >= _STATUS_INTERVAL):
                self.status.write(path)
                self._last_write = now

    def _report(self, progress: Progress, force: bool = False) -> None:
        self.status.catch_up(progress)
        self._write_status(force)
        if self.options.on_progress is not None:
            self.options.on_progress(progress)

    def _keep_trying(self) -> bool:
        # While tests run, a store that fails may come back before the session ends.
        server_bounded = self._tests_over.is_set() and self._server.is_set()
        return self._keep_waiting() and not server_bounded

    def _heartbeat(self) -> None:
        # Bounded by the upload: run() sets ``_stopped`` on every way out.
        while not self._stopped.wait(_HEARTBEAT):
            self._write_status(force=True)
            patience = self._patience
            if patience is None or self.options.follow_pid is None or not self._server.is_set():
                continue
            # Looked for here, not where records are read: that may wait on the store.
            if not self._tests_over.is_set() and journal.ended(self.path):
                self._tests_over.set()
                patience.restart()
            if not self._keep_trying():
                bound = SLOW_FACTOR * self.options.give_up
                _give_up_if_silent(patience, bound, self.status, self._write_status)

    def _idle(self) -> None:
        if self._uploader is not None:
            self._uploader.idle()

    def _other_upload(self) -> None:
        print(
            f"pytest-mlflow-tree: {self.path} is being uploaded by another process; waiting for it",
            file=sys.stderr,
            flush=True,
        )


def _store_name(uri: str) -> str:
    return f"the tracking store {redact.url(uri)}"


def _attach_reports(
    client: Any, uri: str, session: Session | None, uploader: TreeUploader, limits: Limits
) -> None:
    """Attach the HTML report and the description to the session run."""
    from pytest_mlflow_tree.read import description, html_report

    if uploader.resumed and session is not None:
        # This journal holds only the re-run tests; the others are in the store.
        session = html_report.read_back(client, uri, session.run_id)
    for problem in (
        html_report.attach(client, session),
        description.attach(client, session, uploader.session_uuid, limits),
    ):
        if problem is not None:
            print(f"pytest-mlflow-tree: {problem}", file=sys.stderr)


def _error_text(exc: Exception, log_traceback: bool) -> str:
    """The status's error for ``exc``; called where it is caught."""
    if isinstance(
        exc, (journal.JournalError, StoreUnavailable, ServerUnavailable, dbcheck.DatabaseUnusable)
    ):
        return redact.url(str(exc))
    if isinstance(exc, AnchorError):
        return f"{exc}; to attach it elsewhere, replay with --parent RUN_ID (or --parent '')"
    if log_traceback:
        # MLflow's messages name the request's URL, credentials included.
        sys.stderr.write(redact.url(traceback.format_exc()))
    return redact.url(f"{type(exc).__name__}: {exc}".strip())


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
    options = Options(
        follow_pid=args.follow_pid,
        status_path=args.status,
        workers=args.workers,
        log_traceback=True,
        give_up=args.give_up,
    )
    status = run(args.journal, options, sys.stdin.buffer if args.journal_on_stdin else None)
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
