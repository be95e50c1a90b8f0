"""Uploads that meet: two of one journal at once, two sessions on a fresh local store.

A replay started while another upload of the same journal still runs (the live one, or a second
replay) waits for it, then finds every run it made: a tracking server, which gives each new run
an id of its own, is left with one copy of each. Two sessions started together on a fresh
``mlflow.db`` both record, the store's tables made once.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

import pytest
from conftest import Store, Tree
from faultproxy import FaultProxy
from replaying import assert_recorded_once, journal_only, wait_until

MODULES = 3
TESTS_PER_MODULE = 8
NODEIDS = [
    f"test_part_{module}.py::test_case[{case}]"
    for module in range(MODULES)
    for case in range(TESTS_PER_MODULE)
]
# Bounds an upload or a session run by a test, on a loaded machine too.
UPLOAD_TIMEOUT = 300
# Seconds the proxy holds each request of the upload that must still be running when the
# second one starts: tens of requests remain, so it is far from done, and its store answers.
SLOW = 1.0
# What an upload says when it finds another upload of its journal running.
WAITING = "is being uploaded by another process; waiting for it"


def _suite(pytester: pytest.Pytester) -> None:
    for module in range(MODULES):
        pytester.makepyfile(
            **{
                f"test_part_{module}": f"""
                    import pytest

                    @pytest.mark.parametrize("case", range({TESTS_PER_MODULE}))
                    def test_case(case):
                        pass
                """
            }
        )


class _Process:
    """A command in its own process, its output in files (no pipe to fill up)."""

    def __init__(self, command: list[str], logs: Path) -> None:
        logs.mkdir(parents=True, exist_ok=True)
        self.out_path, self.err_path = logs / "stdout", logs / "stderr"
        self._files: list[IO[bytes]] = [self.out_path.open("wb"), self.err_path.open("wb")]
        self.process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=self._files[0], stderr=self._files[1]
        )

    def output(self) -> str:
        return self.out_path.read_text(errors="replace") + self.err_path.read_text(errors="replace")

    def ended(self) -> bool:
        return self.process.poll() is not None

    def wait(self) -> int:
        return self.process.wait(timeout=UPLOAD_TIMEOUT)

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        for file in self._files:
            file.close()


@pytest.fixture
def processes() -> Iterator[list[_Process]]:
    """Processes a test starts, ended (killed if need be) when it ends."""
    started: list[_Process] = []
    yield started
    for process in started:
        process.close()


def _replay(journal: Path, *args: str) -> list[str]:
    script = Path(sys.executable).with_name("pytest-mlflow-tree")
    assert script.exists(), f"console script not installed next to {sys.executable}"
    return [str(script), "replay", str(journal), *args]


def _session_run_made(store: Store) -> Callable[[], bool]:
    client = store.client()

    def made() -> bool:
        experiment = client.get_experiment_by_name(store.experiment)
        if experiment is None:
            return False
        found = client.search_runs(
            [experiment.experiment_id], "tags.`pytest.level` = 'session'", max_results=1
        )
        return bool(found)

    return made


def _assert_one_tree(tree: Tree) -> None:
    """Every test once, and every run under the one session through kept runs."""
    assert_recorded_once(tree.runs, NODEIDS)
    ids = {run.info.run_id for run in tree.runs}
    for run in tree.runs:
        if run.data.tags["pytest.level"] != "session":
            assert run.data.tags["mlflow.parentRunId"] in ids, run.info.run_name
            assert run.data.tags["mlflow.rootRunId"] == tree.session.info.run_id
    assert len(tree.modules) == MODULES


def _second_upload_meets_the_first(
    first: _Process, store: Store, journal: Path, logs: Path, proxy: FaultProxy
) -> _Process:
    """Once the first upload (through the slow proxy) has made the session run, replay the
    journal straight to the server; then let the first one go at full speed."""
    made = _session_run_made(store)
    wait_until(lambda: first.ended() or made(), UPLOAD_TIMEOUT, "the first upload's session run")
    assert not first.ended(), first.output()
    second = _Process(_replay(journal, "--tracking-uri", store.uri), logs)
    # Waiting for the first upload, or (were it not to wait) done while the first one crawls.
    wait_until(
        lambda: second.ended() or WAITING in second.output(), UPLOAD_TIMEOUT, "the second upload"
    )
    proxy.faults.delay = 0
    return second


@pytest.mark.parametrize("store", ["server"], indirect=True)
def test_two_replays_of_one_journal_at_once_leave_one_copy_of_each_run(
    pytester: pytest.Pytester,
    proxy: FaultProxy,
    through: Store,
    store: Store,
    processes: list[_Process],
) -> None:
    _suite(pytester)
    # The journal names the proxy: the first replay goes through it, slowly.
    result, journal = journal_only(pytester, through)
    result.assert_outcomes(passed=len(NODEIDS))
    proxy.faults.delay = SLOW
    proxy.up()
    first = _Process(_replay(journal), pytester.path / "first")
    processes.append(first)
    second = _second_upload_meets_the_first(first, store, journal, pytester.path / "second", proxy)
    processes.append(second)

    assert first.wait() == 0, first.output()
    assert second.wait() == 0, second.output()
    _assert_one_tree(store.tree())
    assert WAITING in second.output()
    assert "replayed" in second.output()


@pytest.mark.parametrize("store", ["server"], indirect=True)
def test_a_replay_while_the_live_upload_runs_leaves_one_copy_of_each_run(
    pytester: pytest.Pytester,
    proxy: FaultProxy,
    through: Store,
    store: Store,
    processes: list[_Process],
) -> None:
    _suite(pytester)
    journals = pytester.path / "journals"
    proxy.faults.delay = SLOW
    proxy.up()
    command = [
        sys.executable,
        "-m",
        "pytest",
        "-p",
        "no:randomly",
        *through.args(),
        "--mlflow-tree-keep-journal",
        f"--mlflow-tree-journal-dir={journals}",
        # The session waits for its slow upload rather than give it up.
        f"--mlflow-tree-upload-wait={UPLOAD_TIMEOUT}",
        "--mlflow-tree-give-up-after=60",
    ]
    session = _Process(command, pytester.path / "session")
    processes.append(session)
    wait_until(
        lambda: session.ended() or any(journals.glob("*.jsonl")), UPLOAD_TIMEOUT, "the journal"
    )
    (journal,) = journals.glob("*.jsonl")
    replayed = _second_upload_meets_the_first(
        session, store, journal, pytester.path / "replay", proxy
    )
    processes.append(replayed)

    assert session.wait() == 0, session.output()
    assert "session run" in session.output()
    assert replayed.wait() == 0, replayed.output()
    _assert_one_tree(store.tree())
    assert WAITING in replayed.output()


def _runs(uri: str) -> list[Any]:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    experiments = [e.experiment_id for e in client.search_experiments() if e.name != "Default"]
    return list(client.search_runs(experiments, max_results=5000))


def test_two_sessions_started_together_on_a_fresh_database_both_record(
    pytester: pytest.Pytester, processes: list[_Process], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    _suite(pytester)
    # Each round a new database: both uploads find it missing and create it at once.
    for round_ in range(2):
        path = pytester.path / f"fresh-{round_}" / "mlflow.db"
        path.parent.mkdir()
        sessions = []
        for n in range(2):
            logs = pytester.path / f"round-{round_}-session-{n}"
            command = [
                sys.executable,
                "-m",
                "pytest",
                "-p",
                "no:randomly",
                "-p",
                "no:cacheprovider",
                "--mlflow-tree",
                f"--mlflow-tree-tracking-uri=sqlite:///{path}",
                # A failed upload fails the session.
                "--mlflow-tree-strict",
                f"--mlflow-tree-journal-dir={logs / 'journals'}",
            ]
            sessions.append(_Process(command, logs))
        processes.extend(sessions)
        for session in sessions:
            assert session.wait() == 0, session.output()
            assert "session run" in session.output()
        runs = _runs(f"sqlite:///{path}")
        by_session: dict[str, list[Any]] = {}
        for run in runs:
            by_session.setdefault(run.data.tags["pytest.session_uuid"], []).append(run)
        assert len(by_session) == 2
        for session_runs in by_session.values():
            assert_recorded_once(session_runs, NODEIDS)
        # Nothing of the staged databases is left next to the store.
        assert [p.name for p in path.parent.iterdir()] == ["mlflow.db"]
