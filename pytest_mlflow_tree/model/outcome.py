"""One outcome per test from its setup, call and teardown reports, as pytest itself counts them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pytest_mlflow_tree.model.names import FAILED, FINISHED

if TYPE_CHECKING:
    # Annotations only: the uploader reads these outcomes and does not import pytest.
    import pytest

OUTCOMES = ("passed", "failed", "error", "skipped", "xfailed", "xpassed")
# Outcomes that make a run FAILED; everything else FINISHED.
BAD_OUTCOMES = frozenset({"failed", "error"})


@dataclass(frozen=True)
class Outcome:
    outcome: str
    # pytest's own terminal counts: a failing call plus a failing teardown is one failed and
    # one error, so counts are per report, not per test.
    counts: dict[str, int]
    skip_reason: str | None = None
    xfail_reason: str | None = None

    @property
    def status(self) -> str:
        return FAILED if self.outcome in BAD_OUTCOMES else FINISHED


def report_category(report: pytest.TestReport) -> str | None:
    """The terminal's category for one report (``None`` for a passing setup/teardown)."""
    if hasattr(report, "wasxfail"):
        if report.skipped:
            return "xfailed"
        if report.passed:
            return "xpassed"
    if report.failed:
        # A setup or teardown failure is an error; a call failure, or the report xdist makes for
        # a worker that crashed mid-test (phase "???"), is a failure, as the terminal counts it.
        return "error" if report.when in ("setup", "teardown") else "failed"
    if report.skipped:
        return "skipped"
    if report.when == "call":
        return "passed"
    return None


def _skip_reason(report: pytest.TestReport) -> str | None:
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        reason = str(longrepr[2])
        return reason.removeprefix("Skipped: ")
    return None


def _xfail_reason(report: pytest.TestReport) -> str:
    return str(getattr(report, "wasxfail", "")).removeprefix("reason: ")


def decide(reports: Sequence[pytest.TestReport]) -> Outcome:
    counts: dict[str, int] = {}
    outcome: str | None = None
    skip_reason = xfail_reason = None
    for report in reports:
        category = report_category(report)
        if category is None:
            continue
        counts[category] = counts.get(category, 0) + 1
        # The first notable category wins: a setup error or a call failure says more than a
        # teardown error that follows it.
        if outcome is None or (outcome == "passed" and category == "error"):
            outcome = category
        if category == "skipped":
            skip_reason = _skip_reason(report)
        elif category in ("xfailed", "xpassed"):
            xfail_reason = _xfail_reason(report)
    return Outcome(
        outcome=outcome or "passed",
        counts=counts,
        skip_reason=skip_reason,
        xfail_reason=xfail_reason,
    )
