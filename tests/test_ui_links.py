"""The links the plugin writes for the MLflow UI, read back from a real store.

A failing session's description and its failing modules' descriptions link each failure to
its test run with ``failure.txt`` open; every test run's description links to the runs table
filtered on its node id, a filter MLflow's search finds the test's runs with in every session.
(``test_mlflow_ui.py`` follows the same links in a browser.)
"""

from __future__ import annotations

from urllib.parse import parse_qs, unquote, urlsplit

import pytest
from conftest import Record, Store

from pytest_mlflow_tree.model import links

SUITE = {
    "tests/unit/test_io.py": """
        import pytest

        @pytest.mark.parametrize("x", ["a-b", "it's", "é", "'\\""])
        def test_param(x):
            assert x == "a-b", "not a-b"

        def test_ok():
            pass
    """,
    "tests/test_io.py": """
        def test_fail():
            raise ValueError("boom")
    """,
}
NOTE = "mlflow.note.content"


def link_targets(note: str) -> dict[str, str]:
    """The failures a description links, by name: {name: target}."""
    found = {}
    for line in note.splitlines():
        if line.startswith("- [`"):
            name, _, rest = line[4:].partition("`](")
            found[name] = rest.split(")", 1)[0]
    return found


def search_filter(path: str) -> str:
    query = parse_qs(urlsplit(path.removeprefix("#")).query)
    return unquote(query["searchFilter"][0])


@pytest.mark.parametrize("escaped", [True, False], ids=["pytest-escaped", "raw-unicode"])
def test_descriptions_link_failures_to_their_tracebacks_and_tests_to_their_history(
    pytester: pytest.Pytester, record: Record, store: Store, escaped: bool
) -> None:
    pytester.makepyfile(**SUITE)
    if not escaped:
        pytester.makeini(
            "[pytest]\ndisable_test_id_escaping_and_forfeit_all_rights_to_community_support = true"
        )
    # Two modules named test_io.py: pytest imports them by path.
    record("-p", "no:randomly", "--import-mode=importlib")
    result, tree = record("-p", "no:randomly", "--import-mode=importlib")
    result.assert_outcomes(passed=2, failed=4)
    client = store.client()
    sessions = sorted(tree.level("session"), key=lambda r: r.info.start_time)
    session = sessions[-1]
    experiment = session.info.experiment_id
    uuid = session.data.tags["pytest.session_uuid"]
    tests = {
        r.data.tags["pytest.nodeid"]: r
        for r in tree.level("test")
        if r.data.tags["pytest.session_uuid"] == uuid
    }
    failing = {nodeid: run for nodeid, run in tests.items() if "::test_ok" not in nodeid}
    failing = {n: r for n, r in failing.items() if "a-b" not in n}
    assert len(failing) == 4

    # Module runs: the file first, then its folder; the path in the nodeid tag.
    modules = {
        r.info.run_name: r
        for r in tree.level("module")
        if r.data.tags["pytest.session_uuid"] == uuid
    }
    assert sorted(modules) == ["test_io.py (tests)", "test_io.py (tests/unit)"]
    assert modules["test_io.py (tests/unit)"].data.tags["pytest.nodeid"] == "tests/unit/test_io.py"

    # The session's description starts with its failures, each linked to its traceback.
    note = session.data.tags[NOTE]
    assert note.startswith("- [`")
    expected = {
        nodeid: links.artifact_path(experiment, run.info.run_id, "failure.txt")
        for nodeid, run in failing.items()
    }
    assert link_targets(note) == expected
    for nodeid, run in failing.items():
        module_note = client.get_run(run.data.tags["mlflow.parentRunId"]).data.tags[NOTE]
        assert link_targets(module_note)[nodeid] == expected[nodeid]
        assert module_note.startswith("- [`")

    # Every test links to its runs in every session: the filter finds both sessions' runs.
    for nodeid, run in tests.items():
        history = run.data.tags[NOTE]
        path = history[history.index("](") + 2 : history.index(")", history.index("](") + 2)]
        assert path == links.history_path(experiment, nodeid)
        found = client.search_runs([experiment], search_filter(path), max_results=10)
        assert sorted(r.data.tags["pytest.session_uuid"] for r in found) == sorted(
            s.data.tags["pytest.session_uuid"] for s in sessions
        ), nodeid
        assert {r.data.tags["pytest.nodeid"] for r in found} == {nodeid}
