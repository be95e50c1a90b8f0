"""Attempts of tests that pytest-rerunfailures runs again: told apart by their reports."""

from __future__ import annotations

from typing import Literal

import pytest

from pytest_mlflow_tree.model.outcome import decide
from pytest_mlflow_tree.record import reruns


def report(
    when: Literal["setup", "call", "teardown"],
    outcome: str = "passed",
    longrepr: str | None = None,
    sections: tuple[tuple[str, str], ...] = (),
) -> pytest.TestReport:
    made = pytest.TestReport(
        "t.py::test_a", ("t.py", 0, "test_a"), {}, "passed", longrepr, when, sections
    )
    # rerunfailures relabels the failing report of an attempt that runs again.
    made.outcome = outcome  # type: ignore[assignment]
    return made


def test_an_attempt_with_a_rerun_report_runs_again() -> None:
    attempt = [report("setup"), report("call", "rerun", "assert 0"), report("teardown")]
    assert reruns.retried(attempt)
    assert [reruns.is_rerun(r) for r in attempt] == [False, True, False]


def test_the_last_attempt_decides_the_outcome() -> None:
    assert not reruns.retried([report("setup"), report("call"), report("teardown")])
    assert decide([report("setup"), report("call"), report("teardown")]).outcome == "passed"
    failed = [report("setup"), report("call", "failed"), report("teardown")]
    assert not reruns.retried(failed)
    assert decide(failed).outcome == "failed"


def test_an_attempt_is_described_by_what_failed_and_the_captured_output() -> None:
    attempt = [
        report("setup", "rerun", "fixture broke"),
        report("teardown", "passed", sections=(("Captured stdout teardown", "bye"),)),
    ]
    text = reruns.attempt_text("t.py::test_a", 2, attempt)
    assert text.splitlines()[0] == "t.py::test_a: attempt 2: setup failed"
    assert "----- traceback (setup) -----\nfixture broke" in text
    assert "----- Captured stdout teardown -----\nbye" in text
    assert reruns.attempt_artifact(2) == "attempt-2.txt"
