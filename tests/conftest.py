"""Fixtures: a real tracking store per test, and the recorded tree read back.

The store is a SQLite database in ``tmp_path`` by default. Parametrize ``store`` indirectly
with ``"server"`` (or use ``BOTH_STORES``) for a real ``mlflow server`` with PostgreSQL behind
it, started once per test session on 127.0.0.1. Outside CI, tests that need the server skip
when PostgreSQL is not installed; with PYTEST_MLFLOW_TREE_REQUIRE_SERVICES=1 (set by
``.ci/run``) they fail instead.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn, Protocol

import pytest
import replaying
import servers
import shared_server
from faultproxy import FaultProxy

pytest_plugins = ["pytester"]

REQUIRE_SERVICES = "PYTEST_MLFLOW_TREE_REQUIRE_SERVICES"

BOTH_STORES = pytest.mark.parametrize("store", ["sqlite", "server"], indirect=True)


def missing_service(reason: str) -> NoReturn:
    """Skip with ``reason``, or fail where CI promised the service is there."""
    if os.environ.get(REQUIRE_SERVICES):
        pytest.fail(f"{reason} ({REQUIRE_SERVICES} is set: CI must provide it, see .ci/run)")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def postgres_cluster() -> Iterator[servers.Database]:
    """One PostgreSQL cluster on 127.0.0.1 per test process, for every database the tests use."""
    reason = servers.postgres_available()
    if reason is not None:
        missing_service(reason)
    with servers.postgres() as database:
        yield database


_SHARED_SERVER = pytest.StashKey[shared_server.SharedServer]()


def _only_unit_tests(config: pytest.Config) -> bool:
    unit = Path(__file__).parent / "unit"
    paths = [(config.invocation_params.dir / arg.split("::")[0]).resolve() for arg in config.args]
    return bool(paths) and all(path.is_relative_to(unit) for path in paths)


def pytest_sessionstart(session: pytest.Session) -> None:
    """Under xdist, the controller starts the one tracking server its workers share."""
    config = session.config
    if not config.pluginmanager.has_plugin("dsession") or _only_unit_tests(config):
        return
    if servers.postgres_available() is None:
        config.stash[_SHARED_SERVER] = shared_server.SharedServer()


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    if _SHARED_SERVER in node.config.stash:
        node.workerinput[shared_server.WORKERINPUT_KEY] = str(
            node.config.stash[_SHARED_SERVER].file
        )


def pytest_unconfigure(config: pytest.Config) -> None:
    if _SHARED_SERVER in config.stash:
        config.stash[_SHARED_SERVER].stop()


@pytest.fixture(scope="session")
def tracking_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[servers.TrackingServer]:
    """``mlflow server`` with default settings on PostgreSQL, both on 127.0.0.1: the one the
    xdist controller started, or else one of this process's own."""
    shared = getattr(request.config, "workerinput", {}).get(shared_server.WORKERINPUT_KEY)
    if shared is not None:
        try:
            server = shared_server.shared(Path(shared))
        except servers.ServerError as error:
            missing_service(str(error))
        yield server
        return
    cluster: servers.Database = request.getfixturevalue("postgres_cluster")
    database = servers.another_database(cluster, "tracking_server")
    workdir = tmp_path_factory.mktemp("tracking-server")
    with servers.tracking_server(workdir, database=database) as server:
        yield server


@pytest.fixture(scope="session")
def postgres_database(postgres_cluster: servers.Database) -> servers.Database:
    """An empty PostgreSQL database, for direct database stores."""
    return servers.another_database(postgres_cluster, "direct")


@pytest.fixture
def proxy(tracking_server: servers.TrackingServer) -> Iterator[FaultProxy]:
    """A fault-injecting proxy to the session's tracking server, not yet up."""
    proxy = FaultProxy(tracking_server.url)
    try:
        yield proxy
    finally:
        proxy.close()


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
    # The SQLite file, None on a server.
    path: Path | None = None
    # On the shared server each test records into its own experiment.
    experiment: str | None = None

    def client(self) -> Any:
        from mlflow.tracking import MlflowClient

        return MlflowClient(tracking_uri=self.uri)

    def args(self) -> tuple[str, ...]:
        """The pytest options that record into this store."""
        args: tuple[str, ...] = ("--mlflow-tree", f"--mlflow-tree-tracking-uri={self.uri}")
        if self.experiment is not None:
            args += (f"--mlflow-tree-experiment={self.experiment}",)
        return args

    def tree(self, experiment: str | None = None) -> Tree:
        client = self.client()
        experiment = experiment or self.experiment
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
        """Module runs by path (their nodeid tag; the run name puts the file first)."""
        return {r.data.tags["pytest.nodeid"]: r for r in self.level("module")}

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
def store(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    migrated_db: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Store:
    """A fresh SQLite store, or with ``"server"`` a fresh experiment on the tracking server."""
    for name in ("MLFLOW_TRACKING_URI", "MLFLOW_EXPERIMENT_NAME", "MLFLOW_EXPERIMENT_ID"):
        monkeypatch.delenv(name, raising=False)
    kind = getattr(request, "param", "sqlite")
    if kind == "server":
        server = request.getfixturevalue("tracking_server")
        return Store(uri=server.url, experiment=f"test-{uuid.uuid4().hex[:12]}")
    assert kind == "sqlite", kind
    path = tmp_path / "store" / "mlflow.db"
    path.parent.mkdir()
    shutil.copy(migrated_db, path)
    return Store(uri=f"sqlite:///{path}", path=path)


@pytest.fixture
def through(proxy: FaultProxy, store: Store) -> Store:
    """The experiment of ``store`` on the tracking server, reached through the proxy (the test
    reads the tree back from ``store``, directly)."""
    return Store(uri=proxy.url, experiment=store.experiment)


class Record(Protocol):
    """The ``record`` fixture: run pytest with --mlflow-tree, return (result, tree)."""

    def __call__(
        self, *args: str, subprocess: bool = False, live: bool = False
    ) -> tuple[pytest.RunResult, Tree]: ...


@pytest.fixture
def record(pytester: pytest.Pytester, store: Store) -> Record:
    """Run pytest with --mlflow-tree into ``store``; return (result, tree).

    By default the session is written to its journal and replayed in this process: the same
    upload code without an uploader process (and its import of MLflow) per test. ``live=True``
    (implied by ``subprocess=True``) has the plugin start its uploader, for tests of what the
    live upload does or prints.
    """

    def run(
        *args: str, subprocess: bool = False, live: bool = False
    ) -> tuple[pytest.RunResult, Tree]:
        if not (subprocess or live):
            return replaying.recorded_by_replay(pytester, store, *args)
        argv = (*store.args(), *args)
        run_pytest = pytester.runpytest_subprocess if subprocess else pytester.runpytest
        return run_pytest(*argv), store.tree()

    return run
