"""Ctrl-C while pytest waits for the upload at the end: a clean end, the journal kept.

The tracking server here takes connections and never answers, so pytest is really waiting when
the signal comes, however slow the machine. pytest runs in a process group of its own, as in a
terminal, and Ctrl-C is SIGINT to that group (the uploader has a session of its own).
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import Store
from replaying import assert_recorded_once, replay

# Bounds on waits for things that take a second on an idle machine.
_PATIENCE = 120.0


@contextlib.contextmanager
def silent_server() -> Iterator[str]:
    """The URL of a tracking server on 127.0.0.1 that accepts connections and never answers."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(64)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"


def uploaders_of(journal_name: str) -> list[int]:
    """Process ids of uploaders of the journal named ``journal_name``."""
    pids = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        with contextlib.suppress(OSError):
            command = cmdline.read_bytes().decode(errors="replace")
            if "pytest_mlflow_tree.upload" in command and journal_name in command:
                pids.append(int(cmdline.parent.name))
    return pids


# pytest as ``python -m pytest``, with Ctrl-C raising KeyboardInterrupt even where this process
# was started with SIGINT ignored (a background job of a shell without job control, as CI
# runners may start it), which Python would pass on to pytest.
_PYTEST_WITH_CTRL_C = (
    "import runpy, signal, sys\n"
    "signal.signal(signal.SIGINT, signal.default_int_handler)\n"
    "sys.argv[0] = 'pytest'\n"
    "runpy.run_module('pytest', run_name='__main__', alter_sys=True)\n"
)


class Terminal:
    """pytest run as from a terminal: its own process group, its output read line by line."""

    def __init__(self, cwd: Path, args: list[str]) -> None:
        self.lines: list[str] = []
        self.process = subprocess.Popen(
            [sys.executable, "-c", _PYTEST_WITH_CTRL_C, *args],
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
            start_new_session=True,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def wait_for(self, text: str) -> None:
        deadline = time.monotonic() + _PATIENCE
        while time.monotonic() < deadline:
            if any(text in line for line in list(self.lines)):
                return
            if not self._reader.is_alive():
                break
            time.sleep(0.05)
        raise AssertionError(f"no line with {text!r}:\n{self.output}")

    def ctrl_c(self) -> None:
        os.killpg(self.process.pid, signal.SIGINT)

    def end(self) -> int:
        code = self.process.wait(timeout=_PATIENCE)
        self._reader.join(timeout=_PATIENCE)
        return code

    def kill(self) -> None:
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=_PATIENCE)


PASSING = """
    def test_one():
        pass

    def test_two():
        pass
"""
# The second test holds the session until Ctrl-C interrupts it.
INTERRUPTED = """
    import time

    def test_one():
        pass

    def test_waits_for_ctrl_c():
        print("waiting for Ctrl-C", flush=True)
        for _ in range(6000):  # bounded: 300 s
            time.sleep(0.05)
"""


@pytest.mark.parametrize(
    ("suite", "presses", "code", "recorded"),
    [
        (PASSING, 1, pytest.ExitCode.OK, ["test_one", "test_two"]),
        (INTERRUPTED, 2, pytest.ExitCode.INTERRUPTED, ["test_one", "test_waits_for_ctrl_c"]),
    ],
    ids=["after-the-tests", "second-ctrl-c"],
)
def test_ctrl_c_during_the_wait_for_the_upload_ends_pytest_cleanly_with_the_replay_command(
    pytester: pytest.Pytester,
    store: Store,
    suite: str,
    presses: int,
    code: pytest.ExitCode,
    recorded: list[str],
) -> None:
    pytester.makepyfile(test_suite=suite)
    journals = pytester.path / "journals"
    with silent_server() as url:
        terminal = Terminal(
            pytester.path,
            [
                "-p",
                "no:randomly",
                "-p",
                "no:cacheprovider",
                "-s",
                "--mlflow-tree",
                f"--mlflow-tree-tracking-uri={url}",
                f"--mlflow-tree-journal-dir={journals}",
                # Neither bound ends the wait before the Ctrl-C does.
                "--mlflow-tree-upload-wait=3600",
                "--mlflow-tree-give-up-after=3600",
            ],
        )
        try:
            if presses == 2:
                terminal.wait_for("waiting for Ctrl-C")
                terminal.ctrl_c()
            terminal.wait_for("mlflow-tree: uploading")
            terminal.ctrl_c()
            returned = terminal.end()
        finally:
            terminal.kill()
            # Without the fix the uploader outlives pytest: it is this test's to end.
            left = [pid for path in journals.glob("*.jsonl") for pid in uploaders_of(path.name)]
            for pid in left:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)

    (journal,) = journals.glob("*.jsonl")

    output = terminal.output
    # The tests' own exit code, pytest's summary, no traceback of the interrupted wait.
    assert returned == code, output
    assert "Traceback (most recent call last)" not in output
    passed = len(recorded) if code == pytest.ExitCode.OK else len(recorded) - 1
    assert re.search(rf"^=+ {passed} passed in ", output, re.MULTILINE), output
    lines = [line for line in terminal.lines if line.startswith("mlflow-tree: WARNING")]
    assert len(lines) == 1, output
    assert "Ctrl-C during the wait for the upload: uploader stopped" in lines[0]
    command = re.search(r"pytest-mlflow-tree replay (\S+)$", lines[0])
    assert command is not None, lines[0]
    assert (pytester.path / command[1]).resolve() == journal.resolve()
    # The uploader ended with pytest: nothing goes on writing behind the user's back.
    assert left == []

    # What the uploader did not send, the printed command does.
    replayed, _, err = replay(str(journal), "--tracking-uri", store.uri)
    assert replayed == 0, err
    tree = store.tree()
    assert_recorded_once(tree.runs, [f"test_suite.py::{name}" for name in recorded])
    status = "KILLED" if code == pytest.ExitCode.INTERRUPTED else "FINISHED"
    assert tree.session.info.status == status
