"""What a test process knows about the session being recorded: where it goes and how to join it.

The controller builds the context when it starts recording; tests read it in their own process,
in-process from ``config.stash`` or, on an xdist worker, from ``workerinput`` (xdist hands the
controller's values to each worker when it starts it). Plain JSON-safe values only.
"""

from __future__ import annotations

from typing import Any, TypedDict

import pytest

WORKERINPUT_KEY = "mlflow_tree"


class Context(TypedDict):
    tracking_uri: str
    experiment: str
    # Whether the experiment is the parent run's (the user did not name one).
    experiment_from_parent: bool
    session_uuid: str
    # Where tests put the files they log; the uploader logs them as artifacts.
    files_dir: str
    # The uploader's status file, which tells when the store is ready (None: not uploading).
    status_path: str | None
    parent_run_id: str | None
    resume_run_id: str | None


CONTEXT_KEY: pytest.StashKey[Context] = pytest.StashKey()


def get(config: pytest.Config) -> Context | None:
    """The recording session's context, or None when this session is not recorded."""
    context = config.stash.get(CONTEXT_KEY, None)
    if context is not None:
        return context
    workerinput: Any = getattr(config, "workerinput", None)
    if isinstance(workerinput, dict):
        found = workerinput.get(WORKERINPUT_KEY)
        if isinstance(found, dict):
            return found  # type: ignore[return-value]
    return None


class WorkerContext:
    """Hands each xdist worker the recording's context. Registered on the controller only when
    pytest-xdist is installed."""

    def __init__(self, context: Context) -> None:
        self._context = context

    def pytest_configure_node(self, node: Any) -> None:
        """Called by xdist for each worker before it starts."""
        node.workerinput[WORKERINPUT_KEY] = dict(self._context)
