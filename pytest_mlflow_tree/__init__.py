"""Record every pytest session as an MLflow run tree: session, modules, tests."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("pytest-mlflow-tree")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
    __version__ = "0.0.0"

__all__ = ["__version__"]
