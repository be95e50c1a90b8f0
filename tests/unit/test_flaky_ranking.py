"""Tests whose outcome flips between passing and failing across sessions."""

from __future__ import annotations

from pytest_mlflow_tree.read.flaky import find
from pytest_mlflow_tree.read.readback import Module, Session, Test


def session(commit: str | None, **outcomes: str) -> Session:
    """A session that ran the tests named, with these outcomes."""
    tests = [
        Test(f"t.py::{name}", name, "t.py", outcome, "FINISHED", 0.1)
        for name, outcome in outcomes.items()
    ]
    tags = {"mlflow.source.git.commit": commit} if commit else {}
    module = Module("t.py", None, "FINISHED", tests=tests)
    return Session("r", "0", "s", "FINISHED", None, None, "sqlite://", tags, modules=[module])


def test_one_change_is_a_flip_and_a_steadily_failing_test_none() -> None:
    sessions = [session("c1", a="passed"), session("c2", a="passed"), session("c3", a="failed")]
    found = find(sessions)
    assert [(f.nodeid, f.flips, f.failures) for f in found] == [("t.py::a", 1, 1)]
    assert find([session("c1", b="failed"), session("c2", b="error")]) == []


def test_flips_are_counted_and_those_on_one_commit_apart() -> None:
    sessions = [
        session("c1", a="passed"),
        session("c1", a="failed"),
        session("c2", a="passed"),
        session("c2", a="passed"),
    ]
    (flaky,) = find(sessions)
    assert (flaky.flips, flaky.flips_same_commit, flaky.failures) == (2, 1, 1)
    assert flaky.strip == ".F.."


def test_skips_kills_and_absences_say_nothing() -> None:
    sessions = [
        session("c1", a="passed"),
        session("c1", a="skipped"),
        session("c1", b="passed"),
        session("c1", a="killed"),
        session("c1", a="passed"),
    ]
    assert find(sessions) == []


def test_a_flip_across_a_skip_counts_once() -> None:
    sessions = [session("c1", a="passed"), session("c1", a="skipped"), session("c1", a="error")]
    (flaky,) = find(sessions)
    assert (flaky.flips, flaky.flips_same_commit) == (1, 1)
    assert flaky.strip == ".sE"


def test_expected_failures_and_xpasses_count_as_passing() -> None:
    sessions = [session(None, a="xfailed"), session(None, a="xpassed"), session(None, a="failed")]
    (flaky,) = find(sessions)
    assert (flaky.flips, flaky.flips_same_commit) == (1, 0)
    assert flaky.strip == "xXF"


def test_sessions_without_a_commit_never_share_one() -> None:
    sessions = [session(None, a="passed"), session(None, a="failed")]
    assert find(sessions)[0].flips_same_commit == 0


def test_most_flips_first_then_same_commit_flips_then_failures_then_name() -> None:
    rows = {"b": ".F..", "a": "..F.", "c": ".Fs.", "d": ".FF.", "e": "FFF."}
    words = {".": "passed", "F": "failed", "s": "skipped"}
    sessions = [
        session(commit, **{name: words[row[number]] for name, row in rows.items()})
        for number, commit in enumerate(["c1", "c2", "c2", "c3"])
    ]
    found = find(sessions)
    assert [(f.nodeid[-1], f.flips, f.flips_same_commit, f.failures) for f in found] == [
        ("a", 2, 1, 1),
        ("b", 2, 1, 1),
        ("d", 2, 0, 2),
        ("c", 2, 0, 1),
        ("e", 1, 0, 3),
    ]


def test_a_test_absent_from_a_session_has_a_gap_in_its_strip() -> None:
    sessions = [session("c1", a="passed"), session("c1", b="passed"), session("c1", a="failed")]
    (flaky,) = find(sessions)
    assert flaky.outcomes == ("passed", None, "failed")
    assert flaky.strip == ".-F"


def test_no_sessions() -> None:
    assert find([]) == []
