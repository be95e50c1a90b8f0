"""Apply journal records to an MLflow tracking store, idempotently.

This is the only module that talks to MLflow. It runs in the uploader process (live, next to
pytest) and in ``pytest-mlflow-tree replay``: one code path for both.

Idempotency: every run carries ``pytest.session_uuid`` and ``pytest.run_key``. Before creating
anything the uploader looks up the runs an earlier upload of the same session made
(``search_runs``, the way MLflow users avoid duplicate child runs) and continues them instead.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from pathlib import Path
from typing import Any, TypeVar

from pytest_mlflow_tree.model import experiments
from pytest_mlflow_tree.model.limits import Limits, fit, valid_text
from pytest_mlflow_tree.model.names import (
    CI_JOB_ID,
    CI_JOB_URL,
    CI_PREFIX,
    KILLED,
    MODULE_LEVEL,
    NOTE,
    RESUMED_BY,
    RUN_KEY,
    SESSION_LEVEL,
    SHARD_KEY,
    SOURCE_PREFIX,
    TERMINAL_STATUSES,
)
from pytest_mlflow_tree.model.records import (
    SESSION_KEY,
    CloseRecord,
    Header,
    OpenRecord,
    Record,
    RunData,
    RunRecord,
    run_key,
)
from pytest_mlflow_tree.model.retries import Patience, retry_locked
from pytest_mlflow_tree.model.status import Progress
from pytest_mlflow_tree.upload import anchor, duplicates, resume, shards
from pytest_mlflow_tree.upload.client_writer import Known, RunWriter

T = TypeVar("T")

# How often the wait for lost create_run calls looks at the clock.
_UNSURE_POLL = 0.5


class TreeUploader:
    """Turns records into ``create_run`` -> ``log_batch`` -> ``set_terminated`` calls.

    Session and module runs are written inline, in journal order, so a parent always exists
    before its children. Tests, independent of each other once their module run exists, go to
    a bounded pool of threads when ``workers`` > 1: against a tracking server they hide its
    latency. With ``batched`` (a SQL store whose schema the batched writer knows) every write
    is collected and committed a batch at a time instead (see ``sqlwriter``).
    """

    def __init__(
        self,
        client: Any,
        header: Header,
        limits: Limits,
        experiment: str | None = None,
        on_progress: Callable[[Progress], None] | None = None,
        workers: int = 1,
        files_root: Path | None = None,
        patience: Patience | None = None,
        on_run: Callable[[str, str], None] | None = None,
        batched: bool = False,
    ) -> None:
        self._client = client
        self._files_root = files_root
        self._header = header
        self._limits = limits
        self._patience = patience or Patience(give_up=5.0)
        self._experiment_name = experiment or header["experiment"]
        self._experiment_named = experiment is not None
        # This journal's own uuid; a resumed session's runs keep the uuid of the session.
        self._journal_uuid = header["session_uuid"]
        self._anchor = anchor.Anchor()
        self._on_progress = on_progress
        # Told (record key, run id) of every run applied, from the upload threads too.
        self._on_run = on_run
        self._workers = workers
        self._writer: RunWriter | None = None
        self._run_ids: dict[str, str] = {}
        self._open: dict[str, str] = {}
        self._known: dict[str, Known] = {}
        # Originals of keys and values changed to fit MLflow, logged as one artifact at close.
        self._changed: dict[str, dict[str, dict[str, str]]] = {}
        self._last_time = 0
        self.progress = Progress()
        self._lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None
        self._batched = batched
        # Bounded: the journal may hold far more tests than fit in memory as futures.
        self._slots = threading.BoundedSemaphore(workers * 4)
        self._pending: set[Future[Any]] = set()
        self._error: BaseException | None = None
        self._shard: shards.Shard | None = None

    # -- setup ---------------------------------------------------------------------------------

    def start(self) -> None:
        self._anchor = anchor.resolve(self._client, self._header, self._experiment_named)
        if self._anchor.session_uuid:
            self._header = {**self._header, "session_uuid": self._anchor.session_uuid}
        experiment_id = self._anchor.experiment_id or self._experiment_id()
        self.progress.experiment_id = experiment_id
        self._known = self._earlier_runs(experiment_id)
        self._writer = self._make_writer(experiment_id)
        self._writer.files_root = self._files_root
        self._writer.root_run_id = self._anchor.root_run_id
        if self._anchor.resumed_run_id:
            self._writer.resumed_by = self._journal_uuid

    def _make_writer(self, experiment_id: str) -> RunWriter:
        args = (self._client, self._header, self._limits, experiment_id, self._known)
        if not self._batched:
            return RunWriter(*args, self._patience)
        from pytest_mlflow_tree.upload.sqlwriter import BatchedSqlWriter

        return BatchedSqlWriter(*args, self._patience, on_commit=self._applied)

    def idle(self) -> None:
        """The journal has no new record yet: write what waits, if it has waited long enough."""
        if self._writer is not None and self._writer.due():
            self._writer.flush()

    @property
    def _resuming(self) -> bool:
        return self._anchor.resumed_run_id is not None

    @property
    def resumed(self) -> bool:
        """Whether the journal continues a recorded session, so holds only part of it."""
        return self._resuming

    @property
    def session_uuid(self) -> str:
        """The uuid on the session's runs (a resumed session's, not this journal's)."""
        return self._header["session_uuid"]

    def _experiment_id(self) -> str:
        from mlflow.exceptions import MlflowException

        return experiments.experiment_id(
            self._client, self._experiment_name, self._patience.call, MlflowException
        )

    def _earlier_runs(self, experiment_id: str) -> dict[str, Known]:
        call = self._patience.call
        uuid = self._header["session_uuid"]
        runs = duplicates.session_runs(self._client, experiment_id, uuid, call)
        # An earlier upload may have left a second copy of a run (a lost answer): keep one.
        known: dict[str, Known] = {}
        for run in duplicates.resolve(self._client, runs, call):
            key = run.data.tags.get(RUN_KEY)
            if key:
                known[key] = Known(
                    run_id=run.info.run_id,
                    done=run.info.status in TERMINAL_STATUSES,
                    params=frozenset(run.data.params),
                    metrics=frozenset(run.data.metrics),
                    resumed_by=run.data.tags.get(RESUMED_BY),
                )
        return known

    def _remove_duplicates(self) -> None:
        """After an upload that may have made a run twice: keep one run per key.

        A ``create_run`` whose answer was lost, and not found by the retry's look-up, may
        still be in the server's hands: wait for it (bounded by the give-up bound) first.
        """
        # Called when nothing creates runs any more: the deadline stands.
        deadline = self.writer.unsure_until
        for _ in range(math.ceil(max(0.0, deadline - time.monotonic()) / _UNSURE_POLL) + 1):
            left = deadline - time.monotonic()
            if left <= 0:
                break
            time.sleep(min(left, _UNSURE_POLL))
        duplicates.remove(
            self._client,
            self.writer.experiment_id,
            self._header["session_uuid"],
            self._patience.call,
        )

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
            self._drain()
            # Copies come from lost answers: of this upload, or of an earlier one continued.
            if self._known or self.writer.unsure_until:
                self._remove_duplicates()
            if self._shard is not None and self.progress.session_run_id:
                self._shard.finish(self._header["session_uuid"], self.progress.session_run_id)
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
        self._record_done()

    def _record_done(self) -> None:
        """One record is written, or, with a batched writer, collected for the next batch."""
        if not self._batched:
            self._applied()
            return
        writer: Any = self.writer
        writer.record_done()
        if writer.due():
            writer.flush()

    def finish(self) -> None:
        """Terminate runs the journal opened but never closed: the session was cut off."""
        for key, run_id in list(self._open.items()):
            self.writer.terminate(run_id, KILLED, self._last_time or None)
            del self._open[key]

    def _open_run(self, record: OpenRecord) -> None:
        key = record["key"]
        self._last_time = max(self._last_time, record["start"])
        known = self._known.get(run_key(key))
        if known is not None:
            # A replay: find the root the first upload joined (its runs point at it).
            self._join_shards(record)
            run_id = known.run_id
            # A resumed session closes its modules and itself again, with counts recomputed.
            if not known.done or self._resuming:
                self._open[key] = run_id
        else:
            parent = record["parent"]
            # A shard key puts the session under the shards' root, else under the run it
            # was attached to (if any).
            parent_id = (
                self._run_ids[parent]
                if parent
                else (self._join_shards(record) or self._anchor.parent_run_id)
            )
            run_id, changed = self.writer.create(record, parent_id)
            self._open[key] = run_id
            self._changed[key] = changed
            if record.get("params"):
                self.writer.log(
                    run_id, {"params": record.get("params", {})}, changed, record["start"]
                )
        self._run_ids[key] = run_id
        if self._on_run is not None:
            self._on_run(key, run_id)
        if record["level"] == SESSION_LEVEL:
            self.progress.session_run_id = run_id
            if self._shard is None:
                self.writer.root_run_id = self.writer.root_run_id or run_id

    def _join_shards(self, record: OpenRecord) -> str | None:
        """For a session with a shard key: the shared root run it goes under."""
        shard_key = record.get("tags", {}).get(SHARD_KEY)
        if record["level"] != SESSION_LEVEL or not shard_key or self._shard is not None:
            return None
        self._shard = shards.Shard(self._client, self.writer.experiment_id, shard_key, retry_locked)
        # What all shards share: who ran them, from which source and CI pipeline.
        shared = {
            k: v
            for k, v in record.get("tags", {}).items()
            if k.startswith((SOURCE_PREFIX, CI_PREFIX)) and k != CI_JOB_ID and k != CI_JOB_URL
        }
        tags = fit(self._limits, tags={**self._header["common_tags"], **shared}).tags
        root = self._shard.join(
            tags, valid_text(f"pytest shards {shard_key}", self._limits.run_name_length)
        )
        self.writer.root_run_id = root
        return root

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
        status = record["status"]
        if self._resuming:
            status = self._recount(key, run_id, record, data)
        changed = self._changed.pop(key, {})
        self.writer.log(run_id, data, changed, record["end"], write_changed=True)
        self.writer.terminate(run_id, status, record["end"])

    def _recount(self, key: str, run_id: str, record: CloseRecord, data: RunData) -> str:
        """Counts and status of a resumed module or session from all its tests in the store."""
        self._drain()  # the re-run tests must be in the store before they are counted
        level = SESSION_LEVEL if key == SESSION_KEY else MODULE_LEVEL
        metrics, status, note = resume.recount(
            self._client,
            self.writer.experiment_id,
            run_id,
            level,
            self._header["session_uuid"],
            "pytest session" if level == SESSION_LEVEL else key,
            record["end"],
        )
        data["metrics"] = metrics
        data["tags"] = {**data.get("tags", {}), NOTE: note}
        # New values for metrics it has: log them all, not only what an interrupted upload missed.
        self.writer.forget(run_id)
        return KILLED if record["status"] == KILLED else status

    # -- concurrency ---------------------------------------------------------------------------

    def _applied(self, count: int = 1, pooled: bool = False) -> None:
        with self._lock:
            self.progress.applied += count
            self.progress.pooled += pooled
            if self._on_progress is not None:
                self._on_progress(self.progress)

    def _submit(self, record: RunRecord) -> None:
        self._last_time = max(self._last_time, record["end"])
        parent_id = self._run_ids[record["parent"] or SESSION_KEY]
        known = self._known.get(run_key(record["key"]))
        if (
            self._resuming
            and known is not None
            and known.resumed_by != self._journal_uuid
            and known.run_id != record.get("live_run_id")
        ):
            # Re-run in a resumed session: a new run replaces the recorded one.
            known = Known(run_id=known.run_id, done=False, replace=True)
        pool = self._get_pool()
        if pool is None:
            self._upload_test(record, parent_id, known)
            self._record_done()
            return
        self._slots.acquire()
        future = pool.submit(self._upload_test, record, parent_id, known)
        with self._lock:
            self._pending.add(future)
        future.add_done_callback(self._done)

    def _upload_test(self, record: RunRecord, parent_id: str, known: Known | None) -> None:
        run_id = self.writer.upload_test(record, parent_id, known)
        if self._on_run is not None:
            self._on_run(record["key"], run_id)

    def _get_pool(self) -> ThreadPoolExecutor | None:
        """The pool to send a test to, or ``None`` to upload it here and now."""
        if self._pool is None and self._workers > 1 and not self._batched:
            self._pool = ThreadPoolExecutor(self._workers, "mlflow-tree-upload")
        return self._pool

    def _done(self, future: Future[Any]) -> None:
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
        self.writer.flush()

    def _raise_worker_error(self) -> None:
        if self._error is not None:
            raise self._error
