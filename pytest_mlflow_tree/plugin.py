"""The pytest plugin: options, and the hooks that feed the recorder and start the uploader.

With ``--mlflow-tree`` off, this module is all that loads: no MLflow import, no hooks but the
option ones.
"""

from __future__ import annotations

import contextlib
from collections.abc import Generator
from typing import TYPE_CHECKING, Any

import pytest

from pytest_mlflow_tree.record.options import add_options, is_enabled

if TYPE_CHECKING:
    from pytest_mlflow_tree.record.reporter import TreeReporter
    from pytest_mlflow_tree.record.run_fixture import RunLog
    from pytest_mlflow_tree.record.session_fixture import SessionLog

REPORTER_KEY: pytest.StashKey[TreeReporter] = pytest.StashKey()
XDIST_COLLECTION_HOOKS = "mlflow-tree-xdist-collection"
SESSION_VALUES_HOOKS = "mlflow-tree-session-values"
UNRECORDED = "mlflow-tree-unrecorded"


def pytest_addoption(parser: pytest.Parser) -> None:
    add_options(parser)


class ItemInfoHooks:
    """Runs where the test runs (in-process or on an xdist worker)."""

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


@pytest.fixture
def mlflow_run(request: pytest.FixtureRequest) -> RunLog:
    """This test's own run in the recorded tree: ``log_metric``, ``log_param``, ``set_tag``,
    ``log_text``, ``log_dict``, ``log_artifact``, ``log_figure`` and ``check``.

    Buffered: MLflow is not imported in the test's process; the uploader sends the values.
    Without ``--mlflow-tree`` the values are dropped and ``check`` still checks.
    """
    from pytest_mlflow_tree.record import context, run_fixture

    found = context.get(request.config)
    return run_fixture.for_item(request.node, found["files_dir"] if found else None)


@pytest.fixture
def mlflow_live_run(request: pytest.FixtureRequest) -> Generator[Any, None, None]:
    """This test's own run, active in MLflow's fluent API during the test
    (``mlflow.log_metric``, ``mlflow.sklearn.log_model``, ``mlflow.evaluate`` land in it).

    Imports MLflow in the test's process; the user's active run, tracking URI and experiment
    are as before once the test is over.
    """
    from pytest_mlflow_tree.record import context, live_run, run_fixture

    found = context.get(request.config)
    log = run_fixture.for_item(request.node, found["files_dir"] if found else None)
    with live_run.live_run(request.node, found, log) as run:
        yield run


@pytest.fixture(scope="session")
def mlflow_session(request: pytest.FixtureRequest) -> SessionLog:
    """The session run of the recorded tree, for facts about the whole session (the model
    version under test, a dataset's hash): the logging calls of ``mlflow_run``.

    Buffered like ``mlflow_run``; under pytest-xdist each worker's values are merged on the
    one session run. Without ``--mlflow-tree`` the values are dropped.
    """
    from pytest_mlflow_tree.record import context, session_fixture

    found = context.get(request.config)
    return session_fixture.for_config(request.config, found["files_dir"] if found else None)


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
