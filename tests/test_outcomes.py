"""Every pytest outcome, as a user sees it in MLflow: run statuses, outcome tags and counts."""

from __future__ import annotations

import re
from typing import Any

import pytest
from conftest import Record, Tree

COUNTS = ("passed", "failed", "errors", "skipped", "xfailed", "xpassed")


SUITE = {
    "test_results.py": """
        import pytest

        @pytest.fixture
        def broken_setup():
            raise RuntimeError("setup exploded")

        @pytest.fixture
        def broken_teardown():
            yield
            raise RuntimeError("teardown exploded")

        def test_passes():
            pass

        def test_fails():
            assert 1 == 2, "one is not two"

        def test_setup_error(broken_setup):
            pass

        def test_teardown_error(broken_teardown):
            pass

        @pytest.mark.skip(reason="not on this machine")
        def test_skip_mark():
            pass

        def test_skip_inside():
            pytest.skip("no GPU here")

        @pytest.mark.xfail(reason="known bug 123")
        def test_xfail_mark():
            assert False

        def test_xfail_inside():
            pytest.xfail("not implemented yet")

        @pytest.mark.xfail(reason="maybe fixed")
        def test_xpass():
            pass

        @pytest.mark.xfail(reason="must fail", strict=True)
        def test_xpass_strict():
            pass
    """,
    "test_twice.py": """
        import pytest

        @pytest.fixture
        def broken_teardown():
            yield
            raise RuntimeError("teardown exploded too")

        def test_fails_twice(broken_teardown):
            assert False, "call failed"
    """,
    "test_windows.py": """
        import pytest

        pytest.skip("windows only", allow_module_level=True)

        def test_never_collected():
            pass
    """,
    "test_clean.py": """
        def test_clean():
            pass
    """,
}

# nodeid -> (run status, pytest.outcome tag)
EXPECTED = {
    "test_results.py::test_passes": ("FINISHED", "passed"),
    "test_results.py::test_fails": ("FAILED", "failed"),
    "test_results.py::test_setup_error": ("FAILED", "error"),
    "test_results.py::test_teardown_error": ("FAILED", "error"),
    "test_results.py::test_skip_mark": ("FINISHED", "skipped"),
    "test_results.py::test_skip_inside": ("FINISHED", "skipped"),
    "test_results.py::test_xfail_mark": ("FINISHED", "xfailed"),
    "test_results.py::test_xfail_inside": ("FINISHED", "xfailed"),
    "test_results.py::test_xpass": ("FINISHED", "xpassed"),
    "test_results.py::test_xpass_strict": ("FAILED", "failed"),
    "test_twice.py::test_fails_twice": ("FAILED", "failed"),
    "test_clean.py::test_clean": ("FINISHED", "passed"),
}


@pytest.fixture
def suite(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makepyfile(**{path.removesuffix(".py"): body for path, body in SUITE.items()})
    return pytester


def counts(run: Any) -> dict[str, int]:
    return {name: int(run.data.metrics[f"pytest/{name}"]) for name in (*COUNTS, "tests")}


def summary_counts(result: pytest.RunResult) -> dict[str, int]:
    """pytest's own summary line, with the names our metrics use."""
    outcomes = result.parseoutcomes()
    # parseoutcomes() spells one error "errors" too; outcomes the line leaves out are 0.
    return {name: outcomes.get(name, 0) for name in COUNTS}


def assert_nothing_left_running(tree: Tree) -> None:
    running = {r.info.run_name: r.info.status for r in tree.runs if r.info.status == "RUNNING"}
    assert running == {}


def test_one_recording_has_every_outcome_and_pytests_counts(
    suite: pytest.Pytester, record: Record
) -> None:
    result, tree = record()
    result.assert_outcomes(
        passed=3, failed=3, errors=3, skipped=3, xfailed=2, xpassed=1, warnings=None
    )

    every_outcome_has_its_status_and_outcome_tag(tree)
    counts_match_pytests_own_summary_line(result, tree)


def every_outcome_has_its_status_and_outcome_tag(tree: Tree) -> None:
    seen = {
        nodeid: (run.info.status, run.data.tags["pytest.outcome"])
        for nodeid, run in tree.tests.items()
    }
    assert seen == EXPECTED

    tests = tree.tests
    assert tests["test_results.py::test_skip_mark"].data.tags["pytest.skip_reason"] == (
        "not on this machine"
    )
    assert tests["test_results.py::test_skip_inside"].data.tags["pytest.skip_reason"] == (
        "no GPU here"
    )
    assert tests["test_results.py::test_xfail_mark"].data.tags["pytest.xfail_reason"] == (
        "known bug 123"
    )
    assert tests["test_results.py::test_xfail_inside"].data.tags["pytest.xfail_reason"] == (
        "not implemented yet"
    )
    assert tests["test_results.py::test_xpass"].data.tags["pytest.xfail_reason"] == ("maybe fixed")
    # Reasons only where pytest has one.
    for nodeid in ("test_results.py::test_passes", "test_results.py::test_fails"):
        assert "pytest.skip_reason" not in tests[nodeid].data.tags
        assert "pytest.xfail_reason" not in tests[nodeid].data.tags

    # A skip decided in setup still has a run, with no call phase.
    skipped = tests["test_results.py::test_skip_mark"]
    assert "pytest/call_duration" not in skipped.data.metrics
    assert "pytest/setup_duration" in skipped.data.metrics

    assert tree.modules["test_results.py"].info.status == "FAILED"
    assert tree.modules["test_twice.py"].info.status == "FAILED"
    assert tree.modules["test_clean.py"].info.status == "FINISHED"
    assert tree.session.info.status == "FAILED"
    assert tree.session.data.tags["pytest.exitstatus"] == "1"
    assert_nothing_left_running(tree)


def counts_match_pytests_own_summary_line(result: pytest.RunResult, tree: Tree) -> None:
    expected = summary_counts(result)
    assert expected == {
        "passed": 3,
        "failed": 3,
        "errors": 3,
        "skipped": 3,
        "xfailed": 2,
        "xpassed": 1,
    }
    collected = re.search(r"collected (\d+) items", result.stdout.str())
    assert collected is not None

    session = counts(tree.session)
    assert {k: v for k, v in session.items() if k != "tests"} == expected
    assert session["tests"] == int(collected.group(1)) == len(tree.tests) == 12

    # The modules add up to the session.
    for name in (*COUNTS, "tests"):
        assert sum(counts(m)[name] for m in tree.modules.values()) == session[name], name

    # A failing call plus a failing teardown: one failed and one error, as the terminal says.
    assert counts(tree.modules["test_twice.py"]) == {
        "passed": 0,
        "failed": 1,
        "errors": 1,
        "skipped": 0,
        "xfailed": 0,
        "xpassed": 0,
        "tests": 1,
    }
    assert counts(tree.modules["test_results.py"]) == {
        "passed": 2,
        "failed": 2,
        "errors": 2,
        "skipped": 2,
        "xfailed": 2,
        "xpassed": 1,
        "tests": 10,
    }
    assert tree.modules["test_twice.py"].data.metrics["pytest/pass_rate"] == 0.0

    # Skipped at module level: a finished run with one skip, no test runs under it.
    windows = tree.modules["test_windows.py"]
    assert windows.info.status == "FINISHED"
    assert counts(windows) == {
        "passed": 0,
        "failed": 0,
        "errors": 0,
        "skipped": 1,
        "xfailed": 0,
        "xpassed": 0,
        "tests": 0,
    }
    assert windows.data.tags["pytest.skip_reason"] == "windows only"
    assert tree.children(windows) == []
    assert windows.data.tags["mlflow.parentRunId"] == tree.session.info.run_id


BROKEN = {
    "test_syntax.py": """
        def test_never_runs(:
            pass
    """,
    "test_import.py": """
        import no_such_module_for_mlflow_tree

        def test_never_runs():
            pass
    """,
    "test_good.py": """
        def test_good():
            pass

        def test_also_good():
            pass
    """,
}


@pytest.fixture
def broken_suite(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makepyfile(**{path.removesuffix(".py"): body for path, body in BROKEN.items()})
    return pytester


def test_collection_error_fails_its_module_and_the_session(
    broken_suite: pytest.Pytester, record: Record
) -> None:
    result, tree = record("--continue-on-collection-errors")
    result.assert_outcomes(passed=2, errors=2)

    assert sorted(tree.modules) == ["test_good.py", "test_import.py", "test_syntax.py"]
    for name, needle in (
        ("test_syntax.py", "SyntaxError"),
        ("test_import.py", "no_such_module_for_mlflow_tree"),
    ):
        module = tree.modules[name]
        assert module.info.status == "FAILED", name
        assert module.data.metrics["pytest/errors"] == 1, name
        assert module.data.metrics["pytest/tests"] == 0, name
        assert module.data.tags["pytest.collection_error"], name
        assert "collection-error.txt" in tree.artifacts(module), name
        assert needle in tree.artifact(module, "collection-error.txt"), name
        assert tree.children(module) == []
    assert "ModuleNotFoundError" in tree.artifact(
        tree.modules["test_import.py"], "collection-error.txt"
    )

    # The other module is recorded as if nothing had happened.
    good = tree.modules["test_good.py"]
    assert good.info.status == "FINISHED"
    assert good.data.metrics["pytest/passed"] == 2
    assert sorted(tree.tests) == ["test_good.py::test_also_good", "test_good.py::test_good"]

    session = tree.session
    assert session.info.status == "FAILED"
    assert session.data.metrics["pytest/errors"] == 2
    assert session.data.metrics["pytest/passed"] == 2
    note = session.data.tags["mlflow.note.content"]
    assert "test_syntax.py" in note
    assert "test_import.py" in note
    assert_nothing_left_running(tree)


def test_collection_error_that_stops_the_session_is_a_failure_not_a_kill(
    broken_suite: pytest.Pytester, record: Record
) -> None:
    # Without --continue-on-collection-errors pytest runs no test at all ("Interrupted: 2
    # errors during collection", exit status 2). Nobody pressed Ctrl-C: the session failed.
    result, tree = record()
    assert result.ret == pytest.ExitCode.INTERRUPTED
    assert "errors during collection" in result.stdout.str()

    assert tree.modules["test_syntax.py"].info.status == "FAILED"
    assert tree.modules["test_import.py"].info.status == "FAILED"
    assert tree.tests == {}
    assert_nothing_left_running(tree)
    session = tree.session
    assert session.data.metrics["pytest/errors"] == 2
    assert session.data.tags["pytest.exitstatus"] == "2"
    assert session.info.status == "FAILED"


CTRL_C = {
    "test_a_before.py": """
        def test_one():
            pass

        def test_two():
            assert False, "a real failure before the interrupt"
    """,
    "test_b_interrupted.py": """
        def test_before_interrupt():
            pass

        def test_interrupt():
            raise KeyboardInterrupt

        def test_after_interrupt():
            pass
    """,
    "test_c_never.py": """
        def test_never():
            pass
    """,
}


def test_ctrl_c_kills_the_session_and_keeps_what_ran(
    pytester: pytest.Pytester, record: Record
) -> None:
    pytester.makepyfile(**{path.removesuffix(".py"): body for path, body in CTRL_C.items()})
    # In a subprocess: the KeyboardInterrupt ends that pytest, not this one. Files run in order.
    result, tree = record("-p", "no:randomly", subprocess=True)
    assert result.ret == pytest.ExitCode.INTERRUPTED
    assert "KeyboardInterrupt" in result.stdout.str()

    assert_nothing_left_running(tree)
    session = tree.session
    assert session.info.status == "KILLED"
    assert session.data.tags["pytest.exitstatus"] == "2"

    tests = tree.tests
    assert tests["test_a_before.py::test_one"].info.status == "FINISHED"
    assert tests["test_a_before.py::test_two"].info.status == "FAILED"
    assert tests["test_b_interrupted.py::test_before_interrupt"].info.status == "FINISHED"
    assert tests["test_b_interrupted.py::test_before_interrupt"].data.tags["pytest.outcome"] == (
        "passed"
    )
    # The interrupted test itself: cut off, so killed rather than passed or failed.
    interrupted = tests["test_b_interrupted.py::test_interrupt"]
    assert interrupted.info.status == "KILLED"
    assert interrupted.data.tags["pytest.outcome"] == "killed"
    assert "test_b_interrupted.py::test_after_interrupt" not in tests
    assert "test_c_never.py::test_never" not in tests

    # A module that completed keeps its verdict; the one cut off is killed.
    assert tree.modules["test_a_before.py"].info.status == "FAILED"
    assert tree.modules["test_b_interrupted.py"].info.status == "KILLED"
    assert "test_c_never.py" not in tree.modules
    assert session.data.metrics["pytest/passed"] == 2
    assert session.data.metrics["pytest/failed"] == 1
