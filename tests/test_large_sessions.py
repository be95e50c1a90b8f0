"""Sessions of thousands of tests: the terminal view stays short, pytest's reports stay light."""

from __future__ import annotations

import pytest
from conftest import Store

from pytest_mlflow_tree.read import readback, terminal_tree

MODULES = 100
PER_MODULE = 50
# (module index, test index) of the failing tests.
FAILING = {(7, 3), (7, 41), (63, 0)}


def synthetic_session() -> readback.Session:
    """5,000 tests in 100 modules, 3 failing: the objects ``show`` renders, built directly."""
    failure = "def test():\n>       assert score > 0.9\nE       assert 0.71 > 0.9\n"
    session = readback.Session(
        run_id="0" * 32,
        experiment_id="1",
        name="pytest 2026-11-28 10:04:31",
        status="FAILED",
        start_ms=1_790_000_000_000,
        end_ms=1_790_000_300_000,
        tracking_uri="sqlite:///mlflow.db",
        metrics={"pytest/duration": 300.0},
    )
    for m in range(MODULES):
        path = f"tests/test_part{m:03}.py"
        module = readback.Module(path, f"{m:032x}", "FINISHED")
        for t in range(PER_MODULE):
            bad = (m, t) in FAILING
            nodeid = f"{path}::test_case[{t}]"
            module.tests.append(
                readback.Test(
                    nodeid=nodeid,
                    name=f"test_case[{t}]",
                    module=path,
                    outcome="failed" if bad else "passed",
                    status="FAILED" if bad else "FINISHED",
                    duration=0.001 * (t + 1) + m,
                    start_ms=1_790_000_000_000 + m * 1000 + t,
                    run_id=f"{m * 1000 + t:032x}",
                    params={"case": str(t)},
                    _load_failure=lambda _run_id: failure,
                )
            )
        if any(mm == m for mm, _ in FAILING):
            module.status = "FAILED"
        session.modules.append(module)
    return session


def test_show_of_5000_tests_is_short_and_lists_the_failures_first() -> None:
    session = synthetic_session()
    assert len(session.tests) == MODULES * PER_MODULE

    lines = list(terminal_tree.render(session))

    assert len(lines) < 60, "\n".join(lines)
    assert "5000 tests: 3 failed, 4997 passed" in lines[0]
    body = lines[4:]
    # The failing modules and tests come first, each failure with its E line.
    assert body[0].startswith("FAILED  tests/test_part007.py  2 failed, 48 passed")
    assert body[1].split()[:2] == ["FAILED", "test_case[3]"]
    assert body[2].strip() == "E       assert 0.71 > 0.9"
    assert body[3].split()[:2] == ["FAILED", "test_case[41]"]
    assert body[5] == "  + 48 passed (--all lists them)"
    assert body[6].startswith("FAILED  tests/test_part063.py  1 failed, 49 passed")
    failing = [line for line in body if line.lstrip().startswith("FAILED")]
    assert len(failing) == 5
    first_ok = next(i for i, line in enumerate(body) if line.startswith("ok "))
    assert all(body.index(line) < first_ok for line in failing)
    # Then passing modules, one line each up to a limit, the rest in one line.
    listed = [line for line in body if line.startswith("ok      tests/")]
    assert len(listed) == terminal_tree.PASSING_MODULES
    rest = MODULES - 2 - terminal_tree.PASSING_MODULES
    assert f"ok      + {rest} more modules  {rest * PER_MODULE} passed (--all lists them)" in body
    assert "test_case[0]" not in "\n".join(body[first_ok:]).split("slowest")[0]

    everything = list(terminal_tree.render(session, show_all=True, slowest=0))
    assert sum("test_case[" in line for line in everything) == MODULES * PER_MODULE


def test_the_reports_pytest_keeps_carry_nothing_of_the_plugin_once_recorded(
    pytester: pytest.Pytester, store: Store
) -> None:
    """pytest keeps every report to the end of the session: what the plugin put on one for the
    recorder must not stay there, or a large session keeps it all alive (and every full garbage
    collection, which lands inside some test's phase, walks it)."""
    pytester.makeconftest(
        """
        import pytest

        @pytest.hookimpl(trylast=True)
        def pytest_terminal_summary(terminalreporter):
            kept = [r for reports in terminalreporter.stats.values() for r in reports]
            left = [r.nodeid for r in kept if "mlflow_tree" in getattr(r, "__dict__", {})]
            terminalreporter.write_line(f"reports kept: {len(kept)}, carrying item info: {left}")
        """
    )
    pytester.makepyfile(
        test_recorded="""
        import pytest

        @pytest.mark.parametrize("depth", [2, 4])
        def test_depth(depth):
            pass
        """
    )
    result = pytester.runpytest(*store.args())
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["reports kept: 6, carrying item info: []"])
    # What the info carried is recorded all the same.
    tests = store.tree().tests
    assert tests["test_recorded.py::test_depth[2]"].data.params == {"depth": "2"}
