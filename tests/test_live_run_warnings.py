"""What MLflow warns about inside the plugin's fixtures does not reach the user's tests."""

from __future__ import annotations

import pytest
from conftest import Store

SUITE = """
    import mlflow

    def test_live(mlflow_live_run):
        mlflow.log_metric("accuracy", 0.9)
"""


@pytest.mark.parametrize("recording", [True, False], ids=["recording", "not recording"])
def test_a_suite_that_turns_warnings_into_errors_still_passes(
    pytester: pytest.Pytester, store: Store, recording: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makeini("[pytest]\nfilterwarnings = error\n")
    pytester.makepyfile(test_live=SUITE)
    # Not recording, the test's run goes into a throwaway store, not the user's.
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store.uri)
    args = store.args() if recording else ()

    # A fresh process: MLflow warns once per process, when it first opens a SQL store.
    result = pytester.runpytest_subprocess(*args)

    result.assert_outcomes(passed=1)
    assert "Warning" not in result.stdout.str()
