"""Uploads keep the tree whole: every record once, parents before children.

On SQL stores the batched writer commits many runs at once; against a server (PostgreSQL
behind it) several threads write tests at once. That is where reordering or loss would show.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from conftest import BOTH_STORES, Record, Store, Tree
from replaying import assert_recorded_once, journal_only, replay

from pytest_mlflow_tree.model.status import Status

MODULES = 4
TESTS_PER_MODULE = 80
# Bounds an upload run by a test, on a loaded machine too.
UPLOAD_TIMEOUT = 300


def _suite(pytester: pytest.Pytester, per_module: int = TESTS_PER_MODULE) -> None:
    for module in range(MODULES):
        pytester.makepyfile(
            **{
                f"test_bulk_{module}": f"""
                import pytest

                @pytest.mark.parametrize("case", range({per_module}))
                def test_case(case):
                    assert case != 13 or {module} != 2, "unlucky"
                """
            }
        )


@BOTH_STORES
def test_many_tests_are_all_recorded_once_under_their_module(
    pytester: pytest.Pytester, record: Record, store: Store
) -> None:
    _suite(pytester)
    journals = pytester.path / "journals"
    result, tree = record(
        "--mlflow-tree-keep-journal", f"--mlflow-tree-journal-dir={journals}", live=True
    )
    status = _status(journals)
    assert status.done
    # The session's and modules' open and close, each test's start and run, the end.
    assert status.applied == 1 + 2 * (1 + MODULES) + 2 * MODULES * TESTS_PER_MODULE
    if store.path is None:
        # Not all inline: the threads wrote tests (they run from the start).
        assert status.pooled > 0
    else:
        assert (status.writer, status.pooled) == ("batched", 0)
    result.assert_outcomes(passed=MODULES * TESTS_PER_MODULE - 1, failed=1)
    result.stdout.no_fnmatch_line("*WARNING*")
    _assert_whole(tree, TESTS_PER_MODULE)


def _assert_whole(tree: Tree, per_module: int) -> None:
    """One session, one run per module, each test once under its own module."""
    total = MODULES * per_module
    assert len(tree.level("session")) == 1
    assert len(tree.level("module")) == MODULES
    tests = tree.level("test")
    nodeids = Counter(run.data.tags["pytest.nodeid"] for run in tests)
    assert len(nodeids) == total
    assert set(nodeids.values()) == {1}

    modules = {run.info.run_id: run.info.run_name for run in tree.level("module")}
    for run in tests:
        module_name = run.data.tags["pytest.nodeid"].split("::")[0]
        assert modules[run.data.tags["mlflow.parentRunId"]] == module_name
        assert run.data.tags["mlflow.rootRunId"] == tree.session.info.run_id
        assert run.info.status in ("FINISHED", "FAILED")
        assert set(run.data.metrics) >= {"pytest/duration", "pytest/call_duration"}
        assert run.data.params.keys() == {"case"}
    failed = [run for run in tests if run.info.status == "FAILED"]
    assert [run.data.tags["pytest.nodeid"] for run in failed] == ["test_bulk_2.py::test_case[13]"]
    assert tree.artifacts(failed[0]) == ["failure.txt"]
    assert tree.session.data.metrics["pytest/tests"] == total


def _upload_command(journal: Path, status_path: Path) -> list[str]:
    # Its own process, as pytest starts it.
    return [
        sys.executable,
        "-m",
        "pytest_mlflow_tree.upload",
        str(journal),
        "--status",
        str(status_path),
    ]


def _status(journals: Path) -> Status:
    (path,) = journals.glob("*.status.json")
    status = Status.read(path)
    assert status is not None
    return status


def test_the_uploader_killed_while_it_writes_leaves_a_sound_database_and_replay_completes(
    pytester: pytest.Pytester, store: Store
) -> None:
    """A batch is one transaction: whatever the moment of the kill, the database is sound and
    a replay of the journal records every test once."""
    _suite(pytester, TESTS_PER_MODULE)
    result, journal = journal_only(pytester, store)
    result.assert_outcomes(passed=MODULES * TESTS_PER_MODULE - 1, failed=1)
    status_path = pytester.path / "status.json"
    errors = pytester.path / "uploader.err"
    with errors.open("wb") as stderr:
        uploader = subprocess.Popen(_upload_command(journal, status_path), stderr=stderr)
    try:
        deadline = time.monotonic() + UPLOAD_TIMEOUT
        status = None
        while time.monotonic() < deadline and uploader.poll() is None:
            status = Status.read(status_path)
            # Killed as soon as it has MLflow in hand: at its first batch, or just before.
            if status is not None and (status.ready_at or status.done or status.error):
                break
            time.sleep(0.005)
        assert status is not None, errors.read_text()
        assert status.ready_at, errors.read_text()
        os.kill(uploader.pid, signal.SIGKILL)
        uploader.wait(timeout=60)
    finally:
        if uploader.poll() is None:
            uploader.kill()
            uploader.wait()

    assert store.path is not None
    with sqlite3.connect(store.path, timeout=0) as connection:
        assert connection.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        # No lock left behind.
        connection.execute("BEGIN IMMEDIATE")
        connection.execute("ROLLBACK")
    code, _, err = replay(str(journal))
    assert code == 0, err
    nodeids = [
        f"test_bulk_{module}.py::test_case[{case}]"
        for module in range(MODULES)
        for case in range(TESTS_PER_MODULE)
    ]
    assert_recorded_once(store.tree().runs, nodeids)
