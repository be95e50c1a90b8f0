"""Facts about the whole session on the session run: the ``mlflow_session`` fixture."""

from __future__ import annotations

import datetime

import pytest
from conftest import Record, Store

from pytest_mlflow_tree.read import Reader

CONFTEST = """
    import pytest

    @pytest.fixture(scope="session", autouse=True)
    def model_under_test(mlflow_session, request):
        mlflow_session.log_param("model_version", "v3")
        mlflow_session.log_params({"dataset": "breast-cancer"})
        mlflow_session.set_tag("dataset_sha", "abc123")
        mlflow_session.log_metric("dataset_rows", 20000)
        mlflow_session.log_text("trained on breast-cancer", "model/card.md")
        # Not $PYTEST_XDIST_WORKER: an in-process run may be on a worker of the outer session.
        worker = getattr(request.config, "workerinput", {}).get("workerid", "main")
        mlflow_session.log_text(f"ran on {worker}", f"workers/{worker}.txt")
        # A step per process: MLflow keeps one point of equal key, value, step and time.
        mlflow_session.log_metric("processes", 1.0, step=0 if worker == "main" else int(worker[2:]))
        yield "v3"
        # After the last test: finalizers log too.
        mlflow_session.log_metric("torn_down", 1.0)
"""

TESTS = """
    import pytest

    @pytest.mark.parametrize("case", range(6))
    def test_case(case, mlflow_session):
        mlflow_session.log_metric("cases_seen", 1.0, step=case)
"""

XDIST = pytest.mark.parametrize("xdist", [(), ("-n", "2")], ids=["in-process", "xdist"])


def _with_xdist(xdist: tuple[str, ...]) -> tuple[str, ...]:
    if xdist:
        pytest.importorskip("xdist")
    return xdist


@XDIST
def test_what_the_session_logs_lands_on_the_session_run(
    pytester: pytest.Pytester, record: Record, store: Store, xdist: tuple[str, ...]
) -> None:
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(test_model=TESTS)
    result, tree = record(*_with_xdist(xdist), live=True)
    result.assert_outcomes(passed=6)
    assert "WARNING" not in result.stdout.str()

    session = tree.session
    processes = 2 if xdist else 1
    assert session.data.params == {"model_version": "v3", "dataset": "breast-cancer"}
    assert session.data.tags["dataset_sha"] == "abc123"
    assert session.data.tags["pytest.level"] == "session"
    assert session.data.metrics["dataset_rows"] == 20000
    assert session.data.metrics["torn_down"] == 1.0
    history = store.client().get_metric_history(session.info.run_id, "processes")
    assert sorted(m.step for m in history) == list(range(processes))
    seen = store.client().get_metric_history(session.info.run_id, "cases_seen")
    assert sorted(m.step for m in seen) == list(range(6))
    assert session.data.metrics["pytest/passed"] == 6  # the plugin's own metrics are still there
    assert tree.artifact(session, "model/card.md") == "trained on breast-cancer"
    workers = ["gw0", "gw1"] if xdist else ["main"]
    for worker in workers:
        assert tree.artifact(session, f"workers/{worker}.txt") == f"ran on {worker}"
    assert "session-conflicts.txt" not in tree.artifacts(session)
    for test in tree.tests.values():
        assert "model_version" not in test.data.params
        assert "cases_seen" not in test.data.metrics

    read = Reader(store.uri).last_session()
    assert read.run_id == session.info.run_id
    assert read.params == {"model_version": "v3", "dataset": "breast-cancer"}
    assert read.tags["dataset_sha"] == "abc123"
    assert read.metrics["dataset_rows"] == 20000
    an_aware_utc_time_of(read.start, session.info.start_time)
    an_aware_utc_time_of(read.end, session.info.end_time)
    for test in read.tests:
        run = tree.tests[test.nodeid]
        an_aware_utc_time_of(test.start, run.info.start_time)
        an_aware_utc_time_of(test.end, run.info.end_time)


def an_aware_utc_time_of(value: datetime.datetime | None, ms: int) -> None:
    assert value is not None
    assert value.utcoffset() == datetime.timedelta(0)
    assert value == datetime.datetime.fromtimestamp(ms / 1000, tz=datetime.timezone.utc)


def test_values_two_workers_disagree_on_keep_the_first_and_are_reported(
    pytester: pytest.Pytester, record: Record, store: Store
) -> None:
    pytest.importorskip("xdist")
    pytester.makeconftest(
        """
        import os

        import pytest

        @pytest.fixture(scope="session", autouse=True)
        def per_worker(mlflow_session):
            worker = os.environ["PYTEST_XDIST_WORKER"]
            mlflow_session.log_param("model_version", "v3")
            mlflow_session.log_param("worker", worker)
            mlflow_session.set_tag("host", worker)
            mlflow_session.log_text(f"written by {worker}", "notes.txt")
        """
    )
    pytester.makepyfile(test_model=TESTS)
    result, tree = record("-n", "2")
    result.assert_outcomes(passed=6)
    assert result.ret == 0

    expected = [
        "the session run's param 'worker' was logged with different values: "
        "'gw0' (gw0), 'gw1' (gw1); kept 'gw0'",
        "the session run's tag 'host' was logged with different values: "
        "'gw0' (gw0), 'gw1' (gw1); kept 'gw0'",
        "the session run's artifact 'notes.txt' was logged with different contents by "
        "gw0, gw1; kept gw0's",
    ]
    result.stdout.fnmatch_lines([f"mlflow-tree: WARNING: {line}" for line in expected])
    session = tree.session
    assert session.data.params == {"model_version": "v3", "worker": "gw0"}
    assert session.data.tags["host"] == "gw0"
    assert tree.artifact(session, "notes.txt") == "written by gw0"
    assert tree.artifact(session, "session-conflicts.txt").splitlines() == expected


def test_a_param_logged_again_with_another_value_keeps_the_first(
    pytester: pytest.Pytester, record: Record
) -> None:
    pytester.makepyfile(
        test_model="""
        def test_logs_twice(mlflow_session):
            mlflow_session.log_param("threshold", 0.9)
            mlflow_session.log_param("threshold", 0.9)
            mlflow_session.log_param("threshold", 0.8)
            mlflow_session.set_tag("stage", "start")
            mlflow_session.set_tag("stage", "done")
        """
    )
    result, tree = record()
    result.assert_outcomes(passed=1)

    result.stdout.fnmatch_lines(
        [
            "mlflow-tree: WARNING: the session run's param 'threshold' was logged with "
            "different values: '0.9', '0.8'; kept '0.9'"
        ]
    )
    assert tree.session.data.params == {"threshold": "0.9"}
    # Tags change within one process as MLflow's do: the last value.
    assert tree.session.data.tags["stage"] == "done"


def test_without_recording_the_session_fixture_takes_everything_and_keeps_nothing(
    pytester: pytest.Pytester, store: Store
) -> None:
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(test_model=TESTS)
    result = pytester.runpytest("-p", "no:randomly")
    result.assert_outcomes(passed=6)
    assert "mlflow-tree:" not in result.stdout.str()
    assert not (pytester.path / ".pytest_cache" / "d" / "mlflow-tree").exists()
    assert not (pytester.path / "mlflow.db").exists()
    assert not (pytester.path / "mlruns").exists()
