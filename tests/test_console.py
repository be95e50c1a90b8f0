"""What a user sees in the terminal, with pytest in its own process as a user runs it."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from conftest import Store
from replaying import plugin_lines

SUITE = """
    import logging

    def test_ok():
        logging.getLogger(__name__).info("a log line of the test itself")

    def test_bad():
        assert 0.7 > 0.9, "accuracy too low"
"""
# Writes, when pytest is done, which mlflow modules the pytest process has imported.
CONFTEST = """
    import json
    import sys

    def pytest_unconfigure(config):
        names = sorted(n for n in sys.modules if n == "mlflow" or n.startswith("mlflow."))
        with open("mlflow-modules.json", "w") as file:
            json.dump(names, file)
"""
NOISE = ("View run", "INFO", "alembic", "mlflow.store", "Traceback")
DOWN = "http://127.0.0.1:9"  # the discard port: nothing listens, connections are refused


@pytest.fixture
def project(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    for name in ("MLFLOW_TRACKING_URI", "MLFLOW_EXPERIMENT_NAME", "MLFLOW_EXPERIMENT_ID"):
        monkeypatch.delenv(name, raising=False)
    pytester.makepyfile(test_suite=SUITE)
    pytester.makeconftest(CONFTEST)
    pytester.makeini("[pytest]")
    return pytester


def mlflow_modules(project: pytest.Pytester) -> list[str]:
    names: list[str] = json.loads((project.path / "mlflow-modules.json").read_text())
    return names


def tree_lines(result: pytest.RunResult) -> list[str]:
    """The plugin's summary lines; a separator line ("--- mlflow-tree: ... ---") counts unframed.

    Progress lines ("mlflow-tree: uploading 3/8 records (2/s)", shown while pytest waits for a
    slow upload, docs/how-it-works.md) come before the summary and are left out.
    """
    return plugin_lines(result.stdout.lines + result.stderr.lines)


def journals(project: pytest.Pytester) -> list[Path]:
    return sorted(project.path.rglob("*.jsonl"))


def test_a_recorded_session_prints_one_line_and_no_mlflow_noise(
    project: pytest.Pytester,
) -> None:
    # The embedded default store, created (and migrated) by this very run.
    result = project.runpytest_subprocess("--mlflow-tree", "-p", "no:randomly", timeout=120)
    result.assert_outcomes(passed=1, failed=1)
    output = result.stdout.str() + "\n" + result.stderr.str()
    for noise in NOISE:
        assert noise not in output, f"{noise!r} in the output:\n{output}"

    database = project.path / "mlflow.db"
    store = Store(uri=f"sqlite:///{database}", path=database)
    session = store.tree().session
    lines = tree_lines(result)
    assert len(lines) == 1, output
    line = lines[0]
    assert "WARNING" not in line
    assert session.info.run_id in line
    assert f"/experiments/{session.info.experiment_id}/runs/{session.info.run_id}" in line
    # The journal was uploaded completely, so it is gone.
    assert journals(project) == []
    assert mlflow_modules(project) == []


def test_without_the_flag_the_plugin_leaves_no_trace(project: pytest.Pytester) -> None:
    result = project.runpytest_subprocess("-p", "no:randomly", timeout=120)
    result.assert_outcomes(passed=1, failed=1)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    # Installed, only not enabled.
    assert "mlflow-tree-0" in result.stdout.str()
    assert tree_lines(result) == []
    assert mlflow_modules(project) == []
    assert journals(project) == []
    assert not (project.path / ".pytest_cache" / "d" / "mlflow-tree").exists()
    assert not (project.path / "mlflow.db").exists()
    assert not (project.path / "mlruns").exists()


@pytest.mark.parametrize("wait", ["0", "default"])
def test_a_tracking_server_that_is_down_changes_nothing_but_one_warning(
    wait: str, project: pytest.Pytester
) -> None:
    baseline = project.runpytest_subprocess("-p", "no:mlflow_tree", timeout=120)
    baseline.assert_outcomes(passed=1, failed=1)

    args = ["--mlflow-tree", f"--mlflow-tree-tracking-uri={DOWN}"]
    if wait != "default":
        args.append(f"--mlflow-tree-upload-wait={wait}")
    # Bounded: the default wait of 300 s, or MLflow's own minutes of retries, would end it.
    result = project.runpytest_subprocess(*args, timeout=240)

    result.assert_outcomes(passed=1, failed=1)
    assert result.ret == baseline.ret
    output = result.stdout.str() + "\n" + result.stderr.str()
    assert "Traceback" not in output
    lines = tree_lines(result)
    assert len(lines) == 1, output
    line = lines[0]
    assert line.startswith("mlflow-tree: WARNING:")
    command = re.search(r"pytest-mlflow-tree replay (\S+)$", line)
    assert command is not None, line
    journal = project.path / command[1]
    assert journal in journals(project)
    records = [json.loads(text) for text in journal.read_text().splitlines()]
    assert records[0]["kind"] == "journal"
    assert records[-1]["kind"] == "end"
    assert mlflow_modules(project) == []
