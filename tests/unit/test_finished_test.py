"""The test record, built from real pytest reports by a pure function."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from pytest_mlflow_tree.model.records import FAILURE_ARTIFACT
from pytest_mlflow_tree.record import iteminfo
from pytest_mlflow_tree.record.finished_test import OpenTest, Recording, finished_test

NODEID = "tests/test_a.py::test_one"
MODULE = "tests/test_a.py"


def report(
    when: str,
    outcome: str = "passed",
    longrepr: Any = None,
    start: float = 100.0,
    duration: float = 0.25,
    **extra: Any,
) -> pytest.TestReport:
    return pytest.TestReport(
        nodeid=NODEID,
        location=(MODULE, 4, "test_one"),
        keywords={},
        outcome=outcome,  # type: ignore[arg-type]
        longrepr=longrepr,
        when=when,  # type: ignore[arg-type]
        duration=duration,
        start=start,
        stop=start + duration,
        **extra,
    )


def phases(
    call: str = "passed", longrepr: Any = None, start: float = 100.0
) -> list[pytest.TestReport]:
    # Each report carries the captured output of the phases so far, as pytest's do.
    output = [("Captured stdout call", "hi")]
    return [
        report("setup", start=start),
        report("call", call, longrepr, start=start + 1, sections=output),
        report("teardown", start=start + 2, sections=output),
    ]


def test_a_passing_test_is_a_finished_run_in_its_module() -> None:
    finished = finished_test(NODEID, OpenTest(phases()), [], NODEID)

    record = finished.record
    assert record["kind"] == "run"
    assert (record["key"], record["parent"], record["name"]) == (NODEID, MODULE, "test_one")
    assert (record["start"], record["end"]) == (100_000, 102_250)
    assert record["status"] == "FINISHED"
    assert record["tags"] == {
        "pytest.nodeid": NODEID,
        "pytest.outcome": "passed",
        "pytest.file": MODULE,
        "mlflow.source.name": MODULE,
        "pytest.line": "5",
    }
    assert record["metrics"] == {
        "pytest/setup_duration": 0.25,
        "pytest/call_duration": 0.25,
        "pytest/teardown_duration": 0.25,
        "pytest/duration": 0.75,
    }
    assert record["artifacts"] == {}
    assert record["params"] == {}
    assert (finished.counts, finished.failures, finished.seconds) == ({"passed": 1}, [], 0.75)


def test_a_failed_call_is_a_failed_run_with_its_traceback_and_output() -> None:
    finished = finished_test(
        NODEID, OpenTest(phases("failed", "E  boom\nValueError: boom")), [], NODEID
    )

    assert finished.record["status"] == "FAILED"
    assert finished.record["tags"]["pytest.outcome"] == "failed"
    assert finished.failures == [(NODEID, "ValueError: boom")]
    assert finished.counts == {"failed": 1}
    text = finished.record["artifacts"][FAILURE_ARTIFACT]
    assert text.startswith(f"{NODEID}: call failed\n")
    assert "----- traceback (call) -----\nE  boom\nValueError: boom\n" in text
    assert "----- Captured stdout call -----\nhi\n" in text


def test_without_capture_the_failure_text_leaves_the_output_out() -> None:
    test = OpenTest(phases("failed", "ValueError: boom"))

    finished = finished_test(NODEID, test, [], NODEID, recording=Recording(capture=False))

    text = finished.record["artifacts"][FAILURE_ARTIFACT]
    assert "traceback (call)" in text
    assert "Captured stdout call" not in text


def test_a_test_that_passed_on_a_retry_is_flaky_and_keeps_its_failed_attempt() -> None:
    failed = phases("failed", "ConnectionError: busy", start=50.0)
    failed[1].outcome = "rerun"  # type: ignore[assignment]

    finished = finished_test(NODEID, OpenTest(phases()), [failed], NODEID)

    record = finished.record
    assert record["start"] == 50_000
    assert record["status"] == "FINISHED"
    assert record["tags"]["pytest.flaky"] == "true"
    assert record["metrics"]["pytest/attempts"] == 2.0
    attempt = record["artifacts"]["attempt-1.txt"]
    assert attempt.startswith(f"{NODEID}: attempt 1: call failed\n")
    assert "ConnectionError: busy" in attempt


def test_a_killed_test_is_a_killed_run() -> None:
    finished = finished_test(NODEID, OpenTest(phases()[:1]), [], NODEID, killed=True)

    assert finished.record["status"] == "KILLED"
    assert finished.record["tags"]["pytest.outcome"] == "killed"


def test_a_skipped_test_keeps_its_reason() -> None:
    skipped = report("setup", "skipped", (MODULE, 5, "Skipped: no database"))

    finished = finished_test(NODEID, OpenTest([skipped, report("teardown")]), [], NODEID)

    assert finished.record["tags"]["pytest.outcome"] == "skipped"
    assert finished.record["tags"]["pytest.skip_reason"] == "no database"
    assert finished.counts == {"skipped": 1}


def test_the_items_params_and_markers_describe_the_run() -> None:
    info: iteminfo.ItemInfo = {"params": {"n": "3"}, "markers": ["slow"]}

    finished = finished_test(NODEID, OpenTest(phases(), info), [], NODEID)

    assert finished.record["params"] == {"n": "3"}
    assert finished.record["tags"]["pytest.markers"] == "slow"


@pytest.mark.parametrize(
    ("nodeid", "name"),
    [
        ("tests/test_a.py::test_accuracy[knn-0.93]", "test_accuracy[knn-0.93]"),
        ("tests/test_a.py::TestModel::test_fit[3]", "TestModel::test_fit[3]"),
        ("tests/test_a.py::TestModel::TestFit::test_it", "TestModel::TestFit::test_it"),
        ("tests/test_a.py::test_id[a::b]", "test_id[a::b]"),
        ("README.txt", "README.txt"),
    ],
)
def test_a_run_is_named_as_pytest_prints_the_test_after_its_file(nodeid: str, name: str) -> None:
    finished = finished_test(nodeid, OpenTest(phases()), [], nodeid)

    assert finished.record["name"] == name


def test_a_run_per_worker_is_named_and_tagged_for_its_worker() -> None:
    worker = SimpleNamespace(workerinput={"workerid": "gw1"})
    reports = [report(when, node=worker) for when in ("setup", "call", "teardown")]

    finished = finished_test(NODEID, OpenTest(reports), [], f"{NODEID}@gw1")

    assert finished.record["key"] == f"{NODEID}@gw1"
    assert finished.record["name"] == "test_one [gw1]"
    assert finished.record["tags"]["pytest.worker"] == "gw1"


def test_a_failed_subtest_is_listed_though_the_test_passed() -> None:
    context = SimpleNamespace(msg="case 2", kwargs={"n": 2})
    subtest = report("call", "failed", "AssertionError: 2 is odd", context=context)

    finished = finished_test(NODEID, OpenTest(phases(), subtests=[subtest]), [], NODEID)

    assert finished.record["status"] == "FINISHED"
    assert finished.failures == [(f"{NODEID} [case 2] (n=2)", "AssertionError: 2 is odd")]
    assert finished.record["metrics"]["pytest/subtests_failed"] == 1.0
    assert "subtests.json" in finished.record["artifacts"]
    assert (
        "----- subtest [case 2] (n=2) failed -----"
        in finished.record["artifacts"][FAILURE_ARTIFACT]
    )
    assert finished.subtest_counts == {"failed": 1}


def test_times_a_report_lacks_are_now() -> None:
    reports = [report("setup", start=0.0, duration=0.0)]

    finished = finished_test(NODEID, OpenTest(reports), [], NODEID, killed=True, now=7.5)

    assert (finished.record["start"], finished.record["end"]) == (7500, 7500)
