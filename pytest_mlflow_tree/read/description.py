"""The descriptions (``mlflow.note.content``) the UI shows on a run's page, with their links.

pytest's link line opens the session run. Its description starts with the failures, each a
link to the failing test's run with ``failure.txt`` open; then the headline and links to the
runs table showing this session alone (and for a failing session its failing runs only). A
module's description links its failures the same way, and a test's links to that test in
every session. Relative links: they work whichever host and port the MLflow UI is served on.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from pytest_mlflow_tree.model import links
from pytest_mlflow_tree.model.limits import Limits, truncate
from pytest_mlflow_tree.model.names import FINISHED, NOTE
from pytest_mlflow_tree.model.records import FAILURE_ARTIFACT
from pytest_mlflow_tree.model.summary import failure_item, failure_name
from pytest_mlflow_tree.read.readback import Session, Test


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


def history_note(experiment_id: str, nodeid: str, length: int) -> str | None:
    """A test run's description: a link to the same test in every session of the experiment.

    None when it is longer than ``length``: a link cut to fit a tag leads nowhere.
    """
    history = links.history_path(experiment_id, nodeid)
    text = (
        f"[This test in every session]({history}): its runs, newest first, with their "
        "outcomes (the *pytest.outcome* tag) and metrics as charts."
    )
    return text if len(text) <= length else None


def failure_targets(experiment_id: str, tests: Iterable[Test]) -> Callable[[str], str | None]:
    """The link for a failure listed by name: its test run's ``failure.txt``.

    A failed subtest is listed as ``<node id> <subtest>``: it links to its test's run.
    """
    run_ids = {test.nodeid: test.run_id for test in tests if test.run_id}

    def target(name: str) -> str | None:
        run_id = run_ids.get(name)
        cut = len(name)
        while run_id is None and cut > 0:
            cut = name.rfind(" ", 0, cut)
            run_id = run_ids.get(name[:cut]) if cut > 0 else None
        return links.artifact_path(experiment_id, run_id, FAILURE_ARTIFACT) if run_id else None

    return target


def linked(note: str, target: Callable[[str], str | None]) -> str:
    """``note`` with each failure it lists a link (``model.summary`` writes the list)."""
    lines = []
    for line in note.split("\n"):
        name = failure_name(line)
        url = target(name) if name is not None else None
        if name is not None and url is not None:
            line = failure_item(name, url) + line[len(failure_item(name)) :]
        lines.append(line)
    return "\n".join(lines)


def note(session: Session, session_uuid: str, limits: Limits) -> str:
    extra = links_markdown(session.experiment_id, session_uuid, session.status != FINISHED)
    summary = session.tags.get(NOTE, "")
    if session.status != FINISHED:
        summary = linked(summary, failure_targets(session.experiment_id, session.tests))
    room = limits.tag_value_length - len(extra) - 2
    return f"{truncate(summary, room)}\n\n{extra}" if summary else extra


def module_notes(session: Session, limits: Limits) -> dict[str, str]:
    """The new descriptions of the modules with failures, by run id."""
    notes = {}
    for module in session.modules:
        summary = module.tags.get(NOTE)
        if module.run_id is None or not summary or not module.bad:
            continue
        text = linked(summary, failure_targets(session.experiment_id, module.tests))
        if text != summary:
            notes[module.run_id] = truncate(text, limits.tag_value_length)
    return notes


def attach(client: Any, session: Session | None, session_uuid: str, limits: Limits) -> str | None:
    """Set the descriptions with their links; return an error text or None. Never raises."""
    if session is None or not session.experiment_id:
        return None
    try:
        client.set_tag(session.run_id, NOTE, note(session, session_uuid, limits))
        for run_id, text in module_notes(session, limits).items():
            client.set_tag(run_id, NOTE, text)
    except Exception as exc:
        return f"the descriptions' links were not written: {type(exc).__name__}: {exc}"
    return None
