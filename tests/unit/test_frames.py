"""The read-back frames built from plain sessions: times, tag columns, sessions side by side."""

from __future__ import annotations

import datetime
import sys

import pytest

from pytest_mlflow_tree.model.names import (
    CALL_DURATION,
    DURATION,
    MARKERS,
    NODEID,
    OUTCOME,
    PARENT_RUN_ID,
    PROPERTY_PREFIX,
    RUN_KEY,
    SESSION_UUID,
    SKIP_REASON,
)
from pytest_mlflow_tree.read import (
    Module,
    Session,
    Test,
    history_rows,
    sessions_frame,
)

UTC = datetime.timezone.utc
# 2026-09-21 14:13:20 UTC
T0 = 1_790_000_000_000


def case(nodeid: str, outcome: str = "passed", start: int = T0, **metrics: float) -> Test:
    return Test(
        nodeid=nodeid,
        name=nodeid.split("::")[-1],
        module=nodeid.split("::")[0],
        outcome=outcome,
        status="FAILED" if outcome == "failed" else "FINISHED",
        duration=metrics.get(DURATION),
        start_ms=start,
        end_ms=start + 1500,
        run_id=f"run-{nodeid}",
        metrics=dict(metrics),
    )


def session(run_id: str, start: int | None, *tests: Test) -> Session:
    module = Module("t.py", None, "FINISHED", tests=list(tests))
    return Session(run_id, "0", run_id, "FINISHED", start, None, "sqlite://", modules=[module])


def test_times_read_as_aware_utc_datetimes_and_the_milliseconds_stay() -> None:
    test = case("t.py::a")
    whole = session("s", T0, test)

    assert whole.start == datetime.datetime(2026, 9, 21, 14, 13, 20, tzinfo=UTC)
    assert whole.start is not None
    assert whole.start.utcoffset() == datetime.timedelta(0)
    assert whole.start_ms == T0
    assert whole.end is None
    assert test.start == whole.start
    assert test.end == datetime.datetime(2026, 9, 21, 14, 13, 21, 500_000, tzinfo=UTC)
    row = test.row()
    assert row["start_time"] == test.start
    assert row["end_time"] == test.end


def test_a_row_has_the_tags_that_describe_the_test_and_not_the_bookkeeping() -> None:
    test = case("t.py::a", accuracy=0.93)
    test.metrics.update({DURATION: 0.5, CALL_DURATION: 0.4})
    test.duration = 0.5
    test.params = {"depth": "3"}
    test.tags = {
        "accuracy.verdict": "pass",
        "dataset": "v2",
        MARKERS: "slow, gpu",
        PROPERTY_PREFIX + "commit_note": "ok",
        SKIP_REASON: "no gpu",
        NODEID: "t.py::a",
        OUTCOME: "passed",
        RUN_KEY: "abc",
        SESSION_UUID: "def",
        PARENT_RUN_ID: "m1",
    }

    row = test.row()

    assert {k: v for k, v in row.items() if k.startswith("tags.")} == {
        "tags.accuracy.verdict": "pass",
        "tags.dataset": "v2",
        f"tags.{MARKERS}": "slow, gpu",
        f"tags.{PROPERTY_PREFIX}commit_note": "ok",
        f"tags.{SKIP_REASON}": "no gpu",
    }
    assert row["params.depth"] == "3"
    assert row["metrics.accuracy"] == 0.93
    assert f"metrics.{DURATION}" not in row
    assert row["call_duration"] == 0.4
    assert row["duration"] == 0.5


def test_sessions_side_by_side_ordered_by_start_whatever_order_they_come_in() -> None:
    older = session("old", T0, case("t.py::a"), case("t.py::gone", "failed"))
    newer = session("new", T0 + 60_000, case("t.py::a", "failed"), case("t.py::added"))
    unstarted = session("unknown", None, case("t.py::a"))

    rows = history_rows([newer, unstarted, older])

    assert rows == [
        {"nodeid": "t.py::a", "old": "passed", "new": "failed", "unknown": "passed"},
        {"nodeid": "t.py::gone", "old": "failed", "new": None, "unknown": None},
        {"nodeid": "t.py::added", "old": None, "new": "passed", "unknown": None},
    ]
    assert list(rows[0]) == ["nodeid", "old", "new", "unknown"]


def test_sessions_side_by_side_hold_any_column_of_the_frame() -> None:
    older = session("old", T0, case("t.py::a", accuracy=0.9))
    newer = session("new", T0 + 1, case("t.py::a", accuracy=0.8), case("t.py::b"))

    assert history_rows([older, newer], value="metrics.accuracy") == [
        {"nodeid": "t.py::a", "old": 0.9, "new": 0.8},
        {"nodeid": "t.py::b", "old": None, "new": None},
    ]


def test_the_frames_with_pandas() -> None:
    pandas = pytest.importorskip("pandas")
    older = session("old", T0, case("t.py::a", accuracy=0.9))
    newer = session("new", T0 + 1, case("t.py::a", "failed", accuracy=0.8), case("t.py::b"))
    newer.tests[0].tags = {"accuracy.verdict": "fail"}

    frame = newer.to_frame()
    assert list(frame["nodeid"]) == ["t.py::a", "t.py::b"]
    assert str(frame["start_time"].dt.tz) == "UTC"
    assert frame["start_time"][0] == pandas.Timestamp(T0, unit="ms", tz="UTC")
    assert frame.loc[0, "tags.accuracy.verdict"] == "fail"

    history = sessions_frame([newer, older], value="metrics.accuracy")
    assert list(history.columns) == ["old", "new"]
    assert history.index.name == "nodeid"
    assert history.loc["t.py::a"].tolist() == [0.9, 0.8]
    assert pandas.isna(history.loc["t.py::b", "old"])


def test_a_session_without_tests_still_has_the_frame_columns() -> None:
    pytest.importorskip("pandas")
    frame = session("s", T0).to_frame()
    assert len(frame) == 0
    assert {"nodeid", "outcome", "start_time", "end_time", "run_id"} <= set(frame.columns)


def test_without_pandas_the_frame_says_what_to_use_instead(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "pandas", None)
    whole = session("s", T0, case("t.py::a"))

    with pytest.raises(ImportError, match=r"pip install pandas.*Session\.rows\(\)"):
        whole.to_frame()
    assert [row["nodeid"] for row in whole.rows()] == ["t.py::a"]


def test_a_tests_value_is_its_column_in_the_frame() -> None:
    test = case("t.py::a", accuracy=0.9)
    test.metrics[DURATION] = 0.5
    test.duration = 0.5
    test.params = {"depth": "3"}
    test.tags = {"accuracy.verdict": "pass", RUN_KEY: "abc"}
    row = test.row()
    for column in [*row, "metrics.duration", f"tags.{RUN_KEY}", "params.none", "nothing"]:
        assert test.value(column) == row.get(column), column
