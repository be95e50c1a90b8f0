"""Hooks of pytest-xdist's controller, registered only where xdist is installed.

Under xdist the controller collects nothing, so ``pytest_collection_finish`` cannot tell the
recorder how many tests each module has; the workers' collections can.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import pytest

from pytest_mlflow_tree.model.records import module_of

if TYPE_CHECKING:
    from pytest_mlflow_tree.record.reporter import TreeReporter


class WorkerCollections:
    """Counts the tests of each module from the workers' collections, for the recorder."""

    def __init__(self, config: pytest.Config, reporter: TreeReporter) -> None:
        self._reporter = reporter
        # With --dist each every worker runs every test: one run per test and worker.
        self._each = config.getoption("dist", None) == "each"
        self._expected: Counter[str] = Counter()
        self._nodes = 0
        reporter.recorder.per_worker = self._each
        reporter.recorder.group_suffixes = config.getoption("dist", None) == "loadgroup"

    def pytest_xdist_node_collection_finished(self, node: Any, ids: Sequence[str]) -> None:
        """A worker finished collecting; xdist schedules nothing before all workers have."""
        self._nodes += 1
        # In the other modes all workers collect the same tests and share them out. A worker
        # that replaces a crashed one collects again: counting it too would only make modules
        # close later (at the session's end), never too early.
        if self._nodes > 1 and not self._each:
            return
        if self._nodes == 1:
            # The workers collect the same tests in the same order: pytest's.
            self._reporter.collected(list(ids))
        self._expected.update(module_of(nodeid) for nodeid in ids)
        self._reporter.expect(dict(self._expected))
