"""Tests that started and never finished: a run each, KILLED, so that no test is missing.

A test that ends its process (``os._exit``, a crash, the OOM killer) leaves no report, only the
``start`` record written before it ran. The recorder turns such records into runs when the
session still closes; a journal cut off before its ``end`` record gets them here, on its way to
the uploader.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import cast

from pytest_mlflow_tree.model.names import KILLED, OUTCOME, TEST_LEVEL
from pytest_mlflow_tree.model.records import CloseRecord, OpenRecord, Record, RunRecord, StartRecord


def killed_run(start: StartRecord, end: int) -> RunRecord:
    """The run of a test cut off at ``end`` (ms) with nothing recorded but its start."""
    return {
        "kind": "run",
        "level": TEST_LEVEL,
        "key": start["key"],
        "parent": start["parent"],
        "name": start["name"],
        "start": start["start"],
        "end": max(end, start["start"]),
        "status": KILLED,
        "tags": {**start["tags"], OUTCOME: "killed"},
        "params": {},
        "metrics": {},
        "artifacts": {},
    }


def _time(record: Record) -> int:
    kind = record["kind"]
    if kind == "run" or kind == "close":
        return cast("RunRecord | CloseRecord", record)["end"]
    if kind == "open" or kind == "start":
        return cast("OpenRecord | StartRecord", record)["start"]
    return 0


def with_killed_tests(records: Iterable[Record]) -> Iterator[Record]:
    """``records``, then, if they stop before the ``end`` record, a KILLED run for each test
    started and not finished, ending at the latest time recorded (where the uploader ends the
    runs left open)."""
    started: dict[str, StartRecord] = {}
    latest = 0
    for record in records:
        kind = record["kind"]
        latest = max(latest, _time(record))
        if kind == "start":
            start = cast(StartRecord, record)
            started[start["key"]] = start
        elif kind == "run":
            started.pop(cast(RunRecord, record)["key"], None)
        elif kind == "end":
            # The recorder has closed every test of a session that ended.
            started.clear()
        yield record
    for start in started.values():
        yield killed_run(start, latest)
