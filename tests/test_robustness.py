"""Recording problems never change the test run: a clear message, the same outcome."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import Store, missing_service
from replaying import plugin_lines


def test_unwritable_journal_dir_warns_and_the_tests_still_run(
    pytester: pytest.Pytester, store: Store
) -> None:
    blocker = pytester.path / "not-a-dir"
    blocker.write_text("a file where the journal directory should be")
    pytester.makepyfile(test_ok="def test_ok(): pass\ndef test_bad(): assert False")
    result = pytester.runpytest(
        "--mlflow-tree",
        f"--mlflow-tree-tracking-uri={store.uri}",
        f"--mlflow-tree-journal-dir={blocker / 'journals'}",
    )
    result.assert_outcomes(passed=1, failed=1)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["*mlflow-tree: WARNING: cannot write the journal*not recording*"])


def _tree_lines(result: pytest.RunResult) -> list[str]:
    return plugin_lines(result.outlines)


@pytest.mark.parametrize(
    ("suite", "code"),
    [
        ("def test_ok(): pass", pytest.ExitCode.OK),
        ("def test_bad(): assert False", pytest.ExitCode.TESTS_FAILED),
        ("", pytest.ExitCode.NO_TESTS_COLLECTED),
    ],
    ids=["passing", "failing", "no-tests"],
)
def test_unwritable_journal_dir_is_one_line_under_filterwarnings_error_and_strict_fails(
    pytester: pytest.Pytester, store: Store, suite: str, code: pytest.ExitCode
) -> None:
    blocker = pytester.path / "not-a-dir"
    blocker.write_text("a file where the journal directory should be")
    # Every warning an error: the plugin's problem must not become one of the test run.
    pytester.makeini("[pytest]\nfilterwarnings =\n    error\n")
    pytester.makepyfile(test_suite=suite)
    recording = (
        "--mlflow-tree",
        f"--mlflow-tree-tracking-uri={store.uri}",
        f"--mlflow-tree-journal-dir={blocker / 'journals'}",
    )
    assert pytester.runpytest("-p", "no:mlflow_tree").ret == code

    lenient = pytester.runpytest(*recording)
    assert lenient.ret == code
    assert "INTERNALERROR" not in lenient.stdout.str() + lenient.stderr.str()
    (line,) = _tree_lines(lenient)
    assert line.startswith("mlflow-tree: WARNING: cannot write the journal ("), line
    assert line.endswith("): not recording"), line

    # Strict: nothing recorded fails a session that passed; the tests' own failing code stays.
    strict = pytester.runpytest(*recording, "--mlflow-tree-strict")
    assert strict.ret == (pytest.ExitCode.TESTS_FAILED if code == pytest.ExitCode.OK else code)
    assert "INTERNALERROR" not in strict.stdout.str() + strict.stderr.str()
    (line,) = _tree_lines(strict)
    assert line.startswith("mlflow-tree: ERROR (--mlflow-tree-strict): cannot write the journal")
    assert [e.name for e in store.client().search_experiments()] == ["Default"]


def _skinny_python() -> str | None:
    """A Python whose environment has this plugin with mlflow-skinny only (CI builds one)."""
    return os.environ.get("PYTEST_MLFLOW_TREE_SKINNY_PYTHON") or None


def test_sqlite_store_with_only_mlflow_skinny_says_so_in_one_line(
    pytester: pytest.Pytester, tmp_path: Path
) -> None:
    python = _skinny_python()
    if python is None:
        missing_service(
            "needs an environment with only mlflow-skinny: set PYTEST_MLFLOW_TREE_SKINNY_PYTHON "
            "to its python (.ci/run does)"
        )
    pytester.makepyfile(test_ok="def test_ok(): pass")
    done = subprocess.run(
        [python, "-m", "pytest", "--mlflow-tree", "-p", "no:randomly"],
        cwd=pytester.path,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}"},
        check=False,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert "1 passed" in output
    lines = plugin_lines(output.splitlines())
    assert len(lines) == 1, output
    assert "needs the full MLflow package" in lines[0]
    assert "pip install 'pytest-mlflow-tree[local]'" in lines[0]
    assert "pytest-mlflow-tree replay" in lines[0]
    assert "Traceback" not in output
    assert not (tmp_path / "mlflow.db").exists()
    assert sys.executable != python
