"""The recorder's pytest plugin: the hooks that feed the recorder and start the uploader.

With ``--mlflow-tree`` off, this module and ``interface.py`` (the options, ini keys and
fixtures: a plugin of its own, which ``-p no:mlflow_tree`` leaves in place) are all that
loads: no MLflow import, no hooks but ``pytest_configure`` and ``pytest_unconfigure``.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Generator
from typing import TYPE_CHECKING

import pytest

from pytest_mlflow_tree.record.options import is_enabled

if TYPE_CHECKING:
    from pytest_mlflow_tree.record.reporter import TreeReporter

REPORTER_KEY: pytest.StashKey[TreeReporter] = pytest.StashKey()
XDIST_COLLECTION_HOOKS = "mlflow-tree-xdist-collection"
SESSION_VALUES_HOOKS = "mlflow-tree-session-values"
UNRECORDED = "mlflow-tree-unrecorded"


class ItemInfoHooks:
    """Runs where the test runs (in-process or on an xdist worker)."""

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_protocol(
        self, item: pytest.Item, nextitem: pytest.Item | None
    ) -> Generator[None, object, object]:
        from pytest_mlflow_tree.record import iteminfo

        # mlflow_live_run creates the test's run during setup, after the fixtures before it:
        # the run starts when the test does, as every other test run.
        item.stash[iteminfo.TEST_START_KEY] = int(time.time() * 1000)
        return (yield)

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(
        self, item: pytest.Item, call: pytest.CallInfo[None]
    ) -> Generator[None, pytest.TestReport, pytest.TestReport]:
        report = yield
        if call.when == "setup":
            from pytest_mlflow_tree.record import iteminfo

            # Params and markers are extras: never fail a test over them.
            with contextlib.suppress(Exception):
                setattr(report, iteminfo.ITEM_INFO_ATTRIBUTE, iteminfo.item_info(item))
        from pytest_mlflow_tree.record import run_fixture

        with contextlib.suppress(Exception):
            run_fixture.attach(item, report)
        return report


# pytest's options that print something and run no test: nothing to record.
_NO_TESTS_RUN = (
    "help",
    "version",
    "collectonly",
    "showfixtures",
    "show_fixtures_per_test",
    "markers",
    "setupplan",
)


def _runs_tests(config: pytest.Config) -> bool:
    return not any(getattr(config.option, name, False) for name in _NO_TESTS_RUN)


def pytest_configure(config: pytest.Config) -> None:
    if not is_enabled(config) or not _runs_tests(config):
        return
    from pytest_mlflow_tree.record.reporter import TreeReporter
    from pytest_mlflow_tree.record.settings import resolve

    settings = resolve(config)
    config.pluginmanager.register(ItemInfoHooks(), "mlflow-tree-iteminfo")
    # Record from the controller only: xdist replays every worker's reports there.
    if hasattr(config, "workerinput"):
        from pytest_mlflow_tree.record.session_fixture import WorkerHandOver

        config.pluginmanager.register(WorkerHandOver(config), SESSION_VALUES_HOOKS)
        return
    try:
        reporter = TreeReporter(config, settings)
    except OSError as exc:
        # No journal, no recording; the tests themselves must still run.
        from pytest_mlflow_tree.record.unrecorded import Unrecorded

        problem = f"cannot write the journal ({exc}): not recording"
        config.pluginmanager.register(Unrecorded(problem, settings.strict), UNRECORDED)
        return
    config.stash[REPORTER_KEY] = reporter
    config.pluginmanager.register(reporter, "mlflow-tree-reporter")
    from pytest_mlflow_tree.record import context

    config.stash[context.CONTEXT_KEY] = reporter.context()
    if config.pluginmanager.hasplugin("xdist"):
        config.pluginmanager.register(
            context.WorkerContext(reporter.context()), "mlflow-tree-xdist"
        )
        from pytest_mlflow_tree.record.xdist_hooks import WorkerCollections

        config.pluginmanager.register(WorkerCollections(config, reporter), XDIST_COLLECTION_HOOKS)
        from pytest_mlflow_tree.record.session_values import WorkerSessionValues

        config.pluginmanager.register(
            WorkerSessionValues(reporter.session_values), SESSION_VALUES_HOOKS
        )


def pytest_unconfigure(config: pytest.Config) -> None:
    unrecorded = config.pluginmanager.get_plugin(UNRECORDED)
    if unrecorded is not None:
        config.pluginmanager.unregister(unrecorded)
    reporter = config.stash.get(REPORTER_KEY, None)
    if reporter is not None:
        del config.stash[REPORTER_KEY]
        reporter.shutdown()
        config.pluginmanager.unregister(reporter)
        for name in ("mlflow-tree-xdist", XDIST_COLLECTION_HOOKS, SESSION_VALUES_HOOKS):
            xdist_hooks = config.pluginmanager.get_plugin(name)
            if xdist_hooks is not None:
                config.pluginmanager.unregister(xdist_hooks)
