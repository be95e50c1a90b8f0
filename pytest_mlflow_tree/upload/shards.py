"""Sharded sessions: every session given the same shard key joins one root run.

MLflow cannot create a run under a chosen id and has no unique constraint on tags, so shards
that start at the same moment agree on a root like this: look for roots tagged with the key; if
there is none, create a candidate, wait a moment for the others' candidates to show, and take
the earliest of all candidates (start time, then run id). A shard whose candidate lost deletes
it. ``mlflow.parentRunId`` and ``mlflow.rootRunId`` are ordinary tags, so at its finish every
shard looks again and, if the root it joined lost after all, moves its runs under the root that
won and deletes the loser; once every shard finished, one root is left. Each shard's finish
also recomputes the root's status and counts from all shard sessions found.

Runs in the uploader process, next to ``uploader.py``; the pytest process only uses the names.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from pytest_mlflow_tree.model.names import (
    COUNTS,
    FAILED,
    FINISHED,
    KILLED,
    LEVEL,
    PARENT_RUN_ID,
    PASS_RATE,
    ROOT_LEVEL,
    ROOT_RUN_ID,
    SESSION_LEVEL,
    SESSION_UUID,
    SHARD_KEY,
    SHARDS,
    TERMINAL_STATUSES,
    TEST_DURATION,
    TESTS,
)
from pytest_mlflow_tree.model.searchpages import search_all

# How long a new candidate waits for the candidates of shards that started with it. Creating a
# run is quick on SQLite and on a nearby server; this leaves room for slow ones.
SETTLE_SECONDS = 1.0

# The session metrics the root run sums.
_SUMMED = (TESTS, *COUNTS.values(), TEST_DURATION)
# Bounded: a shard key has at most a few hundred shards.
_PAGES = 100


def _quote(value: str) -> str:
    return value.replace("\\", "\\\\").replace("'", "\\'")


def _search(client: Any, experiment_id: str, filter_string: str) -> list[Any]:
    return list(search_all(client, [experiment_id], filter_string, max_pages=_PAGES))


def _earliest(runs: list[Any]) -> Any:
    return min(runs, key=lambda run: (run.info.start_time, run.info.run_id))


class Shard:
    """One session's part in a sharded run, with the calls that keep the root single."""

    def __init__(
        self,
        client: Any,
        experiment_id: str,
        key: str,
        retry: Callable[..., Any],
        settle_seconds: float = SETTLE_SECONDS,
    ) -> None:
        self._client = client
        self._experiment_id = experiment_id
        self.key = key
        self._retry = retry
        self._settle = settle_seconds
        self.root_id: str | None = None

    def _roots(self) -> list[Any]:
        return _search(
            self._client,
            self._experiment_id,
            f"tags.`{SHARD_KEY}` = '{_quote(self.key)}' and tags.`{LEVEL}` = '{ROOT_LEVEL}'",
        )

    def join(self, tags: dict[str, str], name: str) -> str:
        """The root run's id: an existing one, or a candidate that won."""
        roots = self._roots()
        if roots:
            self.root_id = str(_earliest(roots).info.run_id)
            return self.root_id
        candidate = self.propose(tags, name)
        time.sleep(self._settle)
        return self.choose(candidate)

    def propose(self, tags: dict[str, str], name: str) -> str:
        """Create a candidate root; return its id."""
        run = self._retry(
            self._client.create_run,
            self._experiment_id,
            start_time=int(time.time() * 1000),
            tags={**tags, SHARD_KEY: self.key, LEVEL: ROOT_LEVEL},
            run_name=name,
        )
        return str(run.info.run_id)

    def choose(self, candidate: str) -> str:
        """The earliest of all candidates wins; a losing ``candidate`` is deleted."""
        roots = self._roots()
        mine = [run for run in roots if run.info.run_id == candidate]
        if not mine:
            mine = [self._client.get_run(candidate)]
            roots += mine
        winner = str(_earliest(roots).info.run_id)
        if winner != candidate:
            self._abandon(candidate, winner)
        self.root_id = winner
        return winner

    def _abandon(self, loser: str, winner: str) -> None:
        """Move whatever joined the losing candidate under the winner, then delete it."""
        for run in _search(self._client, self._experiment_id, f"tags.{ROOT_RUN_ID} = '{loser}'"):
            if run.data.tags.get(PARENT_RUN_ID) == loser:
                self._retry(self._client.set_tag, run.info.run_id, PARENT_RUN_ID, winner)
            self._retry(self._client.set_tag, run.info.run_id, ROOT_RUN_ID, winner)
        self._retry(self._client.delete_run, loser)

    def finish(self, session_uuid: str, session_run_id: str) -> None:
        """Move this session under the root that won, and recompute the root's aggregates."""
        roots = self._roots()
        if not roots:
            return
        root = str(_earliest(roots).info.run_id)
        if root != self.root_id:
            self._move(session_uuid, session_run_id, root)
            # The candidate this shard took for the winner lost after all (the winner's
            # create showed up after the settle): it goes, with whatever else joined it.
            # Shards still running under it move their own runs at their finish.
            if self.root_id is not None and any(r.info.run_id == self.root_id for r in roots):
                self._abandon(self.root_id, root)
            self.root_id = root
        self._aggregate(root)

    def _move(self, session_uuid: str, session_run_id: str, root: str) -> None:
        self._retry(self._client.set_tag, session_run_id, PARENT_RUN_ID, root)
        for run in _search(
            self._client, self._experiment_id, f"tags.`{SESSION_UUID}` = '{session_uuid}'"
        ):
            if run.data.tags.get(ROOT_RUN_ID) != root:
                self._retry(self._client.set_tag, run.info.run_id, ROOT_RUN_ID, root)

    def _aggregate(self, root: str) -> None:
        from mlflow.entities import Metric

        sessions = [
            run
            for run in _search(
                self._client,
                self._experiment_id,
                f"tags.`{SHARD_KEY}` = '{_quote(self.key)}' and tags.`{LEVEL}` = '{SESSION_LEVEL}'",
            )
            if run.data.tags.get(PARENT_RUN_ID) == root
        ]
        if not sessions:
            return
        totals = dict.fromkeys(_SUMMED, 0.0)
        for run in sessions:
            for name in _SUMMED:
                totals[name] += float(run.data.metrics.get(name, 0.0))
        passed = totals[COUNTS["passed"]]
        judged = passed + totals[COUNTS["failed"]] + totals[COUNTS["error"]]
        if judged:
            totals[PASS_RATE] = passed / judged
        totals[SHARDS] = float(len(sessions))
        statuses = {run.info.status for run in sessions}
        # Shards finishing together may log their totals in any order, from machines whose
        # clocks differ: the step (how many shards had finished) makes the most complete
        # totals the metric's latest value, which MLflow picks by step before time.
        finished = sum(run.info.status in TERMINAL_STATUSES for run in sessions)
        now = int(time.time() * 1000)
        metrics = [Metric(name, value, now, finished) for name, value in totals.items()]
        self._retry(self._client.log_batch, root, metrics=metrics)
        if not statuses <= TERMINAL_STATUSES:
            return  # a shard still runs: it finishes the root when it is done
        status = FINISHED
        if KILLED in statuses:
            status = KILLED
        if FAILED in statuses:
            status = FAILED
        end = max(run.info.end_time or 0 for run in sessions) or None
        self._retry(self._client.set_terminated, root, status, end_time=end)
