"""Compact mode for very large suites: most tests live in a table, not in runs of their own.

Each MLflow run costs three calls; tens of thousands of tests take longer to upload than to run.
In compact mode (``--mlflow-tree-mode=compact``) every test's outcome, durations and params go
into one table artifact per module run (``tests.json``, in the JSON format of
``MlflowClient.log_table``, so ``MlflowClient.load_table`` and the UI's table view read it), and
only tests worth a look get a run: failed, errored, xpassed, rerun, killed, with failed
subtests, or slower than a threshold.

The journal stays complete either way: the choice is made in the uploader, from the mode tag on
the session run, so replaying a compact journal gives the same compact tree.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import Any, cast

from pytest_mlflow_tree.model.names import (
    FINISHED,
    FLAKY,
    LOGGED_ARTIFACTS,
    MODE,
    OUTCOME,
    RERUN_PREFIX,
    SESSION_LEVEL,
    SLOW_SECONDS,
)
from pytest_mlflow_tree.model.records import CloseRecord, OpenRecord, Record, RunRecord
from pytest_mlflow_tree.model.settings_table import (
    COMPACT_MODE,
    DEFAULT_COMPACT_SLOW_SECONDS,
    TREE_MODE,
)

MODES = (TREE_MODE, COMPACT_MODE)

TABLE_ARTIFACT = "tests.json"

COLUMNS = (
    "nodeid",
    "name",
    "outcome",
    "status",
    "duration",
    "setup_duration",
    "call_duration",
    "teardown_duration",
    "start",
    "end",
    "params",
    "has_run",
)

# Outcomes that always get a run of their own.
_KEPT_OUTCOMES = frozenset({"failed", "error", "xpassed", "killed"})


def session_tags(mode: str, slow_seconds: float) -> dict[str, str]:
    """Tags on the session run that tell the uploader (and readers) how it was recorded."""
    if mode != COMPACT_MODE:
        return {}
    return {MODE: COMPACT_MODE, SLOW_SECONDS: f"{slow_seconds:g}"}


def keeps_run(record: RunRecord, slow_seconds: float) -> bool:
    """Whether a test gets its own run in compact mode."""
    tags = record.get("tags", {})
    if record["status"] != FINISHED or tags.get(OUTCOME) in _KEPT_OUTCOMES:
        return True
    # A test that passed only on a rerun is flaky: worth a run (pytest-rerunfailures).
    if any(key.startswith(RERUN_PREFIX) for key in tags):
        return True
    if tags.get(FLAKY) == "true" or record.get("metrics", {}).get("attempts", 1) > 1:
        return True
    # A test pytest counts passed though subtests of it failed (a unittest TestCase's subTest).
    if record.get("metrics", {}).get("subtests_failed", 0) > 0:
        return True
    return record.get("metrics", {}).get("duration", 0.0) >= slow_seconds


def _row(record: RunRecord, has_run: bool) -> list[Any]:
    metrics = record.get("metrics", {})
    tags = record.get("tags", {})
    return [
        record["key"],
        record["name"],
        tags.get(OUTCOME, ""),
        record["status"],
        metrics.get("duration"),
        metrics.get("setup_duration"),
        metrics.get("call_duration"),
        metrics.get("teardown_duration"),
        record["start"],
        record["end"],
        record.get("params", {}),
        has_run,
    ]


def table_json(rows: list[list[Any]]) -> str:
    """``{"columns": [...], "data": [[...], ...]}``: pandas' split orient, as log_table writes."""
    return json.dumps({"columns": list(COLUMNS), "data": rows}, ensure_ascii=False, default=str)


class CompactFilter:
    """Passes records through, turning a compact session's quiet tests into table rows.

    Rows are held per module until its ``close`` record, which then carries the table as an
    artifact: memory grows with the largest module, not with the suite.
    """

    def __init__(self) -> None:
        self.dropped = 0
        self._slow_seconds: float | None = None
        self._tables: dict[str, list[list[Any]]] = {}

    def __call__(self, records: Iterable[Record]) -> Iterator[Record]:
        for record in records:
            kind = record["kind"]
            if kind == "open" and cast(OpenRecord, record)["level"] == SESSION_LEVEL:
                tags = cast(OpenRecord, record).get("tags", {})
                if tags.get(MODE) == COMPACT_MODE:
                    self._slow_seconds = float(tags.get(SLOW_SECONDS, DEFAULT_COMPACT_SLOW_SECONDS))
            elif kind == "run" and self._slow_seconds is not None:
                run = cast(RunRecord, record)
                keep = keeps_run(run, self._slow_seconds)
                self._tables.setdefault(run["parent"] or "", []).append(_row(run, keep))
                if not keep:
                    self.dropped += 1
                    continue
            elif kind == "close":
                close = cast(CloseRecord, record)
                rows = self._tables.pop(close["key"], None)
                if rows is not None:
                    record = _with_table(close, rows)
            yield record


def _with_table(record: CloseRecord, rows: list[list[Any]]) -> CloseRecord:
    tags = dict(record.get("tags", {}))
    tags[LOGGED_ARTIFACTS] = json.dumps([{"path": TABLE_ARTIFACT, "type": "table"}])
    artifacts = dict(record.get("artifacts", {}))
    artifacts[TABLE_ARTIFACT] = table_json(rows)
    return cast(CloseRecord, {**record, "tags": tags, "artifacts": artifacts})
