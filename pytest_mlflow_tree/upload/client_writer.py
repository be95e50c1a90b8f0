"""The public-client writer: the MLflow calls that write one run, one run at a time.

Used for tracking servers, and for SQL stores where the batched writer (``sqlwriter``) cannot be
used; the batched writer builds on it for what it does not batch (artifacts, live runs).
"""

from __future__ import annotations

import itertools
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from pytest_mlflow_tree.model.limits import FULL_VALUES_ARTIFACT, Limits, fit, valid_text
from pytest_mlflow_tree.model.names import (
    LEVEL,
    PARENT_RUN_ID,
    REPLACED_RUN_ID,
    RESUMED_BY,
    ROOT_RUN_ID,
    RUN_KEY,
    SESSION_UUID,
    TEST_LEVEL,
)
from pytest_mlflow_tree.model.records import (
    Header,
    OpenRecord,
    RunData,
    RunRecord,
    run_key,
)
from pytest_mlflow_tree.model.retries import Patience
from pytest_mlflow_tree.upload import logged_values

T = TypeVar("T")


@dataclass
class Known:
    run_id: str
    # Whether an earlier upload already finished this run; then there is nothing left to do.
    done: bool
    params: frozenset[str] = frozenset()
    metrics: frozenset[str] = frozenset()
    # The journal (by its own uuid) of the resumed session that replaced this test's run.
    resumed_by: str | None = None
    # The run of an earlier session to delete and replace with a new one.
    replace: bool = False


class RunWriter:
    """The MLflow calls that write one run; safe to call from the upload threads."""

    def __init__(
        self,
        client: Any,
        header: Header,
        limits: Limits,
        experiment_id: str,
        known: dict[str, Known] | None = None,
        patience: Patience | None = None,
    ) -> None:
        self._client = client
        self._patience = patience or Patience(give_up=5.0)
        self._header = header
        self._limits = limits
        self.experiment_id = experiment_id
        self.root_run_id: str | None = None
        # The uuid of the resuming journal, tagged on the runs it makes.
        self.resumed_by: str | None = None
        # Where the journal is: tests' staged files are relative to it.
        self.files_root: Path | None = None
        self._known_by_run = {k.run_id: k for k in (known or {}).values()}
        # Until when (monotonic) a create_run whose answer was lost, and which the retry's
        # look-up did not find, may still be carried out by the server; 0: none.
        self.unsure_until = 0.0
        self._unsure_lock = threading.Lock()

    def tags(self, record: OpenRecord | RunRecord, parent_id: str | None) -> dict[str, str]:
        tags = {
            **self._header["common_tags"],
            **record.get("tags", {}),
            LEVEL: record["level"],
            SESSION_UUID: self._header["session_uuid"],
            RUN_KEY: run_key(record["key"]),
        }
        if parent_id is not None and self.root_run_id is not None:
            tags[PARENT_RUN_ID] = parent_id
            tags[ROOT_RUN_ID] = self.root_run_id
        if self.resumed_by is not None and record["level"] == TEST_LEVEL:
            tags[RESUMED_BY] = self.resumed_by
        return tags

    def create(
        self, record: OpenRecord | RunRecord, parent_id: str | None
    ) -> tuple[str, dict[str, dict[str, str]]]:
        fitted = fit(self._limits, tags=self.tags(record, parent_id))
        attempts = itertools.count()
        # When the latest create_run was sent.
        sent = [time.monotonic()]

        def create_or_find() -> Any:
            # A repeated create_run may follow one whose answer was lost after the store made
            # the run: look for it first, so that a retry never makes a second run.
            if next(attempts) > 0:
                found = self._find(fitted.tags[RUN_KEY])
                if found is not None:
                    return found
                # Not there yet, or never: the server may still carry it out. The copy it
                # would make is removed at the end (see TreeUploader._remove_duplicates).
                self.unsure(sent[0] + self._patience.give_up)
            sent[0] = time.monotonic()
            return self._client.create_run(
                self.experiment_id,
                start_time=record["start"],
                tags=fitted.tags,
                run_name=valid_text(record["name"], self._limits.run_name_length),
            )

        run = self._patience.call(create_or_find)
        return str(run.info.run_id), fitted.changed

    def unsure(self, until: float) -> None:
        """A ``create_run`` whose answer was lost may still be carried out until ``until``."""
        with self._unsure_lock:
            self.unsure_until = max(self.unsure_until, until)

    def _find(self, key: str) -> Any:
        uuid = self._header["session_uuid"]
        runs = self._client.search_runs(
            [self.experiment_id],
            filter_string=f"tags.`{SESSION_UUID}` = '{uuid}' and tags.`{RUN_KEY}` = '{key}'",
            max_results=1,
        )
        return runs[0] if runs else None

    def terminate(self, run_id: str, status: str, end: int | None) -> None:
        self._patience.call(self._client.set_terminated, run_id, status, end_time=end)

    def upload_test(self, record: RunRecord, parent_id: str, known: Known | None) -> str:
        """All of one test; ``known`` is its run from an earlier upload, if any. Its run id."""
        if known is not None and known.replace:
            # Params are immutable and old metrics and artifacts would linger: a re-run test
            # gets a new run. Deleted first, so that a replay after a crash finds one run only.
            self._patience.call(self._client.delete_run, known.run_id)
            replaced, known = known.run_id, None
            record = {**record, "tags": {**record.get("tags", {}), REPLACED_RUN_ID: replaced}}
        if known is None and record.get("live_run_id"):
            known = self.live_run(record["live_run_id"])
        if known is not None and known.done:
            return known.run_id
        changed: dict[str, dict[str, str]] = {}
        data: RunData = {
            "params": record.get("params", {}),
            "metrics": record.get("metrics", {}),
            "artifacts": record.get("artifacts", {}),
            "metric_steps": record.get("metric_steps", []),
            "files_dir": record.get("files_dir", ""),
        }
        if known is not None:
            run_id = known.run_id
            self._known_by_run[run_id] = known
            # Not necessarily created here (a live run): give it its place in the tree.
            data["tags"] = self.tags(record, parent_id)
        else:
            run_id, changed = self.create(record, parent_id)
        self.log(run_id, data, changed, timestamp=record["end"], write_changed=True)
        self.terminate(run_id, record["status"], record["end"])
        return run_id

    def forget(self, run_id: str) -> None:
        self._known_by_run.pop(run_id, None)

    def live_run(self, run_id: str) -> Known:
        """A run a test made in its own process: completed here like an interrupted upload."""
        run = self._patience.call(self._client.get_run, run_id)
        return Known(
            run_id=run_id,
            done=False,
            params=frozenset(run.data.params),
            metrics=frozenset(run.data.metrics),
        )

    def fitted(
        self, run_id: str, data: RunData, changed: dict[str, dict[str, str]], timestamp: int
    ) -> tuple[dict[str, str], dict[str, str], list[tuple[str, float, int, int]]]:
        """Params, tags and metrics (key, value, timestamp, step) of ``data`` as MLflow takes
        them; what had to change is added to ``changed``."""
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
        metric_list = [(k, v, timestamp, 0) for k, v in fitted.metrics.items()]
        metric_list += logged_values.step_metrics(
            self._limits, data.get("metric_steps", []), changed
        )
        return fitted.params, fitted.tags, metric_list

    def log(
        self,
        run_id: str,
        data: RunData,
        changed: dict[str, dict[str, str]],
        timestamp: int,
        write_changed: bool = False,
    ) -> None:
        from mlflow.entities import Metric, Param, RunTag

        params, tags, metrics = self.fitted(run_id, data, changed, timestamp)
        metric_list = [Metric(*entry) for entry in metrics]
        param_list = [Param(k, v) for k, v in params.items()]
        tag_list = [RunTag(k, v) for k, v in tags.items()]
        per_batch = self._limits.params_tags_per_batch
        while metric_list or param_list or tag_list:
            batch_params = param_list[:per_batch]
            batch_tags = tag_list[: per_batch - len(batch_params)]
            room = self._limits.entities_per_batch - len(batch_params) - len(batch_tags)
            batch_metrics = metric_list[: min(self._limits.metrics_per_batch, room)]
            self._patience.call(
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
            self._patience.call(self._client.log_text, run_id, text, name)
        files = logged_values.files_to_upload(self.files_root, data.get("files_dir"))
        if files is not None:
            self._patience.call(self._client.log_artifacts, run_id, str(files))
        if changed and write_changed:
            self._patience.call(self._client.log_dict, run_id, changed, FULL_VALUES_ARTIFACT)

    # The public client writes each call at once; a batched writer collects them (sqlwriter).
    def due(self) -> bool:
        return False

    def flush(self) -> None:
        """Write what was collected."""
