"""The fixtures in a session that is not recorded: they work, what they log goes nowhere, and
one line at the end of the terminal summary says so.

A line, not a warning: under ``filterwarnings = error`` a warning raised in a fixture would fail
the test that asked for it. The line comes only when a test used a fixture, so a suite that
does not use them sees nothing of the plugin while it is off.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import pytest

from pytest_mlflow_tree.model.settings_table import DISABLED, ENABLED
from pytest_mlflow_tree.record.options import OFF_NOTICE, is_enabled

# The recorder's entry point, which ``-p no:mlflow_tree`` blocks.
RECORDER = "mlflow_tree"
# Set on the reports of a test that used a fixture: under xdist the test ran on a worker, and
# its reports are how the controller hears of it.
USED_ATTRIBUTE = "mlflow_tree_off"
_USED_KEY = pytest.StashKey[bool]()


def reason(config: pytest.Config) -> str:
    """Why this session is not recorded, as the user turned it off."""
    if config.pluginmanager.is_blocked(RECORDER):
        return f"-p no:{RECORDER}"
    if getattr(config.option, DISABLED.dest):
        return str(DISABLED.flag)
    if is_enabled(config):
        return "the recording did not start"
    return f"neither {ENABLED.flag} nor {ENABLED.ini} = true"


class RecordingOff:
    """Counts the tests that used a fixture, and says once what became of their values."""

    def __init__(self, config: pytest.Config) -> None:
        self._config = config
        self._tests: set[str] = set()

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(
        self, item: pytest.Item, call: pytest.CallInfo[None]
    ) -> Generator[None, pytest.TestReport, pytest.TestReport]:
        report = yield
        if item.stash.get(_USED_KEY, False):
            setattr(report, USED_ATTRIBUTE, True)
        return report

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if getattr(report, USED_ATTRIBUTE, False):
            self._tests.add(report.nodeid)

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if self._tests:
            terminalreporter.write_line(message(reason(self._config), len(self._tests)))


def message(why: str, tests: int) -> str:
    plural = "" if tests == 1 else "s"
    return (
        f"mlflow-tree: not recording ({why}): what {tests} test{plural} logged through "
        "mlflow_run or mlflow_live_run went nowhere"
    )


def register(config: pytest.Config) -> RecordingOff:
    """The session's notice, registered on first use."""
    notice = config.pluginmanager.get_plugin(OFF_NOTICE)
    if notice is None:
        notice = RecordingOff(config)
        config.pluginmanager.register(notice, OFF_NOTICE)
    assert isinstance(notice, RecordingOff)
    return notice


def note(item: pytest.Item) -> None:
    """``item`` asked for a fixture in a session that is not recorded."""
    register(item.config)
    item.stash[_USED_KEY] = True
