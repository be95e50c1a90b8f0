"""Processes killed and a disk that fills up: the journal keeps everything finished before.

pytest killed with SIGKILL, a test ending the process, an xdist worker dying, the uploader
killed, the journal's file hitting its size limit: each really happens here. What was finished
before the fault is in the journal; the upload (live, or ``replay`` afterwards) completes the
tree, and runs cut off are KILLED, never left RUNNING. The test running at the time of the fault
has a run too, KILLED: its start is journaled before it runs.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import Record, Store
from replaying import assert_recorded_once, plugin_lines, replay, wait_until

from pytest_mlflow_tree.model.status import Status

FIRST = """
    import pytest

    @pytest.mark.parametrize("n", range(4))
    def test_first(n):
        pass
"""
FINISHED_FIRST = [f"test_a.py::test_first[{n}]" for n in range(4)]


def journals_in(directory: Path) -> list[Path]:
    return sorted(directory.glob("*.jsonl"))


def wait_for_upload(status_path: Path, seconds: float = 120) -> Status:
    """The uploader's final status, once it has ended (bounded)."""

    def final() -> Status | None:
        status = Status.read(status_path)
        return status if status is not None and (status.done or status.error) else None

    return wait_until(final, seconds, "the uploader to finish")


KILLER = "test_b.py::test_killer"


def test_pytest_killed_mid_session_the_upload_completes_with_the_cut_runs_killed(
    pytester: pytest.Pytester, store: Store
) -> None:
    pytester.makepyfile(
        test_a=FIRST,
        test_b="""
            import os
            import signal

            def test_before():
                pass

            def test_killer():
                os.kill(os.getpid(), signal.SIGKILL)

            def test_never():
                pass
        """,
    )
    journals = pytester.path / "journals"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "no:randomly",
            "-p",
            "no:cacheprovider",
            *store.args(),
            f"--mlflow-tree-journal-dir={journals}",
        ],
        cwd=pytester.path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == -signal.SIGKILL, done.stdout + done.stderr
    (journal,) = journals_in(journals)
    # The uploader outlives pytest, uploads what the journal holds, and ends the cut runs.
    status = wait_for_upload(journal.with_suffix(".status.json"))
    assert status.done, status.error
    tree = store.tree()
    assert_recorded_once(tree.runs, [*FINISHED_FIRST, "test_b.py::test_before", KILLER])
    assert tree.tests[KILLER].info.status == "KILLED"
    assert tree.session.info.status == "KILLED"
    assert tree.modules["test_a.py"].info.status == "FINISHED"
    assert tree.modules["test_b.py"].info.status == "KILLED"

    # The journal is kept (nobody was left to delete it); replaying it changes nothing.
    code, _, err = replay(str(journal))
    assert code == 0, err
    assert {r.info.run_id for r in store.tree().runs} == {r.info.run_id for r in tree.runs}


def test_a_test_that_ends_the_process_has_its_run_killed_under_its_module(
    pytester: pytest.Pytester, store: Store
) -> None:
    pytester.makepyfile(
        test_a=FIRST,
        test_b="""
            import os

            def test_before():
                pass

            def test_exits():
                os._exit(3)

            def test_never():
                pass
        """,
    )
    journals = pytester.path / "journals"
    result = pytester.runpytest_subprocess(
        "-p", "no:randomly", *store.args(), f"--mlflow-tree-journal-dir={journals}", timeout=120
    )
    assert result.ret == 3
    (journal,) = journals_in(journals)
    status = wait_for_upload(journal.with_suffix(".status.json"))
    assert status.done, status.error
    tree = store.tree()
    exits = "test_b.py::test_exits"
    assert_recorded_once(tree.runs, [*FINISHED_FIRST, "test_b.py::test_before", exits])
    run = tree.tests[exits]
    assert run.info.status == "KILLED"
    assert run.data.tags["pytest.outcome"] == "killed"
    assert run.info.run_name == "test_exits"
    module = tree.modules["test_b.py"]
    assert run.data.tags["mlflow.parentRunId"] == module.info.run_id
    assert module.info.status == "KILLED"
    assert tree.session.info.status == "KILLED"
    assert run.info.start_time <= run.info.end_time == module.info.end_time


def test_a_test_interrupted_before_any_phase_was_reported_has_its_run_killed(
    pytester: pytest.Pytester, record: Record
) -> None:
    pytester.makepyfile(
        test_a="""
            import pytest

            @pytest.fixture
            def interrupted():
                raise KeyboardInterrupt

            def test_before():
                pass

            def test_interrupted_in_setup(interrupted):
                pass

            def test_never():
                pass
        """
    )
    result, tree = record("-p", "no:randomly", subprocess=True)
    assert result.ret == pytest.ExitCode.INTERRUPTED
    nodeid = "test_a.py::test_interrupted_in_setup"
    assert_recorded_once(tree.runs, ["test_a.py::test_before", nodeid])
    assert tree.tests[nodeid].info.status == "KILLED"
    assert tree.tests[nodeid].data.tags["pytest.outcome"] == "killed"
    assert tree.modules["test_a.py"].info.status == "KILLED"
    assert tree.modules["test_a.py"].data.metrics["pytest/tests"] == 2
    assert tree.session.info.status == "KILLED"


def test_an_xdist_worker_crashing_changes_no_outcome_and_leaves_nothing_running(
    pytester: pytest.Pytester, store: Store
) -> None:
    pytester.makepyfile(
        test_a=FIRST,
        test_b="""
            import os

            def test_crashes_its_worker():
                os._exit(1)

            def test_after():
                pass
        """,
    )
    args = ("-p", "no:randomly", "-n", "2")
    baseline = pytester.runpytest_subprocess(*args, "-p", "no:mlflow_tree", timeout=120)
    result = pytester.runpytest_subprocess(*args, *store.args(), timeout=120)
    assert result.ret == baseline.ret == pytest.ExitCode.TESTS_FAILED
    assert result.parseoutcomes() == baseline.parseoutcomes()
    tree = store.tree()
    nodeids = [*FINISHED_FIRST, "test_b.py::test_crashes_its_worker", "test_b.py::test_after"]
    assert_recorded_once(tree.runs, nodeids)
    crashed = tree.tests["test_b.py::test_crashes_its_worker"]
    assert crashed.info.status in ("FAILED", "KILLED")
    assert tree.tests["test_b.py::test_after"].info.status == "FINISHED"
    assert tree.session.info.status == "FAILED"


KILL_THE_UPLOADER = """
    import glob
    import os
    import signal
    import sqlite3
    import time

    def uploader_pid():
        # The uploader of this run: our child, reading a journal under this directory.
        for stat in glob.glob("/proc/[0-9]*/stat"):
            try:
                pid = int(stat.split("/")[2])
                ppid = int(open(stat).read().rsplit(")", 1)[1].split()[1])
                command = open(f"/proc/{{pid}}/cmdline", "rb").read().decode()
            except (OSError, ValueError, IndexError):
                continue
            if ppid == os.getpid() and "pytest_mlflow_tree.upload" in command:
                if os.getcwd() in command:
                    return pid
        return None

    def test_kill_the_uploader():
        # Once part of the tree is in the store (read-only: the uploader is its writer).
        for _ in range(600):  # bounded: 30 s
            with sqlite3.connect("file:{database}?mode=ro", uri=True) as db:
                if db.execute("select count(*) from runs").fetchone()[0] >= 3:
                    break
            time.sleep(0.05)
        pid = uploader_pid()
        assert pid is not None
        os.kill(pid, signal.SIGKILL)

    def test_after():
        pass
"""


def test_the_uploader_killed_mid_session_is_reported_and_replay_completes_the_tree(
    pytester: pytest.Pytester, store: Store
) -> None:
    assert store.path is not None
    pytester.makepyfile(test_a=FIRST, test_b=KILL_THE_UPLOADER.format(database=store.path))
    result = pytester.runpytest("-p", "no:randomly", *store.args())
    result.assert_outcomes(passed=6)
    assert result.ret == pytest.ExitCode.OK
    lines = plugin_lines(result.outlines)
    assert len(lines) == 1, lines
    assert "the uploader process was killed (signal 9)" in lines[0]
    journal = pytester.path / lines[0].rsplit(" ", 1)[1]
    before = store.tree().runs
    assert len(before) >= 3

    code, _, err = replay(str(journal))
    assert code == 0, err
    tree = store.tree()
    nodeids = [*FINISHED_FIRST, "test_b.py::test_kill_the_uploader", "test_b.py::test_after"]
    assert_recorded_once(tree.runs, nodeids)
    assert {r.info.run_id for r in before} <= {r.info.run_id for r in tree.runs}
    assert tree.session.info.status == "FINISHED"


FILL_THE_DISK = """
    import resource

    def pytest_sessionstart(session):
        # From here on, no file of this process may grow beyond {limit} bytes: the journal's
        # writes fail as on a full disk (EFBIG; Python ignores SIGXFSZ).
        resource.setrlimit(resource.RLIMIT_FSIZE, ({limit}, {limit}))
"""


def test_a_full_disk_stops_the_journal_not_the_tests_and_replay_keeps_what_was_written(
    pytester: pytest.Pytester, store: Store
) -> None:
    limit = 24_000
    pytester.makeconftest(FILL_THE_DISK.format(limit=limit))
    pytester.makepyfile(
        test_many="""
            import pytest

            @pytest.mark.parametrize("text", ["%03d" % n + "-" * 400 for n in range(60)])
            def test_case(text):
                pass
        """
    )
    journals = pytester.path / "journals"
    command = [sys.executable, "-m", "pytest", "-p", "no:randomly", "-p", "no:cacheprovider"]
    options = [*store.args(), f"--mlflow-tree-journal-dir={journals}", "-q"]

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        # Through pipes: the size limit applies to files, pytester's output files included.
        return subprocess.run(
            [*command, *args],
            cwd=pytester.path,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    baseline = run("-p", "no:mlflow_tree")
    done = run(*options)
    output = done.stdout + done.stderr
    assert done.returncode == baseline.returncode == 0, output
    assert "60 passed" in done.stdout
    assert "Traceback" not in output
    lines = plugin_lines(done.stdout.splitlines())
    assert len(lines) == 1, output
    assert "File too large" in lines[0], lines[0]
    (journal,) = journals_in(journals)
    assert journal.stat().st_size <= limit
    complete = [
        json.loads(line)
        for line in journal.read_text(encoding="utf-8").splitlines(keepends=True)
        if line.endswith("\n")
    ]
    journaled = [r["key"] for r in complete if r["kind"] == "run"]
    assert 3 <= len(journaled) < 60
    # Tests whose start is journaled but not their end: cut off by the full disk.
    cut_off = [r["key"] for r in complete if r["kind"] == "start" and r["key"] not in journaled]

    code, _, err = replay(str(journal))
    assert code == 0, err
    tree = store.tree()
    assert_recorded_once(tree.runs, journaled + cut_off)
    assert {k for k, run in tree.tests.items() if run.info.status == "KILLED"} == set(cut_off)
    assert tree.session.info.status == "KILLED"


CUT_INSIDE_A_CHARACTER = """
    import glob
    import os
    import resource

    import pytest

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_logstart(nodeid, location):
        if not nodeid.endswith("::test_third"):
            return
        # The disk fills up inside the first character of more than one byte in the record
        # of this test's start, about to be written: what comes before it fits, no more.
        (journal,) = glob.glob("journals/*.jsonl")
        head = '{"kind":"start","key":"' + nodeid.split("é")[0]
        size = os.path.getsize(journal) + len(head.encode("utf-8")) + 1
        resource.setrlimit(resource.RLIMIT_FSIZE, (size, size))
"""


def test_a_disk_full_inside_a_character_leaves_a_journal_that_replays_up_to_the_cut(
    pytester: pytest.Pytester, store: Store
) -> None:
    pytester.makeconftest(CUT_INSIDE_A_CHARACTER)
    pytester.makepyfile(
        **{
            "test_données": """
                def test_first():
                    pass

                def test_second():
                    pass

                def test_third():
                    pass
            """
        }
    )
    journals = pytester.path / "journals"
    command = [sys.executable, "-m", "pytest", "-p", "no:randomly", "-p", "no:cacheprovider"]
    done = subprocess.run(
        [*command, *store.args(), f"--mlflow-tree-journal-dir={journals}"],
        cwd=pytester.path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert "3 passed" in done.stdout
    assert "File too large" in output
    (journal,) = journals_in(journals)
    with pytest.raises(UnicodeDecodeError):
        journal.read_bytes().decode("utf-8")

    code, _, err = replay(str(journal))
    assert code == 0, err
    tree = store.tree()
    before = ["test_données.py::test_first", "test_données.py::test_second"]
    assert_recorded_once(tree.runs, before)
    assert all(tree.tests[nodeid].info.status == "FINISHED" for nodeid in before)
    assert tree.modules["test_données.py"].info.status == "KILLED"
    assert tree.session.info.status == "KILLED"
