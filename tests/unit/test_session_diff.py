"""What changed between two sessions: outcomes, tests, durations and the tests' own metrics."""

from __future__ import annotations

import dataclasses
import math
import re

import pytest

from pytest_mlflow_tree.model.names import ATTEMPTS, CALL_DURATION
from pytest_mlflow_tree.read.readback import Module, Session, Test
from pytest_mlflow_tree.read.session_diff import Threshold, compare

TWICE = Threshold(ratio=2.0)


def case(
    name: str, outcome: str = "passed", duration: float | None = 1.0, **metrics: float
) -> Test:
    return Test(
        nodeid=f"t.py::{name}",
        name=name,
        module="t.py",
        outcome=outcome,
        status="FAILED" if outcome in ("failed", "error") else "FINISHED",
        duration=duration,
        metrics=metrics,
    )


def session(*tests: Test) -> Session:
    module = Module("t.py", None, "FINISHED", tests=list(tests))
    return Session("r", "0", "s", "FINISHED", None, None, "sqlite://", modules=[module])


def nodeids(tests: list[Test]) -> list[str]:
    return [t.nodeid for t in tests]


def test_identical_sessions_have_no_changes() -> None:
    tests = [case("a"), case("b", "failed")]
    diff = compare(session(*tests), session(*tests), TWICE, 0.1)
    changes = (diff.new_failures, diff.fixed, diff.added, diff.removed)
    assert changes == ([], [], [], [])
    assert (diff.slower, diff.faster, diff.metric_changes) == ([], [], [])
    assert nodeids(diff.still_failing) == ["t.py::b"]


def test_outcome_changes() -> None:
    before = session(case("broke"), case("fixed", "error"), case("gone"))
    after = session(case("broke", "failed"), case("fixed"), case("new", "failed"))
    diff = compare(before, after, TWICE, 0.1)
    assert [(p and p.outcome, t.nodeid) for p, t in diff.new_failures] == [
        ("passed", "t.py::broke"),
        (None, "t.py::new"),
    ]
    assert [(p.outcome, t.outcome) for p, t in diff.fixed] == [("error", "passed")]
    assert nodeids(diff.added) == ["t.py::new"]
    assert nodeids(diff.removed) == ["t.py::gone"]


def test_slower_and_faster_by_ratio_beyond_the_minimum_and_biggest_change_first() -> None:
    before = session(case("a", duration=1.0), case("b", duration=1.0), case("c", duration=4.0))
    after = session(case("a", duration=2.5), case("b", duration=4.0), case("c", duration=1.0))
    diff = compare(before, after, TWICE, 0.1)
    assert [t.nodeid for _, t in diff.slower] == ["t.py::b", "t.py::a"]
    assert [t.nodeid for _, t in diff.faster] == ["t.py::c"]


def test_changes_below_the_minimum_are_noise() -> None:
    before = session(case("a", duration=0.001))
    after = session(case("a", duration=0.05))
    assert not compare(before, after, TWICE, 0.1).slower


def test_a_change_below_the_ratio_is_not_slower() -> None:
    diff = compare(session(case("a", duration=1.0)), session(case("a", duration=1.9)), TWICE, 0)
    assert not diff.slower


def test_slower_by_seconds() -> None:
    before = session(case("a", duration=10.0))
    after = session(case("a", duration=10.5))
    assert compare(before, after, Threshold(seconds=0.5), 0.1).slower
    assert not compare(before, after, Threshold(seconds=0.6), 0.1).slower


def test_a_test_without_a_duration_is_neither_slower_nor_faster() -> None:
    diff = compare(session(case("a", duration=None)), session(case("a", duration=9.0)), TWICE, 0)
    assert (diff.slower, diff.faster) == ([], [])


def test_metric_changes_include_appearing_disappearing_and_nan() -> None:
    before = session(case("a", loss=1.0, gone=1.0, same_nan=math.nan, was_nan=math.nan))
    after = session(case("a", loss=2.0, new=1.0, same_nan=math.nan, was_nan=3.0))
    changes = compare(before, after, TWICE, 0.1).metric_changes
    assert [c.key for c in changes] == ["gone", "loss", "new", "was_nan"]
    assert [(c.before, c.after) for c in changes[:3]] == [(1.0, None), (1.0, 2.0), (None, 1.0)]


def test_the_plugins_own_metrics_are_no_metric_changes() -> None:
    before = session(dataclasses.replace(case("a"), metrics={CALL_DURATION: 1.0, ATTEMPTS: 2.0}))
    after = session(dataclasses.replace(case("a"), metrics={CALL_DURATION: 5.0, ATTEMPTS: 3.0}))
    assert compare(before, after, TWICE, 0.1).metric_changes == []


def test_a_metric_tolerance_is_relative() -> None:
    before, after = session(case("a", loss=100.0)), session(case("a", loss=104.0))
    assert compare(before, after, TWICE, 0.1, metric_tolerance=0.05).metric_changes == []
    assert compare(before, after, TWICE, 0.1, metric_tolerance=0.03).metric_changes


def test_empty_sessions() -> None:
    diff = compare(session(), session(case("a")), TWICE, 0.1)
    assert nodeids(diff.added) == ["t.py::a"]
    assert compare(session(), session(), TWICE, 0.1).removed == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1.5x", Threshold(ratio=1.5)),
        ("2X", Threshold(ratio=2.0)),
        ("0.5", Threshold(seconds=0.5)),
        (" .5s ", Threshold(seconds=0.5)),
        ("3", Threshold(seconds=3.0)),
    ],
)
def test_thresholds_are_ratios_or_seconds(text: str, expected: Threshold) -> None:
    assert Threshold.parse(text) == expected


@pytest.mark.parametrize("text", ["1x", "0.9x", "0", "0s", "fast", "-1", "1.5y", ""])
def test_thresholds_that_make_no_sense_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match=re.escape(repr(text))):
        Threshold.parse(text)
