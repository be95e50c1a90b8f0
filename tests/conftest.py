"""Fixtures: a real SQLite tracking store per test, and the recorded tree read back."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import pytest

pytest_plugins = ["pytester"]


@pytest.fixture(scope="session")
def migrated_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty, fully migrated MLflow database: creating one costs seconds, copying it not."""
    from mlflow.tracking import MlflowClient

    path = tmp_path_factory.mktemp("template") / "mlflow.db"
    # MLflow 2.x's SQL store makes its default artifact root ./mlruns where it starts.
    cwd = os.getcwd()
    os.chdir(path.parent)
    try:
        MlflowClient(tracking_uri=f"sqlite:///{path}").search_experiments()
    finally:
        os.chdir(cwd)
    return path


@dataclass
class Store:
    uri: str
    path: Path

    def client(self) -> Any:
        from mlflow.tracking import MlflowClient

        return MlflowClient(tracking_uri=self.uri)

    def tree(self, experiment: str | None = None) -> Tree:
        client = self.client()
        if experiment is None:
            experiments = [e for e in client.search_experiments() if e.name != "Default"]
            assert len(experiments) == 1, [e.name for e in experiments]
            experiment_id = experiments[0].experiment_id
        else:
            found = client.get_experiment_by_name(experiment)
            assert found is not None, f"no experiment {experiment!r}"
            experiment_id = found.experiment_id
        runs = client.search_runs([experiment_id], max_results=5000)
        return Tree(client, list(runs))


@dataclass
class Tree:
    client: Any
    runs: list[Any]

    def level(self, level: str) -> list[Any]:
        return [r for r in self.runs if r.data.tags.get("pytest.level") == level]

    @property
    def session(self) -> Any:
        sessions = self.level("session")
        assert len(sessions) == 1, f"{len(sessions)} session runs"
        return sessions[0]

    @property
    def modules(self) -> dict[str, Any]:
        return {r.info.run_name: r for r in self.level("module")}

    @property
    def tests(self) -> dict[str, Any]:
        """Test runs by nodeid."""
        return {r.data.tags["pytest.nodeid"]: r for r in self.level("test")}

    def children(self, run: Any) -> list[Any]:
        return [r for r in self.runs if r.data.tags.get("mlflow.parentRunId") == run.info.run_id]

    def artifact(self, run: Any, path: str) -> str:
        import tempfile

        with tempfile.TemporaryDirectory() as directory:
            local = self.client.download_artifacts(run.info.run_id, path, directory)
            return Path(local).read_text(encoding="utf-8")

    def artifacts(self, run: Any) -> list[str]:
        return [a.path for a in self.client.list_artifacts(run.info.run_id)]


@pytest.fixture
def store(tmp_path: Path, migrated_db: Path, monkeypatch: pytest.MonkeyPatch) -> Store:
    for name in ("MLFLOW_TRACKING_URI", "MLFLOW_EXPERIMENT_NAME", "MLFLOW_EXPERIMENT_ID"):
        monkeypatch.delenv(name, raising=False)
    path = tmp_path / "store" / "mlflow.db"
    path.parent.mkdir()
    shutil.copy(migrated_db, path)
    return Store(uri=f"sqlite:///{path}", path=path)


class Record(Protocol):
    """The ``record`` fixture: run pytest with --mlflow-tree, return (result, tree)."""

    def __call__(self, *args: str, subprocess: bool = False) -> tuple[pytest.RunResult, Tree]: ...


@pytest.fixture
def record(pytester: pytest.Pytester, store: Store) -> Record:
    """Run pytest with --mlflow-tree into ``store``; return (result, tree)."""

    def run(*args: str, subprocess: bool = False) -> tuple[pytest.RunResult, Tree]:
        argv = ("--mlflow-tree", f"--mlflow-tree-tracking-uri={store.uri}", *args)
        run_pytest = pytester.runpytest_subprocess if subprocess else pytester.runpytest
        return run_pytest(*argv), store.tree()

    return run
