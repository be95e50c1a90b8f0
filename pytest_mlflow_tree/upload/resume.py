"""Counts of a resumed session, recomputed from every test run in it, not only the re-run ones.

A resumed session (``--mlflow-tree-resume``) replaces the runs of the tests it re-runs and keeps
the others; its journal only knows the re-run tests, so the module and session runs it touched
are counted again from what the store holds under them.
"""

from __future__ import annotations

from typing import Any

from pytest_mlflow_tree.model.names import (
    DURATION,
    FAILED,
    FINISHED,
    LEVEL,
    NODEID,
    OUTCOME,
    PARENT_RUN_ID,
    SESSION_LEVEL,
    SESSION_UUID,
    TEST_LEVEL,
)
from pytest_mlflow_tree.model.outcome import BAD_OUTCOMES, OUTCOMES
from pytest_mlflow_tree.model.searchpages import search_all
from pytest_mlflow_tree.model.summary import Tally

_PAGES = 1000


def recount(
    client: Any,
    experiment_id: str,
    run_id: str,
    level: str,
    session_uuid: str,
    title: str,
    end: int,
) -> tuple[dict[str, float], str, str]:
    """(metrics, status, description) of a module or session run from its tests."""
    scope = (
        f"tags.`{SESSION_UUID}` = '{session_uuid}'"
        if level == SESSION_LEVEL
        else f"tags.{PARENT_RUN_ID} = '{run_id}'"
    )
    tests = list(
        search_all(
            client,
            [experiment_id],
            f"{scope} and tags.`{LEVEL}` = '{TEST_LEVEL}'",
            max_pages=_PAGES,
        )
    )
    tally = Tally()
    last_end = end
    for run in sorted(tests, key=lambda r: r.data.tags.get(NODEID, "")):
        outcome = run.data.tags.get(OUTCOME, "")
        tally.tests += 1
        if outcome in OUTCOMES:
            tally.add({outcome: 1}, float(run.data.metrics.get(DURATION, 0.0)))
        if outcome in BAD_OUTCOMES:
            tally.add_failure(run.data.tags.get(NODEID, run.info.run_name), outcome)
        last_end = max(last_end, run.info.end_time or 0)
    start = client.get_run(run_id).info.start_time or last_end
    wall = max(0.0, (last_end - start) / 1000)
    status = FAILED if tally.bad else FINISHED
    return tally.metrics(wall), status, tally.markdown(title, wall)
