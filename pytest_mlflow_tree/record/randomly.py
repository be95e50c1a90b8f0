"""The seed pytest-randomly ordered the session with, for the session run.

Read through pytest's public API, without importing pytest-randomly: whether the plugin is
registered (``-p no:randomly`` unregisters it), then its ``--randomly-seed`` option, which its
``pytest_configure`` has resolved to the number used by the time the session starts.
"""

from __future__ import annotations

import pytest

from pytest_mlflow_tree.model.names import RANDOMLY_SEED

# The name pytest-randomly registers under (its entry point).
_PLUGIN = "randomly"
# What the option holds before pytest-randomly has chosen a seed.
_UNRESOLVED = ("default", "last")


def seed_tags(config: pytest.Config) -> dict[str, str]:
    """``pytest.randomly_seed`` when pytest-randomly is active; ``--randomly-seed=<it>``
    repeats the session's order."""
    if not config.pluginmanager.has_plugin(_PLUGIN):
        return {}
    seed = config.getoption("randomly_seed", None)
    if seed is None or seed in _UNRESOLVED:
        return {}
    return {RANDOMLY_SEED: str(seed)}
