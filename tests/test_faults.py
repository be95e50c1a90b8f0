"""Faults of the tracking server, made to happen for real: the test run never notices.

A fault-injecting proxy (``faultproxy``) sits between the uploader and a real ``mlflow server``
with PostgreSQL behind it. Whatever the server does, pytest's outcome and exit code are those
of a run without the plugin, the added wall time is bounded, one line says what happened, and
the journal, replayed once the server is back, completes the tree with every record once.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import servers
from conftest import Store, Tree
from faultproxy import FaultProxy
from replaying import assert_recorded_once, journal_only, plugin_lines, replay

from pytest_mlflow_tree.upload.process import DEFAULT_GIVE_UP

SUITE = """
    import pytest

    @pytest.mark.parametrize("n", range(8))
    def test_value(n):
        assert n >= 0

    def test_fails():
        assert False, "on purpose"
"""
NODEIDS = [f"test_first.py::test_value[{n}]" for n in range(8)] + [
    "test_first.py::test_fails",
    "test_second.py::test_a",
    "test_second.py::test_b",
]
SECOND = """
    def test_a():
        pass

    def test_b():
        pass
"""
# What the server does in the middle of the session: wait until part of it is uploaded, then
# die (the proxy drops every connection and refuses new ones).
DIES_IN_THE_MIDDLE = """
    import time
    import urllib.request

    PROXY = "{url}/__fault__/"

    def test_a():
        try:
            for _ in range(400):  # bounded: 20 s
                with urllib.request.urlopen(PROXY + "forwarded", timeout=5) as answer:
                    if int(answer.read()) >= 12:
                        break
                time.sleep(0.05)
            urllib.request.urlopen(PROXY + "down", timeout=5).read()
        except OSError:
            pass  # the run without the plugin, for comparison: no proxy to stop

    def test_b():
        pass
"""


def suite(pytester: pytest.Pytester, second: str = SECOND) -> None:
    pytester.makepyfile(test_first=SUITE, test_second=second)


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest("-p", "no:randomly", *args)


def tree_lines(result: pytest.RunResult) -> list[str]:
    """The plugin's lines, without the progress lines of a long wait."""
    return plugin_lines(result.outlines)


def linked_only(result: pytest.RunResult) -> None:
    """The plugin's one line is the link to the session run: no warning."""
    lines = tree_lines(result)
    assert len(lines) == 1, result.outlines
    assert "session run" in lines[0], lines[0]


def uploaded_live(result: pytest.RunResult, store: Store) -> None:
    """The upload went through during the session: the link line, and every run once."""
    linked_only(result)
    assert_recorded_once(store.tree().runs, NODEIDS)


def warned_journal(result: pytest.RunResult, pytester: pytest.Pytester, *words: str) -> Path:
    """The one warning line names every word and a replay command; the journal it names."""
    lines = tree_lines(result)
    assert len(lines) == 1, result.outlines
    line = lines[0]
    assert line.startswith("mlflow-tree: WARNING:"), line
    for word in words:
        assert word in line, line
    assert "Traceback" not in result.stdout.str() + result.stderr.str()
    command = re.search(r"pytest-mlflow-tree replay (\S+)$", line)
    assert command is not None, line
    journal = pytester.path / command[1]
    assert journal.is_file(), line
    return journal


def same_as_without_plugin(pytester: pytest.Pytester, result: pytest.RunResult) -> None:
    """Assert the outcome and exit code are those without the plugin."""
    baseline = run(pytester, "-p", "no:mlflow_tree")
    assert result.ret == baseline.ret == pytest.ExitCode.TESTS_FAILED
    assert result.parseoutcomes() == baseline.parseoutcomes() | {
        k: v for k, v in result.parseoutcomes().items() if k in ("warning", "warnings")
    }
    result.assert_outcomes(passed=10, failed=1)


@pytest.mark.parametrize("store", ["server"], indirect=True)
def test_a_server_down_at_start_costs_seconds_and_replay_uploads_everything_once(
    pytester: pytest.Pytester, proxy: FaultProxy, through: Store, store: Store
) -> None:
    suite(pytester)
    # The proxy's port is reserved but nothing listens: connections are refused.
    result = run(pytester, *through.args())
    same_as_without_plugin(pytester, result)
    # Given up on for the refusal itself, not after MLflow's retries or pytest's wait: what
    # that costs in seconds is measured by the benchmarks, not here.
    journal = warned_journal(result, pytester, proxy.url, "connection refused")

    # The server comes back; the journal is uploaded whole.
    proxy.up()
    code, out, err = replay(str(journal))
    assert code == 0, err
    assert "replayed" in out
    tree = store.tree()
    assert_recorded_once(tree.runs, NODEIDS)
    assert tree.session.info.status == "FAILED"
    assert tree.tests["test_first.py::test_fails"].info.status == "FAILED"


@pytest.mark.parametrize("store", ["server"], indirect=True)
def test_a_slow_server_whose_first_answer_is_an_error_is_waited_for(
    pytester: pytest.Pytester, proxy: FaultProxy, through: Store, store: Store
) -> None:
    suite(pytester)
    # Its first answer, after longer than the give-up bound, is an error: a server that answers
    # is there, and the bound counts from its answer.
    proxy.faults.delay = 3
    proxy.faults.delayed = 1
    proxy.faults.error_share = 1.0
    proxy.faults.error_statuses = (500,)
    proxy.faults.most_500s = 1
    proxy.up()
    result = run(pytester, *through.args(), "--mlflow-tree-give-up-after=2")
    result.assert_outcomes(passed=10, failed=1)
    assert proxy.seen["delayed"] == 1
    assert proxy.seen["error 500"] == 1
    uploaded_live(result, store)


@pytest.mark.parametrize("store", ["server"], indirect=True)
def test_replay_waits_for_a_slow_server_whose_first_answer_is_an_error(
    pytester: pytest.Pytester, through: Store, proxy: FaultProxy, store: Store
) -> None:
    suite(pytester)
    _, journal = journal_only(pytester, through)
    # Like a loaded server: its first answer comes after longer than a live upload's bound,
    # and is an error. It is there, only slow: the replay, run on purpose, waits for it.
    proxy.faults.delay = DEFAULT_GIVE_UP + 1
    proxy.faults.delayed = 1
    proxy.faults.error_share = 1.0
    proxy.faults.error_statuses = (500,)
    proxy.faults.most_500s = 1
    proxy.up()
    code, out, err = replay(str(journal))
    assert code == 0, err
    assert "replayed" in out
    assert proxy.seen["delayed"] == 1
    assert proxy.seen["error 500"] == 1
    assert_recorded_once(store.tree().runs, NODEIDS)


@pytest.mark.parametrize("store", ["server"], indirect=True)
def test_a_server_dying_mid_session_loses_nothing_and_replay_duplicates_nothing(
    pytester: pytest.Pytester, proxy: FaultProxy, through: Store, store: Store
) -> None:
    suite(pytester, DIES_IN_THE_MIDDLE.format(url=proxy.url))
    proxy.up()
    result = run(pytester, *through.args(), "--mlflow-tree-give-up-after=2")
    same_as_without_plugin(pytester, result)
    assert proxy.seen["forwarded"] >= 12
    journal = warned_journal(result, pytester)
    # Part of the tree reached the server before it died: replay must complete, not repeat it.
    before = store.tree().runs
    assert 0 < len(before) < len(NODEIDS) + 3

    proxy.up()
    code, _, err = replay(str(journal))
    assert code == 0, err
    tree = store.tree()
    assert_recorded_once(tree.runs, NODEIDS)
    assert {run.info.run_id for run in before} <= {run.info.run_id for run in tree.runs}
    assert tree.modules["test_second.py"].info.status == "FINISHED"
    assert tree.session.info.status == "FAILED"
    # Twice is once.
    code, _, err = replay(str(journal))
    assert code == 0, err
    assert len(store.tree().runs) == len(tree.runs)


@pytest.mark.parametrize("store", ["server"], indirect=True)
def test_errors_closed_connections_and_lost_answers_never_duplicate_a_run(
    pytester: pytest.Pytester, proxy: FaultProxy, through: Store, store: Store
) -> None:
    suite(pytester)
    proxy.faults.error_share = 0.2  # 500 and 503 in turn
    # Fewer 500s than the uploader's attempts at one request (it takes a repeated 500 as the
    # server's final word): with 8 upload threads, one request's retries can line up with
    # every 500 the proxy answers.
    proxy.faults.most_500s = 3
    proxy.faults.close_share = 0.07
    proxy.faults.lose_create_answers = 3
    proxy.faults.delay = 0.05  # and slow
    proxy.up()
    # A generous give-up bound: on a loaded machine the server itself may take seconds to answer
    # between the faults, and this test is about the faults, not about giving up.
    result = run(pytester, *through.args(), "--mlflow-tree-give-up-after=20")
    same_as_without_plugin(pytester, result)
    # Every kind of fault really happened...
    for fault in ("error 500", "error 503", "closed", "lost create_run answer", "delayed"):
        assert proxy.seen[fault] > 0, (fault, proxy.seen)
    assert proxy.seen["lost create_run answer"] == 3
    # ...and the upload went through anyway: one link line, each run once.
    uploaded_live(result, store)


def assert_tree_holds_together(tree: Tree) -> None:
    """Every run points at its parent and root in the tree (none at a deleted copy)."""
    ids = {run.info.run_id for run in tree.runs}
    for run in tree.runs:
        if run.data.tags["pytest.level"] != "session":
            assert run.data.tags["mlflow.parentRunId"] in ids, run.info.run_name
            assert run.data.tags["mlflow.rootRunId"] == tree.session.info.run_id
    assert len(tree.children(tree.session)) == 2
    assert sum(len(tree.children(module)) for module in tree.modules.values()) == len(NODEIDS)


@pytest.mark.parametrize("store", ["server"], indirect=True)
def test_a_create_run_the_server_carries_out_after_its_retry_leaves_one_run(
    pytester: pytest.Pytester, proxy: FaultProxy, through: Store, store: Store
) -> None:
    from mlflow.entities import ViewType

    suite(pytester)
    # The session's create_run and its first retry: cut off, each carried out by the server only
    # after the next retry looked the run up, found nothing and made it again.
    proxy.faults.late_creates = 2
    proxy.up()
    result = run(pytester, *through.args())
    same_as_without_plugin(pytester, result)
    assert proxy.seen["late create_run carried out"] == 2, proxy.seen
    linked_only(result)

    tree = store.tree()
    assert_recorded_once(tree.runs, NODEIDS)
    assert_tree_holds_together(tree)
    # The second copies really were made, and deleted.
    experiment_id = tree.session.info.experiment_id
    deleted = tree.client.search_runs([experiment_id], run_view_type=ViewType.DELETED_ONLY)
    assert [run.data.tags["pytest.level"] for run in deleted] == ["session", "session"]


def test_replay_keeps_one_copy_of_each_run_and_repoints_its_children(
    pytester: pytest.Pytester, store: Store
) -> None:
    suite(pytester)
    result = pytester.runpytest(*store.args(), "--mlflow-tree-keep-journal")
    result.assert_outcomes(passed=10, failed=1)
    journal = next(pytester.path.glob(".pytest_cache/d/mlflow-tree/*.jsonl"))
    tree = store.tree()
    client = tree.client
    original = {run.info.run_id for run in tree.runs}
    # Copies a lost answer would leave: of the session run (empty, RUNNING) and of a module,
    # which one test points at (as if its upload had got the copy's id).
    copies = {}
    for run in (tree.session, tree.modules["test_second.py"]):
        tags = {k: v for k, v in run.data.tags.items() if not k.startswith("mlflow.")}
        for name in ("mlflow.parentRunId", "mlflow.rootRunId"):
            if name in run.data.tags:
                tags[name] = run.data.tags[name]
        copy = client.create_run(
            run.info.experiment_id,
            start_time=run.info.start_time,
            tags=tags,
            run_name=run.info.run_name,
        )
        copies[run.data.tags["pytest.level"]] = copy.info.run_id
    moved = tree.tests["test_second.py::test_a"].info.run_id
    client.set_tag(moved, "mlflow.parentRunId", copies["module"])
    assert len(store.tree().runs) == len(NODEIDS) + 5

    code, _, err = replay(str(journal))
    assert code == 0, err
    tree = store.tree()
    assert_recorded_once(tree.runs, NODEIDS)
    # The runs the tree used are kept; the test pointing at a deleted copy points at the kept one.
    assert {run.info.run_id for run in tree.runs} == original
    assert_tree_holds_together(tree)
    parent = client.get_run(moved).data.tags["mlflow.parentRunId"]
    assert parent == tree.modules["test_second.py"].info.run_id


@pytest.mark.parametrize("store", ["server"], indirect=True)
def test_a_server_slow_to_answer_its_first_requests_is_waited_for(
    pytester: pytest.Pytester, proxy: FaultProxy, through: Store, store: Store
) -> None:
    suite(pytester)
    # Like a fresh server whose workers import the tracking API on the first calls: each of
    # them takes longer than the give-up bound, but the server is working, not gone. The delay
    # leaves 6 s below the slow server's bound (5 x the give-up bound) for the server's own
    # answers, which take seconds on a loaded machine.
    proxy.faults.delay = 4
    proxy.faults.delayed = 2
    proxy.up()
    result = run(pytester, *through.args(), "--mlflow-tree-give-up-after=2")
    result.assert_outcomes(passed=10, failed=1)
    assert proxy.seen["delayed"] == 2
    uploaded_live(result, store)


@pytest.mark.parametrize("store", ["server"], indirect=True)
def test_a_server_that_stops_answering_is_given_up_on_after_the_give_up_bound(
    pytester: pytest.Pytester, proxy: FaultProxy, through: Store, store: Store
) -> None:
    suite(pytester)
    proxy.faults.delay = 100.0  # accepts connections, never answers in time
    proxy.up()
    result = run(pytester, *through.args(), "--mlflow-tree-give-up-after=1")
    same_as_without_plugin(pytester, result)
    # The uploader gave up on it (5 x the give-up bound: it took the requests), not pytest after
    # its 300 s wait nor MLflow after its own timeouts.
    journal = warned_journal(
        result, pytester, "the upload failed", "has not answered requests it accepted"
    )

    proxy.down()
    proxy.faults.delay = 0
    proxy.up()
    code, _, err = replay(str(journal))
    assert code == 0, err
    assert_recorded_once(store.tree().runs, NODEIDS)


@pytest.fixture
def refused_port() -> Iterator[int]:
    with servers.refused_port() as port:
        yield port


def test_strict_mode_fails_a_green_session_whose_upload_failed(
    pytester: pytest.Pytester, refused_port: int
) -> None:
    pytester.makepyfile(test_ok="def test_ok(): pass")
    down = f"--mlflow-tree-tracking-uri=http://127.0.0.1:{refused_port}"

    lenient = pytester.runpytest("--mlflow-tree", down)
    assert lenient.ret == pytest.ExitCode.OK
    assert tree_lines(lenient)[0].startswith("mlflow-tree: WARNING:")

    strict = pytester.runpytest("--mlflow-tree", down, "--mlflow-tree-strict")
    strict.assert_outcomes(passed=1)
    assert strict.ret == pytest.ExitCode.TESTS_FAILED
    lines = tree_lines(strict)
    assert len(lines) == 1, strict.outlines
    assert lines[0].startswith("mlflow-tree: ERROR (--mlflow-tree-strict): the upload failed:")
    assert "connection refused" in lines[0]

    # From the ini file too; a session that failed on its own keeps its exit code.
    pytester.makeini("[pytest]\nmlflow_tree_strict = true\n")
    pytester.makepyfile(test_ok="def test_ok(): pass\ndef test_bad(): assert False")
    failing = pytester.runpytest("--mlflow-tree", down)
    failing.assert_outcomes(passed=1, failed=1)
    assert failing.ret == pytest.ExitCode.TESTS_FAILED
    assert tree_lines(failing)[0].startswith("mlflow-tree: ERROR (--mlflow-tree-strict)")
    usage = pytester.runpytest("--mlflow-tree", down, "--no-such-option")
    assert usage.ret == pytest.ExitCode.USAGE_ERROR


def test_strict_mode_keeps_the_exit_code_of_a_session_without_tests(
    pytester: pytest.Pytester, refused_port: int
) -> None:
    pytester.makepyfile(test_none="")
    assert pytester.runpytest("-p", "no:mlflow_tree").ret == pytest.ExitCode.NO_TESTS_COLLECTED
    down = f"--mlflow-tree-tracking-uri=http://127.0.0.1:{refused_port}"
    strict = pytester.runpytest("--mlflow-tree", down, "--mlflow-tree-strict")
    # Exit code 5 fails a build already, and says more than 1 would.
    assert strict.ret == pytest.ExitCode.NO_TESTS_COLLECTED
    lines = tree_lines(strict)
    assert len(lines) == 1, strict.outlines
    assert lines[0].startswith("mlflow-tree: ERROR (--mlflow-tree-strict): the upload failed:")


def test_strict_mode_changes_nothing_when_the_upload_succeeds(
    pytester: pytest.Pytester, store: Store
) -> None:
    pytester.makepyfile(test_ok="def test_ok(): pass")
    result = pytester.runpytest(*store.args(), "--mlflow-tree-strict")
    assert result.ret == pytest.ExitCode.OK
    assert "session run" in tree_lines(result)[0]
    assert len(store.tree().runs) == 3
