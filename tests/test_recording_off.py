"""Recording turned off, each way it can be: a suite that uses the fixtures runs and passes,
what they log goes nowhere, and one line says so."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import Store
from replaying import plugin_lines

from pytest_mlflow_tree.record.run_fixture import RunLog
from pytest_mlflow_tree.record.settings import resolve

SUITE = """
    import mlflow

    def test_values(mlflow_run, tmp_path):
        mlflow_run.log_metric("accuracy", 0.97)
        mlflow_run.log_params({"trees": 100})
        mlflow_run.set_tag("data", "v2")
        mlflow_run.log_text("a report", "reports/slice.md")
        (tmp_path / "confusion.csv").write_text("49,4\\n2,88\\n")
        mlflow_run.log_artifact(tmp_path / "confusion.csv", "tables")
        mlflow_run.check("accuracy", 0.97, ">=", 0.9)

    def test_live(mlflow_live_run):
        assert mlflow.active_run().info.run_id == mlflow_live_run.info.run_id
        mlflow.log_metric("roc_auc", 0.99)
        mlflow.log_param("threshold", 0.5)
        mlflow.log_dict({"threshold": 0.5}, "threshold.json")
"""
# Writes, when pytest is done, which mlflow modules the pytest process has imported.
CONFTEST = """
    import json
    import sys

    def pytest_unconfigure(config):
        names = sorted(n for n in sys.modules if n == "mlflow" or n.startswith("mlflow."))
        with open("mlflow-modules.json", "w") as file:
            json.dump(names, file)
"""
# The ways to turn recording off: (whether the ini file turns it on, the command line).
WAYS = {
    "--no-mlflow-tree over the ini": (True, ("--no-mlflow-tree",)),
    "--no-mlflow-tree over --mlflow-tree": (False, ("--no-mlflow-tree", "--mlflow-tree")),
    "-p no:mlflow_tree": (True, ("-p", "no:mlflow_tree")),
    "-o mlflow_tree=false": (True, ("-o", "mlflow_tree=false")),
}
REASONS = {
    "--no-mlflow-tree over the ini": "--no-mlflow-tree",
    "--no-mlflow-tree over --mlflow-tree": "--no-mlflow-tree",
    "-p no:mlflow_tree": "-p no:mlflow_tree",
    "-o mlflow_tree=false": "neither --mlflow-tree nor mlflow_tree = true",
}
NOTICE = (
    "mlflow-tree: not recording ({}): what {} logged through mlflow_run or mlflow_live_run "
    "went nowhere"
)


@pytest.fixture
def project(pytester: pytest.Pytester, store: Store) -> pytest.Pytester:
    """The suite, in a project whose ini file records into ``store`` when recording is on."""
    pytester.makepyfile(test_model=SUITE)
    pytester.makeconftest(CONFTEST)
    return pytester


def ini(store: Store, *, recording: bool, warnings_as_errors: bool = False) -> str:
    lines = ["[pytest]", f"mlflow_tree_tracking_uri = {store.uri}"]
    if recording:
        lines.append("mlflow_tree = true")
    if warnings_as_errors:
        lines.append("filterwarnings = error")
    return "\n".join(lines) + "\n"


def assert_nothing_written(project: pytest.Pytester, store: Store) -> None:
    """No run in the store the project records into, and no store, journal or artifacts where
    pytest ran (where MLflow's own configuration would put a run)."""
    # Looked at first: MLflow 2's SQL store makes ./mlruns where a client opens it.
    created = {path.name for path in project.path.iterdir()}
    assert not {name for name in created if name.startswith(("mlflow.db", "mlruns", "mlartifacts"))}
    assert not (project.path / ".pytest_cache" / "d" / "mlflow-tree").exists()
    client = store.client()
    experiments = client.search_experiments()
    assert [e.name for e in experiments] == ["Default"]
    assert client.search_runs([e.experiment_id for e in experiments]) == []


@pytest.mark.parametrize("way", WAYS)
def test_each_way_off_runs_the_suite_and_writes_nothing(
    way: str, project: pytest.Pytester, store: Store
) -> None:
    recording, args = WAYS[way]
    project.makeini(ini(store, recording=recording))

    result = project.runpytest("-p", "no:randomly", *args)

    result.assert_outcomes(passed=2)
    assert plugin_lines(result.stdout.lines) == [NOTICE.format(REASONS[way], "2 tests")]
    assert_nothing_written(project, store)


@pytest.mark.parametrize("way", WAYS)
def test_each_way_off_passes_with_warnings_as_errors(
    way: str,
    project: pytest.Pytester,
    store: Store,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """In a fresh process, where MLflow warns what it warns once per process; the ini file
    turns warnings into errors, as ``-W error`` does, before any plugin is configured."""
    recording, args = WAYS[way]
    project.makeini(ini(store, recording=recording, warnings_as_errors=True))
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setenv("TMPDIR", str(scratch))

    result = project.runpytest_subprocess("-p", "no:randomly", *args, timeout=240)

    output = result.stdout.str() + result.stderr.str()
    result.assert_outcomes(passed=2)
    assert "Warning" not in output
    assert "INTERNALERROR" not in output
    assert plugin_lines(result.stdout.lines) == [NOTICE.format(REASONS[way], "2 tests")]
    assert_nothing_written(project, store)
    # The throwaway store of the live run is gone.
    assert not list(scratch.glob("pytest-mlflow-tree-off-*"))


def test_the_notice_comes_from_the_workers_under_xdist(
    project: pytest.Pytester, store: Store
) -> None:
    pytest.importorskip("xdist")
    project.makeini(ini(store, recording=True))

    result = project.runpytest_subprocess("-p", "no:randomly", "--no-mlflow-tree", "-n", "2")

    result.assert_outcomes(passed=2)
    assert plugin_lines(result.stdout.lines) == [NOTICE.format("--no-mlflow-tree", "2 tests")]
    assert_nothing_written(project, store)


@pytest.mark.parametrize("args", [(), ("--no-mlflow-tree",), ("-p", "no:mlflow_tree")])
def test_a_suite_without_the_fixtures_sees_nothing_of_the_plugin(
    args: tuple[str, ...], pytester: pytest.Pytester, store: Store
) -> None:
    pytester.makepyfile(test_plain="def test_ok():\n    pass\n")
    pytester.makeini(ini(store, recording=bool(args)))

    result = pytester.runpytest("-p", "no:randomly", *args)

    result.assert_outcomes(passed=1)
    assert plugin_lines(result.stdout.lines) == []


@pytest.mark.parametrize("way", ["--no-mlflow-tree over the ini", "-p no:mlflow_tree"])
def test_mlflow_run_off_imports_no_mlflow(
    way: str, pytester: pytest.Pytester, store: Store
) -> None:
    recording, args = WAYS[way]
    pytester.makepyfile(
        test_values="def test_values(mlflow_run):\n    mlflow_run.check('auc', 0.99, '>=', 0.9)\n"
    )
    pytester.makeconftest(CONFTEST)
    pytester.makeini(ini(store, recording=recording))

    result = pytester.runpytest_subprocess("-p", "no:randomly", *args)

    result.assert_outcomes(passed=1)
    assert plugin_lines(result.stdout.lines) == [NOTICE.format(REASONS[way], "1 test")]
    modules = json.loads((pytester.path / "mlflow-modules.json").read_text(encoding="utf-8"))
    assert modules == []


@pytest.mark.parametrize(
    ("args", "ini_value"),
    [
        (("--no-mlflow-tree",), "true"),
        (("--mlflow-tree", "--no-mlflow-tree"), "false"),
        (("--no-mlflow-tree", "--mlflow-tree"), "true"),
    ],
)
def test_no_mlflow_tree_wins_over_every_other_source(
    args: tuple[str, ...], ini_value: str, pytester: pytest.Pytester
) -> None:
    pytester.makeini(f"[pytest]\nmlflow_tree = {ini_value}\n")
    without = tuple(arg for arg in args if arg != "--no-mlflow-tree")
    assert resolve(pytester.parseconfig(str(pytester.path), *without)).enabled
    assert not resolve(pytester.parseconfig(str(pytester.path), *args)).enabled


def test_values_logged_while_off_are_checked_and_not_kept() -> None:
    log = RunLog(None, "test_model.py::test_values")
    log.log_metric("accuracy", 0.97)
    log.log_params({"trees": 100})
    log.set_tag("data", "v2")
    assert log.drain() is None
    with pytest.raises(ValueError, match="could not convert"):
        log.log_metric("accuracy", "high")  # type: ignore[arg-type]
