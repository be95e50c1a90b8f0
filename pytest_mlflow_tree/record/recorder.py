"""Turn pytest reports into journal records: the run tree and its aggregates.

Runs in the controlling pytest process only. Reports arrive per phase (setup, call, teardown)
and, under xdist, interleaved between workers, so open tests are keyed by (nodeid, worker) the
way junitxml does it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import pytest

from pytest_mlflow_tree.model import started
from pytest_mlflow_tree.model.journal import JournalWriter
from pytest_mlflow_tree.model.names import (
    COLLECTION_ERROR,
    COLLECTION_INDEX,
    EXIT_STATUS,
    FAILED,
    FILE,
    FINISHED,
    KILLED,
    LINE,
    MODULE_LEVEL,
    NODEID,
    NOTE,
    SESSION_LEVEL,
    SKIP_REASON,
    SOURCE_NAME,
)
from pytest_mlflow_tree.model.records import (
    SESSION_KEY,
    CloseRecord,
    OpenRecord,
    RunData,
    RunRecord,
    StartRecord,
    module_of,
    module_run_name,
    run_name_of,
)
from pytest_mlflow_tree.model.summary import Tally
from pytest_mlflow_tree.record import iteminfo, reruns, subtests
from pytest_mlflow_tree.record.failures import crash_message
from pytest_mlflow_tree.record.finished_test import (
    PHASES,
    FinishedTest,
    OpenTest,
    Recording,
    finished_test,
    ms,
    worker_of,
)

COLLECTION_ERROR_ARTIFACT = "collection-error.txt"


@dataclass
class _Group:
    key: str
    start: float
    end: float
    tally: Tally = field(default_factory=Tally)
    expected: int | None = None
    closed: bool = False


class Recorder:
    def __init__(
        self,
        writer: JournalWriter,
        clock: Callable[[], float] = time.time,
        capture: bool = True,
        category: subtests.Category = subtests.plain_category,
    ) -> None:
        self._writer = writer
        self._clock = clock
        # Whether failure texts keep the captured output, and how pytest's summary line counts
        # a report (asked for tests with subtests only).
        self._recording = Recording(capture, category)
        self._tests: dict[tuple[str, str | None], OpenTest] = {}
        # Tests started (by run key) and not yet finished, as journaled.
        self._started: dict[str, StartRecord] = {}
        self._modules: dict[str, _Group] = {}
        self._expected: dict[str, int] = {}
        # Each test's place in pytest's order, once collection is done.
        self._index: dict[str, int] = {}
        # Failed attempts of tests that pytest-rerunfailures runs again, by run key: a retry
        # may run on another xdist worker.
        self._attempts: dict[str, list[list[pytest.TestReport]]] = {}
        # Under ``--dist each`` every worker runs every test: one run per test and worker.
        self.per_worker = False
        self.group_suffixes = False
        now = clock()
        self._session = _Group(SESSION_KEY, now, now)
        self.records_written = 0
        # The session run's markdown description, once the session is closed.
        self.session_summary: str | None = None

    # -- session -------------------------------------------------------------------------------

    def open_session(self, name: str, tags: dict[str, str], params: dict[str, str]) -> None:
        record: OpenRecord = {
            "kind": "open",
            "level": SESSION_LEVEL,
            "key": SESSION_KEY,
            "parent": None,
            "name": name,
            "start": ms(self._session.start),
            "tags": tags,
            "params": params,
        }
        self._write(record)

    def expect(self, tests_per_module: dict[str, int]) -> None:
        """Collection is done: a module's run can close as soon as its last test has run."""
        self._expected = dict(tests_per_module)
        for key, group in self._modules.items():
            group.expected = self._expected.get(key)

    def collected(self, nodeids: Sequence[str]) -> None:
        """The tests in pytest's order: each test's record carries its place in it."""
        self._index = {self._nodeid(nodeid): index for index, nodeid in enumerate(nodeids)}

    def close_session(
        self, exitstatus: int, interrupted: bool, logged: RunData | None = None
    ) -> None:
        """End the session run; ``logged``: what the session logged itself (``mlflow_session``)."""
        now = self._clock()
        for key, test in list(self._tests.items()):
            # A test still open here was cut off mid-run (Ctrl-C, a crash).
            self._finish_test(key[0], test, killed=True)
        self._tests.clear()
        for start in list(self._started.values()):
            # Started, but cut off before any phase was reported (Ctrl-C in a fixture).
            self._finish_unreported(start, ms(now))
        for group in self._modules.values():
            if not group.closed:
                incomplete = group.expected is not None and group.tally.tests < group.expected
                self._close_group(group, killed=interrupted and incomplete)
        session = self._session
        session.end = now
        tags = {EXIT_STATUS: str(exitstatus)}
        if interrupted:
            status = KILLED
        elif session.tally.bad or exitstatus not in (
            pytest.ExitCode.OK,
            pytest.ExitCode.NO_TESTS_COLLECTED,
        ):
            status = FAILED
        else:
            status = FINISHED
        self._close(session, status, tags, title="pytest session", logged=logged)
        self.session_summary = session.tally.markdown("pytest session", session.end - session.start)
        self._write({"kind": "end", "time": ms(now)})

    # -- reports -------------------------------------------------------------------------------

    def collect_report(self, report: pytest.CollectReport) -> None:
        if report.passed or not report.nodeid:
            return
        group = self._module(report.nodeid, self._clock())
        category = "error" if report.failed else "skipped"
        group.tally.add({category: 1})
        self._session.tally.add({category: 1})
        artifacts = {}
        tags = {}
        if report.failed:
            artifacts[COLLECTION_ERROR_ARTIFACT] = report.longreprtext
            tags[COLLECTION_ERROR] = crash_message(report)
            self._session.tally.add_failure(report.nodeid, "collection error")
        else:
            longrepr = report.longrepr
            if isinstance(longrepr, tuple) and len(longrepr) == 3:
                tags[SKIP_REASON] = str(longrepr[2]).removeprefix("Skipped: ")
        group.end = self._clock()
        self._close_group(group, extra_tags=tags, artifacts=artifacts)

    def start_test(self, nodeid: str, location: tuple[str, int | None, str]) -> None:
        """A test is about to run: journal it, so that it has a run even if it ends the process."""
        if self.per_worker:
            return  # which worker runs it is not known yet
        nodeid = self._nodeid(nodeid)
        now = self._clock()
        module_key = module_of(nodeid)
        self._module(module_key, now)
        path, line, _domain = location
        tags = {NODEID: nodeid, FILE: path, SOURCE_NAME: module_key}
        if line is not None:
            tags[LINE] = str(line + 1)
        if (index := self._index.get(nodeid)) is not None:
            tags[COLLECTION_INDEX] = str(index)
        record: StartRecord = {
            "kind": "start",
            "key": nodeid,
            "parent": module_key,
            "name": run_name_of(nodeid),
            "start": ms(now),
            "tags": tags,
        }
        self._write(record)
        self._started[nodeid] = record

    def test_report(self, report: pytest.TestReport) -> None:
        nodeid = self._nodeid(report.nodeid)
        key = (nodeid, worker_of(report))
        test = self._tests.get(key)
        if test is None:
            test = self._tests[key] = OpenTest()
        if subtests.is_subtest(report):
            test.subtests.append(report)
            return
        if report.when == "setup" and reruns.retried(test.reports):
            # A new attempt: older rerunfailures releases report no teardown for a failed one.
            self._attempts.setdefault(self._run_key(*key), []).append(test.reports)
            test.reports = []
        test.reports.append(report)
        info = iteminfo.take_from(report)
        if test.info is None:
            test.info = info
        if report.when == "teardown" or report.when not in PHASES:
            if reruns.retried(test.reports):
                self._attempts.setdefault(self._run_key(*key), []).append(test.reports)
                test.reports = []
                return
            del self._tests[key]
            self._finish_test(nodeid, test, killed=False)

    # -- internals -----------------------------------------------------------------------------

    def _nodeid(self, nodeid: str) -> str:
        if self.group_suffixes and nodeid.rfind("@") > nodeid.rfind("]"):
            # xdist's --dist loadgroup appends "@group" to the nodeids (with pytest < 9):
            # a scheduling detail, not the test's id.
            return nodeid.rsplit("@", 1)[0]
        return nodeid

    def _write(
        self, record: OpenRecord | CloseRecord | RunRecord | StartRecord | dict[str, object]
    ) -> None:
        self._writer.write(record)  # type: ignore[arg-type]
        self.records_written += 1

    def _module(self, key: str, start: float) -> _Group:
        group = self._modules.get(key)
        if group is None:
            group = self._modules[key] = _Group(key, start, start, expected=self._expected.get(key))
            record: OpenRecord = {
                "kind": "open",
                "level": MODULE_LEVEL,
                "key": key,
                "parent": SESSION_KEY,
                "name": module_run_name(key),
                "start": ms(start),
                "tags": {NODEID: key, SOURCE_NAME: key},
            }
            self._write(record)
        return group

    def _run_key(self, nodeid: str, worker: str | None) -> str:
        return f"{nodeid}@{worker}" if self.per_worker and worker else nodeid

    def _finish_test(self, nodeid: str, test: OpenTest, killed: bool) -> None:
        if not test.reports:
            return  # only failed attempts, retried elsewhere
        key = self._run_key(nodeid, worker_of(test.reports[-1]))
        attempts = self._attempts.pop(key, [])
        now = self._clock()
        finished = finished_test(
            nodeid, test, attempts, key, killed, self._recording, now, self._index.get(nodeid)
        )
        group = self._module(module_of(nodeid), finished.start)
        self._write(finished.record)
        self._started.pop(key, None)
        self._count(group, finished)
        self._ended(group, finished.end)

    def _count(self, group: _Group, finished: FinishedTest) -> None:
        """Add a finished test to its module's and the session's tallies."""
        for tally in (group.tally, self._session.tally):
            for failure in finished.failures:
                tally.add_failure(*failure)
            tally.tests += 1
            tally.add(finished.counts, finished.seconds)
            # pytest's summary line counts a failed subtest as a failure too.
            tally.add(finished.subtest_counts)

    def _finish_unreported(self, start: StartRecord, end: int) -> None:
        record = started.killed_run(start, end)
        self._write(record)
        del self._started[start["key"]]
        group = self._module(start["parent"], self._clock())
        for tally in (group.tally, self._session.tally):
            tally.tests += 1
        self._ended(group, record["end"] / 1000)

    def _ended(self, group: _Group, end: float) -> None:
        """A test of ``group`` has ended at ``end``: the group closes after its last test."""
        group.end = max(group.end, end)
        expected = group.expected
        if not group.closed and expected is not None and group.tally.tests >= expected:
            self._close_group(group)

    def _close_group(
        self,
        group: _Group,
        killed: bool = False,
        extra_tags: dict[str, str] | None = None,
        artifacts: dict[str, str] | None = None,
    ) -> None:
        group.closed = True
        status = KILLED if killed else (FAILED if group.tally.bad else FINISHED)
        self._close(group, status, extra_tags or {}, title=group.key, artifacts=artifacts)

    def _close(
        self,
        group: _Group,
        status: str,
        tags: dict[str, str],
        title: str,
        artifacts: dict[str, str] | None = None,
        logged: RunData | None = None,
    ) -> None:
        wall = max(0.0, group.end - group.start)
        logged = logged or {}
        record: CloseRecord = {
            "kind": "close",
            "key": group.key,
            "end": ms(group.end),
            "status": status,
            "metrics": group.tally.metrics(wall),
            # The plugin's own tags win on a clash, as on test runs.
            "tags": {**logged.get("tags", {}), **tags, NOTE: group.tally.markdown(title, wall)},
        }
        artifacts = {**logged.get("artifacts", {}), **(artifacts or {})}
        if artifacts:
            record["artifacts"] = artifacts
        if logged.get("params"):
            record["params"] = logged["params"]
        if logged.get("metric_steps"):
            record["metric_steps"] = logged["metric_steps"]
        if logged.get("files_dir"):
            record["files_dir"] = logged["files_dir"]
        self._write(record)
