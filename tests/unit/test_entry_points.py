"""The installed package declares the entry points of ``pyproject.toml``: the recorder, and the
options, ini keys and fixtures that ``-p no:mlflow_tree`` leaves in place. An installation
older than ``pyproject.toml`` (an editable install not reinstalled) fails here, first."""

from __future__ import annotations

import sys
from importlib.metadata import entry_points
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - pytest itself depends on tomli before Python 3.11
    import tomli as tomllib

PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"


def test_the_installed_pytest_plugins_are_the_declared_ones() -> None:
    declared = tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))["project"]["entry-points"]
    installed = {
        entry.name: entry.value
        for entry in entry_points(group="pytest11")
        if entry.value.startswith("pytest_mlflow_tree.")
    }
    assert installed == declared["pytest11"], "reinstall the package: pip install -e ."
