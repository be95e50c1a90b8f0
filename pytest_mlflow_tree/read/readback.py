"""Read recorded sessions back: the run tree as objects or as a pandas DataFrame.

Built on ``MlflowClient.search_runs`` with pagination, so a session of any size loads in
pages of ``PAGE_SIZE`` runs. Sessions recorded in compact mode (most tests only in a table
artifact per module) read back the same way: table rows become tests without a run id.

    from pytest_mlflow_tree.readback import Reader

    reader = Reader("sqlite:///mlflow.db")
    session = reader.last_session("my-project")
    for test in session.failures:
        print(test.nodeid, test.duration, test.failure())
    frame = session.to_frame()  # one row per test, params.* and metrics.* columns

Importing this module does not import MLflow; creating a ``Reader`` does.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from pytest_mlflow_tree.model import links
from pytest_mlflow_tree.model.compact import TABLE_ARTIFACT
from pytest_mlflow_tree.model.defaults import DEFAULT_TRACKING_URI
from pytest_mlflow_tree.model.names import (
    FAILED,
    FINISHED,
    GIT_COMMIT,
    LEVEL,
    LOGGED_ARTIFACTS,
    MODE,
    MODULE_LEVEL,
    NODEID,
    OUTCOME,
    PARENT_RUN_ID,
    ROOT_RUN_ID,
    RUN_NAME,
    SESSION_LEVEL,
    TEST_LEVEL,
)
from pytest_mlflow_tree.model.outcome import BAD_OUTCOMES
from pytest_mlflow_tree.model.records import FAILURE_ARTIFACT, module_of
from pytest_mlflow_tree.model.searchpages import PAGE_SIZE, search_all
from pytest_mlflow_tree.model.settings_table import COMPACT_MODE

if TYPE_CHECKING:
    import pandas

# Bounded paging: 10,000 pages of 1,000 runs is far beyond any session.
_MAX_PAGES = 10_000

# Metrics the plugin logs on every test; anything else a test logged itself.
DURATION_METRICS = frozenset({"setup_duration", "call_duration", "teardown_duration", "duration"})

_SESSION_FILTER = f"tags.`{LEVEL}` = '{SESSION_LEVEL}'"


class SessionNotFound(LookupError):
    """No session run matches: unknown run id, a run that is not a session, no sessions yet."""


# Slots: the uploader holds one of these per test of the session.
@dataclass(slots=True)
class Test:
    """One test of a session. ``run_id`` is None for a test kept only in a compact table."""

    __test__: ClassVar[bool] = False  # not a test class, whatever pytest thinks of the name

    nodeid: str
    name: str
    module: str
    outcome: str
    status: str
    duration: float | None
    start: int | None = None
    end: int | None = None
    run_id: str | None = None
    params: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    _load_failure: Callable[[str], str | None] | None = field(
        default=None, repr=False, compare=False
    )

    @property
    def bad(self) -> bool:
        """Failed or errored."""
        return self.outcome in BAD_OUTCOMES

    @property
    def user_metrics(self) -> dict[str, float]:
        """Metrics the test logged itself (everything but the plugin's durations)."""
        return {k: v for k, v in self.metrics.items() if k not in DURATION_METRICS}

    def failure(self) -> str | None:
        """The ``failure.txt`` artifact (traceback and captured output), read on demand."""
        if not self.bad or self.run_id is None or self._load_failure is None:
            return None
        return self._load_failure(self.run_id)


@dataclass
class Module:
    path: str
    run_id: str | None
    status: str
    metrics: dict[str, float] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    tests: list[Test] = field(default_factory=list)

    @property
    def bad(self) -> bool:
        return self.status == FAILED or any(t.bad for t in self.tests)

    def counts(self) -> dict[str, int]:
        """Tests per outcome."""
        return outcome_counts(self.tests)


@dataclass
class Session:
    run_id: str
    experiment_id: str
    name: str
    status: str
    start: int | None
    end: int | None
    tracking_uri: str
    tags: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    modules: list[Module] = field(default_factory=list)

    @property
    def tests(self) -> list[Test]:
        return [test for module in self.modules for test in module.tests]

    @property
    def failures(self) -> list[Test]:
        return [test for test in self.tests if test.bad]

    @property
    def compact(self) -> bool:
        return self.tags.get(MODE) == COMPACT_MODE

    @property
    def commit(self) -> str | None:
        return self.tags.get(GIT_COMMIT)

    @property
    def url(self) -> str:
        return links.run_url(self.tracking_uri, self.experiment_id, self.run_id)

    def run_url(self, run_id: str) -> str:
        return links.run_url(self.tracking_uri, self.experiment_id, run_id)

    def test(self, nodeid: str) -> Test | None:
        for test in self.tests:
            if test.nodeid == nodeid:
                return test
        return None

    def to_frame(self) -> pandas.DataFrame:
        """One row per test; params as ``params.<name>``, the tests' own metrics as
        ``metrics.<name>`` (the column names ``mlflow.search_runs`` uses)."""
        import pandas

        rows = []
        for test in self.tests:
            row: dict[str, Any] = {
                "nodeid": test.nodeid,
                "module": test.module,
                "name": test.name,
                "outcome": test.outcome,
                "status": test.status,
                "duration": test.duration,
                "setup_duration": test.metrics.get("setup_duration"),
                "call_duration": test.metrics.get("call_duration"),
                "teardown_duration": test.metrics.get("teardown_duration"),
                "start_time": pandas.to_datetime(test.start, unit="ms", utc=True)
                if test.start is not None
                else None,
                "run_id": test.run_id,
            }
            row.update({f"params.{k}": v for k, v in test.params.items()})
            row.update({f"metrics.{k}": v for k, v in test.user_metrics.items()})
            rows.append(row)
        columns = list(dict.fromkeys(key for row in rows for key in row)) or [
            "nodeid",
            "module",
            "name",
            "outcome",
            "status",
            "duration",
            "run_id",
        ]
        return pandas.DataFrame(rows, columns=columns)


class Reader:
    """Reads sessions from one tracking store."""

    def __init__(
        self,
        tracking_uri: str | None = None,
        client: Any = None,
        page_size: int = PAGE_SIZE,
    ) -> None:
        self.tracking_uri = (
            tracking_uri or os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_TRACKING_URI
        )
        if client is None:
            from mlflow.tracking import MlflowClient

            client = MlflowClient(tracking_uri=self.tracking_uri)
        self.client = client
        self.page_size = page_size

    # -- finding sessions ----------------------------------------------------------------------

    def experiment_ids(self, experiment: str | None = None) -> list[str]:
        """The experiment named (or numbered) ``experiment``; all active ones for None."""
        if experiment is None:
            return [str(e.experiment_id) for e in self.client.search_experiments()]
        found = self.client.get_experiment_by_name(experiment)
        if found is None and experiment.isdigit():
            try:
                found = self.client.get_experiment(experiment)
            except Exception:
                found = None
        if found is None:
            raise SessionNotFound(f"no experiment {experiment!r} in {self._shown_uri()}")
        return [str(found.experiment_id)]

    def session_ids(self, experiment: str | None = None, last: int = 1) -> list[str]:
        """Run ids of the ``last`` newest sessions, newest first."""
        ids = self.experiment_ids(experiment)
        runs: list[Any] = []
        if ids:
            runs = list(
                self.client.search_runs(
                    ids,
                    _SESSION_FILTER,
                    order_by=["attributes.start_time DESC"],
                    max_results=max(1, last),
                )
            )
        if not runs:
            where = f"experiment {experiment!r}" if experiment else self._shown_uri()
            raise SessionNotFound(f"no recorded pytest session in {where}")
        return [str(run.info.run_id) for run in runs]

    def last_session(self, experiment: str | None = None) -> Session:
        return self.session(self.session_ids(experiment, 1)[0])

    def sessions(self, experiment: str | None = None, last: int = 2) -> list[Session]:
        """The ``last`` newest sessions, oldest first."""
        return [self.session(run_id) for run_id in reversed(self.session_ids(experiment, last))]

    # -- loading one -----------------------------------------------------------------------------

    def search_all(self, experiment_ids: list[str], filter_string: str) -> Iterator[Any]:
        """Every run matching, page by page (``page_token``)."""
        return search_all(
            self.client,
            experiment_ids,
            filter_string,
            max_pages=_MAX_PAGES,
            page_size=self.page_size,
        )

    def session(self, run_id: str) -> Session:
        session = self._session_run(run_id)
        modules = self._modules_of(session)
        if session.compact:
            for module in modules:
                self._add_table_rows(module)
        session.modules = in_order(modules)
        return session

    def _session_run(self, run_id: str) -> Session:
        """The session of the session run ``run_id``, without its modules yet."""
        try:
            root = self.client.get_run(run_id)
        except Exception as exc:
            raise SessionNotFound(f"no run {run_id!r} in {self._shown_uri()}") from exc
        tags = dict(root.data.tags)
        if tags.get(LEVEL) != SESSION_LEVEL:
            raise SessionNotFound(f"run {run_id} is not a pytest session run")
        return Session(
            run_id=run_id,
            experiment_id=str(root.info.experiment_id),
            name=root.info.run_name or tags.get(RUN_NAME, run_id),
            status=root.info.status,
            start=root.info.start_time,
            end=root.info.end_time,
            tracking_uri=self.tracking_uri,
            tags=tags,
            metrics=dict(root.data.metrics),
        )

    def _modules_of(self, session: Session) -> list[Module]:
        """The session's modules, each with its tests (in the order the store lists them)."""
        modules: dict[str, Module] = {}
        module_by_run: dict[str, Module] = {}
        test_runs = []
        query = f"tags.{ROOT_RUN_ID} = '{session.run_id}'"
        for run in self.search_all([session.experiment_id], query):
            level = run.data.tags.get(LEVEL)
            if level == MODULE_LEVEL:
                module = self._module(run)
                modules[module.path] = module
                module_by_run[str(run.info.run_id)] = module
            elif level == TEST_LEVEL:
                test_runs.append(run)
        for run in test_runs:
            test = self._test(run)
            parent = module_by_run.get(run.data.tags.get(PARENT_RUN_ID, ""))
            if parent is None:
                parent = modules.setdefault(test.module, Module(test.module, None, FINISHED))
            parent.tests.append(test)
        return list(modules.values())

    def failure_text(self, run_id: str) -> str | None:
        try:
            with tempfile.TemporaryDirectory() as directory:
                local = self.client.download_artifacts(run_id, FAILURE_ARTIFACT, directory)
                return Path(local).read_text(encoding="utf-8", errors="replace")
        except Exception:
            return None

    # -- internals -----------------------------------------------------------------------------

    def _module(self, run: Any) -> Module:
        tags = dict(run.data.tags)
        path = tags.get(NODEID) or run.info.run_name
        return Module(
            path=path,
            run_id=str(run.info.run_id),
            status=run.info.status,
            metrics=dict(run.data.metrics),
            tags=tags,
        )

    def _test(self, run: Any) -> Test:
        tags = dict(run.data.tags)
        metrics = dict(run.data.metrics)
        nodeid = tags.get(NODEID, run.info.run_name)
        return Test(
            nodeid=nodeid,
            name=run.info.run_name or nodeid,
            module=module_of(nodeid),
            outcome=tags.get(OUTCOME, "unknown"),
            status=run.info.status,
            duration=metrics.get("duration"),
            start=run.info.start_time,
            end=run.info.end_time,
            run_id=str(run.info.run_id),
            params=dict(run.data.params),
            metrics=metrics,
            tags=tags,
            _load_failure=self.failure_text,
        )

    def _add_table_rows(self, module: Module) -> None:
        """Tests a compact session kept only in the module's table artifact."""
        if module.run_id is None or TABLE_ARTIFACT not in module.tags.get(LOGGED_ARTIFACTS, ""):
            return
        with tempfile.TemporaryDirectory() as directory:
            local = self.client.download_artifacts(module.run_id, TABLE_ARTIFACT, directory)
            table = json.loads(Path(local).read_text(encoding="utf-8"))
        have_runs = {test.nodeid for test in module.tests}
        columns = table["columns"]
        for values in table["data"]:
            row = dict(zip(columns, values, strict=False))
            if row["nodeid"] in have_runs:
                continue
            metrics = {
                k: float(row[k]) for k in DURATION_METRICS if isinstance(row.get(k), int | float)
            }
            module.tests.append(
                Test(
                    nodeid=row["nodeid"],
                    name=row.get("name") or row["nodeid"],
                    module=module.path,
                    outcome=row.get("outcome", "unknown"),
                    status=row.get("status", FINISHED),
                    duration=metrics.get("duration"),
                    start=row.get("start"),
                    end=row.get("end"),
                    params=dict(row.get("params") or {}),
                    metrics=metrics,
                )
            )

    def _shown_uri(self) -> str:
        from pytest_mlflow_tree.model import redact

        return redact.url(self.tracking_uri)


def outcome_counts(tests: Iterable[Test]) -> dict[str, int]:
    """How many of ``tests`` had each outcome."""
    counts: dict[str, int] = {}
    for test in tests:
        counts[test.outcome] = counts.get(test.outcome, 0) + 1
    return counts


def in_order(modules: Iterable[Module]) -> list[Module]:
    """Modules in the order their first tests started, each with its tests in that order."""
    listed = list(modules)
    for module in listed:
        module.tests.sort(key=lambda t: (t.start or 0, t.nodeid))
    return sorted(listed, key=lambda m: (_start(m), m.path))


def _start(module: Module) -> int:
    starts = [t.start for t in module.tests if t.start is not None]
    return min(starts) if starts else 0


def load_session(run_id: str, tracking_uri: str | None = None) -> Session:
    """The session whose session run is ``run_id``."""
    return Reader(tracking_uri).session(run_id)


def last_session(experiment: str | None = None, tracking_uri: str | None = None) -> Session:
    """The newest session of ``experiment`` (of any experiment when None)."""
    return Reader(tracking_uri).last_session(experiment)
