"""Links in the session run's description to the runs table showing just this session.

pytest's link line opens the session run; its description (``mlflow.note.content``, shown on
the run's page) then leads to the whole session as one tree in the experiment's runs table,
and for a failing session to its failing runs only. Relative links: they work whichever host
and port the MLflow UI is served on.
"""

from __future__ import annotations

from typing import Any

from pytest_mlflow_tree.model import links
from pytest_mlflow_tree.model.limits import Limits, truncate
from pytest_mlflow_tree.model.names import FINISHED, NOTE
from pytest_mlflow_tree.read.readback import Session


def links_markdown(experiment_id: str, session_uuid: str, failing: bool) -> str:
    whole = links.session_runs_path(experiment_id, session_uuid)
    text = (
        f"**In the runs table:** [this session's runs]({whole}) (the session first, its modules "
        "and tests nested below it; *Load more* adds 100 runs at a time)"
    )
    if failing:
        bad = links.session_runs_path(experiment_id, session_uuid, failing=True)
        text += f" · [failing runs only]({bad})"
    return text


def note(session: Session, session_uuid: str, limits: Limits) -> str:
    extra = links_markdown(session.experiment_id, session_uuid, session.status != FINISHED)
    summary = session.tags.get(NOTE, "")
    room = limits.tag_value_length - len(extra) - 2
    return f"{truncate(summary, room)}\n\n{extra}" if summary else extra


def attach(client: Any, session: Session | None, session_uuid: str, limits: Limits) -> str | None:
    """Set the description with its links; return an error text or None. Never raises."""
    if session is None or not session.experiment_id:
        return None
    try:
        client.set_tag(session.run_id, NOTE, note(session, session_uuid, limits))
    except Exception as exc:
        return f"the session run's links were not written: {type(exc).__name__}: {exc}"
    return None
