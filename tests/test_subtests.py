"""Subtests: recorded as structured data on their test's run, counted as pytest counts them."""

from __future__ import annotations

import importlib.util
import json

import pytest
from conftest import Record, Store
from replaying import command

from pytest_mlflow_tree.model import compact
from pytest_mlflow_tree.model.records import RunRecord
from pytest_mlflow_tree.read import terminal_tree
from pytest_mlflow_tree.read.readback import Test

needs_subtests = pytest.mark.skipif(
    pytest.version_tuple < (9,) and importlib.util.find_spec("pytest_subtests") is None,
    reason="subtests are built into pytest 9; older pytest needs the pytest-subtests plugin",
)
# The outcomes of pytest's summary line, in its order, and the metrics that count them.
SUMMARY = ("failed", "passed", "skipped", "xfailed", "xpassed")


def verdicts(result: pytest.RunResult) -> dict[str, str]:
    """Each test's outcome as pytest's short test summary (``-rA``) names it."""
    found: dict[str, str] = {}
    for line in result.outlines:
        word, _, rest = line.partition(" ")
        if word in ("PASSED", "FAILED", "ERROR"):
            found[rest.split(" - ")[0]] = word.lower()
    return found


def summary_text(outcomes: dict[str, int]) -> str:
    """pytest's summary line without the subtest counts it may add ("4 subtests passed")."""
    return ", ".join(f"{outcomes[name]} {name}" for name in SUMMARY if outcomes.get(name))


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
@needs_subtests
def test_subtests_are_counted_and_listed_on_their_tests_run(
    pytester: pytest.Pytester, record: Record, xdist: bool
) -> None:
    pytester.makepyfile(test_model=SUITE)
    result, tree = record("-rA", *(["-n", "2"] if xdist else []))
    outcomes = result.parseoutcomes()
    assert len(tree.level("test")) == 3  # subtests are not runs of their own

    thresholds = tree.tests["test_model.py::test_thresholds"]
    # pytest 9 fails the test itself, pytest-subtests does not: as pytest says.
    verdict = verdicts(result)["test_model.py::test_thresholds"]
    assert thresholds.data.tags["pytest.outcome"] == verdict
    assert thresholds.info.status == ("FAILED" if verdict == "failed" else "FINISHED")
    metrics = thresholds.data.metrics
    assert (
        metrics["pytest/subtests"],
        metrics["pytest/subtests_passed"],
        metrics["pytest/subtests_failed"],
    ) == (
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
    assert good.data.metrics["pytest/subtests_passed"] == 2
    assert "failure.txt" not in tree.artifacts(good)

    optional = tree.tests["test_model.py::test_optional"]
    assert optional.data.metrics["pytest/subtests_skipped"] == 1

    # The session counts as pytest's summary line does: a failed subtest is a failure too.
    session = tree.session
    assert outcomes["failed"] == (2 if verdict == "failed" else 1)
    for name in ("passed", "failed", "skipped"):
        assert session.data.metrics[f"pytest/{name}"] == outcomes.get(name, 0), name
    assert session.info.status == "FAILED"


UNITTEST_SUITE = """
    import unittest

    class TestLabels(unittest.TestCase):
        def test_recall(self):
            for label, recall in [("benign", 0.95), ("malignant", 0.70), ("unknown", 0.91)]:
                with self.subTest(label=label):
                    self.assertGreater(recall, 0.9, f"recall of {label} too low")

        def test_precision(self):
            for label in ("benign", "malignant"):
                with self.subTest(label=label):
                    pass
"""

# unittest subTests and fixture subtests in one module: pytest 9 fails the test function, not
# the TestCase; pytest-subtests fails neither.
MIXED_SUITE = (
    UNITTEST_SUITE
    + """
    import pytest

    def test_thresholds(subtests):
        for label, recall in [("benign", 0.95), ("malignant", 0.70)]:
            with subtests.test("recall", label=label):
                assert recall > 0.9, f"recall of {label} too low"

    def test_optional(subtests):
        with subtests.test("gpu"):
            pytest.skip("no GPU")

    def test_plain():
        pass
"""
)


@pytest.mark.parametrize(
    ("suite", "args"),
    [
        # Without subtest support (pytest < 9) a failing subTest fails its test: valid too.
        pytest.param(UNITTEST_SUITE, (), id="unittest"),
        pytest.param(MIXED_SUITE, (), id="mixed", marks=needs_subtests),
        # Verbose, pytest 9 counts skipped subtests as well.
        pytest.param(MIXED_SUITE, ("-v",), id="mixed-verbose", marks=needs_subtests),
        pytest.param(MIXED_SUITE, ("-n", "2"), id="mixed-xdist", marks=needs_subtests),
    ],
)
def test_counts_and_statuses_agree_with_pytests_summary(
    pytester: pytest.Pytester, record: Record, store: Store, suite: str, args: tuple[str, ...]
) -> None:
    pytester.makepyfile(test_labels=suite)
    result, tree = record("-rA", *args)
    outcomes = result.parseoutcomes()
    said = verdicts(result)
    assert outcomes["failed"] >= 1

    # Each test's run has the outcome pytest gave the test, whatever its subtests did.
    assert sorted(tree.tests) == sorted(said)
    for nodeid, verdict in said.items():
        run = tree.tests[nodeid]
        assert run.data.tags["pytest.outcome"] == verdict, nodeid
        assert run.info.status == ("FAILED" if verdict == "failed" else "FINISHED"), nodeid
    recall = tree.tests["test_labels.py::TestLabels::test_recall"]
    if "pytest/subtests" in recall.data.metrics:
        # Its failed subtest kept, though pytest 9 counts the test itself passed.
        assert recall.data.metrics["pytest/subtests_failed"] == 1
        assert "recall of malignant too low" in tree.artifact(recall, "failure.txt")

    # The session and its one module count as the summary line does, as their descriptions say.
    for run in (tree.session, tree.modules["test_labels.py"]):
        assert run.info.status == "FAILED"
        for name in SUMMARY:
            assert run.data.metrics[f"pytest/{name}"] == outcomes.get(name, 0), name
        assert run.data.metrics["pytest/tests"] == len(said)
        note = run.data.tags["mlflow.note.content"]
        assert summary_text(outcomes) + " in " in note.replace("**", "")
        # One line per failure, as pytest's short summary has one per failed (sub)test.
        listed = [line for line in note.splitlines() if line.startswith(("- `", "- [`"))]
        assert len(listed) == outcomes["failed"]

    code, out, err = command("show", "--last", "--tracking-uri", store.uri)
    assert code == 0, err
    lines = out.splitlines()
    assert f"{len(said)} tests: {summary_text(outcomes)}  in " in lines[0]
    module_line = f"FAILED  test_labels.py  {summary_text(outcomes)}  "
    assert any(line.startswith(module_line) for line in lines), out
    if "pytest/subtests" in recall.data.metrics:
        # Listed with the failing tests, passed or not.
        verdict = said["test_labels.py::TestLabels::test_recall"]
        shown = [verdict.upper() if verdict == "failed" else verdict, "TestLabels::test_recall"]
        assert any(
            line.split()[:2] == shown and line.endswith("  1 failed subtest") for line in lines
        ), out


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
        "metrics": {"pytest/duration": 0.001, **metrics},
        "artifacts": {},
    }


def test_compact_mode_keeps_a_run_for_a_passed_test_with_failed_subtests() -> None:
    assert compact.keeps_run(
        _passing_record({"pytest/subtests": 3, "pytest/subtests_failed": 1}), 1.0
    )
    assert not compact.keeps_run(
        _passing_record({"pytest/subtests": 3, "pytest/subtests_failed": 0}), 1.0
    )


def _test(outcome: str) -> Test:
    return Test(nodeid="t.py::t", name="t", module="t.py", outcome=outcome, status="", duration=0)


def test_show_counts_from_the_recorded_summary_or_else_from_the_tests() -> None:
    tests = [_test("passed"), _test("passed"), _test("killed")]
    recorded = {
        "pytest/tests": 3.0,
        "pytest/passed": 2.0,
        "pytest/failed": 1.0,
        "pytest/errors": 0.0,
        "pytest/duration": 1.0,
    }

    counts = terminal_tree.summary_counts(recorded, tests)
    assert terminal_tree.counts_text(counts) == "1 failed, 2 passed, 1 killed"
    # A session cut off before it was closed has no counts of its own.
    assert (
        terminal_tree.counts_text(terminal_tree.summary_counts({}, tests)) == "2 passed, 1 killed"
    )


@needs_subtests
def test_subtests_json_holds_no_memory_addresses(pytester: pytest.Pytester, record: Record) -> None:
    pytester.makepyfile(
        test_iterators="""
            def test_batches(subtests):
                with subtests.test("first batch", batches=iter(range(3)), size=2):
                    pass
        """
    )
    result, tree = record()
    result.assert_outcomes(passed=1)
    run = tree.tests["test_iterators.py::test_batches"]
    entries = json.loads(tree.artifact(run, "subtests.json"))
    assert [(e["msg"], e["kwargs"]) for e in entries] == [
        ("first batch", {"batches": "<range_iterator object>", "size": "2"})
    ]
