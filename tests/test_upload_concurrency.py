"""Concurrent uploads keep the tree whole: every record once, parents before children.

On SQLite two worker processes write the tests once enough of them wait; against a server
(PostgreSQL behind it) several threads do. That is where reordering or loss would show.

Whether tests wait in a live upload depends on how fast pytest runs them compared with one
writer: on a loaded machine pytest may never get ahead, and rightly no worker starts. The
worker tests therefore upload a journal written beforehand (``--mlflow-tree-journal-only``),
where every test waits from the start."""

from __future__ import annotations

import contextlib
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TypeVar

import pytest
from conftest import BOTH_STORES, Record, Store, Tree
from replaying import assert_recorded_once, journal_only, replay

from pytest_mlflow_tree import uploadprocs
from pytest_mlflow_tree.status import Status

T = TypeVar("T")

MODULES = 4
TESTS_PER_MODULE = 80
# For the worker processes: enough tests that one writer takes several times as long as the
# workers take to start (measured: 985 of 1,000; 384 to 393 of 400), and few enough that
# the upload ends in time on a CI machine whose cores the other tests' processes keep busy
# (there, 1,000 tests took the workers over 300 s).
SQLITE_PER_MODULE = 100
# Bounds an upload run by a test, on a loaded machine too (about 8 s on a quiet one).
UPLOAD_TIMEOUT = 300
# Where the uploader can tell that it runs one thread, it forks its workers itself when tests
# already wait; elsewhere they always come from a forkserver (see uploadprocs).
FORKS_EARLY = Path("/proc/self/task").exists()


def _suite(pytester: pytest.Pytester, per_module: int = TESTS_PER_MODULE) -> None:
    for module in range(MODULES):
        pytester.makepyfile(
            **{
                f"test_bulk_{module}": f"""
                import pytest

                @pytest.mark.parametrize("case", range({per_module}))
                def test_case(case):
                    assert case != 13 or {module} != 2, "unlucky"
                """
            }
        )


@BOTH_STORES
def test_many_tests_are_all_recorded_once_under_their_module(
    pytester: pytest.Pytester, record: Record, store: Store
) -> None:
    _suite(pytester)
    journals = pytester.path / "journals"
    result, tree = record("--mlflow-tree-keep-journal", f"--mlflow-tree-journal-dir={journals}")
    status = _status(journals)
    assert status.done
    assert status.applied == 1 + 2 * (1 + MODULES) + MODULES * TESTS_PER_MODULE
    if store.path is None:
        # Not all inline: the threads wrote tests (they run from the start).
        assert status.pooled > 0
    result.assert_outcomes(passed=MODULES * TESTS_PER_MODULE - 1, failed=1)
    result.stdout.no_fnmatch_line("*WARNING*")
    _assert_whole(tree, TESTS_PER_MODULE)


def _assert_whole(tree: Tree, per_module: int) -> None:
    """One session, one run per module, each test once under its own module."""
    total = MODULES * per_module
    assert len(tree.level("session")) == 1
    assert len(tree.level("module")) == MODULES
    tests = tree.level("test")
    nodeids = Counter(run.data.tags["pytest.nodeid"] for run in tests)
    assert len(nodeids) == total
    assert set(nodeids.values()) == {1}

    modules = {run.info.run_id: run.info.run_name for run in tree.level("module")}
    for run in tests:
        module_name = run.data.tags["pytest.nodeid"].split("::")[0]
        assert modules[run.data.tags["mlflow.parentRunId"]] == module_name
        assert run.data.tags["mlflow.rootRunId"] == tree.session.info.run_id
        assert run.info.status in ("FINISHED", "FAILED")
        assert set(run.data.metrics) >= {"duration", "call_duration"}
        assert run.data.params.keys() == {"case"}
    failed = [run for run in tests if run.info.status == "FAILED"]
    assert [run.data.tags["pytest.nodeid"] for run in failed] == ["test_bulk_2.py::test_case[13]"]
    assert tree.artifacts(failed[0]) == ["failure.txt"]
    assert tree.session.data.metrics["tests"] == total


def _journal_only(pytester: pytest.Pytester, store: Store) -> Path:
    """Run the worker tests' suite writing only its journal; return the journal."""
    _suite(pytester, SQLITE_PER_MODULE)
    result, journal = journal_only(pytester, store)
    result.assert_outcomes(passed=MODULES * SQLITE_PER_MODULE - 1, failed=1)
    return journal


def _upload_command(journal: Path, status_path: Path) -> list[str]:
    # Its own process, as pytest starts it: the forkserver and the workers are its children.
    return [
        sys.executable,
        "-m",
        "pytest_mlflow_tree.upload",
        str(journal),
        "--status",
        str(status_path),
    ]


def _upload(journal: Path, status_path: Path) -> tuple[int, str]:
    """Upload ``journal`` in a subprocess: its exit code and stderr.

    An upload that hangs fails the test with where each of its processes waits: they dump
    their threads' stacks on SIGABRT (faulthandler) into the stderr they share.
    """
    uploader = subprocess.Popen(
        _upload_command(journal, status_path),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONFAULTHANDLER": "1"},
    )
    try:
        _, stderr = uploader.communicate(timeout=UPLOAD_TIMEOUT)
    except subprocess.TimeoutExpired:
        _signal([*_descendants(uploader.pid), uploader.pid], signal.SIGABRT)
        time.sleep(2)
        _signal(_descendants(uploader.pid), signal.SIGKILL)
        uploader.kill()
        _, stderr = uploader.communicate(timeout=30)
        pytest.fail(
            f"the upload did not end within {UPLOAD_TIMEOUT} s; "
            f"status {Status.read(status_path)}; stacks:\n{stderr[-20_000:]}"
        )
    return uploader.returncode, stderr


def _signal(pids: Iterable[int], signum: int) -> None:
    """Send ``signum`` to each process; one that has already ended is passed over."""
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signum)


def _status(journals: Path) -> Status:
    (path,) = journals.glob("*.status.json")
    status = Status.read(path)
    assert status is not None
    return status


def test_two_worker_processes_record_every_test_once_and_leave_the_database_sound(
    pytester: pytest.Pytester, store: Store
) -> None:
    journal = _journal_only(pytester, store)
    status_path = pytester.path / "status.json"
    returncode, stderr = _upload(journal, status_path)
    assert returncode == 0, stderr
    status = Status.read(status_path)
    assert status is not None
    assert status.done
    # Written by the uploader and its two worker processes at once, the workers most. Every
    # test waits from the start, so the uploader forked them from itself (Linux) at once.
    assert status.processes == 2
    assert status.workers_from == ("uploader" if FORKS_EARLY else "forkserver"), status
    assert status.pooled > MODULES * SQLITE_PER_MODULE // 2, status
    _assert_whole(store.tree(), SQLITE_PER_MODULE)

    assert store.path is not None
    with sqlite3.connect(store.path, timeout=0) as connection:
        assert connection.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert connection.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        # timeout=0: fails at once if any writer still held the database.
        connection.execute("BEGIN IMMEDIATE")
        connection.execute("ROLLBACK")
        statuses = dict(connection.execute("SELECT status, count(*) FROM runs GROUP BY status"))
    assert "RUNNING" not in statuses


_HOLD_CONFTEST = """
import json
import os
import time
from pathlib import Path


def _wait(found, what):
    for _ in range(2400):  # 120 s
        if found():
            return
        time.sleep(0.05)
    raise RuntimeError(f"gave up waiting for {what}")


def _uploader_ready():
    statuses = Path(os.environ["HOLD_JOURNALS"]).glob("*.status.json")
    return any(json.loads(path.read_text()).get("ready_at") for path in statuses)


def pytest_collection_finish(session):
    # The uploader has chosen how to start its workers (no test waited), and the store is held.
    _wait(_uploader_ready, "the uploader")
    _wait(Path(os.environ["HOLD_FLAG"]).exists, "the held store")
"""


def _wait_until(found: Callable[[], T | None], what: str, seconds: float = 120) -> T:
    """What ``found`` returns once it is something (not None, empty or zero)."""
    deadline = time.monotonic() + seconds
    while not (value := found()):
        if time.monotonic() > deadline:
            pytest.fail(f"gave up waiting for {what} after {seconds} s")
        time.sleep(0.05)
    return value


def _forkserver_below(pid: int) -> int | None:
    for child in _descendants(pid):
        with contextlib.suppress(OSError):
            # Its command, not the word: the test's own paths hold "forkserver" too.
            if (
                b"from multiprocessing.forkserver import main"
                in Path(f"/proc/{child}/cmdline").read_bytes()
            ):
                return child
    return None


@pytest.mark.skipif(
    not FORKS_EARLY or not uploadprocs.available(),
    reason="needs /proc (Linux) and the forkserver start method",
)
def test_workers_wanted_only_later_come_from_a_forkserver_and_record_every_test_once(
    pytester: pytest.Pytester, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Tests pile up only after the uploader has started threads: it must not fork itself then.
    _suite(pytester, SQLITE_PER_MODULE)
    pytester.makeconftest(_HOLD_CONFTEST)
    journals = pytester.path / "journals"
    flag = pytester.path / "held"
    monkeypatch.setenv("HOLD_JOURNALS", str(journals))
    monkeypatch.setenv("HOLD_FLAG", str(flag))
    session = pytester.popen(
        [
            sys.executable,
            "-m",
            "pytest",
            *store.args(),
            "--mlflow-tree-keep-journal",
            f"--mlflow-tree-journal-dir={journals}",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )
    assert store.path is not None
    try:
        _wait_until(lambda: list(journals.glob("*.status.json")), "the uploader's status")
        (status_path,) = journals.glob("*.status.json")
        _wait_until(lambda: (Status.read(status_path) or Status()).ready_at, "the uploader")
        # Holding the store's write lock, the tests pile up while the uploader waits for it.
        with contextlib.closing(sqlite3.connect(store.path, timeout=60)) as held:
            held.execute("BEGIN IMMEDIATE")
            flag.touch()
            forkserver = _wait_until(lambda: _forkserver_below(session.pid), "a forkserver")
            held.execute("ROLLBACK")
        # Forking is only safe from one thread: when the forkserver forks the workers, NumPy's
        # and PyArrow's threads must not have started in it.
        _wait_until(lambda: _descendants(forkserver), "the forkserver's workers")
        threads = list(Path(f"/proc/{forkserver}/task").iterdir())
        assert len(threads) == 1, [(task / "comm").read_text() for task in threads]
        output, _ = session.communicate(timeout=UPLOAD_TIMEOUT)
    finally:
        if session.poll() is None:
            session.kill()
            session.wait()
    assert session.returncode == 1, output.decode(errors="replace")[-5000:]
    status = _status(journals)
    assert status.done, status
    assert (status.processes, status.workers_from) == (2, "forkserver"), status
    assert status.pooled > 0, status
    _assert_whole(store.tree(), SQLITE_PER_MODULE)
    with sqlite3.connect(store.path, timeout=0) as connection:
        assert connection.execute("PRAGMA integrity_check").fetchone() == ("ok",)


def test_a_new_database_is_created_by_the_uploader_before_its_workers_open_it(
    pytester: pytest.Pytester, store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # MLflow creates and migrates a new database in the first process that opens it, unguarded
    # in older releases: workers forked at once would race the uploader doing so.
    journal = _journal_only(pytester, store)
    path = tmp_path / "new" / "mlflow.db"
    new = Store(uri=f"sqlite:///{path}", path=path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", new.uri)
    status_path = pytester.path / "status.json"
    returncode, stderr = _upload(journal, status_path)
    assert returncode == 0, stderr
    status = Status.read(status_path)
    assert status is not None
    assert status.done, status
    assert (status.processes, status.workers_from) == (2, "forkserver"), status
    _assert_whole(new.tree(), SQLITE_PER_MODULE)
    with contextlib.closing(sqlite3.connect(path, timeout=0)) as connection:
        assert connection.execute("PRAGMA integrity_check").fetchone() == ("ok",)


def test_a_small_session_starts_no_worker_processes(
    pytester: pytest.Pytester, record: Record, store: Store
) -> None:
    pytester.makepyfile(
        test_few="""
        import pytest

        @pytest.mark.parametrize("case", range(10))
        def test_case(case):
            pass
        """
    )
    journals = pytester.path / "journals"
    result, tree = record("--mlflow-tree-keep-journal", f"--mlflow-tree-journal-dir={journals}")
    result.assert_outcomes(passed=10)
    status = _status(journals)
    assert status.done
    assert (status.processes, status.pooled) == (0, 0)
    assert len(tree.level("test")) == 10


def _stat_fields(pid: int) -> list[str]:
    """The fields of /proc/<pid>/stat after the command name, from the state on."""
    # The command name may hold spaces and parentheses: the fields follow the last ")".
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def _descendants(pid: int) -> dict[int, str]:
    """The processes below ``pid``, from /proc: each with its start time.

    The start time tells a process from a later one given the same id: ids are reused once
    they wrap around, which a long, busy test run can reach.
    """
    children: dict[int, list[tuple[int, str]]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = _stat_fields(int(entry.name))
        except (OSError, IndexError):
            continue
        children.setdefault(int(fields[1]), []).append((int(entry.name), fields[19]))
    found: dict[int, str] = {}
    queue = [pid]
    for _ in range(10_000):
        if not queue:
            break
        for child, started in children.get(queue.pop(), []):
            if child not in found:
                found[child] = started
                queue.append(child)
    return found


def _running(pid: int, started: str) -> bool:
    """Whether the process ``pid`` that started at ``started`` still runs (not a zombie)."""
    try:
        fields = _stat_fields(pid)
    except (OSError, IndexError):
        return False
    return fields[0] != "Z" and fields[19] == started


def _describe(pid: int) -> str:
    """What a process left running is and waits on, for the failure message."""
    proc = Path(f"/proc/{pid}")
    try:
        command = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        state = _stat_fields(pid)[0]
        waits = sorted({(task / "wchan").read_text() for task in (proc / "task").iterdir()})
    except (OSError, IndexError) as error:
        return f"{pid}: {error}"
    return f"{pid} [{state}, waits on {waits}]: {command[:300]}"


@pytest.mark.skipif(
    not FORKS_EARLY or not uploadprocs.available(),
    reason="needs /proc (Linux) and the forkserver start method",
)
def test_the_uploader_killed_while_its_workers_write_leaves_no_process_and_a_sound_database(
    pytester: pytest.Pytester, store: Store
) -> None:
    journal = _journal_only(pytester, store)
    status_path = pytester.path / "status.json"
    errors = pytester.path / "uploader.err"
    with errors.open("wb") as stderr:
        uploader = subprocess.Popen(_upload_command(journal, status_path), stderr=stderr)
    workers: dict[int, str] = {}
    try:
        deadline = time.monotonic() + UPLOAD_TIMEOUT
        status = None
        while time.monotonic() < deadline and uploader.poll() is None:
            status = Status.read(status_path)
            if status is not None and (status.pooled or status.done or status.error):
                break
            time.sleep(0.02)
        assert status is not None, errors.read_text()
        assert status.pooled > 0, (status, errors.read_text())
        workers = _descendants(uploader.pid)
        # The two workers, forked from the uploader itself: it ran one thread then (NumPy's
        # and PyArrow's threads had not started), else it would have used a forkserver.
        assert len(workers) == 2, [_describe(pid) for pid in workers]
        assert all(_stat_fields(pid)[1] == str(uploader.pid) for pid in workers)
        os.kill(uploader.pid, signal.SIGKILL)
        uploader.wait(timeout=10)
        # Each worker sees the uploader gone within half a second; the bound is for a loaded
        # machine, where ending a process that imported MLflow can take seconds.
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and any(_running(*w) for w in workers.items()):
            time.sleep(0.1)
        left = [pid for pid, started in workers.items() if _running(pid, started)]
        if left:
            pytest.fail("left running:\n" + "\n".join(_describe(pid) for pid in left))
    finally:
        if uploader.poll() is None:
            uploader.kill()
            uploader.wait()
        # A failed run leaves nothing behind to hold the database or the machine.
        _signal([pid for pid, started in workers.items() if _running(pid, started)], signal.SIGKILL)

    assert store.path is not None
    with sqlite3.connect(store.path, timeout=0) as connection:
        assert connection.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        connection.execute("BEGIN IMMEDIATE")
        connection.execute("ROLLBACK")
    code, _, err = replay(str(journal))
    assert code == 0, err
    nodeids = [
        f"test_bulk_{module}.py::test_case[{case}]"
        for module in range(MODULES)
        for case in range(SQLITE_PER_MODULE)
    ]
    assert_recorded_once(store.tree().runs, nodeids)
