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
import time
import traceback
from collections.abc import Callable
from pathlib import Path

from pytest_mlflow_tree import journal, quiet, redact, sqlite_tuning
from pytest_mlflow_tree.records import Header
from pytest_mlflow_tree.status import Status
from pytest_mlflow_tree.uploader import Progress, TreeUploader

# How often the status file is rewritten while records stream in.
_STATUS_INTERVAL = 0.2

SQL_SCHEMES = ("sqlite", "postgresql", "mysql", "mssql")

# Threads uploading tests to a tracking server at once. Enough to hide the server's latency on
# a few cores without flooding a shared server.
DEFAULT_SERVER_WORKERS = 8


class StoreUnavailable(Exception):
    """The tracking URI needs something this installation lacks."""


def needs_full_mlflow(uri: str) -> bool:
    return uri.split(":", 1)[0].split("+", 1)[0] in SQL_SCHEMES


def full_mlflow_installed() -> bool:
    from importlib.metadata import PackageNotFoundError, version

    try:
        version("mlflow")
    except PackageNotFoundError:
        return False
    return True


def missing_store_message(uri: str) -> str:
    return (
        f"the tracking URI {uri!r} is a database store, which needs the full MLflow package "
        "(only mlflow-skinny is installed): pip install 'pytest-mlflow-tree[local]'"
    )


def workers_for(uri: str, requested: int | None) -> int:
    """How many tests to upload at once.

    A server gains from threads that hide its latency. A database store does not: MLflow's
    client spends its time in Python under one GIL, and SQLite has one writer anyway (two
    writer processes measured no faster: they wait on each other's locks).
    """
    if requested is not None:
        return max(1, requested)
    return DEFAULT_SERVER_WORKERS if uri.startswith(("http://", "https://")) else 1


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def run(
    path: Path,
    tracking_uri: str | None = None,
    experiment: str | None = None,
    follow_pid: int | None = None,
    status_path: Path | None = None,
    on_progress: Callable[[Progress], None] | None = None,
    workers: int | None = None,
    log_traceback: bool = False,
) -> Status:
    """Upload one journal; return the final status. Raises nothing: errors land in the status.

    ``log_traceback`` prints unexpected errors' tracebacks to stderr: the uploader process's
    stderr is its log file, while the replay command shows the user one line instead.
    """
    status = Status()
    last_write = 0.0

    def report(progress: Progress, force: bool = False) -> None:
        nonlocal last_write
        status.applied = progress.applied
        status.pooled = progress.pooled
        status.session_run_id = progress.session_run_id
        status.experiment_id = progress.experiment_id
        now = time.monotonic()
        if status_path is not None and (force or now - last_write >= _STATUS_INTERVAL):
            status.write(status_path)
            last_write = now
        if on_progress is not None:
            on_progress(progress)

    def keep_waiting() -> bool:
        return follow_pid is not None and _alive(follow_pid)

    uploader: TreeUploader | None = None
    try:
        records = journal.follow(path, keep_waiting)
        first = next(records, None)
        if first is None:
            raise journal.JournalError(f"{path} is empty")
        header: Header = journal.check_header(first, path)
        uri = tracking_uri or os.environ.get("MLFLOW_TRACKING_URI") or header["tracking_uri"]
        status.tracking_uri = redact.url(uri)
        if needs_full_mlflow(uri) and not full_mlflow_installed():
            raise StoreUnavailable(missing_store_message(uri))
        quiet.apply_to_process()
        database = sqlite_tuning.sqlite_path(uri)
        if database is not None:
            sqlite_tuning.enable_wal(database)
        from mlflow.tracking import MlflowClient

        from pytest_mlflow_tree.limits import Limits

        quiet.silence_loggers()
        if database is not None:
            sqlite_tuning.relax_sync_on_connect()
        uploader = TreeUploader(
            MlflowClient(tracking_uri=uri),
            header,
            Limits.from_mlflow(),
            experiment=experiment,
            on_progress=report,
            workers=workers_for(uri, workers),
        )
        uploader.start()
        uploader.apply_all(records)
        status.done = True
    except (journal.JournalError, StoreUnavailable) as exc:
        status.error = str(exc)
    except Exception as exc:
        status.error = f"{type(exc).__name__}: {exc}".strip()
        if log_traceback:
            traceback.print_exc(file=sys.stderr)
    if uploader is not None:
        report(uploader.progress, force=True)
    if status_path is not None:
        status.write(status_path)
    return status


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pytest_mlflow_tree.upload")
    parser.add_argument("journal", type=Path)
    parser.add_argument("--follow-pid", type=int, help="follow the journal while PID lives")
    parser.add_argument("--status", type=Path, help="write progress to this JSON file")
    parser.add_argument("--workers", type=int, help="concurrent test uploads")
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
    )
    return 0 if status.done else 1


if __name__ == "__main__":
    sys.exit(main())
