"""The Python read-back API: a recorded session as objects and as a DataFrame."""

from __future__ import annotations

import importlib.util
from typing import Any

import pytest
from conftest import Record, Store, Tree

from pytest_mlflow_tree.read import readback

SUITE = {
    "tests/test_model.py": """
        import pytest

        @pytest.mark.parametrize("depth", [2, 3, 5])
        def test_accuracy(depth):
            assert depth > 1

        def test_fails():
            assert 0.7 > 0.9, "accuracy too low"

        @pytest.mark.skip(reason="no gpu here")
        def test_gpu():
            pass
    """,
    "tests/test_data.py": """
        def test_load():
            pass

        class TestSchema:
            def test_columns(self):
                pass
    """,
}


@pytest.fixture
def suite(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makepyfile(**{path.removesuffix(".py"): body for path, body in SUITE.items()})
    return pytester


def test_one_recording_reads_back_whole_and_page_by_page(
    suite: pytest.Pytester, record: Record, store: Store
) -> None:
    result, tree = record()
    result.assert_outcomes(passed=5, failed=1, skipped=1)

    a_session_reads_back_as_modules_and_tests(tree, store)
    pages_of_runs_are_all_read(store)


def a_session_reads_back_as_modules_and_tests(tree: Tree, store: Store) -> None:
    session = readback.Reader(store.uri).last_session()

    assert session.run_id == tree.session.info.run_id
    assert session.status == "FAILED"
    assert session.url.endswith(f"/runs/{session.run_id}")
    # In the order they ran.
    assert [m.path for m in session.modules] == ["tests/test_data.py", "tests/test_model.py"]
    data, model = session.modules
    assert model.status == "FAILED"
    assert model.run_id == tree.modules["tests/test_model.py"].info.run_id
    assert model.counts() == {"passed": 3, "failed": 1, "skipped": 1}
    assert data.counts() == {"passed": 2}
    tests = {t.nodeid: t for t in session.tests}
    assert sorted(tests) == sorted(tree.tests)
    for nodeid, test in tests.items():
        assert test.run_id == tree.tests[nodeid].info.run_id
        assert test.duration is not None
        assert test.duration >= 0
        assert test.module == nodeid.split("::")[0]
    assert tests["tests/test_model.py::test_accuracy[3]"].params == {"depth": "3"}
    assert tests["tests/test_model.py::test_gpu"].outcome == "skipped"
    assert [t.nodeid for t in session.failures] == ["tests/test_model.py::test_fails"]
    failure = session.failures[0].failure()
    assert failure is not None
    assert "accuracy too low" in failure
    assert tests["tests/test_data.py::test_load"].failure() is None


def pages_of_runs_are_all_read(store: Store) -> None:
    """A page smaller than the session proves the page_token loop: 50,000 runs work alike."""
    whole = readback.Reader(store.uri).last_session()
    client = store.client()
    tokens: list[str | None] = []
    search_runs = client.search_runs

    def counted(*args: Any, **kwargs: Any) -> Any:
        if kwargs.get("max_results") == 2:
            tokens.append(kwargs.get("page_token"))
        return search_runs(*args, **kwargs)

    client.search_runs = counted
    paged = readback.Reader(store.uri, client=client, page_size=2).last_session()

    # 2 modules and 7 tests under the session: 5 pages, each asked for with the last one's token.
    assert len(tokens) == 5
    assert tokens[0] is None
    assert len(set(tokens[1:])) == 4
    assert all(tokens[1:])
    assert len(whole.tests) == 7
    assert [t.nodeid for t in paged.tests] == [t.nodeid for t in whole.tests]
    assert [m.path for m in paged.modules] == [m.path for m in whole.modules]


def test_a_session_as_a_dataframe(suite: pytest.Pytester, record: Record, store: Store) -> None:
    pytest.importorskip("pandas")
    _, tree = record()
    test_run = tree.tests["tests/test_model.py::test_accuracy[5]"]
    # What a test that logs its own metrics leaves on its run.
    store.client().log_metric(test_run.info.run_id, "accuracy", 0.93)
    store.client().set_tag(test_run.info.run_id, "accuracy.verdict", "pass")

    frame = readback.load_session(tree.session.info.run_id, store.uri).to_frame()

    assert len(frame) == 7
    by_nodeid = frame.set_index("nodeid")
    row = by_nodeid.loc["tests/test_model.py::test_accuracy[5]"]
    assert row["params.depth"] == "5"
    assert row["metrics.accuracy"] == pytest.approx(0.93)
    assert row["outcome"] == "passed"
    assert row["run_id"] == test_run.info.run_id
    assert by_nodeid.loc["tests/test_model.py::test_fails", "outcome"] == "failed"
    assert "metrics.duration" not in frame.columns  # durations are their own columns
    assert (frame["duration"] >= 0).all()
    assert row["tags.accuracy.verdict"] == "pass"
    assert (
        by_nodeid.loc["tests/test_model.py::test_gpu", "tags.pytest.skip_reason"] == "no gpu here"
    )
    assert not [c for c in frame.columns if c.startswith(("tags.mlflow.", "tags.pytest.run_key"))]
    for column in ("start_time", "end_time"):
        assert str(frame[column].dt.tz) == "UTC"
    started = frame.set_index("run_id").loc[test_run.info.run_id, "start_time"]
    assert started.value // 1_000_000 == test_run.info.start_time


def test_the_newest_session_and_errors_for_what_is_not_a_session(
    suite: pytest.Pytester, record: Record, store: Store
) -> None:
    record()
    suite.makepyfile(**{"tests/test_data": "def test_load():\n    pass\n"})
    _, tree = record()
    reader = readback.Reader(store.uri)
    newest = max(tree.level("session"), key=lambda run: run.info.start_time)

    assert reader.last_session().run_id == newest.info.run_id
    assert len(reader.session_ids(last=5)) == 2
    assert [len(s.tests) for s in reader.sessions(last=2)] == [7, 6]  # oldest first
    if importlib.util.find_spec("pandas") is not None:
        history = reader.history(last=2)
        oldest, newest_id = [s.run_id for s in reader.sessions(last=2)]
        assert list(history.columns) == [oldest, newest_id]
        assert history.loc["tests/test_model.py::test_fails"].tolist() == ["failed", "failed"]
        assert history.loc["tests/test_data.py::TestSchema::test_columns"].isna().tolist() == [
            False,
            True,
        ]
    module = tree.level("module")[0]
    with pytest.raises(readback.SessionNotFound, match="not a pytest session run"):
        reader.session(module.info.run_id)
    with pytest.raises(readback.SessionNotFound, match="no experiment"):
        reader.last_session("no-such-experiment")
