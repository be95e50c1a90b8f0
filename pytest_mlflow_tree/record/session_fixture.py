"""The ``mlflow_session`` fixture: facts about the whole session logged on the session run.

The model version under test, a dataset's hash: values a session-scoped fixture knows once,
logged with the calls ``mlflow_run`` has. Like ``mlflow_run``, nothing here talks to MLflow:
each process keeps one ``SessionLog`` in its ``config.stash`` and hands what it holds to the
controller at the end of the session (in-process directly; an xdist worker through
``workeroutput``, which xdist sends to the controller when the worker finishes), where
``session_values`` merges the parts into the session run's close record.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pytest_mlflow_tree.model.records import SESSION_KEY
from pytest_mlflow_tree.model.values import describe
from pytest_mlflow_tree.record.run_fixture import Logged, RunLog

SESSION_LOG_KEY: pytest.StashKey[SessionLog] = pytest.StashKey()
# The key of a worker's session values in xdist's ``workeroutput``.
WORKEROUTPUT_KEY = "mlflow_tree_session"


class SessionLogged(Logged, total=False):
    # Values of params logged again with another value in the same process, by param.
    conflicts: dict[str, list[str]]


class SessionLog(RunLog):
    """The session run of the recorded tree: the calls of ``mlflow_run`` (``log_param``,
    ``log_metric``, ``set_tag``, ``log_text``, ``log_dict``, ``log_artifact``, ``check``...).

    Params are immutable in MLflow: a param logged again with another value keeps its first
    value, and the other is reported at the end of the session (never an error in a test).
    Under pytest-xdist every worker has its own ``SessionLog``: their values are merged on the
    one session run, and a param or tag two workers logged with different values is reported
    the same way. Without ``--mlflow-tree`` the calls are accepted and dropped.
    """

    def __init__(self, files_root: Path | None) -> None:
        super().__init__(files_root, SESSION_KEY)
        self._conflicts: dict[str, list[str]] = {}

    def log_param(self, key: str, value: Any) -> None:
        key, text = str(key), describe(value)
        if not self.recording:
            return
        first = self._params.setdefault(key, text)
        if text != first and text not in self._conflicts.get(key, []):
            self._conflicts.setdefault(key, []).append(text)

    def drain(self) -> SessionLogged | None:
        logged: SessionLogged = {**(super().drain() or {})}  # type: ignore[typeddict-item]
        if self._conflicts:
            logged["conflicts"], self._conflicts = self._conflicts, {}
        return logged or None


def for_config(config: pytest.Config, files_root: str | None) -> SessionLog:
    """This process's session log, created on first use."""
    log = config.stash.get(SESSION_LOG_KEY, None)
    if log is None:
        log = config.stash[SESSION_LOG_KEY] = SessionLog(Path(files_root) if files_root else None)
    return log


def take(config: pytest.Config) -> SessionLogged | None:
    """What this process's session log holds, once the session's fixtures are torn down."""
    log = config.stash.get(SESSION_LOG_KEY, None)
    return log.drain() if log is not None else None


class WorkerHandOver:
    """On an xdist worker: puts the worker's session values into ``workeroutput``."""

    def __init__(self, config: pytest.Config) -> None:
        self._config = config

    # Last: after pytest's own ``pytest_sessionfinish`` has torn down the session's fixtures,
    # whose finalizers may log too; xdist sends ``workeroutput`` once all have run.
    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self) -> None:
        logged = take(self._config)
        workeroutput: Any = getattr(self._config, "workeroutput", None)
        if logged is not None and isinstance(workeroutput, dict):
            workeroutput[WORKEROUTPUT_KEY] = logged
