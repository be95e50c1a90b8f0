"""The batched writer for SQL tracking stores: many runs, one transaction.

MLflow's public client writes a run in three calls, each its own transaction with reads inside
(the experiment, the run's inputs, the run reloaded after an update). This writer collects the
runs that are ready and writes their rows - runs, tags, params, metrics, latest metrics - with
one multi-row INSERT per table in one transaction, through MLflow's own table models on the
store's own engine. What it writes reads back through ``MlflowClient`` like any other run.

Run ids derive from the session and the run key (a name-based UUID): a replay, a retry after a
commit whose answer was lost, or two uploaders at once find the run by its primary key and never
make a second copy. A batch is all or nothing. Artifacts go through MLflow's artifact
repository, before the batch that makes their runs is committed: a run that is in the store has
its artifacts.

It is used only where the database's tables hold the columns it fills and no other column that
needs a value (``schema_problem``); otherwise the uploader writes through the public client.
"""

from __future__ import annotations

import json
import math
import tempfile
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pytest_mlflow_tree.model.limits import FULL_VALUES_ARTIFACT, Limits
from pytest_mlflow_tree.model.names import RUN_KEY, RUN_NAME, RUNNING, TERMINAL_STATUSES, USER
from pytest_mlflow_tree.model.records import Header, OpenRecord, RunData, RunRecord
from pytest_mlflow_tree.model.retries import Patience
from pytest_mlflow_tree.upload import logged_values
from pytest_mlflow_tree.upload.client_writer import Known, RunWriter

# Runs written in one transaction at most, and how long a ready run may wait for more.
BATCH_RUNS = 500
BATCH_SECONDS = 1.0
# Values bound in one IN (...) list: well below every backend's limit on parameters.
_IN_CHUNK = 500
# A batch that meets another writer's rows (two uploaders at once) is read again and rewritten.
_CONFLICT_ATTEMPTS = 3
# MLflow stores +-inf as the largest double (SqlAlchemyStore.sanitize_metric_value).
_LARGEST = 1.7976931348623157e308
# Any fixed namespace will do; it must never change, or replays would not find their runs.
_RUN_IDS = uuid.UUID("6d1f0a52-5b1e-4f39-9c55-0c9b3e7d2a10")

# The columns this writer fills, per table: all the columns of MLflow's models.
FILLED: dict[str, tuple[str, ...]] = {
    "runs": (
        "run_uuid",
        "name",
        "source_type",
        "source_name",
        "entry_point_name",
        "user_id",
        "status",
        "start_time",
        "end_time",
        "deleted_time",
        "source_version",
        "lifecycle_stage",
        "artifact_uri",
        "experiment_id",
    ),
    "tags": ("key", "value", "run_uuid"),
    "params": ("key", "value", "run_uuid"),
    "metrics": ("key", "value", "timestamp", "step", "is_nan", "run_uuid"),
    "latest_metrics": ("key", "value", "timestamp", "step", "is_nan", "run_uuid"),
}


def run_id_for(experiment: str, session_uuid: str, key_hash: str, start_ms: int) -> str:
    """The id of a session's run in an experiment: the same for every upload of the journal.

    32 hex digits, as MLflow's own: the run's start time, then a name-based UUID's first 84
    bits. ``experiment`` tells experiments apart, also those of different stores: the same
    journal uploaded elsewhere must not meet ids already taken (MLflow also caches artifact
    repositories per run id in a process). The start time first keeps ids in the order runs
    are written: every index the batch writes to grows at its end, not at random pages.
    """
    name = uuid.uuid5(_RUN_IDS, f"{experiment}/{session_uuid}/{key_hash}").hex
    return f"{max(0, start_ms) % 16**11:011x}{name[:21]}"


def schema_problem(engine: Any) -> str | None:
    """Why this database's tables cannot take the batched rows, or ``None`` if they can.

    Read from the database itself: a migration that adds tables or optional columns leaves the
    batched path on; a missing column, or a new one that needs a value, turns it off.
    """
    import sqlalchemy

    inspector = sqlalchemy.inspect(engine)
    for table, filled in FILLED.items():
        try:
            columns = {column["name"]: column for column in inspector.get_columns(table)}
        except sqlalchemy.exc.NoSuchTableError:
            return f"the database has no table {table!r}"
        missing = [name for name in filled if name not in columns]
        if missing:
            return f"table {table!r} has no column {', '.join(missing)}"
        for name, column in columns.items():
            if name in filled or column.get("nullable", True):
                continue
            if column.get("default") is None and column.get("autoincrement") is not True:
                return f"column {table}.{name} needs a value this writer does not know"
    return None


def sql_store(client: Any) -> Any:
    """The client's SQL store (MLflow's ``SqlAlchemyStore``), or ``None``."""
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    store = client._tracking_client.store
    return store if isinstance(store, SqlAlchemyStore) else None


@dataclass
class _Run:
    """What a batch writes for one run."""

    # The row of a run this batch creates, or None for one that exists already.
    row: dict[str, Any] | None = None
    tags: dict[str, str] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)
    metrics: list[tuple[str, float, int, int]] = field(default_factory=list)
    end: tuple[str, int | None] | None = None
    # Written to the artifact repository before the batch is committed.
    artifacts: list[Callable[[Any], None]] = field(default_factory=list)


class BatchedSqlWriter(RunWriter):
    """``RunWriter``'s calls, collected and written a batch at a time (see module docstring).

    Runs that need the store's answer before they can be written (a re-run test replacing its
    run, a run a test made itself) go through the public client, after the batch before them.
    """

    def __init__(
        self,
        client: Any,
        header: Header,
        limits: Limits,
        experiment_id: str,
        known: dict[str, Known] | None = None,
        patience: Patience | None = None,
        on_commit: Callable[[int], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(client, header, limits, experiment_id, known, patience)
        from mlflow.store.tracking.dbmodels import models

        self._store = sql_store(client)
        self._models = models
        experiment = self._patience.call(client.get_experiment, experiment_id)
        self._artifact_root = str(experiment.artifact_location)
        created = getattr(experiment, "creation_time", None)
        self._id_space = f"{experiment_id}/{created}/{self._artifact_root}"
        self._on_commit = on_commit
        self._clock = clock
        self._batch: dict[str, _Run] = {}
        # When the oldest run of the batch became ready; 0: the batch is empty.
        self._since = 0.0
        # Journal records whose writes are in the batch: applied once it is committed.
        self._records = 0

    # -- what TreeUploader calls ---------------------------------------------------------------

    def create(
        self, record: OpenRecord | RunRecord, parent_id: str | None
    ) -> tuple[str, dict[str, dict[str, str]]]:
        from pytest_mlflow_tree.model.limits import fit, valid_text

        fitted = fit(self._limits, tags=self.tags(record, parent_id))
        start = int(record["start"])
        run_id = run_id_for(
            self._id_space, self._header["session_uuid"], fitted.tags[RUN_KEY], start
        )
        name = valid_text(record["name"], self._limits.run_name_length)
        tags = {RUN_NAME: name, **fitted.tags}
        pending = self._pending(run_id)
        pending.row = {
            "run_uuid": run_id,
            "name": tags[RUN_NAME],
            "source_type": "UNKNOWN",
            "source_name": "",
            "entry_point_name": "",
            "user_id": tags.get(USER, "unknown")[:256],
            "status": RUNNING,
            "start_time": record["start"],
            "end_time": None,
            "deleted_time": None,
            "source_version": "",
            "lifecycle_stage": "active",
            "artifact_uri": self._artifact_uri(run_id),
            "experiment_id": int(self.experiment_id),
        }
        pending.tags.update(tags)
        return run_id, fitted.changed

    def log(
        self,
        run_id: str,
        data: RunData,
        changed: dict[str, dict[str, str]],
        timestamp: int,
        write_changed: bool = False,
    ) -> None:
        params, tags, metrics = self.fitted(run_id, data, changed, timestamp)
        pending = self._pending(run_id)
        pending.params.update(params)
        pending.tags.update(tags)
        pending.metrics.extend(metrics)
        for name, text in data.get("artifacts", {}).items():
            pending.artifacts.append(_text_artifact(name, text))
        files = logged_values.files_to_upload(self.files_root, data.get("files_dir"))
        if files is not None:
            pending.artifacts.append(_directory_artifacts(files))
        if changed and write_changed:
            text = json.dumps(changed, indent=2)
            pending.artifacts.append(_text_artifact(FULL_VALUES_ARTIFACT, text))

    def terminate(self, run_id: str, status: str, end: int | None) -> None:
        self._pending(run_id).end = (status, end)

    def upload_test(self, record: RunRecord, parent_id: str, known: Known | None) -> str:
        if (known is not None and known.replace) or (known is None and record.get("live_run_id")):
            # The store must answer first (the run to replace, the run a test made): the batch
            # before it goes first, so that its parents are there. The new run gets a random
            # id: the one derived from its key may be the replaced run's.
            self.flush()
            return self._public().upload_test(record, parent_id, known)
        return super().upload_test(record, parent_id, known)

    def _public(self) -> RunWriter:
        """A writer with MLflow's public client, in the same place of the same session."""
        public = RunWriter(
            self._client, self._header, self._limits, self.experiment_id, None, self._patience
        )
        public.root_run_id = self.root_run_id
        public.resumed_by = self.resumed_by
        public.files_root = self.files_root
        public._known_by_run = self._known_by_run
        return public

    def record_done(self) -> None:
        """A journal record whose writes are in the batch (or needed none)."""
        self._records += 1
        self._started()

    def due(self) -> bool:
        """Whether the batch should be written now rather than wait for more runs."""
        if not self._since:
            return False
        return len(self._batch) >= BATCH_RUNS or self._clock() - self._since >= BATCH_SECONDS

    def flush(self) -> None:
        """Write the batch: its artifacts, then its rows in one transaction."""
        if not self._since:
            return
        batch, records = self._batch, self._records
        for run_id, pending in batch.items():
            if pending.artifacts:
                self._write_artifacts(run_id, pending)
        self._patience.call(self._commit_with_conflicts, batch)
        self._batch, self._records, self._since = {}, 0, 0.0
        if self._on_commit is not None:
            self._on_commit(records)

    # -- the batch ------------------------------------------------------------------------------

    def _started(self) -> None:
        self._since = self._since or self._clock()

    def _pending(self, run_id: str) -> _Run:
        self._started()
        pending = self._batch.get(run_id)
        if pending is None:
            pending = self._batch[run_id] = _Run()
        return pending

    def _artifact_uri(self, run_id: str) -> str:
        """Where MLflow's ``create_run`` puts a run's artifacts in this experiment."""
        from mlflow.utils import uri

        join: Any = uri.append_to_uri_path
        return str(join(self._artifact_root, run_id, "artifacts"))

    def _write_artifacts(self, run_id: str, pending: _Run) -> None:
        from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

        uri = self._artifact_uri(run_id)
        if pending.row is None:
            uri = self._patience.call(self._client.get_run, run_id).info.artifact_uri
        repo = get_artifact_repository(uri)
        for write in pending.artifacts:
            self._patience.call(write, repo)
        pending.artifacts = []

    def _commit_with_conflicts(self, batch: dict[str, _Run]) -> None:
        import sqlalchemy.exc

        for attempt in range(_CONFLICT_ATTEMPTS):
            try:
                self._commit(batch)
                return
            except sqlalchemy.exc.IntegrityError:
                # Another uploader wrote some of these runs between our read and our write:
                # read again, and write only what it did not.
                if attempt == _CONFLICT_ATTEMPTS - 1:
                    raise

    def _commit(self, batch: dict[str, _Run]) -> None:
        from sqlalchemy.orm import Session

        with Session(self._store.engine) as session, session.begin():
            if self._store.engine.dialect.name == "sqlite":
                # What MLflow's own sessions ask of SQLite (mlflow.store.db.utils).
                session.execute(_text("PRAGMA foreign_keys = ON"))
                session.execute(_text("PRAGMA busy_timeout = 20000"))
            _Transaction(session, self._models, batch).write()


class _Transaction:
    """The statements of one batch, inside the session's transaction."""

    def __init__(self, session: Any, models: Any, batch: dict[str, _Run]) -> None:
        self._session = session
        self._m = models
        self._batch = batch

    def write(self) -> None:
        m = self._m
        statuses = self._statuses(list(self._batch))
        new: dict[str, _Run] = {}
        existing: dict[str, _Run] = {}
        for run_id, pending in self._batch.items():
            status = statuses.get(run_id)
            if status is None:
                if pending.row is None:
                    raise LookupError(f"run {run_id} is not in the tracking store")
                new[run_id] = pending
            elif pending.row is not None and status in TERMINAL_STATUSES:
                continue  # made and finished by an earlier upload of the same journal
            else:
                existing[run_id] = pending
        rows = []
        for pending in new.values():
            row = dict(pending.row or {})
            if pending.end is not None:
                row["status"], row["end_time"] = pending.end
            rows.append(row)
        self._insert(m.SqlRun, rows)
        self._insert(m.SqlTag, _rows(new, lambda p: p.tags.items()))
        self._insert(m.SqlParam, _rows(new, lambda p: p.params.items()))
        metrics = {run_id: _metric_rows(run_id, p.metrics) for run_id, p in new.items()}
        self._insert(m.SqlMetric, [row for rows in metrics.values() for row in rows])
        latest = [row for rows in metrics.values() for row in _latest_per_key(rows)]
        self._insert(m.SqlLatestMetric, latest)
        for run_id, pending in existing.items():
            self._continue(run_id, pending)

    def _continue(self, run_id: str, pending: _Run) -> None:
        """A run made earlier (an open module, a run of an interrupted upload): add to it."""
        from sqlalchemy import delete, select, update

        m, session = self._m, self._session
        if pending.tags:
            session.execute(
                delete(m.SqlTag).where(
                    m.SqlTag.run_uuid == run_id, m.SqlTag.key.in_(list(pending.tags))
                )
            )
            self._insert(m.SqlTag, [_row(run_id, k, v) for k, v in pending.tags.items()])
        if pending.params:
            have = set(session.scalars(select(m.SqlParam.key).where(m.SqlParam.run_uuid == run_id)))
            params = [_row(run_id, k, v) for k, v in pending.params.items() if k not in have]
            self._insert(m.SqlParam, params)
        if pending.metrics:
            self._add_metrics(run_id, _metric_rows(run_id, pending.metrics))
        if pending.end is not None:
            status, end = pending.end
            session.execute(
                update(m.SqlRun)
                .where(m.SqlRun.run_uuid == run_id)
                .values(status=status, end_time=end)
            )

    def _add_metrics(self, run_id: str, rows: list[dict[str, Any]]) -> None:
        from sqlalchemy import delete, select

        m, session = self._m, self._session
        keys = sorted({row["key"] for row in rows})
        columns = (m.SqlMetric.key, m.SqlMetric.timestamp, m.SqlMetric.step, m.SqlMetric.value)
        found = session.execute(
            select(*columns, m.SqlMetric.is_nan).where(
                m.SqlMetric.run_uuid == run_id, m.SqlMetric.key.in_(keys)
            )
        )
        have = {tuple(row) for row in found}
        fresh = [row for row in rows if _metric_id(row) not in have]
        self._insert(m.SqlMetric, fresh)
        latest = {
            row.key: row
            for row in session.scalars(
                select(m.SqlLatestMetric).where(
                    m.SqlLatestMetric.run_uuid == run_id, m.SqlLatestMetric.key.in_(keys)
                )
            )
        }
        newest = {row["key"]: row for row in _latest_per_key(fresh)}
        replace = []
        for key, row in newest.items():
            old = latest.get(key)
            if old is None or _order(row) > (old.step, old.timestamp, old.value):
                replace.append(row)
        if replace:
            session.execute(
                delete(m.SqlLatestMetric).where(
                    m.SqlLatestMetric.run_uuid == run_id,
                    m.SqlLatestMetric.key.in_([row["key"] for row in replace]),
                )
            )
            self._insert(m.SqlLatestMetric, replace)

    def _statuses(self, run_ids: list[str]) -> dict[str, str]:
        from sqlalchemy import select

        m = self._m
        found: dict[str, str] = {}
        for chunk in _chunks(run_ids, _IN_CHUNK):
            query = select(m.SqlRun.run_uuid, m.SqlRun.status).where(m.SqlRun.run_uuid.in_(chunk))
            found.update({run_id: status for run_id, status in self._session.execute(query)})
        return found

    def _insert(self, model: Any, rows: list[dict[str, Any]]) -> None:
        from sqlalchemy import insert

        if rows:
            self._session.execute(insert(model.__table__), rows)


def _text(statement: str) -> Any:
    from sqlalchemy import text

    return text(statement)


def _text_artifact(name: str, text: str) -> Callable[[Any], None]:
    """Writes ``text`` as the artifact ``name`` (a path in the run's artifacts)."""

    def write(repo: Any) -> None:
        directory, _, filename = name.rpartition("/")
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / filename
            path.write_text(text, encoding="utf-8")
            repo.log_artifact(str(path), directory or None)

    return write


def _directory_artifacts(directory: Path) -> Callable[[Any], None]:
    def write(repo: Any) -> None:
        repo.log_artifacts(str(directory))

    return write


def _chunks(items: list[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _row(run_id: str, key: str, value: str) -> dict[str, Any]:
    return {"run_uuid": run_id, "key": key, "value": value}


def _rows(
    runs: dict[str, _Run],
    values: Callable[[_Run], Iterable[tuple[str, str]]],
) -> list[dict[str, Any]]:
    return [_row(run_id, k, v) for run_id, pending in runs.items() for k, v in values(pending)]


def _metric_rows(run_id: str, metrics: list[tuple[str, float, int, int]]) -> list[dict[str, Any]]:
    """Rows as MLflow stores metrics: NaN as 0 flagged, infinities as the largest double."""
    rows: dict[tuple[Any, ...], dict[str, Any]] = {}
    for key, number, timestamp, step in metrics:
        value = float(number)
        is_nan = math.isnan(value)
        if is_nan:
            value = 0.0
        elif math.isinf(value):
            value = _LARGEST if value > 0 else -_LARGEST
        row = {
            "run_uuid": run_id,
            "key": key,
            "value": value,
            "timestamp": int(timestamp),
            "step": int(step),
            "is_nan": is_nan,
        }
        # The same value logged twice is one row, as in MLflow's log_batch.
        rows.setdefault(_metric_id(row), row)
    return list(rows.values())


def _metric_id(row: dict[str, Any]) -> tuple[Any, ...]:
    """A metric row's identity: MLflow's primary key of ``metrics`` less the run."""
    return (row["key"], row["timestamp"], row["step"], row["value"], row["is_nan"])


def _order(row: dict[str, Any]) -> tuple[int, int, float]:
    # MLflow's order for the latest value of a metric: step, then timestamp, then value.
    return (row["step"], row["timestamp"], row["value"])


def _latest_per_key(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    newest: dict[str, dict[str, Any]] = {}
    for row in rows:
        old = newest.get(row["key"])
        if old is None or _order(row) > _order(old):
            newest[row["key"]] = row
    return list(newest.values())
