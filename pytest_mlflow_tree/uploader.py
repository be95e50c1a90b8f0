"""Apply journal records to an MLflow tracking store, idempotently.

This is the only module that talks to MLflow. It runs in the uploader process (live, next to
pytest) and in ``pytest-mlflow-tree replay``: one code path for both.

Idempotency: every run carries ``pytest.session_uuid`` and ``pytest.run_key``. Before creating
anything the uploader looks up the runs an earlier upload of the same session made
(``search_runs``, the way MLflow users avoid duplicate child runs) and continues them instead.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any, TypeVar

from pytest_mlflow_tree.limits import FULL_VALUES_ARTIFACT, Limits, fit, truncate
from pytest_mlflow_tree.records import (
    SESSION_KEY,
    CloseRecord,
    Header,
    OpenRecord,
    Record,
    RunData,
    RunRecord,
)

TERMINAL_STATUSES = frozenset({"FINISHED", "FAILED", "KILLED"})

T = TypeVar("T")


def run_key(key: str) -> str:
    return hashlib.sha1(key.encode("utf-8", "surrogatepass")).hexdigest()


@dataclass
class _Known:
    run_id: str
    # Whether an earlier upload already finished this run; then there is nothing left to do.
    done: bool
    params: frozenset[str] = frozenset()
    metrics: frozenset[str] = frozenset()


@dataclass
class Progress:
    applied: int = 0
    # Tests uploaded by the thread pool rather than inline.
    pooled: int = 0
    session_run_id: str | None = None
    experiment_id: str | None = None


class TreeUploader:
    """Turns records into ``create_run`` -> ``log_batch`` -> ``set_terminated`` calls.

    Session and module runs are written inline, in journal order, so a parent always exists
    before its children. Tests, independent of each other once their module run exists, go to
    a bounded pool of threads when ``workers`` > 1: against a tracking server they hide its
    latency.
    """

    def __init__(
        self,
        client: Any,
        header: Header,
        limits: Limits,
        experiment: str | None = None,
        on_progress: Callable[[Progress], None] | None = None,
        workers: int = 1,
    ) -> None:
        self._client = client
        self._header = header
        self._limits = limits
        self._experiment_name = experiment or header["experiment"]
        self._on_progress = on_progress
        self._workers = workers
        self._writer: RunWriter | None = None
        self._run_ids: dict[str, str] = {}
        self._open: dict[str, str] = {}
        self._known: dict[str, _Known] = {}
        # Originals of keys and values changed to fit MLflow, logged as one artifact at close.
        self._changed: dict[str, dict[str, dict[str, str]]] = {}
        self._last_time = 0
        self.progress = Progress()
        self._lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None
        # Bounded: the journal may hold far more tests than fit in memory as futures.
        self._slots = threading.BoundedSemaphore(max(1, workers) * 4)
        self._pending: set[Future[None]] = set()
        self._error: BaseException | None = None

    # -- setup ---------------------------------------------------------------------------------

    def start(self) -> None:
        experiment_id = self._experiment_id()
        self.progress.experiment_id = experiment_id
        self._known = self._earlier_runs(experiment_id)
        self._writer = RunWriter(
            self._client, self._header, self._limits, experiment_id, self._known
        )

    def _experiment_id(self) -> str:
        from mlflow.exceptions import MlflowException

        name = self._experiment_name
        experiment = self._client.get_experiment_by_name(name)
        if experiment is None:
            try:
                return str(self._client.create_experiment(name))
            except MlflowException:
                # Another session created it between our two calls.
                experiment = self._client.get_experiment_by_name(name)
                if experiment is None:
                    raise
        if experiment.lifecycle_stage == "deleted":
            raise RuntimeError(
                f"experiment {name!r} is deleted; restore it (mlflow experiments restore) or "
                "choose another name"
            )
        return str(experiment.experiment_id)

    def _earlier_runs(self, experiment_id: str) -> dict[str, _Known]:
        known: dict[str, _Known] = {}
        uuid = self._header["session_uuid"]
        page_token = None
        # Bounded: a session has at most a few hundred thousand runs.
        for _page in range(10_000):
            page = self._client.search_runs(
                [experiment_id],
                filter_string=f"tags.`pytest.session_uuid` = '{uuid}'",
                max_results=1000,
                page_token=page_token,
            )
            for run in page:
                key = run.data.tags.get("pytest.run_key")
                if key:
                    known[key] = _Known(
                        run_id=run.info.run_id,
                        done=run.info.status in TERMINAL_STATUSES,
                        params=frozenset(run.data.params),
                        metrics=frozenset(run.data.metrics),
                    )
            page_token = page.token
            if not page_token:
                break
        return known

    @property
    def writer(self) -> RunWriter:
        if self._writer is None:
            raise RuntimeError("start() first")
        return self._writer

    # -- records -------------------------------------------------------------------------------

    def apply_all(self, records: Iterable[Record]) -> None:
        try:
            for record in records:
                self.apply(record)
            self._drain()
            self.finish()
        finally:
            if self._pool is not None:
                self._pool.shutdown(wait=True, cancel_futures=True)

    def apply(self, record: Record) -> None:
        self._raise_worker_error()
        kind = record["kind"]
        if kind == "run":
            self._submit(record)  # type: ignore[arg-type]
            return
        if kind == "open":
            self._open_run(record)  # type: ignore[arg-type]
        elif kind == "close":
            self._close_run(record)  # type: ignore[arg-type]
        self._applied()

    def finish(self) -> None:
        """Terminate runs the journal opened but never closed: the session was cut off."""
        for key, run_id in list(self._open.items()):
            self.writer.terminate(run_id, "KILLED", self._last_time or None)
            del self._open[key]

    def _open_run(self, record: OpenRecord) -> None:
        key = record["key"]
        self._last_time = max(self._last_time, record["start"])
        known = self._known.get(run_key(key))
        if known is not None:
            run_id = known.run_id
            if not known.done:
                self._open[key] = run_id
        else:
            parent = record["parent"]
            run_id, changed = self.writer.create(record, self._run_ids[parent] if parent else None)
            self._open[key] = run_id
            self._changed[key] = changed
            if record.get("params"):
                self.writer.log(
                    run_id, {"params": record.get("params", {})}, changed, record["start"]
                )
        self._run_ids[key] = run_id
        if record["level"] == "session":
            self.progress.session_run_id = run_id
            self.writer.root_run_id = run_id

    def _close_run(self, record: CloseRecord) -> None:
        key = record["key"]
        self._last_time = max(self._last_time, record["end"])
        run_id = self._open.pop(key, None)
        if run_id is None:
            return  # finished by an earlier upload
        data: RunData = {
            "metrics": record.get("metrics", {}),
            "tags": record.get("tags", {}),
            "artifacts": record.get("artifacts", {}),
        }
        changed = self._changed.pop(key, {})
        self.writer.log(run_id, data, changed, record["end"], write_changed=True)
        self.writer.terminate(run_id, record["status"], record["end"])

    # -- concurrency ---------------------------------------------------------------------------

    def _applied(self, pooled: bool = False) -> None:
        with self._lock:
            self.progress.applied += 1
            self.progress.pooled += pooled
            if self._on_progress is not None:
                self._on_progress(self.progress)

    def _submit(self, record: RunRecord) -> None:
        self._last_time = max(self._last_time, record["end"])
        parent_id = self._run_ids[record["parent"] or SESSION_KEY]
        known = self._known.get(run_key(record["key"]))
        pool = self._get_pool()
        if pool is None:
            self.writer.upload_test(record, parent_id, known)
            self._applied()
            return
        self._slots.acquire()
        future = pool.submit(self.writer.upload_test, record, parent_id, known)
        with self._lock:
            self._pending.add(future)
        future.add_done_callback(self._done)

    def _get_pool(self) -> ThreadPoolExecutor | None:
        """The pool to send a test to, or ``None`` to upload it here and now."""
        if self._pool is None and self._workers > 1:
            self._pool = ThreadPoolExecutor(self._workers, "mlflow-tree-upload")
        return self._pool

    def _done(self, future: Future[None]) -> None:
        self._slots.release()
        error = future.exception()
        with self._lock:
            self._pending.discard(future)
            if error is not None:
                self._error = self._error or error
        if error is None:
            self._applied(pooled=True)

    def _drain(self) -> None:
        for _ in range(len(self._pending) + 1):
            with self._lock:
                pending = list(self._pending)
            if not pending:
                break
            wait(pending)
        self._raise_worker_error()

    def _raise_worker_error(self) -> None:
        if self._error is not None:
            raise self._error


class RunWriter:
    """The MLflow calls that write one run; safe to call from the upload threads."""

    def __init__(
        self,
        client: Any,
        header: Header,
        limits: Limits,
        experiment_id: str,
        known: dict[str, _Known] | None = None,
    ) -> None:
        self._client = client
        self._header = header
        self._limits = limits
        self.experiment_id = experiment_id
        self.root_run_id: str | None = None
        self._known_by_run = {k.run_id: k for k in (known or {}).values()}

    def tags(self, record: OpenRecord | RunRecord, parent_id: str | None) -> dict[str, str]:
        tags = {
            **self._header["common_tags"],
            **record.get("tags", {}),
            "pytest.level": record["level"],
            "pytest.session_uuid": self._header["session_uuid"],
            "pytest.run_key": run_key(record["key"]),
        }
        if parent_id is not None and self.root_run_id is not None:
            tags["mlflow.parentRunId"] = parent_id
            tags["mlflow.rootRunId"] = self.root_run_id
        return tags

    def create(
        self, record: OpenRecord | RunRecord, parent_id: str | None
    ) -> tuple[str, dict[str, dict[str, str]]]:
        fitted = fit(self._limits, tags=self.tags(record, parent_id))
        run = _retry_locked(
            self._client.create_run,
            self.experiment_id,
            start_time=record["start"],
            tags=fitted.tags,
            run_name=truncate(record["name"], self._limits.run_name_length),
        )
        return str(run.info.run_id), fitted.changed

    def terminate(self, run_id: str, status: str, end: int | None) -> None:
        _retry_locked(self._client.set_terminated, run_id, status, end_time=end)

    def upload_test(self, record: RunRecord, parent_id: str, known: _Known | None) -> None:
        """All of one test; ``known`` is its run from an earlier upload, if any."""
        if known is not None and known.done:
            return
        changed: dict[str, dict[str, str]] = {}
        if known is not None:
            run_id = known.run_id
            self._known_by_run[run_id] = known
        else:
            run_id, changed = self.create(record, parent_id)
        data: RunData = {
            "params": record.get("params", {}),
            "metrics": record.get("metrics", {}),
            "artifacts": record.get("artifacts", {}),
        }
        self.log(run_id, data, changed, timestamp=record["end"], write_changed=True)
        self.terminate(run_id, record["status"], record["end"])

    def log(
        self,
        run_id: str,
        data: RunData,
        changed: dict[str, dict[str, str]],
        timestamp: int,
        write_changed: bool = False,
    ) -> None:
        from mlflow.entities import Metric, Param, RunTag

        known = self._known_by_run.get(run_id)
        params = data.get("params", {})
        metrics = data.get("metrics", {})
        if known is not None:
            # Continue an earlier, interrupted upload: params are immutable and metrics would
            # repeat, so send only what is missing.
            params = {k: v for k, v in params.items() if k not in known.params}
            metrics = {k: v for k, v in metrics.items() if k not in known.metrics}
        fitted = fit(self._limits, params=params, tags=data.get("tags", {}), metrics=metrics)
        for kind, values in fitted.changed.items():
            changed.setdefault(kind, {}).update(values)
        metric_list = [Metric(k, v, timestamp, 0) for k, v in fitted.metrics.items()]
        param_list = [Param(k, v) for k, v in fitted.params.items()]
        tag_list = [RunTag(k, v) for k, v in fitted.tags.items()]
        per_batch = self._limits.params_tags_per_batch
        while metric_list or param_list or tag_list:
            batch_params = param_list[:per_batch]
            batch_tags = tag_list[: per_batch - len(batch_params)]
            batch_metrics = metric_list[: self._limits.metrics_per_batch]
            _retry_locked(
                self._client.log_batch,
                run_id,
                metrics=batch_metrics,
                params=batch_params,
                tags=batch_tags,
            )
            param_list = param_list[len(batch_params) :]
            tag_list = tag_list[len(batch_tags) :]
            metric_list = metric_list[len(batch_metrics) :]
        for name, text in data.get("artifacts", {}).items():
            self._client.log_text(run_id, text, name)
        if changed and write_changed:
            self._client.log_dict(run_id, changed, FULL_VALUES_ARTIFACT)


# SQLite answers "database is locked" when two writers' transactions meet in a way its busy
# timeout does not cover (a read upgraded to a write in WAL mode), for example when two pytest
# sessions record into one file at once. Each MLflow call is one transaction, rolled back whole
# on that error, so repeating it is safe.
_LOCKED_ATTEMPTS = 8


def _retry_locked(call: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    for attempt in range(_LOCKED_ATTEMPTS):
        try:
            return call(*args, **kwargs)
        except Exception as exc:
            if "database is locked" not in str(exc) or attempt == _LOCKED_ATTEMPTS - 1:
                raise
            time.sleep(0.01 * 2**attempt)
    raise AssertionError("unreachable")
