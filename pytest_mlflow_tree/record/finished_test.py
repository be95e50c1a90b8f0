"""A finished test's run record, built from its reports alone.

The recorder keeps the state (open tests, modules, tallies); this turns what it collected for
one test (its reports, failed attempts and subtests) into the journal's record and what the
test adds to its module's and session's counts.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from pytest_mlflow_tree.model import outcome
from pytest_mlflow_tree.model.names import (
    ATTEMPTS,
    CALL_DURATION,
    COLLECTION_INDEX,
    DURATION,
    FILE,
    FLAKY,
    KILLED,
    LINE,
    MARKERS,
    NODEID,
    OUTCOME,
    SETUP_DURATION,
    SKIP_REASON,
    SOURCE_NAME,
    TEARDOWN_DURATION,
    TEST_LEVEL,
    WORKER,
    XFAIL_REASON,
)
from pytest_mlflow_tree.model.records import FAILURE_ARTIFACT, RunRecord, module_of, run_name_of
from pytest_mlflow_tree.record import iteminfo, logged, reruns, subtests
from pytest_mlflow_tree.record.failures import crash_message, phases_text

# The phases of a test and the metrics of their durations; xdist reports a test whose worker
# crashed with the phase "???".
PHASE_DURATIONS = {"setup": SETUP_DURATION, "call": CALL_DURATION, "teardown": TEARDOWN_DURATION}
PHASES = tuple(PHASE_DURATIONS)

Attempt = list[pytest.TestReport]


def ms(seconds: float) -> int:
    return int(seconds * 1000)


def worker_of(report: pytest.TestReport | pytest.CollectReport) -> str | None:
    """The xdist worker that ran the test, or None when it ran in this process."""
    node = getattr(report, "node", None)
    workerinput = getattr(node, "workerinput", None)
    return workerinput.get("workerid") if isinstance(workerinput, dict) else None


@dataclass
class OpenTest:
    """What has been reported of a test so far (its current attempt)."""

    reports: list[pytest.TestReport] = field(default_factory=list)
    info: iteminfo.ItemInfo | None = None
    subtests: list[pytest.TestReport] = field(default_factory=list)


@dataclass(frozen=True)
class Recording:
    """How the session records tests: the same for every test."""

    capture: bool = True
    category: subtests.Category = subtests.plain_category


@dataclass(frozen=True)
class FinishedTest:
    """A test's run record, and what it adds to its module's and the session's tallies."""

    record: RunRecord
    start: float
    end: float
    seconds: float
    counts: dict[str, int]
    subtest_counts: dict[str, int]
    # (name, message) of each failure, as pytest's short summary lists them.
    failures: list[tuple[str, str]]


def finished_test(
    nodeid: str,
    test: OpenTest,
    attempts: list[Attempt],
    key: str,
    killed: bool = False,
    recording: Recording = Recording(),
    now: float = 0.0,
    index: int | None = None,
) -> FinishedTest:
    """The run of a test with reports, keyed ``key``; ``attempts``: its failed attempts.

    ``killed``: the test was cut off mid-run. ``now`` stands in for times a report lacks.
    ``index``: the test's place in pytest's order, when known.
    """
    reports = test.reports
    start, end = _times(test, attempts, now)
    decided = decide(test, recording.category)
    failures, text = _failures(nodeid, test, decided, recording.capture)
    metrics = _metrics(reports, test.subtests, attempts)
    record: RunRecord = {
        "kind": "run",
        "level": TEST_LEVEL,
        "key": key,
        "parent": module_of(nodeid),
        "name": _name(nodeid, test, key != nodeid),
        "start": ms(start),
        "end": ms(end),
        "status": KILLED if killed else decided.status,
        "tags": _tags(nodeid, test, decided, killed, bool(attempts), index),
        "params": test.info["params"] if test.info else {},
        "metrics": metrics,
        "artifacts": _artifacts(nodeid, test.subtests, attempts, text),
    }
    logged.merge_into(record, reports)
    return FinishedTest(
        record,
        start,
        end,
        metrics[DURATION],
        decided.counts,
        subtests.summary_counts(test.subtests, recording.category),
        failures,
    )


def _times(test: OpenTest, attempts: list[Attempt], now: float) -> tuple[float, float]:
    """When the test's first attempt started and its last report ended."""
    starter = attempts[0][0] if attempts else test.reports[0]
    start = getattr(starter, "start", None) or now
    return start, getattr(test.reports[-1], "stop", None) or now


def decide(test: OpenTest, category: subtests.Category) -> outcome.Outcome:
    """The test's outcome as pytest counts it: pytest 9 fails a test function whose
    subtests failed, though its call passed (not a unittest TestCase's test)."""
    decided = outcome.decide(test.reports)
    if (
        subtests.failed(test.subtests)
        and decided.outcome not in outcome.BAD_OUTCOMES
        and subtests.fails_test(test.reports, category)
    ):
        counts = {k: v for k, v in decided.counts.items() if k != "passed"}
        counts["failed"] = counts.get("failed", 0) + 1
        decided = outcome.Outcome("failed", counts)
    return decided


def _name(nodeid: str, test: OpenTest, per_worker: bool) -> str:
    name = run_name_of(nodeid)
    worker = worker_of(test.reports[-1])
    return f"{name} [{worker}]" if per_worker else name


def _tags(
    nodeid: str,
    test: OpenTest,
    decided: outcome.Outcome,
    killed: bool,
    retried: bool,
    index: int | None,
) -> dict[str, str]:
    path, line, _domain = test.reports[0].location
    tags = {
        NODEID: nodeid,
        OUTCOME: "killed" if killed else decided.outcome,
        FILE: path,
        SOURCE_NAME: module_of(nodeid),
    }
    if line is not None:
        tags[LINE] = str(line + 1)
    if index is not None:
        tags[COLLECTION_INDEX] = str(index)
    if test.info and test.info["markers"]:
        tags[MARKERS] = ",".join(test.info["markers"])
    if decided.skip_reason is not None:
        tags[SKIP_REASON] = decided.skip_reason
    if decided.xfail_reason is not None:
        tags[XFAIL_REASON] = decided.xfail_reason
    if worker := worker_of(test.reports[-1]):
        tags[WORKER] = worker
    if retried and decided.outcome not in outcome.BAD_OUTCOMES:
        tags[FLAKY] = "true"
    return tags


def _metrics(
    reports: list[pytest.TestReport],
    subtest_reports: list[pytest.TestReport],
    attempts: list[Attempt],
) -> dict[str, float]:
    metrics = {PHASE_DURATIONS[r.when]: float(r.duration) for r in reports if r.when in PHASES}
    metrics[DURATION] = sum(float(r.duration) for r in reports)
    if attempts:
        metrics[ATTEMPTS] = float(len(attempts) + 1)
    if subtest_reports:
        metrics.update(subtests.metrics(subtest_reports))
    return metrics


def _artifacts(
    nodeid: str, subtest_reports: list[pytest.TestReport], attempts: list[Attempt], failure: str
) -> dict[str, str]:
    artifacts = {
        reruns.attempt_artifact(number): reruns.attempt_text(nodeid, number, attempt)
        for number, attempt in enumerate(attempts, 1)
    }
    if subtest_reports:
        artifacts[subtests.ARTIFACT] = subtests.artifact(subtest_reports)
    if failure:
        artifacts[FAILURE_ARTIFACT] = failure
    return artifacts


def _failures(
    nodeid: str, test: OpenTest, decided: outcome.Outcome, capture: bool
) -> tuple[list[tuple[str, str]], str]:
    """The failures to list (name, message), as pytest's short summary does: each failed
    subtest, then the test; and their texts. A test pytest counts passed may have some."""
    failures = [(f"{nodeid} {d}", m) for d, m in subtests.failures(test.subtests)]
    texts = [subtests.failure_text(test.subtests)] if failures else []
    if decided.outcome in outcome.BAD_OUTCOMES:
        reports = test.reports
        failures.append((nodeid, next((crash_message(r) for r in reports if r.failed), "")))
        texts.insert(0, _failure_text(nodeid, reports, capture))
    return failures, "\n".join(texts)


def _failure_text(nodeid: str, reports: list[pytest.TestReport], capture: bool) -> str:
    failed = [r for r in reports if r.failed]
    # Each report carries the captured sections of all phases so far: the last has them all.
    sections = reports[-1].sections if capture else ()
    return phases_text(f"{nodeid}: ", failed, sections)
