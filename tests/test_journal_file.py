"""The journal file itself: lines cut anywhere, a directory deleted under it, tests cut off.

Pure logic on real files in ``tmp_path``; what crosses processes is tested end to end in
``test_kills``, ``test_replay`` and ``test_deleted_journal``.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any, cast

import pytest

from pytest_mlflow_tree.model import journal, started
from pytest_mlflow_tree.model.records import Record, StartRecord

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


def inside_a_character(data: bytes) -> int:
    """An offset in ``data`` that falls between the bytes of a multi-byte character."""
    first = next(i for i, byte in enumerate(data) if byte >= 0xC0)
    return first + 1


def test_a_journal_cut_inside_a_character_reads_up_to_its_last_whole_line(
    tmp_path: Path,
) -> None:
    whole = line(HEADER) + line({**SESSION, "name": "plain"})
    cut = line(SESSION)[: inside_a_character(line(SESSION))]
    path = tmp_path / "cut.jsonl"
    path.write_bytes(whole + cut)
    with pytest.raises(UnicodeDecodeError):
        path.read_bytes().decode("utf-8")

    records = list(journal.read(path))

    assert [r["kind"] for r in records] == ["journal", "open"]
    assert records[1]["name"] == "plain"  # type: ignore[typeddict-item]


def test_a_line_written_in_two_parts_split_inside_a_character_is_read_whole(
    tmp_path: Path,
) -> None:
    path = tmp_path / "live.jsonl"
    second = line(SESSION)
    split = inside_a_character(second)
    path.write_bytes(line(HEADER) + second[:split])
    appended: list[bool] = []

    def write_the_rest() -> None:
        # The writer finishes its line while the reader waits for it.
        if not appended:
            with path.open("ab") as file:
                file.write(second[split:])
            appended.append(True)

    records = list(
        journal.follow(path, lambda: not appended, poll_seconds=0, on_idle=write_the_rest)
    )

    assert records[1] == SESSION


def test_a_whole_line_that_is_not_utf8_is_reported_as_damage(tmp_path: Path) -> None:
    path = tmp_path / "damaged.jsonl"
    path.write_bytes(line(HEADER) + b'{"kind":"end","time":1,"x":"\xff"}\n')
    with pytest.raises(journal.JournalError, match="damaged: line 2"):
        list(journal.read(path))


def test_a_journal_whose_directory_is_deleted_is_written_back_whole(tmp_path: Path) -> None:
    path = tmp_path / "cache" / "d" / "journal.jsonl"
    writer = journal.JournalWriter(path)
    writer.write(HEADER)  # type: ignore[arg-type]
    assert writer.put_back() is False
    shutil.rmtree(tmp_path / "cache")

    writer.write(SESSION)  # type: ignore[arg-type]
    assert writer.put_back() is True
    writer.write({"kind": "end", "time": 2_000})
    writer.close()
    writer.put_back()
    writer.release()

    assert [r["kind"] for r in journal.read(path)] == ["journal", "open", "end"]


def test_a_reader_handed_out_reads_the_journal_after_its_directory_is_deleted(
    tmp_path: Path,
) -> None:
    path = tmp_path / "cache" / "journal.jsonl"
    writer = journal.JournalWriter(path)
    with writer.reader() as source:
        writer.write(HEADER)  # type: ignore[arg-type]
        shutil.rmtree(tmp_path / "cache")
        writer.write({"kind": "end", "time": 2_000})
        writer.release()
        records = list(journal.follow(path, lambda: False, source=source))
    assert [r["kind"] for r in records] == ["journal", "end"]


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
