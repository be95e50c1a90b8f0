"""Which tracking stores this installation can write to.

Apart from the uploader so that the pytest process, which checks before it starts the uploader,
does not import the uploader's code: that would delay the start of every recorded session.
"""

from __future__ import annotations

import os

SQL_SCHEMES = ("sqlite", "postgresql", "mysql", "mssql")


def needs_full_mlflow(uri: str) -> bool:
    return uri.split(":", 1)[0].split("+", 1)[0] in SQL_SCHEMES


def full_mlflow_installed() -> bool:
    from importlib.metadata import PackageNotFoundError, version

    try:
        version("mlflow")
    except PackageNotFoundError:
        return False
    return True


def missing_store_message(uri: str) -> str:
    return (
        f"the tracking URI {uri!r} is a database store, which needs the full MLflow package "
        "(only mlflow-skinny is installed): pip install 'pytest-mlflow-tree[local]'"
    )


def use_server_for_this_process(uri: str) -> None:
    """Make a tracking server this process's tracking URI: only in our own processes (the
    uploader, the commands), whose one store it is.

    A default ``mlflow server`` keeps artifacts behind ``mlflow-artifacts:`` locations, which
    MLflow 2 resolves against the process's tracking URI, never the client's: without this, a
    run's artifacts could be neither written nor read.
    """
    if uri.startswith(("http://", "https://")):
        os.environ["MLFLOW_TRACKING_URI"] = uri
