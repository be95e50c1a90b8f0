"""Tags of the session run: who ran what, where, with which versions."""

from __future__ import annotations

import getpass
import os
import platform
import shlex
import sys
from importlib.metadata import PackageNotFoundError, version

import pytest

from pytest_mlflow_tree import __version__
from pytest_mlflow_tree.model import redact
from pytest_mlflow_tree.model.names import (
    COMMAND,
    MLFLOW_VERSION,
    PLATFORM,
    PLUGIN_VERSION,
    PYTEST_VERSION,
    PYTHON_VERSION,
    ROOTDIR,
    SOURCE_NAME,
    SOURCE_TYPE,
    USER,
)
from pytest_mlflow_tree.record import ci, gitinfo, randomly


def user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no login name in some containers
        return "unknown"


def _mlflow_version() -> str:
    # Read from the installed metadata: importing mlflow here would delay the pytest process.
    for name in ("mlflow", "mlflow-skinny"):
        try:
            return version(name)
        except PackageNotFoundError:
            continue
    return "not installed"


def common_tags() -> dict[str, str]:
    """Tags on every run of the tree."""
    return {USER: user(), SOURCE_TYPE: "LOCAL"}


def session_tags(config: pytest.Config, extra: dict[str, str]) -> dict[str, str]:
    args = ["pytest", *config.invocation_params.args]
    tags = {
        SOURCE_NAME: "pytest",
        COMMAND: shlex.join(redact.command_line(args)),
        ROOTDIR: str(config.rootpath),
        PYTHON_VERSION: platform.python_version(),
        PYTEST_VERSION: pytest.__version__,
        MLFLOW_VERSION: _mlflow_version(),
        PLUGIN_VERSION: __version__,
        PLATFORM: f"{sys.platform}-{platform.machine()}",
    }
    tags.update(gitinfo.git_tags(config.rootpath))
    tags.update(ci.ci_tags(os.environ))
    tags.update(randomly.seed_tags(config))
    tags.update(extra)
    return tags
