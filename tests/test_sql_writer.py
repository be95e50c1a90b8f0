"""The batched writer for SQL stores: the tree MLflow's public client writes, in whole batches.

One journal, written once for the module, is uploaded both ways into fresh stores (SQLite, and
PostgreSQL as a direct store URI) and read back through MLflow: what a user reads must not tell
the two paths apart, except by the run ids. Then what MLflow does with such runs (its own calls,
``mlflow server``), the schema guard on real databases, a batch the database refuses halfway,
and repeated uploads.
"""

from __future__ import annotations

import contextlib
import json
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import textwrap
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import servers
import sqlalchemy
from conftest import Store
from replaying import assert_recorded_once, process_state_kept, replay

from pytest_mlflow_tree.model.names import NOTE
from pytest_mlflow_tree.model.status import Status
from pytest_mlflow_tree.upload import process, sqlwriter

EXPERIMENT = "suite"
LONG_ID = "i" * 300
# Module order is journal order: the poisoned test sits in the middle, with tests before it in
# its own module and in the module before, and a module after.
SUITE = {
    "test_a_outcomes.py": """
        import logging
        import sys

        import pytest

        @pytest.fixture
        def broken():
            raise RuntimeError("setup breaks")

        def test_passes(record_property):
            record_property("rows", 20000)
            record_property("nan_metric", float("nan"))
            record_property("inf_metric", float("inf"))
            record_property("label", "模型 ✓ café")

        def test_fails():
            print("to stdout ✓")
            sys.stderr.write("to stderr\\n")
            logging.getLogger("suite").warning("to the log")
            assert 0.7 > 0.9, "accuracy too low"

        @pytest.mark.skip(reason="no gpu here")
        def test_skipped():
            pass

        @pytest.mark.xfail(reason="known bug")
        def test_xfail():
            assert False

        @pytest.mark.xfail(reason="fixed already?")
        def test_xpass():
            pass

        def test_setup_error(broken):
            pass
    """,
    "test_b_values.py": """
        import math

        import pytest

        @pytest.mark.parametrize("depth,label", [(2, "café ✓"), (3, "nul\\x00byte")])
        def test_params(depth, label):
            pass

        @pytest.mark.parametrize("text", ["p" * 6500], ids=["long"])
        def test_long_param(text):
            pass

        @pytest.mark.parametrize("poison", ["in the middle"])
        def test_poisoned(poison):
            pass

        @pytest.mark.a_marker_with_a_rather_long_name_recorded_as_it_is
        @pytest.mark.parametrize("n", [1], ids=["LONG_ID"])
        def test_long_id(n, mlflow_run, tmp_path):
            mlflow_run.set_tag("long", "t" * 9000)
            mlflow_run.set_tag("unicode", "模型 ✓ \\x00")
            for step, loss in enumerate([0.9, 0.5, math.nan, 0.3]):
                mlflow_run.log_metric("loss", loss, step=step)
            mlflow_run.log_metric("neg_inf", -math.inf)
            mlflow_run.log_param("logged", "by the test")
            mlflow_run.log_text("notes ✓", "notes/readme.md")
            local = tmp_path / "table.csv"
            local.write_text("a,b\\n1,2\\n")
            mlflow_run.log_artifact(local, "tables")
    """.replace("LONG_ID", LONG_ID),
    "test_c_broken.py": """
        import module_that_does_not_exist
    """,
    "test_d_tail.py": """
        def test_last():
            pass
    """,
}
NODEIDS = [
    "test_a_outcomes.py::test_fails",
    "test_a_outcomes.py::test_passes",
    "test_a_outcomes.py::test_setup_error",
    "test_a_outcomes.py::test_skipped",
    "test_a_outcomes.py::test_xfail",
    "test_a_outcomes.py::test_xpass",
    f"test_b_values.py::test_long_id[{LONG_ID}]",
    "test_b_values.py::test_long_param[long]",
    "test_b_values.py::test_params[2-caf\\xe9 \\u2713]",
    "test_b_values.py::test_params[3-nul\\x00byte]",
    "test_b_values.py::test_poisoned[in the middle]",
    "test_d_tail.py::test_last",
]
# The session, four modules (the broken one included), the tests.
ALL_RUNS = 1 + 4 + len(NODEIDS)
POISONED = "test_b_values.py::test_poisoned[in the middle]"
# Tags every run has from its creation on, also while it is still open.
OPEN_TAGS = frozenset(
    {"pytest.level", "pytest.run_key", "pytest.session_uuid", "mlflow.runName", "mlflow.user"}
)
WRITER_ENV = "PYTEST_MLFLOW_TREE_SQL_WRITER"


@pytest.fixture(autouse=True)
def _no_forced_writer(monkeypatch: pytest.MonkeyPatch) -> None:
    # A developer's own setting would decide the path these tests choose themselves.
    monkeypatch.delenv(WRITER_ENV, raising=False)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)


# -- the journal and the stores ------------------------------------------------------------------


@pytest.fixture(scope="module")
def journal(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The suite's journal, written once for the module and never uploaded by pytest.

    Run by a pytest subprocess rather than ``pytester``, which lives for one test: the stores
    the comparisons read are made once per module, from this one journal.
    """
    root = tmp_path_factory.mktemp("suite")
    for name, body in SUITE.items():
        (root / name).write_text(textwrap.dedent(body), encoding="utf-8")
    journals = root / "journals"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "no:cacheprovider",
            # Its own: pytest prunes old directories of the default one, this session's too.
            f"--basetemp={root / 'tmp'}",
            "--continue-on-collection-errors",
            "--mlflow-tree",
            f"--mlflow-tree-tracking-uri=sqlite:///{root / 'never-written.db'}",
            f"--mlflow-tree-experiment={EXPERIMENT}",
            "--mlflow-tree-journal-only",
            f"--mlflow-tree-journal-dir={journals}",
        ],
        cwd=root,
        env=servers.clean_env(),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    output = done.stdout + done.stderr
    assert done.returncode == pytest.ExitCode.TESTS_FAILED, output
    summary = done.stdout.strip().splitlines()[-1]
    for count in ("1 failed", "7 passed", "1 skipped", "1 xfailed", "1 xpassed", "2 errors"):
        assert count in summary, output
    (path,) = journals.glob("*.jsonl")
    keys = [r["key"] for r in map(json.loads, path.read_text("utf-8").splitlines()) if "key" in r]
    assert keys.index(POISONED) < keys.index("test_d_tail.py::test_last")
    return path


def sqlite_store(directory: Path, migrated_db: Path) -> Store:
    """A fresh SQLite store in ``directory`` with the experiment to upload into."""
    directory.mkdir(parents=True)
    path = directory / "mlflow.db"
    shutil.copy(migrated_db, path)
    return with_experiment(Store(uri=f"sqlite:///{path}", path=path), directory / "artifacts")


def with_experiment(store: Store, artifacts: Path) -> Store:
    # Created by the upload, the experiment would keep its artifacts in ./mlruns of whatever the
    # current directory is.
    store.client().create_experiment(EXPERIMENT, artifact_location=artifacts.as_uri())
    return Store(uri=store.uri, path=store.path, experiment=EXPERIMENT)


class Cluster:
    """One PostgreSQL cluster; each database a copy of one database MLflow migrated."""

    def __init__(self, uri: str) -> None:
        self._url = sqlalchemy.make_url(uri)
        assert self._url.database is not None
        self._template = self._url.database
        self._migrated = False

    def uri(self, database: str) -> str:
        return self._url.set(database=database).render_as_string(hide_password=False)

    def new_store(self, name: str, artifacts: Path) -> Store:
        """A fresh, migrated MLflow database ``name``, with the experiment to upload into."""
        from mlflow.tracking import MlflowClient

        if not self._migrated:
            MlflowClient(tracking_uri=self.uri(self._template)).search_experiments()
            self._migrated = True
        admin = sqlalchemy.create_engine(self.uri("postgres"), isolation_level="AUTOCOMMIT")
        try:
            with admin.connect() as connection:
                # A template must have no connections: MLflow keeps the ones it migrated with.
                connection.execute(
                    sqlalchemy.text(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                        "WHERE datname = :name AND pid <> pg_backend_pid()"
                    ),
                    {"name": self._template},
                )
                connection.execute(
                    sqlalchemy.text(f'CREATE DATABASE "{name}" TEMPLATE "{self._template}"')
                )
        finally:
            admin.dispose()
        return with_experiment(Store(uri=self.uri(name)), artifacts)


@pytest.fixture(scope="module")
def cluster(postgres_database: servers.Database) -> Cluster:
    return Cluster(postgres_database.uri)


def forget_artifact_locations() -> None:
    """Start as a process of its own would: with no artifact repository cached by run id.

    MLflow caches a process's artifact repositories by run id alone, whatever the store. The
    uploader and the replay command each have a process of their own; these tests upload one
    journal, whose batched runs have the same ids everywhere, into many stores in one process.
    """
    from mlflow.tracking._tracking_service import utils

    utils._artifact_repos_cache.clear()


@pytest.fixture(autouse=True)
def _fresh_artifact_locations() -> None:
    forget_artifact_locations()


def upload_to(store: Store, journal: Path, sql_writer: str = "auto") -> Status:
    forget_artifact_locations()
    with process_state_kept():
        options = process.Options(
            tracking_uri=store.uri, experiment=store.experiment, sql_writer=sql_writer
        )
        return process.run(journal, options)


def uploaded(store: Store, journal: Path, writer: str) -> Store:
    """``store`` after a complete upload of ``journal`` through ``writer``."""
    status = upload_to(store, journal, "public" if writer == "public" else "auto")
    assert status.error is None
    assert status.done
    assert status.writer == writer
    return store


@contextlib.contextmanager
def batches_of(runs: int) -> Iterator[None]:
    """Batches of at most ``runs`` runs.

    A journal read from disk arrives at once, and its runs all fit in one batch. Read live, as
    pytest writes it, runs arrive a few at a time: modules and the session are made in one
    batch and continued in later ones. Small batches do that with a journal read from disk.
    """
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(sqlwriter, "BATCH_RUNS", runs)
        yield


@dataclass(frozen=True)
class Uploads:
    public: Store
    # In one batch, and in batches of one run.
    batched: Store
    small: Store


def uploads(journal: Path, new_store: Callable[[str], Store]) -> Uploads:
    public = uploaded(new_store("public"), journal, "public")
    batched = uploaded(new_store("batched"), journal, "batched")
    with batches_of(1):
        small = uploaded(new_store("small"), journal, "batched")
    return Uploads(public, batched, small)


@pytest.fixture(scope="module")
def sqlite_uploads(
    journal: Path, migrated_db: Path, tmp_path_factory: pytest.TempPathFactory
) -> Uploads:
    """The journal uploaded into fresh SQLite stores, through each writer."""
    directory = tmp_path_factory.mktemp("sqlite-uploads")
    return uploads(journal, lambda name: sqlite_store(directory / name, migrated_db))


@pytest.fixture(scope="module")
def postgresql_uploads(
    journal: Path, cluster: Cluster, tmp_path_factory: pytest.TempPathFactory
) -> Uploads:
    """The journal uploaded into fresh PostgreSQL databases, through each writer."""
    directory = tmp_path_factory.mktemp("postgresql-uploads")
    return uploads(journal, lambda name: cluster.new_store(name, directory / name))


# -- what a user reads back ----------------------------------------------------------------------


class Names:
    """Run ids and the experiment's artifact location as names that do not depend on the store:
    runs by their ``pytest.run_key``."""

    def __init__(self, runs: list[Any], artifact_location: str) -> None:
        self.by_id = {run.info.run_id: f"<run {run.data.tags['pytest.run_key']}>" for run in runs}
        self._artifact_location = artifact_location

    def __call__(self, text: str) -> str:
        for run_id, name in self.by_id.items():
            text = text.replace(run_id, name)
        return text.replace(self._artifact_location, "<artifacts>")


def number(value: float) -> str:
    # NaN equals nothing, itself included.
    return repr(value)


def artifacts_of(run: Any) -> dict[str, str]:
    """The run's artifacts and their text, read where the run says they are.

    Not through ``MlflowClient.list_artifacts``: MLflow caches a process's artifact
    repositories by run id alone, and these tests read several stores holding the same ids.
    """
    from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

    repository: Any = get_artifact_repository(run.info.artifact_uri)

    def files(path: str | None) -> Iterator[str]:
        for entry in repository.list_artifacts(path):
            if entry.is_dir:
                yield from files(entry.path)
            else:
                yield entry.path

    with tempfile.TemporaryDirectory() as directory:
        return {
            path: Path(repository.download_artifacts(path, directory)).read_text(encoding="utf-8")
            for path in sorted(files(None))
        }


def experiment_runs(client: Any, experiment: str) -> tuple[str, Names, list[Any]]:
    """The experiment's id, its names, and its runs, deleted ones included."""
    from mlflow.entities import ViewType

    found = client.get_experiment_by_name(experiment)
    assert found is not None, f"no experiment {experiment!r}"
    runs = list(
        client.search_runs([found.experiment_id], run_view_type=ViewType.ALL, max_results=5000)
    )
    return found.experiment_id, Names(runs, found.artifact_location), runs


def view(client: Any, experiment: str) -> dict[str, dict[str, Any]]:
    """Everything MLflow reads of the experiment's runs, by run key, without run ids."""
    _, names, runs = experiment_runs(client, experiment)
    seen: dict[str, dict[str, Any]] = {}
    for run in runs:
        info, data = run.info, run.data
        key = data.tags["pytest.run_key"]
        assert key not in seen, f"two runs of {data.tags.get('pytest.nodeid', key)}"
        seen[key] = {
            "status": info.status,
            "start_time": info.start_time,
            "end_time": info.end_time,
            "run_name": info.run_name,
            "lifecycle_stage": info.lifecycle_stage,
            "user_id": info.user_id,
            "artifact_uri": names(info.artifact_uri),
            "tags": {k: names(v) for k, v in data.tags.items()},
            "params": dict(data.params),
            "metrics": {k: number(v) for k, v in data.metrics.items()},
            "history": {
                k: sorted(
                    (m.step, m.timestamp, number(m.value))
                    for m in client.get_metric_history(info.run_id, k)
                )
                for k in data.metrics
            },
            "artifacts": {path: names(text) for path, text in artifacts_of(run).items()},
        }
    return seen


def rows(store: Store) -> dict[str, list[tuple[tuple[str, Any], ...]]]:
    """The experiment's rows in MLflow's run tables, as the database holds them, without ids."""
    from mlflow.store.tracking.dbmodels import models

    client = store.client()
    assert store.experiment is not None
    experiment_id, names, _ = experiment_runs(client, store.experiment)

    def plain(value: Any) -> Any:
        if isinstance(value, str):
            return names(value)
        return number(value) if isinstance(value, float) else value

    runs = models.SqlRun.__table__
    ours = sqlalchemy.select(runs.c.run_uuid).where(runs.c.experiment_id == int(experiment_id))
    tables = {
        model.__tablename__: model.__table__
        for model in (
            models.SqlRun,
            models.SqlTag,
            models.SqlParam,
            models.SqlMetric,
            models.SqlLatestMetric,
        )
    }
    engine = sqlalchemy.create_engine(store.uri)
    try:
        with engine.connect() as connection:
            return {
                name: sorted(
                    (
                        tuple((column, plain(value)) for column, value in row._mapping.items())
                        for row in connection.execute(
                            sqlalchemy.select(table).where(table.c.run_uuid.in_(ours))
                        )
                    ),
                    key=repr,
                )
                for name, table in tables.items()
            }
    finally:
        engine.dispose()


def without_links(run: dict[str, Any]) -> dict[str, Any]:
    """The run with its description's markdown links as their plain text."""
    tags = dict(run["tags"])
    if NOTE in tags:
        tags[NOTE] = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", tags[NOTE])
    return {**run, "tags": tags}


def by_level(seen: dict[str, dict[str, Any]], level: str) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in seen.items() if v["tags"]["pytest.level"] == level}


def session_id(client: Any, experiment: str) -> str:
    _, _, runs = experiment_runs(client, experiment)
    (session,) = [r for r in runs if r.data.tags["pytest.level"] == "session"]
    return str(session.info.run_id)


def queried(client: Any, experiment: str, filter_string: str) -> list[str]:
    """The run keys of what ``search_runs`` finds, ``{session}`` filled in."""
    found = client.get_experiment_by_name(experiment)
    runs = client.search_runs(
        [found.experiment_id],
        filter_string.format(session=session_id(client, experiment)),
        max_results=1000,
    )
    return sorted(run.data.tags["pytest.run_key"] for run in runs)


def frame(store: Store, monkeypatch: pytest.MonkeyPatch) -> Any:
    """``mlflow.search_runs``'s DataFrame of the experiment, one row per run key, no ids."""
    import mlflow

    client = store.client()
    assert store.experiment is not None
    experiment_id, names, _ = experiment_runs(client, store.experiment)
    # The fluent API reads the process's tracking URI; MLFLOW_TRACKING_URI is put back after.
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    mlflow.set_tracking_uri(store.uri)
    try:
        runs = mlflow.search_runs(experiment_ids=[experiment_id], output_format="pandas")
    finally:
        # None unsets it, as MLflow's own _use_tracking_uri does; the annotation says str.
        mlflow.set_tracking_uri(None)  # type: ignore[arg-type]
    runs = runs.drop(columns=["run_id"]).set_index("tags.pytest.run_key").sort_index()
    return runs.map(lambda value: names(str(value)))


# -- 1. the same tree both ways ------------------------------------------------------------------


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_both_writers_record_the_same_tree(backend: str, request: pytest.FixtureRequest) -> None:
    uploads: Uploads = request.getfixturevalue(f"{backend}_uploads")
    public = view(uploads.public.client(), EXPERIMENT)

    assert len(public) == ALL_RUNS
    tests = by_level(public, "test")
    assert sorted(run["tags"]["pytest.nodeid"] for run in tests.values()) == sorted(NODEIDS)
    # What the comparison covers is there: each kind of value of the suite.
    failed = next(r for r in tests.values() if r["tags"]["pytest.nodeid"].endswith("test_fails"))
    assert "to stdout ✓" in failed["artifacts"]["failure.txt"]
    assert "to stderr" in failed["artifacts"]["failure.txt"]
    assert "to the log" in failed["artifacts"]["failure.txt"]
    long_id = next(r for r in tests.values() if LONG_ID in r["tags"]["pytest.nodeid"])
    assert len(long_id["history"]["loss"]) == 4
    assert "tables/table.csv" in long_id["artifacts"]
    assert any(len(run["params"].get("text", "")) == 6000 for run in tests.values())

    for store in (uploads.batched, uploads.small):
        batched = view(store.client(), EXPERIMENT)
        assert sorted(batched) == sorted(public)
        for key, run in public.items():
            assert batched[key] == run, run["tags"].get("pytest.nodeid", run["run_name"])


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_the_database_rows_are_those_mlflow_writes(
    backend: str, request: pytest.FixtureRequest
) -> None:
    # Columns MlflowClient does not show (source_type, source_name, is_nan, ...) included.
    uploads: Uploads = request.getfixturevalue(f"{backend}_uploads")
    public = rows(uploads.public)
    assert len(public["runs"]) == ALL_RUNS
    for store in (uploads.batched, uploads.small):
        batched = rows(store)
        for table, expected in public.items():
            assert batched[table] == expected, table


QUERIES = [
    "tags.mlflow.rootRunId = '{session}' and tags.mlflow.runName ILIKE '%param%'",
    "tags.mlflow.rootRunId = '{session}' and tags.`pytest.level` = 'test' "
    "and attributes.status = 'FAILED'",
    "params.depth = '3'",
    "metrics.rows > 100",
    "tags.`pytest.outcome` = 'xpassed'",
]


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_searches_find_the_same_runs_both_ways(
    backend: str, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    uploads: Uploads = request.getfixturevalue(f"{backend}_uploads")
    public = uploads.public.client()
    expected = frame(uploads.public, monkeypatch)
    assert expected.shape == (ALL_RUNS, expected.shape[1])
    assert {"params.depth", "params.label", "params.text"} <= set(expected.columns)
    columns = sorted(expected.columns)
    for store in (uploads.batched, uploads.small):
        for query in QUERIES:
            found = queried(public, EXPERIMENT, query)
            assert found, query
            assert queried(store.client(), EXPERIMENT, query) == found, query
        got = frame(store, monkeypatch)
        assert got.shape == expected.shape
        assert sorted(got.columns) == columns
        assert got[columns].to_dict() == expected[columns].to_dict()


# -- 2. MLflow's own calls on batch-written runs ------------------------------------------------


def test_mlflow_works_on_runs_the_batched_writer_wrote(
    journal: Path, migrated_db: Path, tmp_path: Path
) -> None:
    from mlflow.entities import ViewType

    store = uploaded(sqlite_store(tmp_path / "store", migrated_db), journal, "batched")
    tree = store.tree()
    client = tree.client
    run = tree.tests["test_a_outcomes.py::test_fails"]
    run_id = run.info.run_id
    experiment_id = run.info.experiment_id

    local = tmp_path / "extra.txt"
    local.write_text("added later ✓", encoding="utf-8")
    client.log_artifact(run_id, str(local), "later")
    client.set_tag(run_id, "reviewed", "yes")
    client.log_metric(run_id, "score", 0.5, step=3)
    client.log_param(run_id, "added", "later")

    client.delete_run(run_id)
    assert client.get_run(run_id).info.lifecycle_stage == "deleted"
    active = client.search_runs([experiment_id], run_view_type=ViewType.ACTIVE_ONLY)
    assert run_id not in {r.info.run_id for r in active}
    client.restore_run(run_id)

    again = client.get_run(run_id)
    assert again.info.lifecycle_stage == "active"
    assert again.info.status == "FAILED"
    assert again.data.tags["reviewed"] == "yes"
    assert again.data.tags["pytest.nodeid"] == "test_a_outcomes.py::test_fails"
    assert again.data.metrics["score"] == 0.5
    assert [(m.step, m.value) for m in client.get_metric_history(run_id, "score")] == [(3, 0.5)]
    assert again.data.params["added"] == "later"
    assert sorted(tree.artifacts(again)) == ["failure.txt", "later"]
    assert tree.artifact(again, "later/extra.txt") == "added later ✓"
    assert "accuracy too low" in tree.artifact(again, "failure.txt")
    found = client.search_runs([experiment_id], "tags.reviewed = 'yes'")
    assert [r.info.run_id for r in found] == [run_id]


# -- 3. the MLflow UI's REST API -----------------------------------------------------------------


def test_mlflow_server_serves_the_batch_written_runs(
    sqlite_uploads: Uploads, tmp_path: Path
) -> None:
    from mlflow.tracking import MlflowClient

    store = sqlite_uploads.batched
    direct = store.client()
    expected = view(direct, EXPERIMENT)
    session = session_id(direct, EXPERIMENT)
    experiment_id = direct.get_experiment_by_name(EXPERIMENT).experiment_id
    with servers.mlflow_server(store.uri, tmp_path, extra_args=("--workers", "1")) as server:
        rest = MlflowClient(tracking_uri=server.url)
        assert view(rest, EXPERIMENT) == expected
        tests = rest.search_runs(
            [experiment_id], f"tags.mlflow.rootRunId = '{session}' and tags.`pytest.level` = 'test'"
        )
        assert len(tests) == len(NODEIDS)
        assert rest.get_run(session).data.tags["pytest.level"] == "session"

        # The calls the UI's runs table and run page make.
        filter_string = f"tags.`pytest.session_uuid` = '{expected_uuid(expected)}'"
        listed = post(
            f"{server.url}/ajax-api/2.0/mlflow/runs/search",
            {"experiment_ids": [experiment_id], "filter": filter_string, "max_results": 1000},
        )
        assert len(listed["runs"]) == ALL_RUNS
        with urllib.request.urlopen(
            f"{server.url}/ajax-api/2.0/mlflow/runs/get?run_id={session}", timeout=30
        ) as response:
            shown = json.load(response)["run"]
        assert shown["info"]["run_id"] == session
        assert shown["info"]["status"] == "FAILED"


def expected_uuid(seen: dict[str, dict[str, Any]]) -> str:
    (uuid,) = {run["tags"]["pytest.session_uuid"] for run in seen.values()}
    return str(uuid)


def post(url: str, body: dict[str, Any]) -> dict[str, Any]:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        answer: dict[str, Any] = json.load(response)
    return answer


# -- 4. the schema guard -------------------------------------------------------------------------


@contextlib.contextmanager
def engine_of(store: Store) -> Iterator[sqlalchemy.engine.Engine]:
    engine = sqlalchemy.create_engine(store.uri)
    try:
        yield engine
    finally:
        engine.dispose()


def problem_of(store: Store) -> str | None:
    with engine_of(store) as engine:
        return sqlwriter.schema_problem(engine)


def sqlite_script(store: Store, script: str) -> None:
    assert store.path is not None
    with contextlib.closing(sqlite3.connect(store.path)) as connection:
        connection.executescript(script)


def test_migrated_database_and_additions_elsewhere_keep_the_batched_path(
    journal: Path, migrated_db: Path, tmp_path: Path
) -> None:
    store = sqlite_store(tmp_path / "store", migrated_db)
    assert problem_of(store) is None

    # A later migration (or a DBA) adds what the writer need not know about.
    sqlite_script(
        store,
        """
        ALTER TABLE runs ADD COLUMN reviewer VARCHAR(20);
        ALTER TABLE runs ADD COLUMN priority INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE tags ADD COLUMN note TEXT;
        CREATE TABLE run_reviews (run_uuid VARCHAR(32) PRIMARY KEY, verdict TEXT NOT NULL);
        """,
    )
    assert problem_of(store) is None
    uploaded(store, journal, "batched")
    assert_recorded_once(store.tree().runs, NODEIDS)


def test_a_required_column_the_writer_does_not_know_is_a_problem(
    migrated_db: Path, tmp_path: Path
) -> None:
    store = sqlite_store(tmp_path / "store", migrated_db)
    assert store.path is not None
    with contextlib.closing(sqlite3.connect(store.path)) as connection:
        (create,) = connection.execute(
            "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'runs'"
        ).fetchone()
    # SQLite adds no NOT NULL column without a default: the table is made anew with it.
    head = 'CREATE TABLE "runs" ('
    assert create.startswith(head), create
    rebuilt = create.replace(head, "CREATE TABLE runs_new (\n reviewer VARCHAR(20) NOT NULL,", 1)
    sqlite_script(
        store,
        f"""
        PRAGMA foreign_keys = off;
        {rebuilt};
        DROP TABLE runs;
        ALTER TABLE runs_new RENAME TO runs;
        """,
    )
    problem = problem_of(store)
    assert problem is not None
    assert "reviewer" in problem
    # Nor can MLflow's own create_run write there: no upload to compare with.
    client = store.client()
    experiment = client.get_experiment_by_name(EXPERIMENT)
    with pytest.raises(Exception, match="reviewer"):
        client.create_run(experiment.experiment_id)


def test_a_column_the_writer_fills_missing_is_a_problem(migrated_db: Path, tmp_path: Path) -> None:
    store = sqlite_store(tmp_path / "store", migrated_db)
    sqlite_script(store, "ALTER TABLE tags DROP COLUMN value;")
    problem = problem_of(store)
    assert problem is not None
    assert "value" in problem
    assert "tags" in problem


def test_a_required_column_filled_by_a_trigger_takes_the_public_path(
    journal: Path, cluster: Cluster, tmp_path: Path
) -> None:
    store = cluster.new_store("guard", tmp_path / "artifacts")
    with engine_of(store) as engine, engine.begin() as connection:
        for statement in (
            "ALTER TABLE runs ADD COLUMN reviewer text NOT NULL DEFAULT 'a'",
            "ALTER TABLE runs ALTER COLUMN reviewer DROP DEFAULT",
            # The database fills it itself: MLflow's create_run, which knows nothing of the
            # column, still works; the guard cannot see that and leaves it to MLflow.
            "CREATE FUNCTION fill_reviewer() RETURNS trigger LANGUAGE plpgsql AS "
            "$$ BEGIN NEW.reviewer := 'nobody'; RETURN NEW; END $$",
            "CREATE TRIGGER fill_reviewer BEFORE INSERT ON runs "
            "FOR EACH ROW EXECUTE FUNCTION fill_reviewer()",
        ):
            connection.execute(sqlalchemy.text(statement))
    problem = problem_of(store)
    assert problem is not None
    assert "reviewer" in problem

    uploaded(store, journal, "public")
    assert_recorded_once(store.tree().runs, NODEIDS)


# -- 5. a batch the database refuses -------------------------------------------------------------


def test_a_refused_batch_leaves_no_run_half_written(
    journal: Path, migrated_db: Path, tmp_path: Path, sqlite_uploads: Uploads
) -> None:
    store = sqlite_store(tmp_path / "store", migrated_db)
    sqlite_script(
        store,
        """
        CREATE TRIGGER refuse BEFORE INSERT ON params WHEN NEW.key = 'poison'
        BEGIN SELECT RAISE(ABORT, 'refused'); END;
        """,
    )
    # In small batches, the refused one in the middle: the batches before it are committed.
    with batches_of(3):
        failed = upload_to(store, journal)
    assert not failed.done
    assert failed.error is not None
    assert "refused" in failed.error
    left = view(store.client(), EXPERIMENT)

    sqlite_script(store, "DROP TRIGGER refuse;")
    status = upload_to(store, journal)
    assert status.error is None
    assert status.done
    assert status.writer == "batched"
    complete = view(store.client(), EXPERIMENT)
    assert_recorded_once(store.tree().runs, NODEIDS)
    # Continued where the refused batch stopped: the tree of an upload that never failed.
    assert complete == view(sqlite_uploads.batched.client(), EXPERIMENT)

    poisoned = next(k for k, r in complete.items() if r["tags"].get("pytest.nodeid") == POISONED)
    assert poisoned not in left
    assert by_level(left, "test"), "the refused batch should not be the first"
    for key, run in left.items():
        name = run["tags"].get("pytest.nodeid", run["run_name"])
        assert set(run["tags"]) >= OPEN_TAGS, name
        # A description lists failures; once the upload is done, each becomes a link.
        run, done = without_links(run), without_links(complete[key])
        assert run["tags"].items() <= done["tags"].items(), name
        if run["tags"]["pytest.level"] == "test" or run["status"] != "RUNNING":
            # A test is written whole or not at all; so is the closing of a module.
            assert run == done, name
        else:
            # An open module or session: what it had when it was opened, nothing lost.
            assert run["params"] == done["params"], name


# -- 6. uploads repeated ------------------------------------------------------------------------


def test_uploading_again_changes_nothing(
    journal: Path, migrated_db: Path, tmp_path: Path, sqlite_uploads: Uploads
) -> None:
    store = sqlite_store(tmp_path / "store", migrated_db)
    first = uploaded(store, journal, "batched").tree()
    ids = sorted(run.info.run_id for run in first.runs)
    seen = view(store.client(), EXPERIMENT)
    assert_recorded_once(first.runs, NODEIDS)
    # The ids come from the experiment, the session and the runs' places: another store's
    # experiment gets ids of its own.
    assert not set(ids) & {run.info.run_id for run in sqlite_uploads.batched.tree().runs}

    for _ in range(2):
        uploaded(store, journal, "batched")
        again = store.tree()
        assert sorted(run.info.run_id for run in again.runs) == ids
        # Metric histories included: no value was logged a second time.
        assert view(store.client(), EXPERIMENT) == seen

    code, _, err = replay(str(journal), "--tracking-uri", store.uri, "--experiment", EXPERIMENT)
    assert code == 0, err
    assert view(store.client(), EXPERIMENT) == seen


def test_another_experiment_of_the_same_store_gets_a_tree_of_its_own(
    journal: Path, migrated_db: Path, tmp_path: Path
) -> None:
    # ``replay JOURNAL --experiment other`` after the tree was recorded once already.
    store = uploaded(sqlite_store(tmp_path / "store", migrated_db), journal, "batched")
    before = view(store.client(), EXPERIMENT)
    store.client().create_experiment("other", artifact_location=(tmp_path / "other").as_uri())
    other = Store(uri=store.uri, path=store.path, experiment="other")
    uploaded(other, journal, "batched")
    second = other.tree("other")
    assert_recorded_once(second.runs, NODEIDS)
    # The first tree is left as it was, its session's note and report included.
    assert view(store.client(), EXPERIMENT) == before
    first = store.tree()
    assert not {r.info.run_id for r in first.runs} & {r.info.run_id for r in second.runs}


def test_one_process_writing_one_journal_into_two_stores_keeps_their_artifacts_apart(
    journal: Path, migrated_db: Path, tmp_path: Path
) -> None:
    # A script that replays a journal into a local file and into a database; the stores hold
    # the same run ids, and MLflow caches artifact locations by run id for the process.
    stores = [sqlite_store(tmp_path / name, migrated_db) for name in ("first", "second")]
    with process_state_kept():
        for store in stores:
            status = process.run(
                journal, process.Options(tracking_uri=store.uri, experiment=store.experiment)
            )
            assert status.done, status.error
    for store in stores:
        session = store.tree().session
        assert artifacts_of(session).keys() == {"report.html"}, store.uri


def test_the_public_path_can_be_forced(
    journal: Path,
    migrated_db: Path,
    tmp_path: Path,
    sqlite_uploads: Uploads,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    batched_ids = {run.info.run_id for run in sqlite_uploads.batched.tree().runs}

    monkeypatch.setenv(WRITER_ENV, "public")
    by_environment = sqlite_store(tmp_path / "environment", migrated_db)
    assert upload_to(by_environment, journal).writer == "public"
    monkeypatch.delenv(WRITER_ENV)

    by_option = sqlite_store(tmp_path / "option", migrated_db)
    code, _, err = replay(
        str(journal), "--public-client", "--tracking-uri", by_option.uri, "--experiment", EXPERIMENT
    )
    assert code == 0, err
    for store in (by_environment, by_option):
        runs = store.tree().runs
        assert_recorded_once(runs, NODEIDS)
        # Made by MLflow's create_run: ids of its own, not the batched writer's.
        assert not {run.info.run_id for run in runs} & batched_ids
