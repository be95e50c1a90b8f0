"""Command-line options and ini keys, registered from the table of settings.

Loaded with pytest on every run, enabled or not, by the plugin ``interface.py``: it imports
nothing but pytest and the table, and everything else of the plugin loads only when
``--mlflow-tree`` is on.
"""

from __future__ import annotations

from typing import Any

import pytest

from pytest_mlflow_tree.model.settings_table import DISABLED, ENABLED, SETTINGS, Setting

# The plugin that says at the end that a session not recorded had tests use the fixtures
# (``recording_off.py``): named here, so that a session can drop it without importing it.
OFF_NOTICE = "mlflow-tree-off"
# pytest reads ini values as numbers from 8.4 on; before, they are text, checked when resolved.
_NUMBERS_IN_INI = pytest.version_tuple >= (8, 4)

# What an ini value pytest cannot read as its key's type is, in the usage error.
_EXPECTED = {"seconds": "not a number of seconds >= 0", "switch": "not true or false"}


def is_enabled(config: pytest.Config) -> bool:
    """``--no-mlflow-tree`` wins over ``--mlflow-tree`` and the ini file, as ``--no-cov`` does.

    Without the options (``-p no:mlflow_tree_interface``) nothing is recorded.
    """
    if getattr(config.option, DISABLED.dest, True):
        return False
    return bool(getattr(config.option, ENABLED.dest)) or bool(ini_value(config, ENABLED))


def ini_value(config: pytest.Config, setting: Setting) -> Any:
    """The setting's value in the ini file, of the type it is registered with; None if unset.

    A value pytest cannot read as that type is a usage error that names the key: pytest's own
    error names the value only, or is an internal error on older pytest.
    """
    assert setting.ini is not None, setting.name
    try:
        value = config.getini(setting.ini)
    except (ValueError, TypeError, pytest.UsageError) as exc:
        expected = _EXPECTED.get(setting.type, "not valid")
        raise pytest.UsageError(f"{setting.ini} (ini): {expected} ({exc})") from None
    # Unset: the default pytest gives the key's type (0.0 is a value, not unset).
    return None if value is None or value == "" or value == [] else value


def add_options(parser: pytest.Parser) -> None:
    group = parser.getgroup("mlflow-tree", "record the session as an MLflow run tree")
    for setting in SETTINGS:
        if setting.flag is not None:
            group.addoption(setting.flag, help=setting.help, **_option_kind(setting))
    for setting in SETTINGS:
        if setting.ini is not None:
            parser.addini(setting.ini, setting.ini_help or "", **_ini_kind(setting))


def _option_kind(setting: Setting) -> dict[str, Any]:
    """How argparse reads the flag: a switch takes no value, tags repeat, a choice is checked."""
    if setting.type == "switch":
        return {"action": "store_true", "default": False}
    if setting.type == "tags":
        return {"action": "append", "metavar": setting.metavar}
    if setting.type == "choice":
        return {"choices": setting.choices}
    return {"metavar": setting.metavar}


def _ini_kind(setting: Setting) -> dict[str, Any]:
    """How pytest reads the ini key: a switch is a bool, tags one pair a line, seconds a number
    where pytest reads numbers (unset is None, not 0), the rest text."""
    if setting.type == "switch":
        return {"type": "bool"}
    if setting.type == "tags":
        return {"type": "linelist"}
    if setting.type == "seconds" and _NUMBERS_IN_INI:
        return {"type": "float", "default": None}
    return {}
