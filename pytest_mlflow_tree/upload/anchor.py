"""Where a session's tree hangs: under an existing run (``--mlflow-tree-parent``), or in place
of a recorded session it continues (``--mlflow-tree-resume``).

Checked by the uploader, which can ask the store; the pytest process cannot without importing
MLflow, and a bad id must never stop the tests: the upload fails with a clear message and the
journal is kept.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pytest_mlflow_tree.model.names import (
    LEVEL,
    PARENT_RUN_ID,
    ROOT_RUN_ID,
    SESSION_LEVEL,
    SESSION_UUID,
)
from pytest_mlflow_tree.model.records import Header


class AnchorError(Exception):
    """The run the session should attach to or continue is not usable."""


@dataclass(frozen=True)
class Anchor:
    # The experiment the parent or the resumed session decides, else None (the configured one).
    experiment_id: str | None = None
    # The session run's parent, and the root of the whole tree (None: the session run).
    parent_run_id: str | None = None
    root_run_id: str | None = None
    # The resumed session's uuid: its runs are found, and re-run tests replaced, by it.
    session_uuid: str | None = None
    resumed_run_id: str | None = None


def _get_run(client: Any, run_id: str, option: str) -> Any:
    try:
        run = client.get_run(run_id)
    except Exception as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise AnchorError(
            f"{option} {run_id!r}: no such run in the tracking store ({first}){_hint(option)}"
        ) from None
    if run.info.lifecycle_stage == "deleted":
        raise AnchorError(
            f"{option} {run_id!r}: the run is deleted (mlflow runs restore){_hint(option)}"
        )
    return run


def _hint(option: str) -> str:
    if option == "--mlflow-tree-parent":
        return "; replay with --parent RUN_ID to attach the session elsewhere, --parent '' for none"
    return ""


# Runs above the parent looked at to find the root: far more than any real nesting.
_MAX_DEPTH = 32


def _root_of(client: Any, run: Any) -> str:
    """The root of the tree ``run`` is in: its ``mlflow.rootRunId``, else up its parents."""
    for _ in range(_MAX_DEPTH):
        tags = run.data.tags
        if tags.get(ROOT_RUN_ID):
            return str(tags[ROOT_RUN_ID])
        parent = tags.get(PARENT_RUN_ID)
        if not parent:
            break
        try:
            run = client.get_run(parent)
        except Exception:
            break  # a parent deleted for good: the highest run still there is the root
    return str(run.info.run_id)


def resolve(client: Any, header: Header, experiment_named: bool) -> Anchor:
    """``experiment_named``: the replay command named an experiment, which then wins."""
    resumed = header.get("resume_run_id")
    if resumed:
        run = _get_run(client, resumed, "--mlflow-tree-resume")
        tags = run.data.tags
        if tags.get(LEVEL) != SESSION_LEVEL or not tags.get(SESSION_UUID):
            raise AnchorError(
                f"--mlflow-tree-resume {resumed!r}: not a session run recorded by "
                "pytest-mlflow-tree (no pytest.level=session tag)"
            )
        return Anchor(
            experiment_id=str(run.info.experiment_id),
            parent_run_id=tags.get(PARENT_RUN_ID),
            root_run_id=tags.get(ROOT_RUN_ID),
            session_uuid=tags[SESSION_UUID],
            resumed_run_id=resumed,
        )
    parent = header.get("parent_run_id")
    if parent:
        run = _get_run(client, parent, "--mlflow-tree-parent")
        root = _root_of(client, run)
        follow = header.get("experiment_from_parent") and not experiment_named
        return Anchor(
            experiment_id=str(run.info.experiment_id) if follow else None,
            parent_run_id=parent,
            root_run_id=root,
        )
    return Anchor()
