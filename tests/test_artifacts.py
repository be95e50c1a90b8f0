"""What a failure leaves behind: failure.txt on the test run, and a list in the descriptions."""

from __future__ import annotations

import pytest
from conftest import Record, Tree

FAILURE = "failure.txt"


SUITE = {
    "test_training.py": """
        import logging
        import sys

        import pytest

        @pytest.fixture
        def database():
            print("connecting to the feature store")
            raise ConnectionError("feature store unreachable")

        @pytest.fixture
        def gpu():
            print("allocating the GPU")
            yield
            raise RuntimeError("could not release the GPU")

        def test_accuracy():
            print("epoch 3: accuracy 0.71")
            print("loss went up", file=sys.stderr)
            logging.warning("learning rate looks suspicious")
            accuracy = 0.71
            assert accuracy > 0.9, "accuracy too low"

        def test_features(database):
            pass

        def test_release(gpu):
            pass

        def test_loss():
            print("loss 0.02")
            logging.warning("a warning on a passing test")

        @pytest.mark.skip(reason="later")
        def test_later():
            pass

        @pytest.mark.xfail(reason="known drift")
        def test_drift():
            assert False
    """,
    "test_serving.py": """
        def test_latency():
            latency_ms = 250
            assert latency_ms < 100, f"p99 latency {latency_ms} ms"

        def test_health():
            pass
    """,
    "test_clean.py": """
        def test_ok():
            print("nothing to see")
    """,
}


@pytest.fixture
def suite(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makepyfile(**{path.removesuffix(".py"): body for path, body in SUITE.items()})
    return pytester


def test_one_recording_leaves_failures_where_they_belong(
    suite: pytest.Pytester, record: Record
) -> None:
    result, tree = record()
    result.assert_outcomes(passed=4, failed=2, errors=2, skipped=1, xfailed=1)

    failing_call_leaves_traceback_output_and_log(tree)
    errors_in_setup_and_teardown_leave_their_traceback(tree)
    only_failures_leave_artifacts_and_descriptions_list_them(tree)


def failing_call_leaves_traceback_output_and_log(tree: Tree) -> None:
    run = tree.tests["test_training.py::test_accuracy"]
    assert tree.artifacts(run) == [FAILURE]
    text = tree.artifact(run, FAILURE)
    lines = text.splitlines()
    # Which test, and in which phase.
    assert "test_training.py::test_accuracy" in lines[0]
    assert "call" in lines[0]
    assert "setup" not in lines[0]
    # The traceback, with the assertion message and the failing line.
    assert "accuracy too low" in text
    assert "assert accuracy > 0.9" in text
    assert "AssertionError" in text
    # Captured stdout, stderr and log, each under its own heading (pytest's section titles).
    order = [
        "Captured stdout call",
        "epoch 3: accuracy 0.71",
        "Captured stderr call",
        "loss went up",
        "Captured log call",
        "learning rate looks suspicious",
    ]
    # (The traceback quotes the print calls too: look for each piece after the one before.)
    position = 0
    for piece in order:
        position = text.find(piece, position)
        assert position != -1, f"{piece!r} not found in order in:\n{text}"
    assert "WARNING" in text

    other = tree.tests["test_serving.py::test_latency"]
    assert "p99 latency 250 ms" in tree.artifact(other, FAILURE)


def errors_in_setup_and_teardown_leave_their_traceback(tree: Tree) -> None:
    setup = tree.tests["test_training.py::test_features"]
    assert setup.data.tags["pytest.outcome"] == "error"
    assert tree.artifacts(setup) == [FAILURE]
    text = tree.artifact(setup, FAILURE)
    first = text.splitlines()[0]
    assert "test_training.py::test_features" in first
    assert "setup" in first
    assert "call" not in first
    assert "ConnectionError" in text
    assert "feature store unreachable" in text
    assert 'raise ConnectionError("feature store unreachable")' in text
    assert "connecting to the feature store" in text

    teardown = tree.tests["test_training.py::test_release"]
    assert teardown.data.tags["pytest.outcome"] == "error"
    text = tree.artifact(teardown, FAILURE)
    first = text.splitlines()[0]
    assert "teardown" in first
    assert "RuntimeError" in text
    assert "could not release the GPU" in text
    # Output of every phase, the setup's included.
    assert "allocating the GPU" in text


def only_failures_leave_artifacts_and_descriptions_list_them(tree: Tree) -> None:
    with_failure = {
        "test_training.py::test_accuracy",
        "test_training.py::test_features",
        "test_training.py::test_release",
        "test_serving.py::test_latency",
    }
    for nodeid, run in tree.tests.items():
        if nodeid in with_failure:
            assert tree.artifacts(run) == [FAILURE], nodeid
        else:
            # Passed (with output and a logged warning), skipped, xfailed: nothing.
            assert tree.artifacts(run) == [], nodeid

    training = tree.modules["test_training.py"].data.tags["mlflow.note.content"]
    assert "test_training.py::test_accuracy" in training
    assert "accuracy too low" in training
    assert "test_training.py::test_features" in training
    assert "feature store unreachable" in training
    assert "test_training.py::test_release" in training
    assert "could not release the GPU" in training
    assert "test_serving.py" not in training
    for passing in ("test_loss", "test_later", "test_drift"):
        assert f"test_training.py::{passing}" not in training

    serving = tree.modules["test_serving.py"].data.tags["mlflow.note.content"]
    assert "test_serving.py::test_latency" in serving
    assert "p99 latency 250 ms" in serving
    assert "test_serving.py::test_health" not in serving

    clean = tree.modules["test_clean.py"].data.tags["mlflow.note.content"]
    assert "1 passed" in clean
    assert "Failures" not in clean
    assert "test_clean.py::test_ok" not in clean

    session = tree.session.data.tags["mlflow.note.content"]
    for nodeid in with_failure:
        assert nodeid in session, nodeid
    assert "accuracy too low" in session
    assert "p99 latency 250 ms" in session
    assert "**2 failed**" in session
    assert "**2 errors**" in session

    # Module and session runs carry the description, not failure.txt.
    for run in (*tree.modules.values(), tree.session):
        assert FAILURE not in tree.artifacts(run)
