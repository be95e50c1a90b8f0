"""A session read back from runs that span several pages of ``search_runs``."""

from __future__ import annotations

from typing import Any

import pytest
from paging_client import PagingClient, run

from pytest_mlflow_tree.model.searchpages import PAGE_SIZE
from pytest_mlflow_tree.read.readback import Module, Reader, SessionNotFound, Test, in_order

ROOT = "root"


class SessionClient(PagingClient):
    """The session's runs in pages, and its session run by id."""

    def __init__(self, root: Any, runs: list[Any]) -> None:
        super().__init__(runs)
        self.root = root

    def get_run(self, run_id: str) -> Any:
        if run_id != self.root.info.run_id:
            raise LookupError(run_id)
        return self.root


def tags_of_module(path: str) -> dict[str, str]:
    return {
        "pytest.level": "module",
        "pytest.nodeid": path,
        "mlflow.parentRunId": ROOT,
        "mlflow.rootRunId": ROOT,
    }


def tags_of_test(nodeid: str, module_run: str) -> dict[str, str]:
    return {
        "pytest.level": "test",
        "pytest.nodeid": nodeid,
        "pytest.outcome": "passed",
        "mlflow.parentRunId": module_run,
        "mlflow.rootRunId": ROOT,
    }


def session_of(tests: int, modules: int = 3) -> SessionClient:
    """A session of ``tests`` test runs over ``modules`` module runs, newest first."""
    module_runs = [run(f"m{m}", **tags_of_module(f"tests/test_{m}.py")) for m in range(modules)]
    test_runs = []
    for i in range(tests):
        test = run(
            f"t{i}", **tags_of_test(f"tests/test_{i % modules}.py::test_{i:04}", f"m{i % modules}")
        )
        test.info.start_time = 1_790_000_000_000 + i
        test_runs.append(test)
    root = run(ROOT, **{"pytest.level": "session", "mlflow.runName": "session"})
    return SessionClient(root, [*reversed(test_runs), *module_runs])


def test_a_session_over_more_runs_than_a_page_holds_is_read_whole() -> None:
    total = 1500
    assert total > PAGE_SIZE
    client = session_of(total)
    session = Reader("sqlite://", client=client).session(ROOT)
    assert [r.page_token for r in client.requests] == [None, str(PAGE_SIZE)]
    assert {r.max_results for r in client.requests} == {PAGE_SIZE}
    assert client.requests[0].filter_string == f"tags.mlflow.rootRunId = '{ROOT}'"
    assert len({t.run_id for t in session.tests}) == total
    assert [len(m.tests) for m in session.modules] == [total // 3] * 3
    assert session.modules[0].tests[0].nodeid == "tests/test_0.py::test_0000"
    assert session.modules[2].tests[-1].nodeid == "tests/test_2.py::test_1499"


def test_the_reader_pages_in_the_size_it_was_given() -> None:
    client = session_of(10)
    session = Reader("sqlite://", client=client, page_size=4).session(ROOT)
    assert [r.page_token for r in client.requests] == [None, "4", "8", "12"]
    assert len(session.tests) == 10


def test_a_test_whose_module_run_is_missing_gets_a_module_of_its_own() -> None:
    client = session_of(4, modules=2)
    client.runs = [r for r in client.runs if r.info.run_id != "m1"]
    session = Reader("sqlite://", client=client).session(ROOT)
    assert [(m.path, m.run_id, len(m.tests)) for m in session.modules] == [
        ("tests/test_0.py", "m0", 2),
        ("tests/test_1.py", None, 2),
    ]


def test_a_run_that_is_not_a_session_is_refused() -> None:
    client = session_of(1)
    client.root.data.tags["pytest.level"] = "module"
    with pytest.raises(SessionNotFound, match="not a pytest session run"):
        Reader("sqlite://", client=client).session(ROOT)
    with pytest.raises(SessionNotFound, match="no run 'other'"):
        Reader("sqlite://", client=client).session("other")


def test_tests_are_in_pytests_order_even_when_they_start_within_one_millisecond() -> None:
    module = Module("tests/test_folds.py", "m", "FINISHED")
    # Listed by the store in another order; all started in the same millisecond.
    for fold in (10, 9, 2, 0):
        module.tests.append(_test(f"tests/test_folds.py::test_fold[{fold}]", index=fold))
    first = Module("tests/test_a.py", "a", "FINISHED", tests=[_test("tests/test_a.py::t", 11)])
    modules = in_order([first, module])
    assert [m.path for m in modules] == ["tests/test_folds.py", "tests/test_a.py"]
    assert [t.name for t in modules[0].tests] == [
        "test_fold[0]",
        "test_fold[2]",
        "test_fold[9]",
        "test_fold[10]",
    ]


def test_tests_recorded_without_their_place_are_in_the_order_they_started() -> None:
    module = Module("tests/test_folds.py", "m", "FINISHED")
    for start, fold in enumerate((9, 10, 1)):
        module.tests.append(_test(f"tests/test_folds.py::test_fold[{fold}]", start=start))
    assert [t.name for t in in_order([module])[0].tests] == [
        "test_fold[9]",
        "test_fold[10]",
        "test_fold[1]",
    ]


def _test(nodeid: str, index: int | None = None, start: int = 1_790_000_000_000) -> Test:
    return Test(
        nodeid=nodeid,
        name=nodeid.split("::")[-1],
        module=nodeid.split("::")[0],
        outcome="passed",
        status="FINISHED",
        duration=0.001,
        start_ms=start,
        index=index,
    )
