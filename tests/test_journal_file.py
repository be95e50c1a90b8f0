"""The journal's records: tests cut off get a run.

Pure logic; what crosses processes is tested end to end in ``test_kills`` and ``test_replay``.
"""

from __future__ import annotations

import json
from typing import Any, cast

from pytest_mlflow_tree import started
from pytest_mlflow_tree.records import Record, StartRecord

HEADER: dict[str, Any] = {
    "kind": "journal",
    "format": 1,
    "session_uuid": "0" * 32,
    "tracking_uri": "sqlite:///mlflow.db",
    "experiment": "x",
    "common_tags": {},
    "plugin_version": "0",
}
SESSION: dict[str, Any] = {
    "kind": "open",
    "level": "session",
    "key": "<session>",
    "parent": None,
    "name": "pytest 모델 café",
    "start": 1_000,
}
START: StartRecord = {
    "kind": "start",
    "key": "test_a.py::test_one",
    "parent": "test_a.py",
    "name": "test_one",
    "start": 1_500,
    "tags": {"pytest.nodeid": "test_a.py::test_one"},
}


def line(record: dict[str, Any]) -> bytes:
    return (json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8")


def kinds_and_statuses(records: list[Record]) -> list[tuple[Any, Any]]:
    return [(r["kind"], cast(dict[str, Any], r).get("status")) for r in records]


def test_a_test_started_in_a_journal_cut_off_gets_a_killed_run() -> None:
    records: list[Record] = [HEADER, SESSION, START]  # type: ignore[list-item]

    out = list(started.with_killed_tests(records))

    assert kinds_and_statuses(out[3:]) == [("run", "KILLED")]
    killed: Any = out[3]
    assert killed["key"] == START["key"]
    assert killed["parent"] == "test_a.py"
    assert killed["tags"]["pytest.outcome"] == "killed"
    assert killed["start"] == killed["end"] == 1_500


def test_a_test_finished_or_a_journal_complete_gets_no_killed_run() -> None:
    run: Any = {**START, "kind": "run", "end": 1_600, "status": "FINISHED"}
    finished: list[Record] = [HEADER, START, run]  # type: ignore[list-item]
    ended: list[Record] = [HEADER, START, {"kind": "end", "time": 2_000}]  # type: ignore[list-item]

    assert list(started.with_killed_tests(finished)) == finished
    assert list(started.with_killed_tests(ended)) == ended
