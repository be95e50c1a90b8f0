"""Subtests: recorded as structured data on their test's run; a failing subtest fails it."""

from __future__ import annotations

import importlib.util
import json

import pytest
from conftest import Record

from pytest_mlflow_tree import compact, treeview
from pytest_mlflow_tree.readback import Test
from pytest_mlflow_tree.records import RunRecord

if pytest.version_tuple < (9,) and importlib.util.find_spec("pytest_subtests") is None:
    pytest.skip(
        "subtests are built into pytest 9; older pytest needs the pytest-subtests plugin",
        allow_module_level=True,
    )

SUITE = """
    import pytest

    def test_thresholds(subtests):
        for label, recall in [("benign", 0.95), ("malignant", 0.70), ("unknown", 0.91)]:
            with subtests.test("recall", label=label):
                assert recall > 0.9, f"recall of {label} too low"

    def test_all_good(subtests):
        for i in range(2):
            with subtests.test(i=i):
                pass

    def test_optional(subtests):
        with subtests.test("gpu"):
            pytest.skip("no GPU")
"""


@pytest.mark.parametrize(
    ("store", "xdist"),
    [("sqlite", False), ("server", False), ("sqlite", True)],
    indirect=["store"],
    ids=["sqlite", "server", "sqlite-xdist"],
)
def test_subtests_are_counted_and_listed_on_their_tests_run(
    pytester: pytest.Pytester, record: Record, xdist: bool
) -> None:
    pytester.makepyfile(test_model=SUITE)
    result, tree = record(*(["-n", "2"] if xdist else []))
    outcomes = result.parseoutcomes()
    assert len(tree.level("test")) == 3  # subtests are not runs of their own

    thresholds = tree.tests["test_model.py::test_thresholds"]
    assert thresholds.info.status == "FAILED"
    assert thresholds.data.tags["pytest.outcome"] == "failed"
    metrics = thresholds.data.metrics
    assert (metrics["subtests"], metrics["subtests_passed"], metrics["subtests_failed"]) == (
        3,
        2,
        1,
    )
    entries = json.loads(tree.artifact(thresholds, "subtests.json"))
    assert [(e["msg"], e["outcome"]) for e in entries] == [
        ("recall", "passed"),
        ("recall", "failed"),
        ("recall", "passed"),
    ]
    # pytest reprs the values (under xdist twice: the report is rebuilt on the controller).
    assert [e["kwargs"]["label"].strip("'\"") for e in entries] == [
        "benign",
        "malignant",
        "unknown",
    ]
    assert "recall of malignant too low" in entries[1]["message"]
    failure = tree.artifact(thresholds, "failure.txt")
    heading = next(line for line in failure.splitlines() if "----- subtest" in line)
    assert heading.startswith("----- subtest [recall] (label=")
    assert "malignant" in heading
    assert "recall of malignant too low" in failure

    good = tree.tests["test_model.py::test_all_good"]
    assert good.info.status == "FINISHED"
    assert good.data.metrics["subtests_passed"] == 2
    assert "failure.txt" not in tree.artifacts(good)

    optional = tree.tests["test_model.py::test_optional"]
    assert optional.data.metrics["subtests_skipped"] == 1

    # The session counts as pytest's summary line does: a failed subtest is a failure too.
    session = tree.session
    assert outcomes["failed"] == 2
    for name in ("passed", "failed", "skipped"):
        assert session.data.metrics[name] == outcomes.get(name, 0), name
    assert session.info.status == "FAILED"


def _passing_record(metrics: dict[str, float]) -> RunRecord:
    return {
        "kind": "run",
        "level": "test",
        "key": "test_labels.py::TestLabels::test_recall",
        "parent": "test_labels.py",
        "name": "test_recall",
        "start": 0,
        "end": 1,
        "status": "FINISHED",
        "tags": {"pytest.outcome": "passed"},
        "params": {},
        "metrics": {"duration": 0.001, **metrics},
        "artifacts": {},
    }


def test_compact_mode_keeps_a_run_for_a_passed_test_with_failed_subtests() -> None:
    assert compact.keeps_run(_passing_record({"subtests": 3, "subtests_failed": 1}), 1.0)
    assert not compact.keeps_run(_passing_record({"subtests": 3, "subtests_failed": 0}), 1.0)


def _test(outcome: str) -> Test:
    return Test(nodeid="t.py::t", name="t", module="t.py", outcome=outcome, status="", duration=0)


def test_show_counts_from_the_recorded_summary_or_else_from_the_tests() -> None:
    tests = [_test("passed"), _test("passed"), _test("killed")]
    recorded = {"tests": 3.0, "passed": 2.0, "failed": 1.0, "errors": 0.0, "duration": 1.0}

    counts = treeview.summary_counts(recorded, tests)
    assert treeview.counts_text(counts) == "1 failed, 2 passed, 1 killed"
    # A session cut off before it was closed has no counts of its own.
    assert treeview.counts_text(treeview.summary_counts({}, tests)) == "2 passed, 1 killed"
