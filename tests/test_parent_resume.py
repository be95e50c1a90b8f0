"""Sessions attach to an existing run (--mlflow-tree-parent) and continue (--mlflow-tree-resume)."""

from __future__ import annotations

import pytest
from conftest import BOTH_STORES, Store
from replaying import replayed

from pytest_mlflow_tree import cli

SUITE = {
    "test_quality": """
        import os

        def test_accuracy():
            assert True

        def test_recall():
            assert os.path.exists("fixed"), "recall 0.925 < 0.95"
    """,
    "test_serving": """
        def test_latency():
            assert True
    """,
}


def _training_runs(store: Store, experiment: str) -> tuple[str, str, str]:
    """A tuning sweep (root) with a training run under it, the way MLflow users nest them:
    ``mlflow.parentRunId`` only (open-source MLflow sets no ``mlflow.rootRunId``)."""
    client = store.client()
    found = client.get_experiment_by_name(experiment)
    experiment_id = found.experiment_id if found else client.create_experiment(experiment)
    sweep = client.create_run(experiment_id, run_name="tuning sweep").info.run_id
    training = client.create_run(
        experiment_id, run_name="training", tags={"mlflow.parentRunId": sweep}
    ).info.run_id
    return experiment_id, sweep, training


@BOTH_STORES
def test_the_session_hangs_under_the_parent_and_the_root_is_the_true_root(
    pytester: pytest.Pytester, store: Store
) -> None:
    pytester.makepyfile(**SUITE)
    experiment = store.experiment or "models"
    experiment_id, sweep, training = _training_runs(store, experiment)
    result = replayed(pytester, store, "--mlflow-tree-parent", training)
    result.assert_outcomes(passed=2, failed=1)
    assert result.ret == 1
    # Without a named experiment the session goes to its parent's (on the server the store
    # names one, the parent's as well).
    tree = store.tree(experiment)
    session = tree.session
    assert session.info.experiment_id == experiment_id
    assert session.data.tags["mlflow.parentRunId"] == training
    below = [*tree.level("module"), *tree.level("test")]
    assert len(below) == 5
    for run in [session, *below]:
        assert run.data.tags["mlflow.rootRunId"] == sweep, run.info.run_name
    assert {r.info.run_name for r in tree.children(session)} == {
        "test_quality.py",
        "test_serving.py",
    }
    # The report covers the session's runs though they share the parent's root.
    report = tree.artifact(session, "report.html")
    for run in below:
        assert f"/runs/{run.info.run_id}" in report, run.info.run_name


def test_a_named_experiment_wins_over_the_parents(
    pytester: pytest.Pytester, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makepyfile(**SUITE)
    _, _, training = _training_runs(store, "models")
    monkeypatch.setenv("PYTEST_MLFLOW_TREE_PARENT_RUN_ID", training)
    result = replayed(pytester, store, "--mlflow-tree-experiment", "validation")
    result.assert_outcomes(passed=2, failed=1)
    session = store.tree("validation").session
    assert session.data.tags["mlflow.parentRunId"] == training
    assert session.data.tags["mlflow.rootRunId"] != training  # the sweep above it


def test_a_missing_parent_fails_the_upload_not_the_tests(
    pytester: pytest.Pytester, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makepyfile(**SUITE)
    monkeypatch.setenv("PYTEST_MLFLOW_TREE_PARENT_RUN_ID", "0" * 32)
    result = pytester.runpytest(*store.args())
    result.assert_outcomes(passed=2, failed=1)
    assert result.ret == 1
    result.stdout.fnmatch_lines(
        [
            "mlflow-tree: WARNING: the upload failed: --mlflow-tree-parent '000*': no such run*"
            "replay with --parent RUN_ID*The journal is kept*"
        ]
    )
    journals = list((pytester.path / ".pytest_cache").rglob("*.jsonl"))
    assert len(journals) == 1
    assert cli.main(["replay", str(journals[0]), "--parent", ""]) == 0
    session = store.tree().session
    assert "mlflow.parentRunId" not in session.data.tags


@BOTH_STORES
def test_resume_replaces_rerun_tests_and_recounts(pytester: pytest.Pytester, store: Store) -> None:
    pytester.makepyfile(**SUITE)
    first = replayed(pytester, store)
    first.assert_outcomes(passed=2, failed=1)
    before = store.tree()
    session = before.session
    old = before.tests
    assert session.data.metrics["pytest/failed"] == 1

    (pytester.path / "fixed").write_text("")
    again = replayed(pytester, store, "--lf", "--mlflow-tree-resume", session.info.run_id)
    again.assert_outcomes(passed=1)
    after = store.tree()
    assert after.session.info.run_id == session.info.run_id
    assert len(after.level("module")) == 2
    tests = after.tests
    assert sorted(tests) == sorted(old)
    recall = tests["test_quality.py::test_recall"]
    old_recall = old["test_quality.py::test_recall"]
    assert recall.info.run_id != old_recall.info.run_id
    assert recall.info.status == "FINISHED"
    assert recall.data.tags["pytest.replaced_run_id"] == old_recall.info.run_id
    assert recall.data.tags["mlflow.parentRunId"] == after.modules["test_quality.py"].info.run_id
    client = store.client()
    assert client.get_run(old_recall.info.run_id).info.lifecycle_stage == "deleted"
    for kept in ("test_quality.py::test_accuracy", "test_serving.py::test_latency"):
        assert tests[kept].info.run_id == old[kept].info.run_id
    module = after.modules["test_quality.py"]
    assert module.info.status == "FINISHED"
    assert module.data.metrics["pytest/tests"] == 2
    assert module.data.metrics["pytest/passed"] == 2
    assert module.data.metrics["pytest/failed"] == 0
    final = after.session
    assert final.info.status == "FINISHED"
    assert (final.data.metrics["pytest/tests"], final.data.metrics["pytest/passed"]) == (3, 3)
    assert final.data.metrics["pytest/failed"] == 0
    assert final.data.metrics["pytest/pass_rate"] == 1.0
    assert "3 passed" in final.data.tags["mlflow.note.content"]
    # The journal held one test; the report shows all three, each linked to its current run.
    report = after.artifact(final, "report.html")
    for nodeid, run in tests.items():
        assert f'data-nodeid="{nodeid}"' in report
        assert f"/runs/{run.info.run_id}" in report
    assert old_recall.info.run_id not in report
    uuid = final.data.tags["pytest.session_uuid"]
    assert f"session_uuid%20%3D%20%27{uuid}%27" in final.data.tags["mlflow.note.content"]


def test_resume_of_a_run_that_is_no_session_says_so(
    pytester: pytest.Pytester, store: Store
) -> None:
    pytester.makepyfile(**SUITE)
    _, _, training = _training_runs(store, "models")
    result = pytester.runpytest(*store.args(), "--mlflow-tree-resume", training)
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(
        ["*WARNING: the upload failed: --mlflow-tree-resume*not a session*"]
    )
