"""Record every pytest session as an MLflow run tree: session, modules, tests."""

from __future__ import annotations

__all__ = ["__version__"]


def __getattr__(name: str) -> str:
    # Resolved on first use: importlib.metadata is not free, and this package is imported at
    # every pytest start, enabled or not.
    if name != "__version__":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("pytest-mlflow-tree")
    except PackageNotFoundError:  # a source tree without install
        return "0.0.0"
