"""The descriptions' links: failures to their runs' tracebacks, a test to its history."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from pytest_mlflow_tree.model import links
from pytest_mlflow_tree.model.limits import Limits
from pytest_mlflow_tree.model.names import NOTE
from pytest_mlflow_tree.model.records import module_run_name
from pytest_mlflow_tree.model.summary import Tally
from pytest_mlflow_tree.read import description
from pytest_mlflow_tree.read.readback import Module, Session, Test


def a_test(nodeid: str, outcome: str, run_id: str | None) -> Test:
    return Test(
        nodeid, nodeid.split("::")[-1], nodeid.split("::")[0], outcome, "", 0.1, None, None, run_id
    )


def a_session(status: str = "FAILED") -> Session:
    tally = Tally(tests=3, counts={"passed": 1, "failed": 2})
    tally.add_failure("t/a.py::test_x[it's]", "AssertionError: x")
    tally.add_failure("t/b.py::test_y sub [i=1]", "ValueError: y")
    tests = [
        a_test("t/a.py::test_x[it's]", "failed", "run1"),
        a_test("t/a.py::test_ok", "passed", "run2"),
        a_test("t/b.py::test_y", "failed", "run3"),
    ]
    module_a = Module("t/a.py", "mod1", "FAILED", tags={NOTE: "old"}, tests=tests[:2])
    module_a.tags[NOTE] = Tally(failures=tally.failures[:1]).markdown("t/a.py", 0.1)
    module_b = Module("t/b.py", None, "FAILED", tags={NOTE: "b"}, tests=tests[2:])
    return Session(
        "sess",
        "7",
        "pytest",
        status,
        None,
        None,
        "sqlite:///m.db",
        tags={NOTE: tally.markdown("pytest session", 1.0)},
        modules=[module_a, module_b],
    )


def test_the_session_description_starts_with_its_failures_each_a_link_to_its_traceback() -> None:
    note = description.note(a_session(), "uuid", Limits())
    lines = note.splitlines()
    assert lines[0] == (
        "- [`t/a.py::test_x[it's]`](#/experiments/7/runs/run1/artifacts/failure.txt)"
        ": AssertionError: x"
    )
    # A failed subtest links to its test's run.
    assert lines[1] == (
        "- [`t/b.py::test_y sub [i=1]`](#/experiments/7/runs/run3/artifacts/failure.txt)"
        ": ValueError: y"
    )
    assert lines[3] == "**2 failed**, 1 passed in 1.00 s · pytest session"
    assert "[failing runs only]" in lines[5]


def test_a_module_description_links_its_failures_and_a_module_without_a_run_is_left() -> None:
    notes = description.module_notes(a_session(), Limits())
    assert list(notes) == ["mod1"]
    assert (
        notes["mod1"]
        .splitlines()[0]
        .startswith("- [`t/a.py::test_x[it's]`](#/experiments/7/runs/run1/artifacts/failure.txt)")
    )


def test_a_failure_without_a_run_stays_plain_text() -> None:
    note = "- `gone.py::test_z`: boom\n- `t/a.py::test_ok`\nplain"
    target = description.failure_targets("7", [a_test("t/a.py::test_ok", "failed", None)])
    assert description.linked(note, target) == note


def test_artifact_links_quote_the_path() -> None:
    assert (
        links.artifact_path("1", "r", "dir/a b.txt")
        == "#/experiments/1/runs/r/artifacts/dir/a%20b.txt"
    )


@pytest.mark.parametrize(
    ("nodeid", "expected"),
    [
        ("t.py::test_a[1-2]", "tags.pytest.nodeid = 't.py::test_a[1-2]'"),
        ("t.py::test_a[it's]", 'tags.pytest.nodeid = "t.py::test_a[it\'s]"'),
        ("t.py::test_a[\\xe9]", "tags.pytest.nodeid = 't.py::test_a[\\xe9]'"),
        ("t.py::test_a[é]", "tags.pytest.nodeid = 't.py::test_a[é]'"),
        ("t.py::test_a['\"]", "tags.pytest.nodeid LIKE 't.py::test_a[_\"]'"),
    ],
)
def test_the_history_filter_quotes_the_node_id_as_mlflow_can(nodeid: str, expected: str) -> None:
    assert links.nodeid_filter(nodeid) == expected


def test_the_history_link_opens_charts_of_the_test_newest_first_unnested() -> None:
    path = links.history_path("3", "t.py::test_a[it's]")
    assert path.startswith("#/experiments/3/runs?")
    query = {k: v[0] for k, v in parse_qs(urlsplit(path.removeprefix("#")).query).items()}
    assert query == {
        "searchFilter": links.nodeid_filter("t.py::test_a[it's]"),
        # Any key but the start time: the UI then lists the runs flat, not under their modules.
        "orderByKey": "attributes.end_time",
        "orderByAsc": "false",
        "compareRunsMode": "CHART",
    }
    assert f"]({path})" in (description.history_note("3", "t.py::test_a[it's]", 8000) or "")


@pytest.mark.parametrize(
    ("path", "name"),
    [
        ("tests/unit/test_io.py", "test_io.py (tests/unit)"),
        ("tests/test_io.py", "test_io.py (tests)"),
        ("test_io.py", "test_io.py"),
        ("tests/pkg/", "pkg (tests)"),
        ("", ""),
    ],
)
def test_module_run_names_put_the_file_first(path: str, name: str) -> None:
    assert module_run_name(path) == name


def test_a_history_link_survives_a_node_id_without_a_utf8_form() -> None:
    assert links.history_path("1", "t.py::test_a[\udc80]").startswith("#/experiments/1/runs?")


def test_no_history_link_for_a_node_id_too_long_for_a_tag() -> None:
    nodeid = "t.py::test_a[" + "x" * 200 + "]"
    note = description.history_note("1", nodeid, 8000)
    assert note is not None
    assert description.history_note("1", nodeid, len(note)) == note
    assert description.history_note("1", nodeid, len(note) - 1) is None
