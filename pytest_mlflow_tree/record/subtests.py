"""Subtests (pytest 9's ``subtests`` fixture, or the pytest-subtests plugin before it).

Each ``with subtests.test(msg, **kwargs):`` block, and each ``self.subTest(...)`` of a unittest
TestCase under pytest 9, is reported as an extra call-phase report carrying a ``context`` (msg,
kwargs). We keep them as structured data on their test's run rather than as runs of their own:
counts as metrics and every subtest in ``subtests.json``.

Whether a failed subtest fails its test, and which subtests pytest's summary line counts, differs
between pytest 9 (a test function fails, a TestCase does not; skipped subtests count only when
verbose) and pytest-subtests (no test fails; skipped subtests count). pytest decides in its
``pytest_report_teststatus`` hook, so we ask that hook, as its terminal does.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

import pytest

from pytest_mlflow_tree.model import outcome
from pytest_mlflow_tree.model.names import (
    SUBTESTS,
    SUBTESTS_FAILED,
    SUBTESTS_PASSED,
    SUBTESTS_SKIPPED,
)
from pytest_mlflow_tree.model.values import describe
from pytest_mlflow_tree.record.failures import crash_message

ARTIFACT = "subtests.json"
# The outcomes of subtests counted, and their metrics.
OUTCOME_METRICS = {
    "passed": SUBTESTS_PASSED,
    "failed": SUBTESTS_FAILED,
    "skipped": SUBTESTS_SKIPPED,
}

# The category pytest's summary line counts a report under: an outcome, or "" when it does not
# count the report (or names it in a way of its own, as "subtests passed").
Category = Callable[[pytest.TestReport], str]


def plain_category(report: pytest.TestReport) -> str:
    """The category from the report's outcome alone, without asking pytest's hooks."""
    return outcome.report_category(report) or ""


def terminal_category(config: pytest.Config) -> Category:
    """The category pytest's terminal counts a report under, from the hook it asks."""

    def category(report: pytest.TestReport) -> str:
        status = config.hook.pytest_report_teststatus(report=report, config=config)
        # Without the terminal plugin no hook may answer for a call report.
        return str(status[0]) if status else plain_category(report)

    return category


def is_subtest(report: pytest.TestReport) -> bool:
    context = getattr(report, "context", None)
    return context is not None and hasattr(context, "kwargs") and hasattr(context, "msg")


def _outcome(report: pytest.TestReport) -> str:
    if hasattr(report, "wasxfail"):
        return "xfailed" if report.skipped else "xpassed"
    return str(report.outcome)


def description(report: pytest.TestReport) -> str:
    context: Any = getattr(report, "context", None)
    parts = []
    if getattr(context, "msg", None) is not None:
        parts.append(f"[{context.msg}]")
    kwargs = getattr(context, "kwargs", None) or {}
    if kwargs:
        parts.append("(" + ", ".join(f"{k}={v}" for k, v in kwargs.items()) + ")")
    return " ".join(parts) or "(<subtest>)"


def failed(reports: Sequence[pytest.TestReport]) -> int:
    return sum(1 for r in reports if r.failed)


def fails_test(reports: Sequence[pytest.TestReport], category: Category) -> bool:
    """Whether pytest counts the test itself as failed, its call having passed: pytest 9 does
    so for a test function with failed subtests (its hook then marks the call report failed)."""
    return any(r.when == "call" and category(r) == "failed" for r in reports)


def summary_counts(reports: Sequence[pytest.TestReport], category: Category) -> dict[str, int]:
    """What pytest's summary line adds for these subtests, outcome by outcome."""
    counts: dict[str, int] = {}
    for report in reports:
        name = category(report)
        if name in outcome.OUTCOMES:
            counts[name] = counts.get(name, 0) + 1
    return counts


def metrics(reports: Sequence[pytest.TestReport]) -> dict[str, float]:
    values = {SUBTESTS: float(len(reports))}
    for name, key in OUTCOME_METRICS.items():
        values[key] = float(sum(1 for r in reports if r.outcome == name))
    return values


def failures(reports: Sequence[pytest.TestReport]) -> list[tuple[str, str]]:
    """Each failed subtest as pytest's short summary names it, and its message."""
    return [(description(r), crash_message(r)) for r in reports if r.failed]


def artifact(reports: Sequence[pytest.TestReport]) -> str:
    """``subtests.json``: each subtest's msg, kwargs, outcome and duration.

    Values go through ``describe``: pytest 9 hands over the kwargs as reprs, and a repr may
    carry a memory address, which would make the same subtest read differently in every run.
    """
    entries = []
    for report in reports:
        context: Any = getattr(report, "context", None)
        msg = getattr(context, "msg", None)
        kwargs = getattr(context, "kwargs", None) or {}
        entry: dict[str, Any] = {
            "msg": None if msg is None else describe(msg),
            "kwargs": {str(k): describe(v) for k, v in kwargs.items()},
            "outcome": _outcome(report),
            "duration": float(report.duration),
        }
        if report.failed:
            entry["message"] = crash_message(report)
        entries.append(entry)
    return json.dumps(entries, indent=1, ensure_ascii=False)


def failure_text(reports: Sequence[pytest.TestReport]) -> str:
    parts: list[str] = []
    for report in reports:
        if report.failed:
            parts += [f"----- subtest {description(report)} failed -----", report.longreprtext, ""]
    return "\n".join(parts)
