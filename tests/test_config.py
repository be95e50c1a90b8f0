"""Where the tree goes and what it is called: command line > environment > ini file > default."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from conftest import Store

SUITE = """
    def test_ok():
        pass

    def test_also_ok():
        pass
"""
SOURCES = ("cli", "env", "ini")


def copy_store(migrated_db: Path, path: Path) -> Store:
    path.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(migrated_db, path)
    return Store(uri=f"sqlite:///{path}", path=path)


def experiments(store: Store) -> list[str]:
    return [e.name for e in store.client().search_experiments() if e.name != "Default"]


@pytest.mark.parametrize("winner", [*SOURCES, "default"])
def test_tracking_uri_and_experiment_come_from_the_highest_source_that_sets_them(
    winner: str,
    pytester: pytest.Pytester,
    migrated_db: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("MLFLOW_TRACKING_URI", "MLFLOW_EXPERIMENT_NAME", "MLFLOW_EXPERIMENT_ID"):
        monkeypatch.delenv(name, raising=False)
    pytester.makepyfile(test_two=SUITE)
    stores = {
        source: copy_store(migrated_db, tmp_path / source / "mlflow.db") for source in SOURCES
    }
    # Every source below the winner sets a value too, and must lose.
    setting = SOURCES[SOURCES.index(winner) :] if winner in SOURCES else ()
    args = ["--mlflow-tree"]
    ini = ["[pytest]"]
    if "cli" in setting:
        args += [f"--mlflow-tree-tracking-uri={stores['cli'].uri}", "--mlflow-tree-experiment=cli"]
    if "env" in setting:
        monkeypatch.setenv("MLFLOW_TRACKING_URI", stores["env"].uri)
        monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", "env")
    if "ini" in setting:
        ini += [f"mlflow_tree_tracking_uri = {stores['ini'].uri}", "mlflow_tree_experiment = ini"]
    pytester.makeini("\n".join(ini))
    # Run from elsewhere: the default store is relative to the current directory, not rootdir.
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)

    if winner == "cli":
        # An experiment that exists is reused, with what it already holds.
        client = stores["cli"].client()
        existing = client.create_experiment("cli")
        earlier = client.create_run(existing, run_name="earlier work").info.run_id

    result = pytester.runpytest(str(pytester.path), *args)
    result.assert_outcomes(passed=2)
    assert "WARNING" not in result.stdout.str()

    if winner == "default":
        target = Store(uri=f"sqlite:///{cwd / 'mlflow.db'}", path=cwd / "mlflow.db")
        experiment = pytester.path.name  # the rootdir's name
    else:
        target = stores[winner]
        experiment = winner
    assert target.path is not None
    assert target.path.is_file()
    assert experiments(target) == [experiment]
    tree = target.tree(experiment)
    assert sorted(tree.tests) == ["test_two.py::test_also_ok", "test_two.py::test_ok"]
    assert tree.session.info.status == "FINISHED"
    for source, store in stores.items():
        if store is not target:
            assert experiments(store) == [], f"{source} lost to {winner} but got runs"
    if winner != "default":
        assert not (cwd / "mlflow.db").exists()
    assert not (pytester.path / "mlflow.db").exists()
    if winner == "cli":
        assert tree.session.info.experiment_id == existing
        assert earlier in {run.info.run_id for run in tree.runs}
        assert len(tree.runs) == 1 + 1 + 1 + 2


def test_ini_enables_recording_tags_merge_per_key_and_the_run_name_is_set(
    pytester: pytest.Pytester, store: Store
) -> None:
    pytester.makepyfile(test_two=SUITE)
    pytester.makeini(
        """
        [pytest]
        mlflow_tree = true
        mlflow_tree_run_name = from-ini
        mlflow_tree_tags =
            team=from-ini
            owner=ml-platform
        """
    )
    # No --mlflow-tree: the ini file turns recording on.
    result = pytester.runpytest(
        f"--mlflow-tree-tracking-uri={store.uri}",
        "--mlflow-tree-tag",
        "team=vision",
        "--mlflow-tree-tag=query=a=b",
        "--mlflow-tree-run-name",
        "nightly check",
    )
    result.assert_outcomes(passed=2)
    tree = store.tree()
    session = tree.session
    assert len(tree.tests) == 2
    assert session.info.run_name == "nightly check"
    tags = session.data.tags
    assert tags["team"] == "vision"
    assert tags["owner"] == "ml-platform"
    assert tags["query"] == "a=b"
    # Extra tags are the session's, not every run's.
    for run in tree.runs:
        if run is not session:
            assert "owner" not in run.data.tags


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--mlflow-tree-tag", "novalue", "*--mlflow-tree-tag*novalue*KEY=VALUE*"),
        ("--mlflow-tree-wait", "abc", "*--mlflow-tree-wait*abc*seconds*"),
        ("--mlflow-tree-slow", "-1", "*--mlflow-tree-slow*-1*seconds*"),
        ("--mlflow-tree-stall", "nan", "*--mlflow-tree-stall*nan*seconds*"),
    ],
)
def test_a_bad_value_is_a_usage_error_naming_the_option(
    option: str, value: str, message: str, pytester: pytest.Pytester, store: Store
) -> None:
    pytester.makepyfile(test_two=SUITE)
    result = pytester.runpytest(
        "--mlflow-tree", f"--mlflow-tree-tracking-uri={store.uri}", option, value
    )
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    errors = [line for line in result.stderr.lines if line.startswith("ERROR:")]
    assert len(errors) == 1, result.stderr.str()
    result.stderr.fnmatch_lines([message])
    assert "Traceback" not in result.stderr.str()
    assert not (pytester.path / ".pytest_cache" / "d" / "mlflow-tree").exists()
    assert experiments(store) == []


def test_without_the_flag_nothing_is_recorded(
    pytester: pytest.Pytester, store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makepyfile(test_two=SUITE)
    pytester.makeini("[pytest]")  # the rootdir
    # MLflow is configured for this shell, but the plugin is not turned on.
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store.uri)
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    result = pytester.runpytest(str(pytester.path))
    result.assert_outcomes(passed=2)
    assert "mlflow-tree:" not in result.stdout.str()
    assert (pytester.path / ".pytest_cache").is_dir()  # pytest's own cache, for comparison
    assert not (pytester.path / ".pytest_cache" / "d" / "mlflow-tree").exists()
    for directory in (cwd, pytester.path):
        assert not (directory / "mlflow.db").exists()
        assert not (directory / "mlruns").exists()
    # Last: MLflow 2.x's own client makes ./mlruns in the current directory.
    assert experiments(store) == []
