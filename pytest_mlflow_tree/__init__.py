"""Record every pytest session as an MLflow run tree: session, modules, tests.

``RunLog`` and ``SessionLog`` are the types of the ``mlflow_run`` and ``mlflow_session``
fixtures, for annotations: ``def test_x(mlflow_run: RunLog)``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pytest_mlflow_tree.record.run_fixture import RunLog
    from pytest_mlflow_tree.record.session_fixture import SessionLog

__all__ = ["RunLog", "SessionLog", "__version__"]

# Resolved on first use: this package is imported at every pytest start, enabled or not, and
# by the uploader, which must not import pytest.
_LAZY = {
    "RunLog": "pytest_mlflow_tree.record.run_fixture",
    "SessionLog": "pytest_mlflow_tree.record.session_fixture",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    if name != "__version__":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    # importlib.metadata is not free either.
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("pytest-mlflow-tree")
    except PackageNotFoundError:  # a source tree without install
        return "0.0.0"
