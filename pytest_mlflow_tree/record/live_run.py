"""The ``mlflow_live_run`` fixture: the test's own run, active in MLflow's fluent API.

Only tests that ask for it import MLflow. The run is created here, in the test's process, with
the tags the uploader looks runs up by (``pytest.session_uuid``, ``pytest.run_key``); the test's
record names it, and the uploader completes it (parent and root tags, the plugin's metrics,
status and end time) instead of creating another.

In a session that is not recorded the run is made the same way in a throwaway store: a
temporary directory, deleted after the test. The test runs as it would recorded (its
``mlflow.log_model`` and ``mlflow.evaluate`` calls need an active run in some store), and what
it logs goes nowhere, not into the user's own store. The throwaway store is MLflow's file
store, which needs no database tables to be created first and comes with ``mlflow-skinny``;
MLflow 3 refuses it unless ``MLFLOW_ALLOW_FILE_STORE`` is set, which is done for the test only.

MLflow keeps its fluent state in module globals and environment variables: the tracking URI,
the active experiment, the stack of active runs and ``MLFLOW_RUN_ID``. All of it is saved before
and put back after the test, so the user's own runs continue as they were. MLflow offers no
public way to read or restore the "not set" state of the first two, hence the guarded use of
its private module attributes.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import tempfile
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from pytest_mlflow_tree.model import experiments
from pytest_mlflow_tree.model.names import LEVEL, NODEID, RUN_KEY, RUNNING, SESSION_UUID, TEST_LEVEL
from pytest_mlflow_tree.model.records import run_key, run_name_of
from pytest_mlflow_tree.model.retries import retry_locked
from pytest_mlflow_tree.model.status import Status
from pytest_mlflow_tree.record import iteminfo, session_tags
from pytest_mlflow_tree.record.context import Context
from pytest_mlflow_tree.record.run_fixture import RunLog

# How long a test waits for the uploader to have the experiment and the session run ready.
READY_TIMEOUT = 60.0
_POLL = 0.05
# Runs a test may have started inside its live run and left open.
_MAX_LEFT_OPEN = 100

_ALLOW_FILE_STORE = "MLFLOW_ALLOW_FILE_STORE"
_ENVIRONMENT = ("MLFLOW_TRACKING_URI", "MLFLOW_EXPERIMENT_ID", "MLFLOW_RUN_ID", _ALLOW_FILE_STORE)
# The experiment a new file store creates.
_DEFAULT_EXPERIMENT_ID = "0"


@dataclass(frozen=True)
class Target:
    """Where the live runs of this process go."""

    tracking_uri: str
    experiment_id: str
    session_uuid: str
    # A file store, which MLflow 3 opens only when allowed.
    file_store: bool = False


_TARGET_KEY: pytest.StashKey[Target] = pytest.StashKey()


def _wait_for_uploader(status_path: str) -> Status | None:
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        status = Status.read(Path(status_path))
        if status is not None and (
            status.error or (status.experiment_id and status.session_run_id)
        ):
            return status
        time.sleep(_POLL)
    return None


def _resolve(context: Context) -> Target:
    """Where the session goes: from the uploader once it is ready, else asked of the store.

    Nothing may touch the store before the uploader is ready: on a new SQLite file both
    processes would create MLflow's tables at once and break the file.
    """
    from mlflow.tracking import MlflowClient

    uri = context["tracking_uri"]
    status = _wait_for_uploader(context["status_path"]) if context["status_path"] else None
    client = MlflowClient(tracking_uri=uri)
    if status is not None and status.experiment_id and status.session_run_id:
        session = retry_locked(client.get_run, status.session_run_id)
        uuid = session.data.tags.get(SESSION_UUID, context["session_uuid"])
        return Target(uri, status.experiment_id, uuid)
    # Not uploading now (--mlflow-tree-journal-only, or the upload failed): the runs made here
    # are found by their tags when the journal is replayed.
    if context["resume_run_id"]:
        session = retry_locked(client.get_run, context["resume_run_id"])
        uuid = session.data.tags.get(SESSION_UUID, context["session_uuid"])
        return Target(uri, str(session.info.experiment_id), uuid)
    if context["experiment_from_parent"] and context["parent_run_id"]:
        parent = retry_locked(client.get_run, context["parent_run_id"])
        return Target(uri, str(parent.info.experiment_id), context["session_uuid"])
    experiment_id = retry_locked(experiments.experiment_id, client, context["experiment"])
    return Target(uri, experiment_id, context["session_uuid"])


def _create_run(client: Any, item: pytest.Item, target: Target) -> str:
    tags = {
        **session_tags.common_tags(),
        LEVEL: TEST_LEVEL,
        SESSION_UUID: target.session_uuid,
        RUN_KEY: run_key(item.nodeid),
        NODEID: item.nodeid,
    }
    run = retry_locked(
        client.create_run,
        target.experiment_id,
        start_time=item.stash.get(iteminfo.TEST_START_KEY, int(time.time() * 1000)),
        tags=tags,
        run_name=run_name_of(item.nodeid)[:250],
    )
    return str(run.info.run_id)


@dataclass
class _Saved:
    tracking_uri: Any
    experiment_id: Any
    environment: dict[str, str | None]


def _save(utils: Any, fluent: Any) -> _Saved:
    return _Saved(
        tracking_uri=getattr(utils, "_tracking_uri", None),
        experiment_id=getattr(fluent, "_active_experiment_id", None),
        environment={name: os.environ.get(name) for name in _ENVIRONMENT},
    )


def _restore(saved: _Saved, mlflow: Any, utils: Any, fluent: Any) -> None:
    # set_tracking_uri also resets MLflow's tracer, which caches the URI.
    try:
        mlflow.set_tracking_uri(saved.tracking_uri)
    except Exception:
        utils._tracking_uri = saved.tracking_uri
    fluent._active_experiment_id = saved.experiment_id
    for name, value in saved.environment.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


def _leave(mlflow: Any, run_id: str, outer_id: str | None) -> None:
    """Pop the run stack back to where the test found it, without finishing our run."""
    for _ in range(_MAX_LEFT_OPEN):
        active = mlflow.active_run()
        if active is None or active.info.run_id == outer_id:
            return
        if active.info.run_id == run_id:
            # The uploader sets the status and end time from the test's outcome.
            mlflow.end_run(status=RUNNING)
        else:
            # A run the test started and left open: end it as MLflow would at exit.
            mlflow.end_run()


@contextlib.contextmanager
def _mlflow_warnings_ignored() -> Iterator[None]:
    """What MLflow warns about while the fixture opens or leaves the store is the plugin's
    business: under ``filterwarnings = error`` it would fail the user's test."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


@contextlib.contextmanager
def live_run(item: pytest.Item, context: Context | None, log: RunLog) -> Iterator[Any]:
    with _mlflow_warnings_ignored():
        import mlflow

    if context is None:
        with _throwaway_store() as throwaway, _active(mlflow, item, throwaway, None) as run:
            yield run
        return
    with _active(mlflow, item, _session_target(item, context), log) as run:
        yield run


def _session_target(item: pytest.Item, context: Context) -> Target:
    """Where this process's live runs go, resolved once."""
    target = item.config.stash.get(_TARGET_KEY, None)
    if target is None:
        with _mlflow_warnings_ignored():
            target = item.config.stash[_TARGET_KEY] = _resolve(context)
    return target


@contextlib.contextmanager
def _throwaway_store() -> Iterator[Target]:
    with tempfile.TemporaryDirectory(
        prefix="pytest-mlflow-tree-off-", ignore_cleanup_errors=True
    ) as directory:
        # A directory the store creates itself, with its default experiment.
        uri = (Path(directory) / "mlruns").as_uri()
        yield Target(uri, _DEFAULT_EXPERIMENT_ID, session_uuid="", file_store=True)


@contextlib.contextmanager
def _active(mlflow: Any, item: pytest.Item, target: Target, log: RunLog | None) -> Iterator[Any]:
    """The test's run, active in ``target`` while the test runs."""
    with _mlflow_warnings_ignored():
        entered = _enter(mlflow, item, target, log)
    try:
        yield entered.run
    finally:
        with _mlflow_warnings_ignored():
            try:
                _leave(mlflow, entered.run_id, entered.outer_id)
            finally:
                _restore(entered.saved, mlflow, entered.utils, entered.fluent)


@dataclass
class _Entered:
    run: Any
    run_id: str
    outer_id: str | None
    saved: _Saved
    utils: Any
    fluent: Any


def _enter(mlflow: Any, item: pytest.Item, target: Target, log: RunLog | None) -> _Entered:
    """Create the test's run and make it the active one, the user's settings saved."""
    from mlflow.tracking import MlflowClient

    utils: Any = importlib.import_module("mlflow.tracking._tracking_service.utils")
    fluent: Any = importlib.import_module("mlflow.tracking.fluent")
    outer = mlflow.active_run()
    outer_id = outer.info.run_id if outer is not None else None
    saved = _save(utils, fluent)
    try:
        if target.file_store:
            os.environ[_ALLOW_FILE_STORE] = "true"
        client = MlflowClient(tracking_uri=target.tracking_uri)
        run_id = _create_run(client, item, target)
        if log is not None:
            log.live_run_id = run_id
        mlflow.set_tracking_uri(target.tracking_uri)
        fluent._active_experiment_id = target.experiment_id
        os.environ["MLFLOW_EXPERIMENT_ID"] = target.experiment_id
        run = retry_locked(mlflow.start_run, run_id=run_id, nested=True)
    except BaseException:
        _restore(saved, mlflow, utils, fluent)
        raise
    return _Entered(run, run_id, outer_id, saved, utils, fluent)
