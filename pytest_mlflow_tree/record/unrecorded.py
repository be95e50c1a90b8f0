"""Stands in for the reporter when no journal can be written: the tests run unrecorded.

The reason is one line at the end of the terminal summary, like every other recording problem,
not a warning through pytest's warnings system: under ``filterwarnings = error`` that warning
would become an error of the test run itself.
"""

from __future__ import annotations

from typing import Any

import pytest

from pytest_mlflow_tree.record import strict


class Unrecorded:
    def __init__(self, problem: str, is_strict: bool) -> None:
        self._problem = problem
        self._strict = is_strict

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        if self._strict:
            strict.fail_session(session)

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        what = strict.LABEL if self._strict else "WARNING"
        terminalreporter.write_line(f"mlflow-tree: {what}: {self._problem}", yellow=True, bold=True)
