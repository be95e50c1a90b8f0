"""Writing and reading the journal: odd values, and a journal read while it grows."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import pytest

from pytest_mlflow_tree.model import journal
from pytest_mlflow_tree.model.journal import JournalError, decode, encode, ended, follow
from pytest_mlflow_tree.model.records import FORMAT, Record

HEADER = {"kind": "journal", "format": FORMAT, "session_uuid": "u"}
END = {"kind": "end", "time": 2}


def line(data: dict[str, Any]) -> bytes:
    return (encode(cast(Record, data)) + "\n").encode("utf-8")


def record(name: str) -> dict[str, Any]:
    return {"kind": "open", "key": name, "name": name}


def growing(path: Path, *chunks: bytes) -> tuple[Callable[[], bool], Callable[[], None]]:
    """``keep_waiting`` and ``on_idle`` for ``follow`` that append one chunk per idle turn:
    a writer that is slower than the reader, without threads or sleeps."""
    todo = list(chunks)

    def on_idle() -> None:
        if todo:
            with path.open("ab") as file:
                file.write(todo.pop(0))

    return (lambda: bool(todo)), on_idle


def names(records: list[Record]) -> list[str]:
    return [cast(dict[str, str], r).get("name", r["kind"]) for r in records]


def test_non_finite_metrics_are_written_as_strings_and_read_back_as_floats() -> None:
    data = {"kind": "run", "metrics": {"nan": math.nan, "inf": math.inf, "low": -math.inf}}
    text = encode(cast(Record, data))
    json.loads(text, parse_constant=lambda name: pytest.fail(f"{name} is not standard JSON"))
    metrics = cast(dict[str, Any], decode(text))["metrics"]
    assert math.isnan(metrics["nan"])
    assert (metrics["inf"], metrics["low"]) == (math.inf, -math.inf)


def test_non_ascii_text_is_kept_as_utf8() -> None:
    text = encode(cast(Record, {"kind": "open", "name": "тест ✓ 😀"}))
    assert "тест ✓ 😀" in text
    assert cast(dict[str, Any], decode(text))["name"] == "тест ✓ 😀"


def test_a_lone_surrogate_is_written_as_text_and_the_line_stays_utf8() -> None:
    text = encode(cast(Record, {"kind": "open", "name": "a\udcffb"}))
    text.encode("utf-8")
    assert cast(dict[str, Any], decode(text))["name"] == "a\\udcffb"


def test_a_value_json_cannot_encode_is_written_as_its_text() -> None:
    text = encode(cast(Record, {"kind": "open", "name": Path("a/b")}))
    assert cast(dict[str, Any], decode(text))["name"] == "a/b"


def test_a_whole_journal_is_read_to_its_end_record(tmp_path: Path) -> None:
    path = tmp_path / "journal.jsonl"
    path.write_bytes(line(HEADER) + b"\n" + line(record("a")) + line(END) + line(record("after")))
    assert names(list(journal.read(path))) == ["journal", "a", "end"]


def test_a_journal_without_an_end_is_read_to_its_last_complete_line(tmp_path: Path) -> None:
    path = tmp_path / "journal.jsonl"
    path.write_bytes(line(HEADER) + line(record("a")) + line(record("cut"))[:-7])
    assert names(list(journal.read(path))) == ["journal", "a"]


def test_a_line_is_held_back_until_its_newline_is_written(tmp_path: Path) -> None:
    path = tmp_path / "journal.jsonl"
    whole = line(record("a"))
    path.write_bytes(line(HEADER) + whole[:5])
    keep_waiting, on_idle = growing(path, whole[5:12], whole[12:], line(END))
    records = list(follow(path, keep_waiting, poll_seconds=0, on_idle=on_idle))
    assert names(records) == ["journal", "a", "end"]


def test_a_line_cut_inside_a_character_is_read_once_completed(tmp_path: Path) -> None:
    path = tmp_path / "journal.jsonl"
    whole = line(record("naïve 😀"))
    middle = whole.index("😀".encode()) + 2
    path.write_bytes(line(HEADER) + whole[:middle])
    keep_waiting, on_idle = growing(path, whole[middle:], line(END))
    records = list(follow(path, keep_waiting, poll_seconds=0, on_idle=on_idle))
    assert names(records) == ["journal", "naïve 😀", "end"]


def test_lines_written_just_before_the_writer_is_gone_are_read(tmp_path: Path) -> None:
    path = tmp_path / "journal.jsonl"
    path.write_bytes(line(HEADER))

    def writer_gone() -> bool:
        with path.open("ab") as file:
            file.write(line(record("last")))
        return False

    assert names(list(follow(path, writer_gone, poll_seconds=0))) == ["journal", "last"]


def test_on_idle_is_called_only_while_no_record_is_there(tmp_path: Path) -> None:
    path = tmp_path / "journal.jsonl"
    path.write_bytes(line(HEADER) + line(record("a")))
    idle: list[int] = []
    waits = iter([True, True, False])
    records = list(follow(path, lambda: next(waits), 0, on_idle=lambda: idle.append(1)))
    assert names(records) == ["journal", "a"]
    # Once before each wait for more; not again after the writer is gone.
    assert len(idle) == 3


def test_an_open_source_is_read_and_the_path_only_names_it(tmp_path: Path) -> None:
    path = tmp_path / "journal.jsonl"
    path.write_bytes(line(HEADER) + line(END))
    with path.open("rb") as source:
        records = list(follow(tmp_path / "elsewhere", lambda: False, source=source))
    assert names(records) == ["journal", "end"]


def test_a_first_line_that_is_not_json_is_not_a_journal(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_bytes(b"hello\n")
    with pytest.raises(JournalError, match="not a pytest-mlflow-tree journal: line 1"):
        list(journal.read(path))


def test_a_later_line_that_is_not_json_is_damage(tmp_path: Path) -> None:
    path = tmp_path / "journal.jsonl"
    path.write_bytes(line(HEADER) + b"\n" + b"{oops\n")
    with pytest.raises(JournalError, match="is damaged: line 2"):
        list(journal.read(path))


def test_invalid_utf8_in_a_complete_line_is_damage(tmp_path: Path) -> None:
    path = tmp_path / "journal.jsonl"
    path.write_bytes(line(HEADER) + b'{"kind": "open", "name": "\xff"}\n')
    with pytest.raises(JournalError, match="damaged"):
        list(journal.read(path))


def test_an_empty_journal_has_no_records(tmp_path: Path) -> None:
    path = tmp_path / "journal.jsonl"
    path.write_bytes(b"")
    assert list(journal.read(path)) == []


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (line(HEADER) + line(END), True),
        (line(HEADER) + line(END)[:-1], False),
        (line(HEADER) + line(record("a")), False),
        (line(HEADER) + b"{oops\n", False),
        (b"", False),
    ],
    ids=["end", "end-cut", "no-end", "damaged", "empty"],
)
def test_ended_reads_the_last_line(tmp_path: Path, content: bytes, expected: bool) -> None:
    path = tmp_path / "journal.jsonl"
    path.write_bytes(content)
    assert ended(path) is expected


def test_a_missing_journal_has_not_ended(tmp_path: Path) -> None:
    assert not ended(tmp_path / "missing.jsonl")


def test_the_header_must_be_a_journal_header_of_this_format(tmp_path: Path) -> None:
    path = tmp_path / "j"
    assert journal.check_header(cast(Record, HEADER), path)["session_uuid"] == "u"
    with pytest.raises(JournalError, match="no header line"):
        journal.check_header(cast(Record, record("a")), path)
    with pytest.raises(JournalError, match=f"format {FORMAT + 1}"):
        journal.check_header(cast(Record, {**HEADER, "format": FORMAT + 1}), path)
