"""The fixtures' types, exported from the package for annotations, at no cost on import."""

from __future__ import annotations

import subprocess
import sys

import pytest

import pytest_mlflow_tree
from pytest_mlflow_tree.record.run_fixture import RunLog
from pytest_mlflow_tree.record.session_fixture import SessionLog


def test_the_fixture_types_are_the_packages() -> None:
    assert pytest_mlflow_tree.RunLog is RunLog
    assert pytest_mlflow_tree.SessionLog is SessionLog
    assert {"RunLog", "SessionLog"} <= set(pytest_mlflow_tree.__all__)
    with pytest.raises(AttributeError, match="no attribute 'Nothing'"):
        _ = pytest_mlflow_tree.Nothing


def test_importing_the_package_imports_neither_pytest_nor_mlflow() -> None:
    """The uploader imports the package and must not import pytest; pytest imports it at every
    start, recording or not."""
    code = (
        "import sys, pytest_mlflow_tree\n"
        "loaded = sorted(n for n in sys.modules if n.split('.')[0] in ('pytest', '_pytest', "
        "'mlflow') or n.startswith('pytest_mlflow_tree.'))\n"
        "print(loaded)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"


def test_a_test_annotates_the_fixtures_with_them(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        from pytest_mlflow_tree import RunLog, SessionLog

        def test_typed(mlflow_run: RunLog, mlflow_session: SessionLog) -> None:
            assert type(mlflow_run) is RunLog
            assert type(mlflow_session) is SessionLog
        """
    )
    pytester.runpytest("-p", "no:randomly").assert_outcomes(passed=1)
