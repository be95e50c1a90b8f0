"""pytest-rerunfailures: one run per test, every attempt kept, flaky tests tagged."""

from __future__ import annotations

import pytest
from conftest import Record

pytest.importorskip("pytest_rerunfailures")

SUITE = """
    import time
    from pathlib import Path

    def attempt(name):
        counter = Path(__file__).with_name(name + ".count")
        number = int(counter.read_text()) + 1 if counter.exists() else 1
        counter.write_text(str(number))
        return number

    def test_flaky():
        number = attempt("flaky")
        if number == 1:
            time.sleep(0.3)
            raise ConnectionError(f"attempt {number}: server busy")

    def test_broken():
        number = attempt("broken")
        assert number > 5, f"attempt {number} failed"

    def test_steady():
        pass
"""


@pytest.mark.parametrize(
    ("store", "xdist"),
    [("sqlite", False), ("server", False), ("sqlite", True)],
    indirect=["store"],
    ids=["sqlite", "server", "sqlite-xdist"],
)
def test_every_attempt_is_kept_on_one_run_per_test(
    pytester: pytest.Pytester, record: Record, xdist: bool
) -> None:
    pytester.makepyfile(test_retry=SUITE)
    args = ["--reruns=2"] + (["-n", "2"] if xdist else [])
    result, tree = record(*args)
    assert result.parseoutcomes() == {"passed": 2, "failed": 1, "rerun": 3}
    assert len(tree.level("test")) == 3

    flaky = tree.tests["test_retry.py::test_flaky"]
    assert flaky.info.status == "FINISHED"
    assert flaky.data.tags["pytest.outcome"] == "passed"
    assert flaky.data.tags["pytest.flaky"] == "true"
    assert flaky.data.metrics["pytest/attempts"] == 2
    assert sorted(tree.artifacts(flaky)) == ["attempt-1.txt"]
    first = tree.artifact(flaky, "attempt-1.txt")
    assert "attempt 1: call failed" in first
    assert "ConnectionError: attempt 1: server busy" in first
    # The run spans every attempt; the duration metrics are the final attempt's.
    assert flaky.info.end_time - flaky.info.start_time >= 300
    assert flaky.data.metrics["pytest/duration"] < 0.3

    broken = tree.tests["test_retry.py::test_broken"]
    assert broken.info.status == "FAILED"
    assert broken.data.tags["pytest.outcome"] == "failed"
    assert "pytest.flaky" not in broken.data.tags
    assert broken.data.metrics["pytest/attempts"] == 3
    assert sorted(tree.artifacts(broken)) == ["attempt-1.txt", "attempt-2.txt", "failure.txt"]
    assert "attempt 1 failed" in tree.artifact(broken, "attempt-1.txt")
    assert "attempt 2 failed" in tree.artifact(broken, "attempt-2.txt")
    assert "attempt 3 failed" in tree.artifact(broken, "failure.txt")

    steady = tree.tests["test_retry.py::test_steady"]
    assert "pytest/attempts" not in steady.data.metrics
    assert "pytest.flaky" not in steady.data.tags

    session = tree.session
    assert session.data.metrics["pytest/passed"] == 2
    assert session.data.metrics["pytest/failed"] == 1
    assert session.data.metrics["pytest/tests"] == 3
    assert session.info.status == "FAILED"
