"""Which copy of a run is kept, and how the tree is re-pointed before the others go."""

from __future__ import annotations

from typing import Any

from paging_client import PagingClient, run

from pytest_mlflow_tree.upload.duplicates import remove, resolve

PARENT_TAG = "mlflow.parentRunId"
ROOT_TAG = "mlflow.rootRunId"


class Client(PagingClient):
    """Records the tags set and the runs deleted."""

    def __init__(self, runs: list[Any] | None = None) -> None:
        super().__init__(runs or [])
        self.tagged: list[tuple[str, str, str]] = []
        self.deleted: list[str] = []

    def set_tag(self, run_id: str, key: str, value: str) -> None:
        self.tagged.append((run_id, key, value))

    def delete_run(self, run_id: str) -> None:
        self.deleted.append(run_id)


def direct(function: Any, *args: Any, **kwargs: Any) -> Any:
    return function(*args, **kwargs)


def copy(run_id: str, key: str, status: str = "FINISHED", **tags: str) -> Any:
    return run(run_id, status, **{"pytest.run_key": key, **tags})


def ids(runs: list[Any]) -> list[str]:
    return [r.info.run_id for r in runs]


def test_runs_without_copies_are_left_alone() -> None:
    client = Client()
    runs = [copy("a", "t.py::a"), copy("b", "t.py::b"), run("c"), run("d")]
    assert resolve(client, runs, direct) is runs
    assert (client.tagged, client.deleted) == ([], [])


def test_a_finished_copy_is_kept_over_a_running_one() -> None:
    client = Client()
    runs = [copy("z", "t.py::a", "RUNNING"), copy("a", "t.py::a", "FINISHED")]
    assert ids(resolve(client, runs, direct)) == ["a"]
    assert client.deleted == ["z"]


def test_the_copy_with_more_data_is_kept() -> None:
    client = Client()
    fuller = copy("a", "t.py::a")
    fuller.data.metrics["pytest/duration"] = 1.0
    assert ids(resolve(client, [copy("z", "t.py::a"), fuller], direct)) == ["a"]


def test_the_copy_runs_point_at_is_kept_over_a_finished_fuller_one() -> None:
    client = Client()
    pointed_at = copy("a", "t.py", "RUNNING")
    fuller = copy("z", "t.py", "FINISHED", extra="1")
    child = copy("c", "t.py::x", **{PARENT_TAG: "a"})
    assert ids(resolve(client, [fuller, pointed_at, child], direct)) == ["a", "c"]
    assert client.deleted == ["z"]


def test_between_equal_copies_the_larger_run_id_wins_whatever_the_order() -> None:
    for order in (["b", "a", "c"], ["c", "b", "a"]):
        client = Client()
        assert ids(resolve(client, [copy(i, "k") for i in order], direct)) == ["c"]
        assert sorted(client.deleted) == ["a", "b"]


def test_runs_pointing_at_a_deleted_copy_are_pointed_at_its_keeper() -> None:
    client = Client()
    session = copy("s", "<session>")
    # Two copies of a module; the test's copies point one at each.
    module_kept = copy("m2", "t.py", extra="1", **{PARENT_TAG: "s", ROOT_TAG: "s"})
    module_gone = copy("m1", "t.py", **{PARENT_TAG: "s", ROOT_TAG: "s"})
    test_kept = copy("t2", "t.py::a", extra="1", **{PARENT_TAG: "m1", ROOT_TAG: "s"})
    test_gone = copy("t1", "t.py::a", **{PARENT_TAG: "m2", ROOT_TAG: "s"})
    runs = [test_kept, test_gone, module_kept, module_gone, session]
    kept = resolve(client, runs, direct)
    assert ids(kept) == ["t2", "m2", "s"]
    assert client.tagged == [("t2", PARENT_TAG, "m2")]
    assert test_kept.data.tags[PARENT_TAG] == "m2"
    assert sorted(client.deleted) == ["m1", "t1"]


def test_the_session_copy_its_modules_point_at_is_kept() -> None:
    client = Client()
    runs = [
        copy("s1", "<session>", extra="1"),
        copy("s2", "<session>"),
        copy("m", "t.py", **{PARENT_TAG: "s2", ROOT_TAG: "s2"}),
    ]
    assert ids(resolve(client, runs, direct)) == ["s2", "m"]
    assert client.tagged == []
    assert client.deleted == ["s1"]


def test_a_kept_root_tag_pointing_at_a_deleted_session_copy_is_moved() -> None:
    client = Client()
    runs = [
        copy("s1", "<session>"),
        copy("s2", "<session>"),
        copy("m", "t.py", **{PARENT_TAG: "s2", ROOT_TAG: "s1"}),
    ]
    resolve(client, runs, direct)
    assert client.tagged == [("m", ROOT_TAG, "s2")]
    assert client.deleted == ["s1"]


def test_every_call_goes_through_the_callers_wrapper() -> None:
    client = Client()
    calls: list[str] = []

    def call(function: Any, *args: Any, **kwargs: Any) -> Any:
        calls.append(function.__name__)
        return function(*args, **kwargs)

    runs = [copy("a", "k"), copy("b", "k"), copy("c", "x", **{ROOT_TAG: "a"})]
    resolve(client, runs, call)
    assert calls == ["set_tag", "delete_run"]


def test_remove_searches_the_sessions_runs_and_counts_the_copies_deleted() -> None:
    runs = [copy(f"r{n}", f"k{n % 3}") for n in range(7)]
    client = Client(runs)
    assert remove(client, "1", "uuid-1", direct) == 4
    assert len(client.requests) == 1
    assert client.requests[0].filter_string == "tags.`pytest.session_uuid` = 'uuid-1'"
    assert sorted(client.deleted) == ["r0", "r1", "r2", "r3"]
