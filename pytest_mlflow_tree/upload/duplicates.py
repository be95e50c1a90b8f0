"""One run per key: remove second copies of a session's runs that a lost answer left behind.

A ``create_run`` whose connection was cut may still be carried out by the server later, after
the retry's look-up by tags found nothing and made the run again (or after the uploader gave
up and a replay made it). The copies share ``pytest.session_uuid`` and ``pytest.run_key``; the
one the tree uses is kept, the others are deleted (``delete_run``: the tracking store's
garbage collection, or ``mlflow gc``, removes them for good).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable
from typing import Any

from pytest_mlflow_tree.model.names import (
    PARENT_RUN_ID,
    ROOT_RUN_ID,
    RUN_KEY,
    SESSION_UUID,
    TERMINAL_STATUSES,
)
from pytest_mlflow_tree.model.searchpages import search_all

Call = Callable[..., Any]


def session_runs(client: Any, experiment_id: str, session_uuid: str, call: Call) -> list[Any]:
    """Every active run of the session in the experiment."""
    found = search_all(
        client,
        [experiment_id],
        f"tags.`{SESSION_UUID}` = '{session_uuid}'",
        # A session has at most a few hundred thousand runs.
        max_pages=10_000,
        call=call,
    )
    return list(found)


def _keeper(copies: list[Any], children: Counter[str]) -> Any:
    """The copy the tree uses: the one runs point at, then a finished one with the most data."""

    def rank(run: Any) -> tuple[int, bool, int, str]:
        data = run.data
        size = len(data.params) + len(data.metrics) + len(data.tags)
        # The run id last: the same choice whichever upload makes it.
        return (
            children[run.info.run_id],
            run.info.status in TERMINAL_STATUSES,
            size,
            run.info.run_id,
        )

    return max(copies, key=rank)


def resolve(client: Any, runs: list[Any], call: Call) -> list[Any]:
    """Delete all but one run per ``pytest.run_key`` of ``runs``; return the runs kept.

    Kept runs pointing at a copy about to go (a module's tests, a session's modules) are
    pointed at that copy's keeper first, so that the tree never loses a branch. Only kept runs
    are touched: a deleted run takes no more tags, and runs come newest first, so a test's
    copies may be settled before its module's.
    """
    by_key: dict[str, list[Any]] = defaultdict(list)
    for run in runs:
        by_key[run.data.tags.get(RUN_KEY, run.info.run_id)].append(run)
    if all(len(copies) == 1 for copies in by_key.values()):
        return runs
    children = Counter(run.data.tags.get(PARENT_RUN_ID) for run in runs)
    kept: list[Any] = []
    # Each copy to delete, and the run kept in its place.
    replaced: dict[str, str] = {}
    for copies in by_key.values():
        keeper = _keeper(copies, children) if len(copies) > 1 else copies[0]
        kept.append(keeper)
        for copy in copies:
            if copy is not keeper:
                replaced[copy.info.run_id] = keeper.info.run_id
    for run in kept:
        for tag in (PARENT_RUN_ID, ROOT_RUN_ID):
            keeper_id = replaced.get(run.data.tags.get(tag, ""))
            if keeper_id is not None:
                call(client.set_tag, run.info.run_id, tag, keeper_id)
                run.data.tags[tag] = keeper_id
    for gone in replaced:
        call(client.delete_run, gone)
    return kept


def remove(client: Any, experiment_id: str, session_uuid: str, call: Call) -> int:
    """Search the session's runs and resolve duplicates; how many copies were deleted."""
    runs = session_runs(client, experiment_id, session_uuid, call)
    return len(runs) - len(resolve(client, runs, call))
