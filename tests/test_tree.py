"""The shape of the recorded tree: session -> modules -> tests, linked the way MLflow links."""

from __future__ import annotations

import importlib.util
import re
import time
from pathlib import Path

import pytest
from conftest import BOTH_STORES, Record, Tree

SUITE = {
    "tests/test_model.py": """
        import pytest

        @pytest.mark.parametrize("depth", [2, 3, 5])
        def test_accuracy(depth):
            assert depth > 1

        def test_fails():
            assert 0.7 > 0.9, "accuracy too low"
    """,
    "tests/test_data.py": """
        import time

        def test_slow_load():
            time.sleep(0.3)

        class TestSchema:
            def test_columns(self):
                pass
    """,
    "tests/sub/test_deep.py": """
        def test_deep():
            pass
    """,
}


@pytest.fixture
def suite(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makepyfile(**{path.removesuffix(".py"): body for path, body in SUITE.items()})
    return pytester


@BOTH_STORES
def test_one_recording_has_the_shape_names_counts_and_times_of_the_session(
    suite: pytest.Pytester, record: Record
) -> None:
    before = int(time.time() * 1000)
    result, tree = record()
    after = int(time.time() * 1000)
    result.assert_outcomes(passed=6, failed=1)

    one_session_run_one_module_run_per_file_one_test_run_per_case(tree)
    runs_have_pytests_names_and_the_nodeid_as_tag(result, tree, suite.path)
    counts_and_statuses_roll_up(tree)
    start_and_end_times_bracket_the_real_test(tree, before, after)


def one_session_run_one_module_run_per_file_one_test_run_per_case(tree: Tree) -> None:
    assert sorted(tree.modules) == [
        "tests/sub/test_deep.py",
        "tests/test_data.py",
        "tests/test_model.py",
    ]
    assert sorted(tree.tests) == [
        "tests/sub/test_deep.py::test_deep",
        "tests/test_data.py::TestSchema::test_columns",
        "tests/test_data.py::test_slow_load",
        "tests/test_model.py::test_accuracy[2]",
        "tests/test_model.py::test_accuracy[3]",
        "tests/test_model.py::test_accuracy[5]",
        "tests/test_model.py::test_fails",
    ]
    assert len(tree.runs) == 1 + 3 + 7
    session = tree.session
    for module in tree.modules.values():
        assert module.data.tags["mlflow.parentRunId"] == session.info.run_id
    for nodeid, test in tree.tests.items():
        parent = tree.modules[nodeid.split("::")[0]]
        assert test.data.tags["mlflow.parentRunId"] == parent.info.run_id
    for run in tree.runs:
        if run is not session:
            assert run.data.tags["mlflow.rootRunId"] == session.info.run_id
    assert "mlflow.parentRunId" not in session.data.tags


def runs_have_pytests_names_and_the_nodeid_as_tag(
    result: pytest.RunResult, tree: Tree, suite: Path
) -> None:
    source = (suite / "tests/test_model.py").read_text().splitlines()
    def_line = source.index("def test_fails():") + 1
    names = {nodeid: run.info.run_name for nodeid, run in tree.tests.items()}
    # The node id after the file, as pytest prints it: a name seen in the log finds the run.
    assert names["tests/test_model.py::test_accuracy[3]"] == "test_accuracy[3]"
    assert names["tests/test_data.py::TestSchema::test_columns"] == "TestSchema::test_columns"
    failing = names["tests/test_model.py::test_fails"]
    assert f"FAILED tests/test_model.py::{failing} - " in result.stdout.str()
    assert tree.modules["tests/test_model.py"].data.tags["pytest.nodeid"] == "tests/test_model.py"
    test = tree.tests["tests/test_model.py::test_fails"]
    assert test.data.tags["pytest.file"] == "tests/test_model.py"
    assert test.data.tags["pytest.line"] == str(def_line)


def counts_and_statuses_roll_up(tree: Tree) -> None:
    model = tree.modules["tests/test_model.py"]
    assert model.info.status == "FAILED"
    assert model.data.metrics["pytest/tests"] == 4
    assert model.data.metrics["pytest/passed"] == 3
    assert model.data.metrics["pytest/failed"] == 1
    assert model.data.metrics["pytest/pass_rate"] == pytest.approx(0.75)
    assert tree.modules["tests/test_data.py"].info.status == "FINISHED"
    assert tree.modules["tests/test_data.py"].data.metrics["pytest/pass_rate"] == 1.0

    session = tree.session
    assert session.info.status == "FAILED"
    assert session.data.metrics["pytest/tests"] == 7
    assert session.data.metrics["pytest/passed"] == 6
    assert session.data.metrics["pytest/failed"] == 1
    assert session.data.tags["pytest.exitstatus"] == "1"
    note = session.data.tags["mlflow.note.content"]
    assert "**1 failed**, 6 passed" in note
    assert "tests/test_model.py::test_fails" in note
    assert "accuracy too low" in note


def start_and_end_times_bracket_the_real_test(tree: Tree, before: int, after: int) -> None:
    """``before`` and ``after``: milliseconds since the epoch around the recording."""
    slow = tree.tests["tests/test_data.py::test_slow_load"]
    assert slow.data.metrics["pytest/call_duration"] >= 0.3
    assert slow.data.metrics["pytest/duration"] >= slow.data.metrics["pytest/call_duration"]
    assert slow.info.end_time - slow.info.start_time >= 300
    session = tree.session
    module = tree.modules["tests/test_data.py"]
    assert before <= session.info.start_time <= module.info.start_time <= slow.info.start_time
    assert slow.info.end_time <= module.info.end_time <= session.info.end_time <= after
    # The module's duration is its tests' wall time, not the session's.
    assert module.data.metrics["pytest/duration"] * 1000 == pytest.approx(
        module.info.end_time - module.info.start_time, abs=2
    )
    for run in tree.runs:
        assert run.info.end_time >= run.info.start_time


def test_an_all_green_session_is_finished_and_carries_environment_and_command(
    pytester: pytest.Pytester, record: Record
) -> None:
    pytester.makepyfile(test_ok="def test_ok(): pass")
    result, tree = record("--mlflow-tree-tag", "team=vision", "-p", "no:randomly")
    assert result.ret == 0
    assert tree.session.info.status == "FINISHED"
    assert tree.modules["test_ok.py"].info.status == "FINISHED"
    tags = tree.session.data.tags
    assert tags["team"] == "vision"
    assert tags["pytest.level"] == "session"
    assert tags["mlflow.source.name"] == "pytest"
    assert tags["mlflow.user"]
    assert tags["pytest.pytest_version"] == pytest.__version__
    assert tags["pytest.python_version"].count(".") == 2
    assert tags["pytest.mlflow_version"][0].isdigit()
    assert "--mlflow-tree" in tags["pytest.command"]
    assert "team=vision" in tags["pytest.command"]
    # No pytest-randomly in this session (not installed, or -p no:randomly): no seed.
    assert "pytest.randomly_seed" not in tags


RANDOMLY_STAND_IN = """
    import random


    def pytest_addoption(parser):
        parser.addoption("--randomly-seed", default="default")


    def pytest_configure(config):
        if config.option.randomly_seed == "default":
            config.option.randomly_seed = random.Random().getrandbits(32)


    def pytest_report_header(config):
        return f"Using --randomly-seed={config.option.randomly_seed}"
"""


def test_the_pytest_randomly_seed_is_on_the_session_run(
    pytester: pytest.Pytester, record: Record
) -> None:
    pytester.makepyfile(test_ok="def test_ok(): pass")
    plugin: tuple[str, ...] = ()
    if importlib.util.find_spec("pytest_randomly") is None:
        # Where pytest-randomly is not installed, a stand-in with its name, option and header:
        # the plugin reads no more of it than that.
        pytester.makepyfile(randomly=RANDOMLY_STAND_IN)
        pytester.syspathinsert()
        plugin = ("-p", "randomly")

    result, tree = record(*plugin, "--randomly-seed=1234")
    assert result.ret == 0
    assert tree.session.data.tags["pytest.randomly_seed"] == "1234"

    # A seed pytest-randomly chose itself: the one its header line asks to repeat the order.
    result, tree = record(*plugin)
    header = re.search(r"Using --randomly-seed=(\d+)", result.stdout.str())
    assert header is not None
    latest = max(tree.level("session"), key=lambda run: run.info.start_time)
    assert latest.data.tags["pytest.randomly_seed"] == header.group(1)
