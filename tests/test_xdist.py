"""Under pytest-xdist: one tree, the same outcomes and durations pytest reports, every --dist."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections import defaultdict
from pathlib import Path

import pytest
from conftest import Record, Store
from replaying import recorded_by_replay

pytest.importorskip("xdist")

SUITE = {
    "tests/test_model.py": """
        import time
        import pytest

        @pytest.mark.parametrize("depth", [2, 3])
        def test_accuracy(depth):
            time.sleep(0.05)

        def test_fails():
            assert 0.7 > 0.9, "accuracy too low"

        @pytest.mark.skip(reason="no GPU")
        def test_gpu():
            pass
    """,
    "tests/test_data.py": """
        import pytest

        @pytest.mark.xdist_group("data")
        class TestSchema:
            def test_columns(self):
                pass

            def test_types(self):
                pass

        @pytest.mark.xfail(reason="known")
        def test_known_bug():
            assert False
    """,
}

# (nodeid, the worker-less outcome pytest's junitxml gives it)
OUTCOMES = {
    "tests/test_model.py::test_accuracy[2]": "passed",
    "tests/test_model.py::test_accuracy[3]": "passed",
    "tests/test_model.py::test_fails": "failed",
    "tests/test_model.py::test_gpu": "skipped",
    "tests/test_data.py::TestSchema::test_columns": "passed",
    "tests/test_data.py::TestSchema::test_types": "passed",
    "tests/test_data.py::test_known_bug": "xfailed",
}


def _junit(path: Path) -> dict[str, list[tuple[str, float]]]:
    """nodeid -> [(outcome, seconds)] as junitxml wrote them (one entry per worker run)."""
    cases: dict[str, list[tuple[str, float]]] = defaultdict(list)
    for case in ET.parse(path).getroot().iter("testcase"):
        module, *classes = case.attrib["classname"].split(".")
        # Our suite's modules live in tests/: classname "tests.test_data.TestSchema".
        path_parts = [module]
        while classes and not classes[0][:1].isupper():
            path_parts.append(classes.pop(0))
        # With pytest < 9, --dist loadgroup appends "@group" to the nodeid: the runs do not.
        name = case.attrib["name"].split("@", 1)[0]
        nodeid = "::".join(["/".join(path_parts) + ".py", *classes, name])
        outcome = "passed"
        for child in case:
            if child.tag == "failure":
                outcome = "failed"
            elif child.tag == "error":
                outcome = "error"
            elif child.tag == "skipped":
                kind = child.attrib.get("type", "")
                outcome = "xfailed" if kind == "pytest.xfail" else "skipped"
        cases[nodeid].append((outcome, float(case.attrib["time"])))
    return cases


@pytest.mark.parametrize(
    ("dist", "workers", "store"),
    [
        ("load", "2", "sqlite"),
        ("loadscope", "auto", "sqlite"),
        ("loadfile", "2", "sqlite"),
        ("loadgroup", "2", "sqlite"),
        ("each", "2", "sqlite"),
        ("load", "2", "server"),
        ("each", "2", "server"),
    ],
    indirect=["store"],
)
def test_every_dist_mode_records_one_tree_with_pytests_outcomes_and_durations(
    pytester: pytest.Pytester, store: Store, dist: str, workers: str
) -> None:
    pytester.makepyfile(**{path.removesuffix(".py"): body for path, body in SUITE.items()})
    junit = pytester.path / "junit.xml"
    # The tree is what the controller journals; the other tests here upload it live.
    result, tree = recorded_by_replay(
        pytester, store, "-n", workers, "--dist", dist, f"--junitxml={junit}"
    )
    per_test = 2 if dist == "each" else 1
    result.assert_outcomes(
        passed=4 * per_test, failed=1 * per_test, skipped=1 * per_test, xfailed=1 * per_test
    )

    assert len(tree.level("session")) == 1
    assert sorted(tree.modules) == ["tests/test_data.py", "tests/test_model.py"]
    tests = tree.level("test")
    assert len(tests) == len(OUTCOMES) * per_test
    assert len(tree.runs) == 1 + 2 + len(OUTCOMES) * per_test
    session = tree.session
    for run in tests:
        module = tree.modules[run.data.tags["pytest.nodeid"].split("::")[0]]
        assert run.data.tags["mlflow.parentRunId"] == module.info.run_id
        assert run.data.tags["mlflow.rootRunId"] == session.info.run_id
        assert run.data.tags["pytest.worker"].startswith("gw")
        # Params travel from the workers with the rest.
        if run.data.tags["pytest.nodeid"] == "tests/test_model.py::test_accuracy[3]":
            assert run.data.params == {"depth": "3"}
    assert {run.info.status for run in tree.runs} == {"FINISHED", "FAILED"}
    # Each test's place in pytest's order, from the workers' collection: test_data.py first.
    index = {
        r.data.tags["pytest.nodeid"]: int(r.data.tags["pytest.collection_index"]) for r in tests
    }
    assert sorted(index, key=index.__getitem__) == [*list(OUTCOMES)[4:], *list(OUTCOMES)[:4]]
    assert sorted(set(index.values())) == list(range(len(OUTCOMES)))

    recorded: dict[str, list[tuple[str, float]]] = defaultdict(list)
    for run in tests:
        tags = run.data.tags
        recorded[tags["pytest.nodeid"]].append(
            (tags["pytest.outcome"], run.data.metrics["pytest/duration"])
        )
    reported = _junit(junit)
    assert sorted(recorded) == sorted(OUTCOMES) == sorted(reported)
    for nodeid, runs in recorded.items():
        assert [o for o, _ in runs] == [OUTCOMES[nodeid]] * per_test
        # junitxml writes seconds with 3 decimals.
        ours = sorted(round(seconds, 3) for _, seconds in runs)
        theirs = sorted(seconds for _, seconds in reported[nodeid])
        assert ours == pytest.approx(theirs, abs=0.0015), nodeid

    counts = result.parseoutcomes()
    for name in ("passed", "failed", "skipped", "xfailed"):
        assert session.data.metrics[f"pytest/{name}"] == counts[name], name
    assert session.data.metrics["pytest/tests"] == len(OUTCOMES) * per_test
    assert session.info.status == "FAILED"

    if dist == "each":
        # One run per test and worker, told apart by name, worker tag and run key.
        fails = [
            r for r in tests if r.data.tags["pytest.nodeid"] == "tests/test_model.py::test_fails"
        ]
        assert sorted(r.data.tags["pytest.worker"] for r in fails) == ["gw0", "gw1"]
        assert sorted(r.info.run_name for r in fails) == ["test_fails [gw0]", "test_fails [gw1]"]
        assert len({r.data.tags["pytest.run_key"] for r in tests}) == len(tests)


def test_a_crashed_workers_test_is_a_failed_run_with_the_crash_message(
    pytester: pytest.Pytester, record: Record
) -> None:
    pytester.makepyfile(
        test_crash="""
            import os

            def test_before():
                pass

            def test_dies():
                os._exit(1)

            def test_after():
                pass
        """
    )
    result, tree = record("-n", "2")
    result.assert_outcomes(passed=2, failed=1)
    run = tree.tests["test_crash.py::test_dies"]
    assert run.info.status == "FAILED"
    assert run.data.tags["pytest.outcome"] == "failed"
    assert run.data.tags["pytest.worker"].startswith("gw")
    failure = tree.artifact(run, "failure.txt")
    assert "crashed while running 'test_crash.py::test_dies'" in failure
    assert tree.session.data.metrics["pytest/failed"] == 1
    assert tree.modules["test_crash.py"].info.status == "FAILED"
    assert len(tree.level("test")) == 3


def test_under_xdist_a_module_run_closes_when_its_last_test_ran(
    pytester: pytest.Pytester, record: Record
) -> None:
    """Not at the session's end: the other module's test watches the journal for it."""
    pytester.makepyfile(
        test_first="""
            def test_quick():
                pass
        """,
        test_second="""
            import time
            from pathlib import Path

            def test_waits_for_the_other_module_to_close():
                journals = Path("journal")
                for _ in range(200):
                    text = "".join(p.read_text() for p in journals.glob("*.jsonl"))
                    if '"kind":"close","key":"test_first.py"' in text:
                        return
                    time.sleep(0.05)
                raise AssertionError("test_first.py's run is still open")
        """,
    )
    result, tree = record(
        "-n", "2", "--dist", "loadfile", "--mlflow-tree-journal-dir=journal", live=True
    )
    result.assert_outcomes(passed=2)
    assert tree.modules["test_first.py"].info.status == "FINISHED"


def test_only_ctrl_c_itself_counts_as_ctrl_c() -> None:
    from pytest_mlflow_tree.record.reporter import is_ctrl_c

    xdist_interrupted = pytest.importorskip("xdist.dsession").Interrupted

    assert is_ctrl_c(KeyboardInterrupt())
    # How pytest (collection errors, -x) and xdist's controller (-x) stop a session.
    assert not is_ctrl_c(pytest.Session.Interrupted("stopping after 1 failures"))
    assert not is_ctrl_c(xdist_interrupted("stopping after 1 failures"))


STOPS_EARLY = {
    "test_a_fails": """
        def test_fails():
            assert False, "the first failure stops the session"
    """,
    "test_b_more": """
        import pytest

        @pytest.mark.parametrize("n", range(20))
        def test_more(n):
            pass
    """,
}


@pytest.mark.parametrize("xdist", [(), ("-n", "2")], ids=["plain", "xdist"])
def test_x_stops_the_session_as_failed_not_killed(
    pytester: pytest.Pytester, record: Record, xdist: tuple[str, ...]
) -> None:
    """``-x`` is no Ctrl-C: under xdist as without it, the runs are FAILED, none KILLED."""
    pytester.makepyfile(**STOPS_EARLY)
    result, tree = record("-p", "no:randomly", "-x", *xdist)
    assert result.ret != pytest.ExitCode.OK
    assert result.parseoutcomes()["failed"] == 1
    assert tree.session.info.status == "FAILED"
    assert tree.modules["test_a_fails.py"].info.status == "FAILED"
    assert tree.tests["test_a_fails.py::test_fails"].info.status == "FAILED"
    cut = [r.info.run_name for r in tree.runs if r.info.status in ("KILLED", "RUNNING")]
    assert cut == []
