"""The append-only journal: JSON lines on local disk, written before anything is uploaded."""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, BinaryIO, cast

from pytest_mlflow_tree.model.records import FORMAT, Header, Record

if TYPE_CHECKING:
    from pytest_mlflow_tree.model.redact import RecordMasker

# A lone surrogate (from a value pytest got from a broken decoding) cannot be written as UTF-8.
_SURROGATE = re.compile("[\ud800-\udfff]")


class JournalError(Exception):
    """The journal cannot be read: wrong format, or not a journal at all."""


def _default(value: object) -> str:
    # A value json cannot encode is recorded as text rather than failing the test run.
    return str(value)


def _finite(value: Any) -> Any:
    # JSON has no NaN or infinity; write them as strings so every line stays standard JSON.
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)
    return value


def encode(record: Record) -> str:
    return _utf8(_json(record))


def _json(record: Record) -> str:
    data = cast(dict[str, Any], record)
    metrics = data.get("metrics")
    if metrics:
        data = {**data, "metrics": {k: _finite(v) for k, v in metrics.items()}}
    return json.dumps(data, ensure_ascii=False, default=_default, separators=(",", ":"))


def _utf8(line: str) -> str:
    # As the text "\udcff", not a character: every line must be UTF-8.
    return _SURROGATE.sub(lambda match: f"\\\\u{ord(match[0]):04x}", line)


def decode(line: str) -> Record:
    data = json.loads(line)
    metrics = data.get("metrics")
    if metrics:
        data["metrics"] = {k: float(v) for k, v in metrics.items()}
    return cast(Record, data)


class JournalWriter:
    """Writes records line by line; each line reaches the OS before ``write`` returns.

    The file stays open for reading too: a test may delete the journal's directory (tests of
    tools delete ``.pytest_cache``), and ``put_back`` then writes the journal there again.
    """

    def __init__(self, path: Path, mask: RecordMasker | None = None) -> None:
        self.path = path
        self._mask = mask
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file: IO[str] = path.open("a", encoding="utf-8", buffering=1)
        self._held = path.open("rb")

    def reader(self) -> BinaryIO:
        """A handle of its own reading the journal from its start, whatever becomes of the path.

        Opened by path: call it before the tests run.
        """
        return self.path.open("rb")

    def put_back(self) -> bool:
        """Write the journal to its path again if it is no longer there; whether it was not.

        From then on the file at the path is a copy: call again after the last write.
        """
        with contextlib.suppress(FileNotFoundError):
            if os.path.samestat(os.stat(self.path), os.fstat(self._held.fileno())):
                return False
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_name(self.path.name + ".tmp")
        with temporary.open("wb") as copy:
            self._held.seek(0)
            shutil.copyfileobj(self._held, copy)
        os.replace(temporary, self.path)
        return True

    def write(self, record: Record) -> None:
        # Masked as a record, not as text: a secret that is also a key, a number or part of the
        # JSON must not rewrite the line.
        line = _json(record)
        if self._mask is not None and self._mask.may_change(line):
            line = _json(self._mask(record))
        self._file.write(_utf8(line) + "\n")

    def close(self) -> None:
        """Close for writing; ``put_back`` still works until ``release``."""
        if self._file.closed:
            return
        try:
            self._file.flush()
            os.fsync(self._file.fileno())
        finally:
            # Closed even when the disk is full: a second close must not fail again.
            with contextlib.suppress(OSError):
                self._file.close()

    def release(self) -> None:
        """Let go of the file: after ``close``, once the journal is where it belongs."""
        self.close()
        self._held.close()


# The end record is short: its line is within this many bytes of the end of the file.
_END_TAIL = 4096


def ended(path: Path) -> bool:
    """Whether the journal's last line is its end record: pytest has run its tests.

    Reads only the file's tail, so that another thread can ask while the upload is busy.
    """
    try:
        with path.open("rb") as file:
            file.seek(0, os.SEEK_END)
            file.seek(max(0, file.tell() - _END_TAIL))
            tail = file.read()
    except OSError:
        return False
    if not tail.endswith(b"\n"):
        return False  # empty, or a line still being written
    last = tail[:-1].rsplit(b"\n", 1)[-1]
    try:
        record = json.loads(last)
    except ValueError:
        return False
    return isinstance(record, dict) and record.get("kind") == "end"


def check_header(record: Record, path: Path) -> Header:
    if record.get("kind") != "journal":
        raise JournalError(f"{path} is not a pytest-mlflow-tree journal (no header line)")
    header = cast(Header, record)
    if header.get("format") != FORMAT:
        raise JournalError(
            f"{path} has journal format {header.get('format')}, this version reads format "
            f"{FORMAT}: replay it with the pytest-mlflow-tree version that wrote it"
        )
    return header


def follow(
    path: Path,
    keep_waiting: Callable[[], bool],
    poll_seconds: float = 0.02,
    on_idle: Callable[[], None] | None = None,
    source: BinaryIO | None = None,
) -> Iterator[Record]:
    """Yield records as they are appended, until an ``end`` record or ``keep_waiting()`` is false.

    A last line without its newline is a record still being written (or cut off by a crash or
    a full disk, maybe inside a character): it is held back until completed. ``on_idle`` is
    called whenever no new record is there yet, before waiting for one. ``source``: the journal
    already open (then ``path`` only names it in messages).
    """
    with contextlib.nullcontext(source) if source is not None else path.open("rb") as file:
        yield from _records(file, path, keep_waiting, poll_seconds, on_idle)


def _records(
    file: BinaryIO,
    path: Path,
    keep_waiting: Callable[[], bool],
    poll_seconds: float,
    on_idle: Callable[[], None] | None,
) -> Iterator[Record]:
    # Bytes, decoded a whole line at a time: a line cut inside a character is not text yet.
    pending = b""
    line_number = 0
    for chunk in _chunks(file, keep_waiting, poll_seconds, on_idle):
        pending += chunk
        if not pending.endswith(b"\n"):
            continue
        line, pending = pending, b""
        if not line.strip():
            continue
        line_number += 1
        record = _decode_line(line, line_number, path)
        yield record
        if record.get("kind") == "end":
            return


def _chunks(
    file: BinaryIO,
    keep_waiting: Callable[[], bool],
    poll_seconds: float,
    on_idle: Callable[[], None] | None,
) -> Iterator[bytes]:
    """What ``file.readline()`` gives, until the writer is gone and the file has no more.

    After the writer is gone, read once more: it may have written its last lines between our
    last read and the check.
    """
    writing = True
    while (chunk := file.readline()) or writing:
        if chunk:
            yield chunk
            continue
        if on_idle is not None:
            on_idle()
        writing = keep_waiting()
        if writing:
            time.sleep(poll_seconds)


def _decode_line(line: bytes, number: int, path: Path) -> Record:
    try:
        return decode(line.decode("utf-8"))
    except ValueError as exc:
        what = "not a pytest-mlflow-tree journal" if number == 1 else "damaged"
        raise JournalError(
            f"{path} is {what}: line {number} is not a JSON record ({exc})"
        ) from None


def read(path: Path) -> Iterator[Record]:
    """Yield the complete records of a journal that is no longer being written."""
    yield from follow(path, keep_waiting=lambda: False)
