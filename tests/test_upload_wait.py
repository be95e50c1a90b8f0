"""When pytest's wait for the upload runs out, the message says how far it got and what helps."""

from __future__ import annotations

import re

import pytest
from conftest import Store


def test_a_wait_that_runs_out_says_how_far_the_upload_got_and_what_would_help(
    pytester: pytest.Pytester, store: Store
) -> None:
    pytester.makepyfile(test_a="def test_ok():\n    pass\n")

    result = pytester.runpytest(*store.args(), "--mlflow-tree-upload-wait=0")

    result.assert_outcomes(passed=1)
    output = result.stdout.str()
    assert re.search(
        r"the upload did not finish within 0 s \(--mlflow-tree-upload-wait\), \d+ of \d+ records "
        r"uploaded \(a longer --mlflow-tree-upload-wait, or --mlflow-tree-mode=compact for a suite "
        r"this large, would let it finish\)",
        output,
    ), output
    assert "pytest-mlflow-tree replay" in output
