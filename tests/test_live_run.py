"""A test that asks for ``mlflow_live_run`` gets its own run active in MLflow's fluent API."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
from conftest import BOTH_STORES, Record, Store

SUITE = """
    import os
    import time

    import mlflow
    import pytest

    # One file per xdist worker: two processes creating one SQLite store at once corrupt it.
    WORKER = os.environ.get("PYTEST_XDIST_WORKER", "main")
    USER_URI = "sqlite:///" + os.path.abspath(f"user-{WORKER}.db")
    USER_ENV = []

    @pytest.fixture(scope="module")
    def user_run():
        # The user's own MLflow setup: a run that stays active around the tests.
        mlflow.set_tracking_uri(USER_URI)
        # MLflow 3 also exports the URI to the environment, MLflow 2 does not.
        USER_ENV.append(os.environ.get("MLFLOW_TRACKING_URI"))
        run = mlflow.start_run(run_name="user run")
        yield run
        mlflow.end_run()
        # pytester runs this suite inside the plugin's own test process: leave it as found.
        mlflow.set_tracking_uri(None)
        os.environ.pop("MLFLOW_TRACKING_URI", None)

    @pytest.fixture
    def earlier(request):
        # Set up before mlflow_live_run: the millisecond it writes is over before the live run
        # is created, so a run that starts at its creation starts after it.
        now = time.time_ns() // 1_000_000
        for _ in range(1_000_000):
            if time.time_ns() // 1_000_000 != now:
                break
        with open(f"earlier-{request.node.name}.txt", "w") as file:
            file.write(str(now))

    @pytest.mark.parametrize("fold", range(PARALLEL))
    def test_fluent(user_run, earlier, mlflow_live_run, fold):
        active = mlflow.active_run()
        assert active.info.run_id == mlflow_live_run.info.run_id != user_run.info.run_id
        mlflow.log_metric("accuracy", 0.9 + fold / 100)
        mlflow.log_metrics({"loss": 0.1, "f1": 0.8})
        mlflow.log_param("model", "random_forest")
        mlflow.set_tag("stage", "validation")
        mlflow.log_dict({"fold": fold}, "fold.json")
        # A run of its own left open inside the test: ended for it afterwards.
        if fold == 0:
            mlflow.start_run(run_name="left open", nested=True)

    def test_failing(user_run, mlflow_live_run, mlflow_run):
        mlflow.log_metric("recall", 0.925)
        mlflow_run.log_metric("buffered", 1.0)
        assert 0.925 >= 0.95, "recall too low"

    def test_user_state_is_back(user_run):
        assert mlflow.active_run().info.run_id == user_run.info.run_id
        assert mlflow.get_tracking_uri() == USER_URI
        assert os.environ.get("MLFLOW_TRACKING_URI") == USER_ENV[0]
        assert "MLFLOW_EXPERIMENT_ID" not in os.environ
"""


def _suite(parallel: int) -> str:
    return SUITE.replace("PARALLEL", str(parallel))


def _assert_started_with_the_test(run: Any, directory: Path) -> None:
    """The live run starts when its test did, before the fixtures set up ahead of it."""
    earlier = int((directory / f"earlier-{run.info.run_name}.txt").read_text())
    assert run.info.start_time <= earlier <= run.info.end_time


@BOTH_STORES
def test_fluent_calls_land_in_the_tests_own_run(
    pytester: pytest.Pytester, record: Record, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The suite runs in this process but not under xdist: its user store is user-main.db even
    # when this test runs on an xdist worker.
    monkeypatch.delenv("PYTEST_XDIST_WORKER", raising=False)
    pytester.makepyfile(test_live=_suite(8))
    result, tree = record("-p", "no:randomly")
    result.assert_outcomes(passed=9, failed=1)
    module = tree.modules["test_live.py"]
    tests = tree.level("test")
    # One run per test: the live runs were completed, not duplicated.
    assert len(tests) == 10
    assert {t.data.tags["pytest.nodeid"] for t in tests} == set(tree.tests)
    for fold in range(8):
        run = tree.tests[f"test_live.py::test_fluent[{fold}]"]
        assert run.info.status == "FINISHED"
        assert run.data.metrics["accuracy"] == pytest.approx(0.9 + fold / 100)
        assert run.data.metrics["f1"] == 0.8
        assert "pytest/duration" in run.data.metrics
        assert run.data.params == {"model": "random_forest", "fold": str(fold)}
        assert run.data.tags["stage"] == "validation"
        assert run.data.tags["mlflow.parentRunId"] == module.info.run_id
        assert run.data.tags["mlflow.rootRunId"] == tree.session.info.run_id
        assert run.data.tags["pytest.outcome"] == "passed"
        assert run.info.run_name == f"test_fluent[{fold}]"
        _assert_started_with_the_test(run, pytester.path)
        assert tree.artifact(run, "fold.json")
    failed = tree.tests["test_live.py::test_failing"]
    assert failed.info.status == "FAILED"
    assert failed.data.metrics["recall"] == 0.925
    assert failed.data.metrics["buffered"] == 1.0
    assert "failure.txt" in tree.artifacts(failed)
    # The run the test left open is ended, and none of the tree went to the user's store.
    left_open = [r for r in tree.runs if r.info.run_name == "left open"]
    assert [r.info.status for r in left_open] == ["FINISHED"]
    user = Store(uri=f"sqlite:///{pytester.path / 'user-main.db'}").client()
    user_runs = user.search_runs([e.experiment_id for e in user.search_experiments()])
    assert [(r.info.run_name, r.info.status) for r in user_runs] == [("user run", "FINISHED")]
    assert tree.session.info.status == "FAILED"
    assert module.data.metrics["pytest/tests"] == 10
    # The report shows what tests logged into their live runs, which only the store holds.
    report = tree.artifact(tree.session, "report.html")
    assert '<span class="metric">recall <b>0.925</b></span>' in report


def test_live_runs_from_xdist_workers(pytester: pytest.Pytester, record: Record) -> None:
    pytest.importorskip("xdist")
    pytester.makepyfile(test_live=_suite(2))
    result, tree = record("-n", "2")
    result.assert_outcomes(passed=3, failed=1)
    tests = tree.level("test")
    assert len(tests) == 4
    run = tree.tests["test_live.py::test_fluent[1]"]
    assert run.data.tags["pytest.worker"].startswith("gw")
    _assert_started_with_the_test(run, pytester.path)
    assert run.data.metrics["accuracy"] == pytest.approx(0.91)
    assert run.data.tags["mlflow.rootRunId"] == tree.session.info.run_id


def test_without_recording_the_run_is_thrown_away(
    pytester: pytest.Pytester, migrated_db: Path
) -> None:
    """The test runs with its run active, in a store of its own that is gone after the test;
    the user's own MLflow configuration is as before and gets nothing."""
    pytester.makepyfile(
        test_plain="""
        import os

        import mlflow

        USER_URI = os.environ["MLFLOW_TRACKING_URI"]

        def test_live(mlflow_live_run):
            assert mlflow.active_run().info.run_id == mlflow_live_run.info.run_id
            assert mlflow.get_tracking_uri() != USER_URI
            mlflow.log_metric("accuracy", 0.97)
            mlflow.log_dict({"threshold": 0.5}, "threshold.json")

        def test_user_state_is_back():
            assert os.environ["MLFLOW_TRACKING_URI"] == USER_URI
            assert "MLFLOW_ALLOW_FILE_STORE" not in os.environ
        """
    )
    shutil.copy(migrated_db, pytester.path / "own.db")
    uri = f"sqlite:///{pytester.path / 'own.db'}"
    pytester._monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    result = pytester.runpytest("-p", "no:randomly")
    result.assert_outcomes(passed=2)
    # Looked at first: MLflow 2's SQL store makes ./mlruns where a client opens it.
    assert not (pytester.path / "mlruns").exists()
    client = Store(uri=uri).client()
    assert client.search_runs([e.experiment_id for e in client.search_experiments()]) == []


def test_resumed_live_run_replaces_the_old_one(pytester: pytest.Pytester, store: Store) -> None:
    pytester.makepyfile(
        test_live="""
        import os
        import mlflow

        def test_model(mlflow_live_run):
            mlflow.log_metric("accuracy", 0.97 if os.path.exists("fixed") else 0.8)
            assert os.path.exists("fixed")
        """
    )
    pytester.runpytest(*store.args()).assert_outcomes(failed=1)
    session = store.tree().session
    (pytester.path / "fixed").write_text("")
    resumed = pytester.runpytest(*store.args(), "--lf", "--mlflow-tree-resume", session.info.run_id)
    resumed.assert_outcomes(passed=1)
    tree = store.tree()
    assert len(tree.level("test")) == 1
    run = tree.tests["test_live.py::test_model"]
    assert run.data.metrics["accuracy"] == 0.97
    assert run.info.status == "FINISHED"
    assert run.data.tags["pytest.session_uuid"] == session.data.tags["pytest.session_uuid"]
    assert tree.session.info.status == "FINISHED"
