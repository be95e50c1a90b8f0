"""Journals written without upload, ``pytest-mlflow-tree`` commands run in this process, checks
of a tree recorded once, and a bounded wait for what another process does."""

from __future__ import annotations

import contextlib
import io
import logging
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import pytest

from pytest_mlflow_tree import cli
from pytest_mlflow_tree.model import quiet

if TYPE_CHECKING:
    from conftest import Store, Tree

_LOGGERS = ("mlflow", "alembic", "sqlalchemy", "urllib3")
# How often ``wait_until`` looks again.
_POLL = 0.05

T = TypeVar("T")


# pytest's header line about the recording (before the tests) and the upload's progress lines
# (while pytest waits for it): not among the lines the plugin ends the session with.
_NOT_SUMMARY = ("mlflow-tree: recording into ", "mlflow-tree: uploading ")


def plugin_lines(lines: list[str]) -> list[str]:
    """The plugin's lines at the end of the session, as printed (separators stripped)."""
    ours = [line.strip("- ") for line in lines if "mlflow-tree:" in line]
    return [line for line in ours if not line.startswith(_NOT_SUMMARY)]


def journal_only(
    pytester: pytest.Pytester, store: Store, *args: str
) -> tuple[pytest.RunResult, Path]:
    """Run ``pytester``'s suite for ``store`` with ``args``, writing only the journal (into a
    directory of this run's own): the result, the journal."""
    journals = pytester.path / f"journals-{len(list(pytester.path.glob('journals-*')))}"
    result = pytester.runpytest(
        *store.args(), "--mlflow-tree-journal-only", f"--mlflow-tree-journal-dir={journals}", *args
    )
    (journal,) = journals.glob("*.jsonl")
    return result, journal


def recorded_by_replay(
    pytester: pytest.Pytester, store: Store, *args: str
) -> tuple[pytest.RunResult, Tree]:
    """Record ``pytester``'s suite into ``store`` through its journal, replayed in this process.

    Live upload and replay are one code path: tests of what reads a recorded session need not
    start an uploader process (and import MLflow in it) for each session they record.
    """
    return replayed(pytester, store, *args), store.tree()


def replayed(pytester: pytest.Pytester, store: Store, *args: str) -> pytest.RunResult:
    """``recorded_by_replay`` without reading the tree back: pytest's result."""
    result, journal = journal_only(pytester, store, *args)
    code, _, err = replay(str(journal))
    assert code == 0, err
    return result


@contextlib.contextmanager
def process_state_kept() -> Iterator[None]:
    """Put back what an upload or a command sets for its own process: MLflow's environment
    defaults and the logging floor, so that later tests see this process unchanged."""
    names = [*quiet.QUIET_ENV, *quiet.FORCED_ENV, "MLFLOW_TRACKING_URI"]
    environment = {name: os.environ.get(name) for name in names}
    disabled = logging.root.manager.disable
    levels = {name: logging.getLogger(name).level for name in _LOGGERS}
    try:
        yield
    finally:
        for name, value in environment.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        logging.disable(disabled)
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)


def command(*args: str) -> tuple[int, str, str]:
    """(exit code, stdout, stderr) of ``pytest-mlflow-tree ARGS``, run in this process."""
    out, err = io.StringIO(), io.StringIO()
    with (
        process_state_kept(),
        contextlib.redirect_stdout(out),
        contextlib.redirect_stderr(err),
    ):
        code = cli.main(list(args))
    return code, out.getvalue(), err.getvalue()


def replay(*args: str) -> tuple[int, str, str]:
    """``pytest-mlflow-tree replay ARGS``, as ``command``."""
    return command("replay", *args)


def assert_recorded_once(runs: list[Any], nodeids: list[str]) -> None:
    """Every test of ``nodeids`` has one run, no run is there twice, none is left RUNNING."""
    keys = [run.data.tags["pytest.run_key"] for run in runs]
    assert len(keys) == len(set(keys)), "a run was recorded twice"
    tests = sorted(
        run.data.tags["pytest.nodeid"] for run in runs if run.data.tags["pytest.level"] == "test"
    )
    assert tests == sorted(nodeids)
    sessions = [run for run in runs if run.data.tags["pytest.level"] == "session"]
    assert len(sessions) == 1
    running = [run.info.run_name for run in runs if run.info.status == "RUNNING"]
    assert running == []


def wait_until(condition: Callable[[], T | None], limit: float, what: str = "the condition") -> T:
    """Poll ``condition`` until it returns something true, and return that; fail once ``limit``
    seconds have passed without. The bound is generous on purpose: it only keeps a process that
    never gets there from hanging the suite, it measures nothing."""
    deadline = time.monotonic() + limit
    while True:
        found = condition()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"waited {limit:g} s for {what}")
        time.sleep(_POLL)
