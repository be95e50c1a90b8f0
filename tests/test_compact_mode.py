"""Compact mode: every test in a table per module, runs only for tests worth a look."""

from __future__ import annotations

import json

import pytest
from conftest import Record, Store

from pytest_mlflow_tree.read import html_report, readback, terminal_tree

MODULES = 4
PER_MODULE = 75

PASSING = """
import pytest

@pytest.mark.parametrize("case", range({count}))
def test_case(case):
    assert case >= 0
"""

SPECIAL = """
import time

import pytest

def test_broken():
    assert 1 == 2, "one is not two"

def test_slow():
    time.sleep(2.5)

@pytest.mark.xfail(reason="known bug")
def test_known_bug():
    assert False

@pytest.mark.skip(reason="no gpu")
def test_gpu():
    pass
"""


@pytest.fixture
def large_suite(pytester: pytest.Pytester) -> pytest.Pytester:
    files = {f"test_part{n}": PASSING.format(count=PER_MODULE) for n in range(MODULES)}
    pytester.makepyfile(**files, test_special=SPECIAL)
    return pytester


def test_compact_mode_keeps_every_test_in_tables_and_runs_only_for_some(
    large_suite: pytest.Pytester, record: Record, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The slow bound well above what a trivial test takes on a loaded machine (seen: 0.8 s in
    # a test process whose heap earlier tests had grown), and in a fresh process.
    result, tree = record(
        "--mlflow-tree-mode=compact", "--mlflow-tree-compact-slow=2", subprocess=True
    )
    result.assert_outcomes(passed=MODULES * PER_MODULE + 1, failed=1, skipped=1, xfailed=1)

    assert tree.session.data.tags["pytest.mode"] == "compact"
    # Runs only for the failure and the slow test; the modules and session as always.
    assert sorted(tree.tests) == ["test_special.py::test_broken", "test_special.py::test_slow"]
    assert len(tree.modules) == MODULES + 1
    for name, module in tree.modules.items():
        assert "tests.json" in tree.artifacts(module), name
        table = json.loads(tree.artifact(module, "tests.json"))
        rows = [dict(zip(table["columns"], row, strict=True)) for row in table["data"]]
        expected = 4 if name == "test_special.py" else PER_MODULE
        assert len(rows) == expected, name
        assert json.loads(module.data.tags["mlflow.loggedArtifacts"]) == [
            {"path": "tests.json", "type": "table"}
        ]
        if name == "test_part1.py":
            assert rows[3]["nodeid"] == "test_part1.py::test_case[3]"
            assert rows[3]["params"] == {"case": "3"}
            assert rows[3]["outcome"] == "passed"
            assert rows[3]["has_run"] is False
            assert rows[3]["duration"] >= 0
    # Counts on the module runs still cover every test.
    assert tree.modules["test_part0.py"].data.metrics["passed"] == PER_MODULE
    assert tree.session.data.metrics["tests"] == MODULES * PER_MODULE + 4

    # MLflow's own table reader understands the artifact (it searches with the global URI).
    client = store.client()
    if hasattr(client, "load_table"):
        monkeypatch.setenv("MLFLOW_TRACKING_URI", store.uri)
        frame = client.load_table(
            tree.session.info.experiment_id,
            "tests.json",
            run_ids=[tree.modules["test_special.py"].info.run_id],
        )
        assert sorted(frame["outcome"]) == ["failed", "passed", "skipped", "xfailed"]

    # Read back, compact sessions look like any other: every test, runs where there are some.
    session = readback.Reader(store.uri).session(tree.session.info.run_id)
    assert session.compact
    tests = {t.nodeid: t for t in session.tests}
    assert len(tests) == MODULES * PER_MODULE + 4
    assert tests["test_part2.py::test_case[7]"].run_id is None
    assert tests["test_part2.py::test_case[7]"].params == {"case": "7"}
    assert tests["test_special.py::test_known_bug"].outcome == "xfailed"
    broken = tests["test_special.py::test_broken"]
    assert broken.run_id == tree.tests["test_special.py::test_broken"].info.run_id
    assert "one is not two" in (broken.failure() or "")
    assert tests["test_special.py::test_slow"].duration >= 2  # type: ignore[operator]

    shown = "\n".join(terminal_tree.render(session))
    assert "compact mode" in shown
    assert f"ok      test_part0.py  {PER_MODULE} passed" in shown
    assert "FAILED  test_special.py  1 failed, 1 passed, 1 skipped, 1 xfailed" in shown
    # The report, built by the uploader from what it sent, shows what a read-back shows.
    assert tree.artifact(tree.session, "report.html") == html_report.render(session)


def test_an_unknown_mode_is_a_usage_error_naming_its_source(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_one="def test_one():\n    pass\n")
    pytester.makeini("[pytest]\nmlflow_tree_mode = fast\n")

    result = pytester.runpytest("--mlflow-tree", "--mlflow-tree-journal-only")

    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["*mlflow_tree_mode (ini): mode 'fast' is not one of tree, compact*"]
    )
