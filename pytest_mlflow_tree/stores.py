"""Which tracking stores this installation can write to.

Apart from the uploader so that the pytest process, which checks before it starts the uploader,
does not import the uploader's code: that would delay the start of every recorded session.
"""

from __future__ import annotations

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
