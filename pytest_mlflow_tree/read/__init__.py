"""Read recorded sessions back: the public API (``from pytest_mlflow_tree.read import Reader``)."""

from pytest_mlflow_tree.model.searchpages import PAGE_SIZE
from pytest_mlflow_tree.read.readback import (
    Module,
    Reader,
    Session,
    SessionNotFound,
    Test,
    history_rows,
    last_session,
    load_session,
    sessions_frame,
)

__all__ = [
    "PAGE_SIZE",
    "Module",
    "Reader",
    "Session",
    "SessionNotFound",
    "Test",
    "history_rows",
    "last_session",
    "load_session",
    "sessions_frame",
]
