"""Tests retried by pytest-rerunfailures: one run per test, every attempt kept.

rerunfailures reports each failed attempt with the outcome ``rerun`` (setup, call and teardown
reports as usual, the failing one relabelled) and then runs the test again; only the last
attempt's reports carry the final outcome.
"""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from pytest_mlflow_tree.record import failures

RERUN = "rerun"


def is_rerun(report: pytest.TestReport) -> bool:
    return str(report.outcome) == RERUN


def retried(reports: Sequence[pytest.TestReport]) -> bool:
    """Whether this attempt failed and the test runs again."""
    return any(is_rerun(r) for r in reports)


def attempt_artifact(number: int) -> str:
    return f"attempt-{number}.txt"


def attempt_text(nodeid: str, number: int, reports: Sequence[pytest.TestReport]) -> str:
    failed = [r for r in reports if is_rerun(r) or r.failed]
    # Each report carries the captured sections of all phases so far: the last has them all.
    sections = reports[-1].sections if reports else ()
    return failures.phases_text(f"{nodeid}: attempt {number}: ", failed, sections)
