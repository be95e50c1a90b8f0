"""The session the report is built from, made from the journal's records."""

from __future__ import annotations

from typing import Any, cast

from pytest_mlflow_tree.model.records import Header, Record
from pytest_mlflow_tree.read.from_journal import SessionBuilder

HEADER = cast(Header, {"kind": "journal", "common_tags": {}, "ui_url": "http://ui:8080"})


def records(**test: Any) -> list[Record]:
    run = {
        "kind": "run",
        "key": "t.py::test_fold[1]",
        "parent": "t.py",
        "name": "test_fold[1]",
        "start": 1,
        "end": 2,
        "status": "FINISHED",
        "tags": {"pytest.nodeid": "t.py::test_fold[1]", "pytest.outcome": "passed"},
        **test,
    }
    return cast(
        list[Record],
        [
            {"kind": "open", "level": "session", "key": "<session>", "name": "s", "start": 0},
            {"kind": "open", "level": "module", "key": "t.py", "name": "t.py", "start": 0},
            run,
        ],
    )


def built(*records: Record) -> Any:
    builder = SessionBuilder(HEADER, "sqlite:///mlflow.db", HEADER.get("ui_url"))
    list(builder.watch(records))
    builder.ran("<session>", "s1")
    session = builder.session("0")
    assert session is not None
    return session


def test_a_tests_own_metrics_at_their_latest_values_as_mlflow_picks_them() -> None:
    session = built(
        *records(
            metrics={"pytest/duration": 0.5, "pytest/call_duration": 0.4, "recall": 0.8},
            # By step first: the value logged last, at step 0, is not the latest.
            metric_steps=[["auc", 0.9, 10, 1], ["auc", 0.5, 20, 0], ["recall", 0.1, 30, 9]],
            tags={"pytest.nodeid": "t.py::test_fold[1]", "pytest.skip_reason": "no GPU"},
        )
    )
    test = session.tests[0]
    # The plugin's durations are left out; a record's own metric wins over a logged history.
    assert test.user_metrics == {"recall": 0.8, "auc": 0.9}
    assert test.tags == {"pytest.skip_reason": "no GPU"}
    assert session.run_url("r1") == "http://ui:8080/#/experiments/0/runs/r1"


def test_a_test_with_nothing_of_its_own_has_no_metrics_or_reasons() -> None:
    test = built(*records(metrics={"pytest/duration": 0.5, "pytest/setup_duration": 0.1})).tests[0]
    assert test.user_metrics == {}
    assert test.tags == {}
    assert test.duration == 0.5
