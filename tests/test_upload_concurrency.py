"""Concurrent uploads keep the tree whole: every record once, parents before children."""

from __future__ import annotations

import json
import sqlite3
from collections import Counter

import pytest
from conftest import Record, Store

MODULES = 4
TESTS_PER_MODULE = 80


def _suite(pytester: pytest.Pytester) -> None:
    for module in range(MODULES):
        pytester.makepyfile(
            **{
                f"test_bulk_{module}": f"""
                import pytest

                @pytest.mark.parametrize("case", range({TESTS_PER_MODULE}))
                def test_case(case):
                    assert case != 13 or {module} != 2, "unlucky"
                """
            }
        )


def test_many_tests_on_sqlite_are_all_recorded_once_under_their_module(
    pytester: pytest.Pytester, record: Record, store: Store
) -> None:
    _suite(pytester)
    journals = pytester.path / "journals"
    result, tree = record("--mlflow-tree-keep-journal", f"--mlflow-tree-journal-dir={journals}")
    (status_file,) = journals.glob("*.status.json")
    status = json.loads(status_file.read_text())
    assert status["done"] is True
    assert status["applied"] == 1 + 2 * (1 + MODULES) + MODULES * TESTS_PER_MODULE
    total = MODULES * TESTS_PER_MODULE
    result.assert_outcomes(passed=total - 1, failed=1)
    result.stdout.no_fnmatch_line("*WARNING*")

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
        assert set(run.data.metrics) >= {"duration", "call_duration"}
        assert run.data.params.keys() == {"case"}
    failed = [run for run in tests if run.info.status == "FAILED"]
    assert [run.data.tags["pytest.nodeid"] for run in failed] == ["test_bulk_2.py::test_case[13]"]
    assert tree.artifacts(failed[0]) == ["failure.txt"]
    assert tree.session.data.metrics["tests"] == total


def test_the_sqlite_database_is_left_sound_and_unlocked(
    pytester: pytest.Pytester, record: Record, store: Store
) -> None:
    _suite(pytester)
    record()
    with sqlite3.connect(store.path, timeout=0) as connection:
        assert connection.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert connection.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        # timeout=0: fails at once if any writer still held the database.
        connection.execute("BEGIN IMMEDIATE")
        connection.execute("ROLLBACK")
        statuses = dict(connection.execute("SELECT status, count(*) FROM runs GROUP BY status"))
    assert "RUNNING" not in statuses
