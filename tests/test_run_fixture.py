"""Tests log into their own runs: the ``mlflow_run`` fixture, ``record_property``, ``check``."""

from __future__ import annotations

import json
from typing import Any

import pytest
from conftest import BOTH_STORES, Record, Store

SUITE = """
    import json
    import math

    import pytest

    def test_training_curve(mlflow_run, tmp_path):
        for epoch, loss in enumerate([0.9, 0.5, 0.3]):
            mlflow_run.log_metric("loss", loss, step=epoch)
        mlflow_run.log_metrics({"accuracy": 0.93, "f1": 0.91})
        mlflow_run.log_param("model", "random_forest")
        mlflow_run.log_params({"depth": 8, "trees": 100})
        mlflow_run.set_tag("slice", "all")
        mlflow_run.set_tags({"dataset": "breast-cancer", "owner": "ml-team"})
        mlflow_run.log_text("# report\\nall good", "reports/summary.md")
        mlflow_run.log_dict({"classes": ["malignant", "benign"]}, "classes.json")
        local = tmp_path / "confusion.csv"
        local.write_text("49,4\\n2,88\\n")
        mlflow_run.log_artifact(local, "tables")

    def test_logged_before_failing(mlflow_run):
        mlflow_run.log_metric("recall", 0.925)
        assert 0.925 >= 0.95, "recall too low"

    def test_properties(record_property):
        record_property("latency_ms", 12.5)
        record_property("rows", 20000)
        record_property("model_version", "v3")
        record_property("ok", True)
        record_property("duration", 0.25)

    def test_threshold_holds(mlflow_run):
        mlflow_run.check("auc", 0.99, ">=", 0.98)

    def test_threshold_fails(mlflow_run):
        mlflow_run.check("accuracy", 0.873, ">=", 0.9)

    def test_odd_values(mlflow_run):
        mlflow_run.log_metric("bad key [x]", 1.0)
        mlflow_run.log_metric("nan", math.nan)
        mlflow_run.log_metric("k" * 300, 2.0)
        mlflow_run.log_param("long", "x" * 7000)
        mlflow_run.log_param("depth", 99)

    @pytest.mark.parametrize("depth", [3])
    def test_param_clash(mlflow_run, depth):
        mlflow_run.log_param("depth", 99)
"""


def _history(store: Store, run: Any, key: str) -> list[tuple[int, float]]:
    history = store.client().get_metric_history(run.info.run_id, key)
    return sorted((m.step, m.value) for m in history)


@BOTH_STORES
def test_what_tests_log_lands_in_their_runs(
    pytester: pytest.Pytester, record: Record, store: Store
) -> None:
    pytester.makepyfile(test_model=SUITE)
    result, tree = record()
    result.assert_outcomes(passed=5, failed=2)
    tests = tree.tests

    run = tests["test_model.py::test_training_curve"]
    assert _history(store, run, "loss") == [(0, 0.9), (1, 0.5), (2, 0.3)]
    assert run.data.metrics["accuracy"] == 0.93
    assert run.data.metrics["f1"] == 0.91
    assert "pytest/duration" in run.data.metrics
    assert run.data.params == {"model": "random_forest", "depth": "8", "trees": "100"}
    assert run.data.tags["slice"] == "all"
    assert run.data.tags["dataset"] == "breast-cancer"
    assert run.data.tags["pytest.outcome"] == "passed"
    assert tree.artifact(run, "reports/summary.md") == "# report\nall good"
    assert json.loads(tree.artifact(run, "classes.json")) == {"classes": ["malignant", "benign"]}
    assert tree.artifact(run, "tables/confusion.csv") == "49,4\n2,88\n"

    failed = tests["test_model.py::test_logged_before_failing"]
    assert failed.info.status == "FAILED"
    assert failed.data.metrics["recall"] == 0.925
    assert "failure.txt" in tree.artifacts(failed)

    props = tests["test_model.py::test_properties"].data
    assert props.metrics["latency_ms"] == 12.5
    assert props.metrics["rows"] == 20000
    assert props.tags["pytest.property.model_version"] == "v3"
    assert props.tags["pytest.property.ok"] == "True"
    # The plugin's own metrics are under pytest/: a property named like one is a metric too.
    assert props.metrics["duration"] == 0.25
    assert "pytest.property.duration" not in props.tags
    assert props.metrics["pytest/duration"] >= 0

    holds = tests["test_model.py::test_threshold_holds"]
    assert holds.data.metrics["auc"] == 0.99
    assert holds.data.metrics["auc.threshold"] == 0.98
    assert holds.data.tags["auc.verdict"] == "pass"
    fails = tests["test_model.py::test_threshold_fails"]
    assert fails.info.status == "FAILED"
    assert fails.data.metrics["accuracy"] == 0.873
    assert fails.data.metrics["accuracy.threshold"] == 0.9
    assert fails.data.tags["accuracy.verdict"] == "fail"
    assert "accuracy = 0.873, expected >= 0.9" in tree.artifact(fails, "failure.txt")
    result.stdout.fnmatch_lines(["*AssertionError: accuracy = 0.873, expected >= 0.9*"])


def test_bad_keys_and_values_are_made_valid_not_fatal(
    pytester: pytest.Pytester, record: Record, store: Store
) -> None:
    pytester.makepyfile(test_model=SUITE)
    result, tree = record("-k", "odd or clash")
    result.assert_outcomes(passed=2)
    odd = tree.tests["test_model.py::test_odd_values"]
    metrics = odd.data.metrics
    assert any(k.startswith("bad key _x_-") for k in metrics), metrics
    assert str(metrics["nan"]) == "nan"
    assert any(k.startswith("k" * 200) and len(k) <= 250 for k in metrics)
    assert odd.data.params["long"].startswith("x" * 100)
    assert len(odd.data.params["long"]) <= 6000
    full = json.loads(tree.artifact(odd, "pytest-mlflow-tree/full-values.json"))
    assert full["params"]["long"] == "x" * 7000
    assert "bad key [x]" in full["metrics"]
    # Parametrization wins over a value the test logged under the same name.
    clash = tree.tests["test_model.py::test_param_clash[3]"]
    assert clash.data.params == {"depth": "3"}


def test_under_xdist_values_travel_from_the_workers(
    pytester: pytest.Pytester, record: Record
) -> None:
    pytest.importorskip("xdist")
    pytester.makepyfile(
        test_model=SUITE,
        test_plain="""
        import sys

        def test_buffered_without_mlflow(mlflow_run):
            mlflow_run.log_metric("accuracy", 0.97)
            # Workers are fresh processes, unlike this one, which imported mlflow long ago.
            assert "mlflow" not in sys.modules
        """,
    )
    result, tree = record("-n", "2", "-k", "curve or properties or failing or without_mlflow")
    result.assert_outcomes(passed=3, failed=1)
    assert (
        tree.tests["test_plain.py::test_buffered_without_mlflow"].data.metrics["accuracy"] == 0.97
    )
    run = tree.tests["test_model.py::test_training_curve"]
    assert run.data.tags["pytest.worker"].startswith("gw")
    assert run.data.metrics["loss"] == 0.3
    assert run.data.params["trees"] == "100"
    assert tree.artifact(run, "tables/confusion.csv") == "49,4\n2,88\n"
    assert tree.tests["test_model.py::test_properties"].data.metrics["rows"] == 20000
    assert tree.tests["test_model.py::test_logged_before_failing"].data.metrics["recall"] == 0.925


def test_without_recording_the_fixture_still_checks(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_model=SUITE)
    result = pytester.runpytest("-p", "no:randomly")
    result.assert_outcomes(passed=5, failed=2)
    result.stdout.fnmatch_lines(["*AssertionError: accuracy = 0.873, expected >= 0.9*"])
    assert not (pytester.path / "mlflow.db").exists()


def test_a_figure_is_logged(pytester: pytest.Pytester, record: Record) -> None:
    pytest.importorskip("matplotlib")
    pytester.makepyfile(
        test_plot="""
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        def test_roc(mlflow_run):
            figure, axes = plt.subplots()
            axes.plot([0, 0.1, 1], [0, 0.9, 1])
            mlflow_run.log_figure(figure, "plots/roc.png")
            plt.close(figure)
        """
    )
    result, tree = record()
    result.assert_outcomes(passed=1)
    run = tree.tests["test_plot.py::test_roc"]
    assert [a.path for a in tree.client.list_artifacts(run.info.run_id, "plots")] == [
        "plots/roc.png"
    ]


def test_many_steps_respect_the_batch_limits(pytester: pytest.Pytester, record: Record) -> None:
    pytester.makepyfile(
        test_long="""
        def test_long_history(mlflow_run):
            for step in range(1500):
                mlflow_run.log_metric("loss", 1.0 / (step + 1), step=step)
            mlflow_run.log_params({f"p{i}": i for i in range(150)})
        """
    )
    result, tree = record()
    result.assert_outcomes(passed=1)
    run = tree.tests["test_long.py::test_long_history"]
    assert len(tree.client.get_metric_history(run.info.run_id, "loss")) == 1500
    assert len(run.data.params) == 150
