"""The pytest plugin: options, and the hooks that feed the recorder and start the uploader.

With ``--mlflow-tree`` off, this module is all that loads: no MLflow import, no hooks but the
option ones.
"""

from __future__ import annotations

import contextlib
from collections.abc import Generator
from typing import TYPE_CHECKING

import pytest

from pytest_mlflow_tree.options import add_options, is_enabled

if TYPE_CHECKING:
    from pytest_mlflow_tree.reporter import TreeReporter

REPORTER_KEY: pytest.StashKey[TreeReporter] = pytest.StashKey()


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
            from pytest_mlflow_tree import iteminfo

            # Params and markers are extras: never fail a test over them.
            with contextlib.suppress(Exception):
                setattr(report, iteminfo.REPORT_ATTRIBUTE, iteminfo.item_info(item))
        return report


def pytest_configure(config: pytest.Config) -> None:
    if not is_enabled(config):
        return
    from pytest_mlflow_tree.reporter import TreeReporter
    from pytest_mlflow_tree.settings import resolve

    settings = resolve(config)
    config.pluginmanager.register(ItemInfoHooks(), "mlflow-tree-iteminfo")
    # Record from the controller only: xdist replays every worker's reports there.
    if hasattr(config, "workerinput"):
        return
    try:
        reporter = TreeReporter(config, settings)
    except OSError as exc:
        # No journal, no recording; the tests themselves must still run.
        config.issue_config_time_warning(
            pytest.PytestWarning(f"mlflow-tree: cannot write the journal ({exc}): not recording"),
            stacklevel=2,
        )
        return
    config.stash[REPORTER_KEY] = reporter
    config.pluginmanager.register(reporter, "mlflow-tree-reporter")


def pytest_unconfigure(config: pytest.Config) -> None:
    reporter = config.stash.get(REPORTER_KEY, None)
    if reporter is not None:
        del config.stash[REPORTER_KEY]
        reporter.shutdown()
        config.pluginmanager.unregister(reporter)
