"""The project's pytest ini file, read the way pytest finds it, for the commands run in a project.

``pytest-mlflow-tree show`` run where ``pytest --mlflow-tree`` runs reads the same
``mlflow_tree_tracking_uri`` and ``mlflow_tree_experiment``: the first directory, from the current
one up, that holds ``pytest.ini`` or ``.pytest.ini`` (with or without a ``[pytest]`` section), or a
``pyproject.toml``, ``tox.ini`` or ``setup.cfg`` with a pytest section, in that order, as pytest's
documentation describes. Parsed with ``iniconfig``, the parser pytest itself uses, and ``tomllib``.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import iniconfig

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - pytest itself depends on tomli before Python 3.11
    import tomli as tomllib

Reader = Callable[[Path], "dict[str, str] | None"]


@dataclass(frozen=True)
class ProjectIni:
    """The values of the project's pytest ini file (none when there is no such file)."""

    path: Path | None = None
    values: dict[str, str] = field(default_factory=dict)

    def get(self, key: str) -> str | None:
        value = self.values.get(key, "").strip()
        return value or None


def find(start: Path) -> ProjectIni:
    """The ini file pytest would use when run in ``start``."""
    for directory in (start, *start.parents):
        for name, read in _CANDIDATES:
            path = directory / name
            if not path.is_file():
                continue
            try:
                values = read(path)
            except (OSError, UnicodeDecodeError, iniconfig.ParseError, tomllib.TOMLDecodeError):
                # pytest would stop on it; the commands go on with their other sources.
                continue
            if values is not None:
                return ProjectIni(path, values)
    return ProjectIni()


def _section(name: str, always: bool = False) -> Reader:
    def read(path: Path) -> dict[str, str] | None:
        config = iniconfig.IniConfig(str(path))
        if name in config:
            return dict(config[name].items())
        return {} if always else None

    return read


def _pyproject(path: Path) -> dict[str, str] | None:
    with path.open("rb") as file:
        tool: dict[str, Any] = tomllib.load(file).get("tool", {}).get("pytest", {})
    # `[tool.pytest.ini_options]`, or pytest 9's native `[tool.pytest]` table.
    section = tool.get("ini_options", tool) if tool else None
    if not isinstance(section, dict):
        return None
    return {key: str(value) for key, value in section.items() if isinstance(value, str)}


_CANDIDATES: tuple[tuple[str, Reader], ...] = (
    ("pytest.ini", _section("pytest", always=True)),
    (".pytest.ini", _section("pytest", always=True)),
    ("pyproject.toml", _pyproject),
    ("tox.ini", _section("pytest")),
    ("setup.cfg", _section("tool:pytest")),
)
