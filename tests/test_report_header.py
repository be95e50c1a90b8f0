"""Before the tests run, pytest's header says where the session goes and why."""

from __future__ import annotations

import pytest

SUITE = "def test_ok():\n    pass\n"


@pytest.fixture
def project(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    for name in ("MLFLOW_TRACKING_URI", "MLFLOW_EXPERIMENT_NAME"):
        monkeypatch.delenv(name, raising=False)
    pytester.makepyfile(test_a=SUITE)
    pytester.makeini("[pytest]\nmlflow_tree_experiment = from-the-ini\n")
    return pytester


def header(result: pytest.RunResult) -> str:
    """The first of the plugin's lines: the header, before the tests' progress."""
    lines = [line for line in result.outlines if line.startswith("mlflow-tree: ")]
    assert lines, result.stdout.str()
    return lines[0]


def test_the_header_names_the_store_the_experiment_and_their_sources(
    project: pytest.Pytester,
) -> None:
    result = project.runpytest("--mlflow-tree", "--mlflow-tree-journal-only")

    result.assert_outcomes(passed=1)
    assert header(result) == (
        "mlflow-tree: recording into the journal only, for sqlite:///mlflow.db (the default), "
        "experiment 'from-the-ini' (from tox.ini's mlflow_tree_experiment)"
    )


def test_an_exported_mlflow_experiment_name_wins_and_the_header_says_so(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", "training-script")

    result = project.runpytest(
        "--mlflow-tree", "--mlflow-tree-journal-only", "--mlflow-tree-tracking-uri=sqlite:///x.db"
    )

    assert header(result) == (
        "mlflow-tree: recording into the journal only, for sqlite:///x.db "
        "(from --mlflow-tree-tracking-uri), "
        "experiment 'training-script' (from $MLFLOW_EXPERIMENT_NAME)"
    )


def test_quiet_runs_print_no_header(project: pytest.Pytester) -> None:
    result = project.runpytest("-q", "--mlflow-tree", "--mlflow-tree-journal-only")

    assert not [line for line in result.outlines if "recording into" in line]
