"""Command-line options and ini keys, registered from the table of settings.

Loaded with pytest on every run, enabled or not, by the plugin ``interface.py``: it imports
nothing but pytest and the table, and everything else of the plugin loads only when
``--mlflow-tree`` is on.
"""

from __future__ import annotations

from typing import Any

import pytest

from pytest_mlflow_tree.model.settings_table import DISABLED, ENABLED, SETTINGS, Setting


def is_enabled(config: pytest.Config) -> bool:
    """``--no-mlflow-tree`` wins over ``--mlflow-tree`` and the ini file, as ``--no-cov`` does.

    Without the options (``-p no:mlflow_tree_interface``) nothing is recorded.
    """
    if getattr(config.option, DISABLED.dest, True):
        return False
    return bool(getattr(config.option, ENABLED.dest)) or bool(config.getini(ENABLED.ini or ""))


def add_options(parser: pytest.Parser) -> None:
    group = parser.getgroup("mlflow-tree", "record the session as an MLflow run tree")
    for setting in SETTINGS:
        if setting.flag is not None:
            group.addoption(setting.flag, help=setting.help, **_option_kind(setting))
    for setting in SETTINGS:
        if setting.ini is not None:
            parser.addini(setting.ini, setting.ini_help or "", type=_ini_type(setting))


def _option_kind(setting: Setting) -> dict[str, Any]:
    """How argparse reads the flag: a switch takes no value, tags repeat, a choice is checked."""
    if setting.type == "switch":
        return {"action": "store_true", "default": False}
    if setting.type == "tags":
        return {"action": "append", "metavar": setting.metavar}
    if setting.type == "choice":
        return {"choices": setting.choices}
    return {"metavar": setting.metavar}


def _ini_type(setting: Setting) -> Any:
    """How pytest reads the ini key: a switch is a bool, tags one pair a line, the rest text."""
    if setting.type == "switch":
        return "bool"
    if setting.type == "tags":
        return "linelist"
    return None
