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
from pytest_mlflow_tree.record import ci, gitinfo


def user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no login name in some containers
        return "unknown"


def _mlflow_version() -> str:
    # Read from the installed metadata: importing mlflow here would cost the pytest process ~1 s.
    for name in ("mlflow", "mlflow-skinny"):
        try:
            return version(name)
        except PackageNotFoundError:
            continue
    return "not installed"


def common_tags() -> dict[str, str]:
    """Tags on every run of the tree."""
    return {"mlflow.user": user(), "mlflow.source.type": "LOCAL"}


def session_tags(config: pytest.Config, extra: dict[str, str]) -> dict[str, str]:
    args = ["pytest", *config.invocation_params.args]
    tags = {
        "mlflow.source.name": "pytest",
        "pytest.command": shlex.join(redact.command_line(args)),
        "pytest.rootdir": str(config.rootpath),
        "pytest.python_version": platform.python_version(),
        "pytest.pytest_version": pytest.__version__,
        "pytest.mlflow_version": _mlflow_version(),
        "pytest.plugin_version": __version__,
        "pytest.platform": f"{sys.platform}-{platform.machine()}",
    }
    tags.update(gitinfo.git_tags(config.rootpath))
    tags.update(ci.ci_tags(os.environ))
    tags.update(extra)
    return tags
