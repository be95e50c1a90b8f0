"""Read recorded sessions back: the run tree as objects or as a pandas DataFrame.

Built on ``MlflowClient.search_runs`` with pagination, so a session of any size loads in
pages of ``PAGE_SIZE`` runs. Sessions recorded in compact mode (most tests only in a table
artifact per module) read back the same way: table rows become tests without a run id.

    from pytest_mlflow_tree.read import Reader

    reader = Reader("sqlite:///mlflow.db")
    session = reader.last_session("my-project")
    for test in session.failures:
        print(test.nodeid, test.start, test.duration, test.failure())
    frame = session.to_frame()  # one row per test: params.*, metrics.*, tags.* columns
    history = reader.history("my-project", last=10)  # one row per test, one column per session

Times (``Session.start``, ``Test.end``, the frames' ``start_time``) are timezone-aware UTC
datetimes; the milliseconds MLflow stores are ``start_ms`` and ``end_ms``. pandas is needed for
the frames only: ``Session.rows()`` and ``history_rows`` give the same as plain dicts.

Importing this module does not import MLflow; creating a ``Reader`` does.
"""

from __future__ import annotations

import datetime
import json
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from pytest_mlflow_tree.model import links
from pytest_mlflow_tree.model.compact import DURATION_COLUMNS, TABLE_ARTIFACT
from pytest_mlflow_tree.model.defaults import DEFAULT_TRACKING_URI
from pytest_mlflow_tree.model.names import (
    CALL_DURATION,
    COLLECTION_INDEX,
    DURATION,
    FAILED,
    FINISHED,
    FLAKY,
    GIT_COMMIT,
    LEVEL,
    LOGGED_ARTIFACTS,
    MARKERS,
    METRIC_PREFIX,
    MODE,
    MODULE_LEVEL,
    NODEID,
    OUTCOME,
    PARENT_RUN_ID,
    PROPERTY_PREFIX,
    RERUN_PREFIX,
    ROOT_RUN_ID,
    RUN_NAME,
    SESSION_LEVEL,
    SETUP_DURATION,
    SKIP_REASON,
    TEARDOWN_DURATION,
    TEST_LEVEL,
    WORKER,
    XFAIL_REASON,
)
from pytest_mlflow_tree.model.outcome import BAD_OUTCOMES
from pytest_mlflow_tree.model.records import FAILURE_ARTIFACT, module_of
from pytest_mlflow_tree.model.searchpages import PAGE_SIZE, search_all
from pytest_mlflow_tree.model.settings_table import COMPACT_MODE

if TYPE_CHECKING:
    import pandas

# Bounded paging: 10,000 pages of 1,000 runs is far beyond any session.
_MAX_PAGES = 10_000

# The plugin's tags on a test run that say something about the test (the rest is bookkeeping:
# the run's place in the tree, its source): in the frames, with the tags a test set itself.
ANALYSIS_TAGS = frozenset({MARKERS, SKIP_REASON, XFAIL_REASON, FLAKY, WORKER})
ANALYSIS_TAG_PREFIXES = (PROPERTY_PREFIX, RERUN_PREFIX)
# Prefixes of the tags MLflow and the plugin keep for themselves.
_OWN_TAG_PREFIXES = ("mlflow.", "pytest.")
# The frame's columns that every session has, also when it has no tests.
FRAME_COLUMNS = (
    "nodeid",
    "module",
    "name",
    "outcome",
    "status",
    *DURATION_COLUMNS,
    "start_time",
    "end_time",
    "run_id",
)

_SESSION_FILTER = f"tags.`{LEVEL}` = '{SESSION_LEVEL}'"


class SessionNotFound(LookupError):
    """No session run matches: unknown run id, a run that is not a session, no sessions yet."""


def utc(ms: int | None) -> datetime.datetime | None:
    """A time in milliseconds since the epoch (as MLflow stores it) as an aware UTC datetime."""
    if ms is None:
        return None
    return datetime.datetime.fromtimestamp(ms / 1000, tz=datetime.timezone.utc)


class Times:
    """``start`` and ``end`` as aware UTC datetimes, from MLflow's ``start_ms`` and ``end_ms``."""

    __slots__ = ()
    start_ms: int | None
    end_ms: int | None

    @property
    def start(self) -> datetime.datetime | None:
        return utc(self.start_ms)

    @property
    def end(self) -> datetime.datetime | None:
        return utc(self.end_ms)


# Slots: the uploader holds one of these per test of the session.
@dataclass(slots=True)
class Test(Times):
    """One test of a session. ``run_id`` is None for a test kept only in a compact table.

    ``start_ms`` and ``end_ms`` are MLflow's milliseconds; ``start`` and ``end`` the same as
    aware UTC datetimes.
    """

    __test__: ClassVar[bool] = False  # not a test class, whatever pytest thinks of the name

    nodeid: str
    name: str
    module: str
    outcome: str
    status: str
    duration: float | None
    start_ms: int | None = None
    end_ms: int | None = None
    run_id: str | None = None
    # The test's place in pytest's order; None for sessions recorded without it.
    index: int | None = None
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
        """Metrics the test logged itself (everything but the plugin's ``pytest/...``)."""
        return {k: v for k, v in self.metrics.items() if not k.startswith(METRIC_PREFIX)}

    @property
    def analysis_tags(self) -> dict[str, str]:
        """The tags that say something about the test: those it set itself (``set_tag``,
        ``check`` verdicts), its user properties, markers, skip and xfail reasons, reruns."""
        return {k: v for k, v in self.tags.items() if is_analysis_tag(k)}

    def value(self, column: str) -> Any:
        """The test's value in ``column`` of ``Session.to_frame()`` (None: it has none)."""
        kind, _, key = column.partition(".")
        if kind == "params" and key:
            return self.params.get(key)
        if kind == "metrics" and key:
            return None if key.startswith(METRIC_PREFIX) else self.metrics.get(key)
        if kind == "tags" and key:
            return self.tags.get(key) if is_analysis_tag(key) else None
        return self.row().get(column)

    def row(self) -> dict[str, Any]:
        """The test as one row of ``Session.to_frame()``."""
        row: dict[str, Any] = {
            "nodeid": self.nodeid,
            "module": self.module,
            "name": self.name,
            "outcome": self.outcome,
            "status": self.status,
            # The plugin's durations, in the columns of a compact session's table.
            "duration": self.duration,
            "setup_duration": self.metrics.get(SETUP_DURATION),
            "call_duration": self.metrics.get(CALL_DURATION),
            "teardown_duration": self.metrics.get(TEARDOWN_DURATION),
            "start_time": self.start,
            "end_time": self.end,
            "run_id": self.run_id,
        }
        row.update({f"params.{k}": v for k, v in self.params.items()})
        row.update({f"metrics.{k}": v for k, v in self.user_metrics.items()})
        row.update({f"tags.{k}": v for k, v in self.analysis_tags.items()})
        return row

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
class Session(Times):
    run_id: str
    experiment_id: str
    name: str
    status: str
    start_ms: int | None
    end_ms: int | None
    tracking_uri: str
    tags: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    modules: list[Module] = field(default_factory=list)
    # What the session logged through ``mlflow_session.log_param``.
    params: dict[str, str] = field(default_factory=dict)

    # The MLflow UI's address for links to runs; None: derived from the tracking URI.
    ui_url: str | None = None

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
        return self.run_url(self.run_id)

    def run_url(self, run_id: str) -> str:
        return links.run_url(self.tracking_uri, self.experiment_id, run_id, self.ui_url)

    def test(self, nodeid: str) -> Test | None:
        for test in self.tests:
            if test.nodeid == nodeid:
                return test
        return None

    def rows(self) -> list[dict[str, Any]]:
        """The rows of ``to_frame()`` as plain dicts (no pandas needed)."""
        return [test.row() for test in self.tests]

    def to_frame(self) -> pandas.DataFrame:
        """One row per test, in the order they ran: outcome, durations, ``start_time`` and
        ``end_time`` (UTC), run id, then params as ``params.<name>``, the tests' own metrics as
        ``metrics.<name>`` and their tags as ``tags.<name>`` (the column names
        ``mlflow.search_runs`` uses). Tags are those a test set itself (``check`` verdicts
        among them) and the plugin's that describe it: ``tags.pytest.markers``,
        ``tags.pytest.property.<name>``, skip and xfail reasons, reruns, the xdist worker."""
        pandas = _pandas()
        rows = self.rows()
        columns = list(dict.fromkeys([*FRAME_COLUMNS, *(key for row in rows for key in row)]))
        frame = pandas.DataFrame(rows, columns=columns)
        for column in ("start_time", "end_time"):
            frame[column] = pandas.to_datetime(frame[column], utc=True)
        return frame


def is_analysis_tag(key: str) -> bool:
    """Whether a test run's tag belongs in the frames (see ``Test.analysis_tags``)."""
    if not key.startswith(_OWN_TAG_PREFIXES):
        return True
    return key in ANALYSIS_TAGS or key.startswith(ANALYSIS_TAG_PREFIXES)


def history_rows(sessions: Iterable[Session], value: str = "outcome") -> list[dict[str, Any]]:
    """One dict per test (node id) over ``sessions``: ``nodeid``, then one entry per session,
    keyed by its run id, oldest session first, holding the test's ``value`` in it (any column
    of ``Session.to_frame()``: ``outcome``, ``duration``, ``metrics.accuracy``, ...); None
    where the test did not run or has no such value. Tests in the order they first ran."""
    ordered = by_start(sessions)
    by_test: dict[str, dict[str, Any]] = {}
    for session in ordered:
        for test in session.tests:
            row = by_test.setdefault(test.nodeid, {"nodeid": test.nodeid})
            row[session.run_id] = test.value(value)
    return [
        {"nodeid": nodeid, **{s.run_id: row.get(s.run_id) for s in ordered}}
        for nodeid, row in by_test.items()
    ]


def sessions_frame(sessions: Sequence[Session], value: str = "outcome") -> pandas.DataFrame:
    """``history_rows`` as a DataFrame indexed by node id: one column per session (its run
    id), sessions ordered by start."""
    pandas = _pandas()
    ordered = by_start(sessions)
    columns = ["nodeid", *(s.run_id for s in ordered)]
    frame = pandas.DataFrame(history_rows(ordered, value), columns=columns)
    return frame.set_index("nodeid")


def by_start(sessions: Iterable[Session]) -> list[Session]:
    """Oldest first; a session without a start time last."""
    return sorted(sessions, key=lambda s: (s.start_ms is None, s.start_ms or 0, s.run_id))


def _pandas() -> Any:
    try:
        import pandas
    except ImportError as exc:
        raise ImportError(
            "a DataFrame needs pandas (pip install pandas); Session.rows() and history_rows() "
            "give the same rows as dicts"
        ) from exc
    return pandas


class Reader:
    """Reads sessions from one tracking store; ``ui_url``: the MLflow UI's address for links."""

    def __init__(
        self,
        tracking_uri: str | None = None,
        client: Any = None,
        page_size: int = PAGE_SIZE,
        ui_url: str | None = None,
    ) -> None:
        self.tracking_uri = (
            tracking_uri or os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_TRACKING_URI
        )
        if client is None:
            from mlflow.tracking import MlflowClient

            client = MlflowClient(tracking_uri=self.tracking_uri)
        self.client = client
        self.page_size = page_size
        self.ui_url = ui_url

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

    def history(
        self, experiment: str | None = None, last: int = 10, value: str = "outcome"
    ) -> pandas.DataFrame:
        """The ``last`` newest sessions side by side (``sessions_frame``): one row per test,
        one column per session, oldest first, holding each test's ``value`` in it."""
        return sessions_frame(self.sessions(experiment, last), value)

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
            start_ms=root.info.start_time,
            end_ms=root.info.end_time,
            tracking_uri=self.tracking_uri,
            tags=tags,
            metrics=dict(root.data.metrics),
            params=dict(root.data.params),
            ui_url=self.ui_url,
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
            duration=metrics.get(DURATION),
            start_ms=run.info.start_time,
            end_ms=run.info.end_time,
            run_id=str(run.info.run_id),
            index=collection_index(tags),
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
                key: float(row[column])
                for column, key in DURATION_COLUMNS.items()
                if isinstance(row.get(column), int | float)
            }
            module.tests.append(
                Test(
                    nodeid=row["nodeid"],
                    name=row.get("name") or row["nodeid"],
                    module=module.path,
                    outcome=row.get("outcome", "unknown"),
                    status=row.get("status", FINISHED),
                    duration=metrics.get(DURATION),
                    start_ms=row.get("start"),
                    end_ms=row.get("end"),
                    index=row.get("index"),
                    params=dict(row.get("params") or {}),
                    metrics=metrics,
                    tags=_table_reasons(row),
                )
            )

    def _shown_uri(self) -> str:
        from pytest_mlflow_tree.model import redact

        return redact.url(self.tracking_uri)


def _table_reasons(row: dict[str, Any]) -> dict[str, str]:
    """A compact table row's skip or xfail reason, as the tag a test run would carry."""
    columns = {SKIP_REASON: "skip_reason", XFAIL_REASON: "xfail_reason"}
    return {tag: str(row[column]) for tag, column in columns.items() if row.get(column)}


def outcome_counts(tests: Iterable[Test]) -> dict[str, int]:
    """How many of ``tests`` had each outcome."""
    counts: dict[str, int] = {}
    for test in tests:
        counts[test.outcome] = counts.get(test.outcome, 0) + 1
    return counts


def collection_index(tags: dict[str, str]) -> int | None:
    """The test's place in pytest's order, from its tags."""
    text = tags.get(COLLECTION_INDEX, "")
    return int(text) if text.isdigit() else None


def in_order(modules: Iterable[Module]) -> list[Module]:
    """Modules and their tests in pytest's order.

    That is the collection index each test carries; tests recorded without it come after, in
    the order they started.
    """
    listed = list(modules)
    for module in listed:
        module.tests.sort(key=_place)
    return sorted(listed, key=lambda m: (min(map(_place, m.tests), default=_NOWHERE), m.path))


# Where a module without tests goes: first, as its collection error came before any test.
_NOWHERE = (False, -1, 0, "")


def _place(test: Test) -> tuple[bool, int, int, str]:
    # Start times are milliseconds: only the index keeps tests that start within one in order.
    return (test.index is None, test.index or 0, test.start_ms or 0, test.nodeid)


def load_session(run_id: str, tracking_uri: str | None = None) -> Session:
    """The session whose session run is ``run_id``."""
    return Reader(tracking_uri).session(run_id)


def last_session(experiment: str | None = None, tracking_uri: str | None = None) -> Session:
    """The newest session of ``experiment`` (of any experiment when None)."""
    return Reader(tracking_uri).last_session(experiment)
