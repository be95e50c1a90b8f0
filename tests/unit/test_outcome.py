"""One outcome per test from real ``pytest.TestReport`` objects, as pytest's terminal counts."""

from __future__ import annotations

from typing import Any, Literal

import pytest

from pytest_mlflow_tree.model.outcome import decide, report_category

Phase = Literal["setup", "call", "teardown"]
Result = Literal["passed", "failed", "skipped"]


def report(when: str, outcome: Result = "passed", **extra: Any) -> pytest.TestReport:
    """A report as pytest makes it; ``extra`` sets attributes such as ``wasxfail``."""
    made = pytest.TestReport(
        nodeid="tests/test_x.py::test_x",
        location=("tests/test_x.py", 0, "test_x"),
        keywords={},
        outcome=outcome,
        longrepr=extra.pop("longrepr", None),
        when=when,  # type: ignore[arg-type]
    )
    for name, value in extra.items():
        setattr(made, name, value)
    return made


def phases(
    setup: Result = "passed", call: Result | None = "passed", teardown: Result = "passed"
) -> list[pytest.TestReport]:
    """Setup, call (None: not run) and teardown reports."""
    reports = [report("setup", setup)]
    if call is not None:
        reports.append(report("call", call))
    reports.append(report("teardown", teardown))
    return reports


def skip(when: Phase, reason: str) -> pytest.TestReport:
    return report(when, "skipped", longrepr=("tests/test_x.py", 3, f"Skipped: {reason}"))


def test_a_passing_test() -> None:
    decided = decide(phases())
    assert (decided.outcome, decided.counts, decided.status) == (
        "passed",
        {"passed": 1},
        "FINISHED",
    )


def test_a_failing_call() -> None:
    decided = decide(phases(call="failed"))
    assert (decided.outcome, decided.counts, decided.status) == ("failed", {"failed": 1}, "FAILED")


def test_a_setup_error_and_a_teardown_error_are_one_error_test_counted_twice() -> None:
    decided = decide(phases(setup="failed", call=None, teardown="failed"))
    assert (decided.outcome, decided.counts, decided.status) == ("error", {"error": 2}, "FAILED")


def test_a_failing_call_then_a_teardown_error_is_a_failure_and_an_error() -> None:
    decided = decide(phases(call="failed", teardown="failed"))
    assert decided.outcome == "failed"
    assert decided.counts == {"failed": 1, "error": 1}


def test_a_passing_call_then_a_teardown_error_is_an_error() -> None:
    decided = decide(phases(teardown="failed"))
    assert decided.outcome == "error"
    assert decided.counts == {"passed": 1, "error": 1}
    assert decided.status == "FAILED"


def test_a_skip_then_a_teardown_error_stays_skipped_and_counts_the_error() -> None:
    decided = decide([skip("setup", "no db"), report("teardown", "failed")])
    assert decided.outcome == "skipped"
    assert decided.counts == {"skipped": 1, "error": 1}


def test_a_skip_in_setup_keeps_its_reason() -> None:
    decided = decide([skip("setup", "no database"), report("teardown")])
    assert (decided.outcome, decided.skip_reason, decided.status) == (
        "skipped",
        "no database",
        "FINISHED",
    )
    assert decided.counts == {"skipped": 1}


def test_a_skip_during_the_call_keeps_its_reason() -> None:
    decided = decide([report("setup"), skip("call", "later"), report("teardown")])
    assert (decided.outcome, decided.skip_reason) == ("skipped", "later")


def test_a_skip_reported_without_a_location_has_no_reason() -> None:
    decided = decide([report("setup", "skipped", longrepr="skipped somehow")])
    assert (decided.outcome, decided.skip_reason) == ("skipped", None)


def test_an_xfailed_test_keeps_its_marker_reason() -> None:
    xfailed = report("call", "skipped", wasxfail="known bug")
    decided = decide([report("setup"), xfailed, report("teardown")])
    assert (decided.outcome, decided.xfail_reason, decided.counts) == (
        "xfailed",
        "known bug",
        {"xfailed": 1},
    )
    assert decided.status == "FINISHED"


def test_an_imperative_xfail_reason_loses_pytests_prefix() -> None:
    xfailed = report("setup", "skipped", wasxfail="reason: not ready")
    assert decide([xfailed, report("teardown")]).xfail_reason == "not ready"


def test_a_non_strict_xpass() -> None:
    xpassed = report("call", "passed", wasxfail="known bug")
    decided = decide([report("setup"), xpassed, report("teardown")])
    assert (decided.outcome, decided.xfail_reason, decided.status) == (
        "xpassed",
        "known bug",
        "FINISHED",
    )


def test_a_strict_xpass_is_a_failure() -> None:
    # pytest reports a strict xpass as a failed call without ``wasxfail``.
    strict = report("call", "failed", longrepr="[XPASS(strict)] known bug")
    decided = decide([report("setup"), strict, report("teardown")])
    assert (decided.outcome, decided.counts, decided.status) == ("failed", {"failed": 1}, "FAILED")
    assert decided.xfail_reason is None


def test_an_xfail_whose_call_failed_otherwise_is_a_failure() -> None:
    # ``raises=`` not matched: a plain failure, no ``wasxfail``.
    decided = decide([report("setup"), report("call", "failed"), report("teardown")])
    assert decided.outcome == "failed"


def test_the_report_of_a_crashed_xdist_worker_is_a_failure() -> None:
    assert report_category(report("???", "failed")) == "failed"
    assert decide([report("???", "failed")]).outcome == "failed"


def test_no_reports_is_a_pass_with_no_counts() -> None:
    decided = decide([])
    assert (decided.outcome, decided.counts) == ("passed", {})


@pytest.mark.parametrize(
    ("when", "result", "extra", "category"),
    [
        ("setup", "passed", {}, None),
        ("teardown", "passed", {}, None),
        ("call", "passed", {}, "passed"),
        ("call", "failed", {}, "failed"),
        ("setup", "failed", {}, "error"),
        ("teardown", "failed", {}, "error"),
        ("setup", "skipped", {}, "skipped"),
        ("call", "skipped", {}, "skipped"),
        ("call", "skipped", {"wasxfail": ""}, "xfailed"),
        ("call", "passed", {"wasxfail": ""}, "xpassed"),
        ("call", "failed", {"wasxfail": ""}, "failed"),
    ],
)
def test_report_categories(
    when: str, result: Result, extra: dict[str, Any], category: str | None
) -> None:
    assert report_category(report(when, result, **extra)) == category
