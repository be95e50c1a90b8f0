"""The commands as a user runs them in a project: its ini file, ``--version``, a closed pipe."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import Record, Store
from replaying import command

from pytest_mlflow_tree import __version__


def test_show_in_the_project_reads_the_store_and_experiment_of_its_ini_file(
    pytester: pytest.Pytester, store: Store
) -> None:
    assert store.path is not None
    pytester.makeini(
        f"""
        [pytest]
        mlflow_tree_tracking_uri = sqlite:///{store.path}
        mlflow_tree_experiment = from-the-ini
        """
    )
    pytester.makepyfile(test_a="def test_fails():\n    assert 0.7 > 0.9\n")
    result = pytester.runpytest("--mlflow-tree")
    result.assert_outcomes(failed=1)

    code, out, err = command("show")

    assert (code, err) == (0, "")
    assert "test_a.py::test_fails" in out


def test_a_missing_database_names_where_its_uri_came_from(pytester: pytest.Pytester) -> None:
    pytester.makepyprojecttoml(
        '[tool.pytest.ini_options]\nmlflow_tree_tracking_uri = "sqlite:///nowhere.db"\n'
    )

    code, _, err = command("show")

    assert code == 2
    assert "no MLflow database at nowhere.db (pyproject.toml's mlflow_tree_tracking_uri" in err
    assert not Path("nowhere.db").exists()


def test_version() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "pytest_mlflow_tree.cli", "--version"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert (done.returncode, done.stdout) == (0, f"pytest-mlflow-tree {__version__}\n")


def test_show_into_a_closed_pipe_ends_without_a_traceback(
    record: Record, store: Store, tmp_path: Path
) -> None:
    record()
    reader, writer = os.pipe()
    # The reader is gone before the command prints its first line, as `show | head -0` would be.
    os.close(reader)
    done = subprocess.run(
        [sys.executable, "-m", "pytest_mlflow_tree.cli", "show", "--tracking-uri", store.uri],
        stdout=writer,
        stderr=subprocess.PIPE,
        text=True,
        timeout=120,
        check=False,
    )
    os.close(writer)

    assert "Traceback" not in done.stderr
    assert "BrokenPipeError" not in done.stderr
    assert done.returncode == 1
