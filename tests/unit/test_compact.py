"""Which tests keep a run of their own in compact mode, and the table the others go to."""

from __future__ import annotations

import json
from typing import Any, cast

import pytest

from pytest_mlflow_tree.model.compact import (
    TABLE_ARTIFACT,
    CompactFilter,
    keeps_run,
    session_tags,
)
from pytest_mlflow_tree.model.records import Record, RunRecord

LOGGED_ARTIFACTS_TAG = "mlflow.loggedArtifacts"


def run(
    outcome: str = "passed",
    status: str = "FINISHED",
    tags: dict[str, str] | None = None,
    metrics: dict[str, float] | None = None,
) -> RunRecord:
    data: dict[str, Any] = {
        "kind": "run",
        "level": "test",
        "key": "t.py::test_a",
        "parent": "t.py",
        "name": "test_a",
        "start": 1,
        "end": 2,
        "status": status,
        "tags": {"pytest.outcome": outcome, **(tags or {})},
        "metrics": {"pytest/duration": 0.01, **(metrics or {})},
    }
    return cast(RunRecord, data)


def test_a_quick_passing_test_goes_to_the_table() -> None:
    assert not keeps_run(run(), 1.0)


@pytest.mark.parametrize("outcome", ["failed", "error", "xpassed", "killed"])
def test_bad_and_surprising_outcomes_keep_a_run(outcome: str) -> None:
    assert keeps_run(run(outcome), 1.0)


@pytest.mark.parametrize("outcome", ["skipped", "xfailed"])
def test_skips_and_expected_failures_go_to_the_table(outcome: str) -> None:
    assert not keeps_run(run(outcome), 1.0)


def test_a_run_that_did_not_finish_keeps_a_run() -> None:
    assert keeps_run(run(status="FAILED"), 1.0)


@pytest.mark.parametrize(
    ("tags", "metrics"),
    [
        ({"pytest.rerun_count": "1"}, {}),
        ({"pytest.flaky": "true"}, {}),
        ({}, {"pytest/attempts": 2.0}),
        ({}, {"pytest/subtests_failed": 1.0}),
    ],
)
def test_flaky_tests_and_failed_subtests_keep_a_run(
    tags: dict[str, str], metrics: dict[str, float]
) -> None:
    assert keeps_run(run(tags=tags, metrics=metrics), 1.0)


def test_one_attempt_and_no_failed_subtests_go_to_the_table() -> None:
    assert not keeps_run(run(metrics={"pytest/attempts": 1.0, "pytest/subtests_failed": 0.0}), 1.0)


def test_a_test_as_slow_as_the_threshold_keeps_a_run() -> None:
    assert keeps_run(run(metrics={"pytest/duration": 1.0}), 1.0)
    assert not keeps_run(run(metrics={"pytest/duration": 0.999}), 1.0)


def test_a_record_without_tags_or_metrics_is_quick_and_passing() -> None:
    bare = cast(dict[str, Any], run())
    del bare["tags"], bare["metrics"]
    assert not keeps_run(cast(RunRecord, bare), 0.5)
    assert keeps_run(cast(RunRecord, bare), 0.0)


def test_only_compact_mode_tags_the_session() -> None:
    assert session_tags("tree", 1.0) == {}
    assert session_tags("compact", 2.5) == {"pytest.mode": "compact", "pytest.slow_seconds": "2.5"}


def test_the_filter_drops_quiet_tests_and_puts_every_test_in_its_modules_table() -> None:
    session = {"kind": "open", "level": "session", "key": "<s>", "tags": session_tags("compact", 1)}
    failed = run("failed", "FAILED")
    failed["key"] = "t.py::test_b"
    close = {"kind": "close", "key": "t.py", "end": 3, "status": "FAILED"}
    records = cast(list[Record], [session, run(), failed, close])
    compact = CompactFilter()
    out = list(compact(records))
    assert [r["kind"] for r in out] == ["open", "run", "close"]
    assert compact.dropped == 1
    table_close = cast(dict[str, Any], out[-1])
    table = json.loads(table_close["artifacts"][TABLE_ARTIFACT])
    has_run = table["columns"].index("has_run")
    assert [(row[0], row[has_run]) for row in table["data"]] == [
        ("t.py::test_a", False),
        ("t.py::test_b", True),
    ]
    assert TABLE_ARTIFACT in table_close["tags"][LOGGED_ARTIFACTS_TAG]


def test_the_filter_passes_a_tree_session_through() -> None:
    session = {"kind": "open", "level": "session", "key": "<s>", "tags": {}}
    records = cast(list[Record], [session, run()])
    assert list(CompactFilter()(records)) == records
