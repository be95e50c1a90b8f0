"""``--mlflow-tree-strict``: a recording that could not be made or uploaded fails the session."""

from __future__ import annotations

import pytest

LABEL = "ERROR (--mlflow-tree-strict)"


def fail_session(session: pytest.Session) -> None:
    """Give a session that passed a failing exit code.

    Any other code is the tests' own (failed, interrupted, no tests collected ...): it already
    fails the build and says more than ours would, so it is kept.
    """
    if session.exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
