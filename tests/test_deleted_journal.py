"""A test that deletes ``.pytest_cache`` (tests of tools do) loses nothing of the session.

The journal, its uploader's status and its directory live there by default. The journal is
held open by both processes; pytest writes it back where it was once the tests are over, and
every message it prints about it is true.
"""

from __future__ import annotations

import pytest
from conftest import Record, Store
from replaying import assert_recorded_once, plugin_lines, replay

WAITING = """
    import glob
    import json
    import sqlite3
    import time

    def wait_for(condition):
        for _ in range(2400):  # bounded: 120 s
            if condition():
                return
            time.sleep(0.05)
        raise AssertionError("the condition was not met")

    def uploader_ready():
        for path in glob.glob(".pytest_cache/d/mlflow-tree/*.status.json"):
            try:
                with open(path) as file:
                    return bool(json.load(file).get("ready_at"))
            except (OSError, ValueError):
                pass
        return False

    def uploaded(name):
        with sqlite3.connect("file:{database}?mode=ro", uri=True) as db:
            query = "select count(*) from runs where name = ? and status = 'FINISHED'"
            return db.execute(query, (name,)).fetchone()[0] == 1
"""
DELETES_THE_CACHE = """
    import glob
    import shutil

    from waiting import uploaded, uploader_ready, wait_for

    def test_before():
        pass

    def test_deletes_the_cache():
        # Once the uploader is at work (its status file written every half second), the
        # session's journal and status file are in there.
        wait_for(uploader_ready)
        assert glob.glob(".pytest_cache/d/mlflow-tree/*.jsonl")
        shutil.rmtree(".pytest_cache")

    def test_after():
        # The uploader goes on without its directory, and does not make it again.
        wait_for(lambda: uploaded("test_deletes_the_cache"))
        assert not glob.glob(".pytest_cache/d/mlflow-tree/*")
"""
NODEIDS = [
    "test_tool.py::test_before",
    "test_tool.py::test_deletes_the_cache",
    "test_tool.py::test_after",
    "test_other.py::test_other",
]
# Under xdist the controller writes the journal, a worker deletes it; loadfile keeps the order.
XDIST = ["-n", "2", "--dist", "loadfile"]


@pytest.mark.parametrize("xdist", [[], XDIST], ids=["in-process", "xdist"])
def test_a_test_deleting_the_cache_loses_no_run_and_the_upload_succeeds(
    pytester: pytest.Pytester, store: Store, record: Record, xdist: list[str]
) -> None:
    if xdist:
        pytest.importorskip("xdist")
    pytester.makepyfile(
        waiting=WAITING.format(database=store.path),
        test_tool=DELETES_THE_CACHE,
        test_other="def test_other(): pass",
    )
    result, tree = record("-p", "no:randomly", *xdist, live=True)
    result.assert_outcomes(passed=4)
    lines = plugin_lines(result.outlines)
    assert "mlflow-tree: session run " in lines[-1]
    assert not [line for line in lines if "WARNING" in line], lines
    assert_recorded_once(tree.runs, NODEIDS)
    assert {run.info.status for run in tree.runs} == {"FINISHED"}
    # Uploaded: the journal written back for the upload's sake is deleted as usual.
    assert not list(pytester.path.glob(".pytest_cache/d/mlflow-tree/*"))


def test_a_journal_only_session_whose_cache_is_deleted_names_a_journal_that_replays_whole(
    pytester: pytest.Pytester, store: Store
) -> None:
    pytester.makepyfile(
        test_tool="""
            import shutil

            def test_before():
                pass

            def test_deletes_the_cache():
                shutil.rmtree(".pytest_cache")

            def test_after():
                pass
        """,
        test_other="def test_other(): pass",
    )
    result = pytester.runpytest("-p", "no:randomly", *store.args(), "--mlflow-tree-journal-only")
    result.assert_outcomes(passed=4)
    lines = plugin_lines(result.outlines)
    assert len(lines) == 1, lines
    assert "journal written to " in lines[0]
    journal = pytester.path / lines[0].split("journal written to ", 1)[1].split()[0]
    assert journal.is_file()

    code, _, err = replay(str(journal))
    assert code == 0, err
    tree = store.tree()
    assert_recorded_once(tree.runs, NODEIDS)
    assert tree.session.info.status == "FINISHED"
