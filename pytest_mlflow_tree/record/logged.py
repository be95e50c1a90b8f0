"""Gather what a test logged (``mlflow_run``, ``record_property``) into its journal record.

Runs in the controller. The values ride on the test's reports: the ``mlflow_run`` fixture's on
each phase's report, ``record_property``'s in ``report.user_properties`` (pytest copies the
item's list onto every report, so the last report has them all).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from numbers import Real
from typing import Any

import pytest

from pytest_mlflow_tree.model.names import PROPERTY_PREFIX
from pytest_mlflow_tree.model.records import RunRecord
from pytest_mlflow_tree.model.values import describe
from pytest_mlflow_tree.record.run_fixture import LOGGED_VALUES_ATTRIBUTE


def _properties(report: pytest.TestReport) -> list[tuple[str, Any]]:
    found = []
    for entry in getattr(report, "user_properties", None) or ():
        if isinstance(entry, (tuple, list)) and len(entry) == 2:
            found.append((str(entry[0]), entry[1]))
    return found


def _is_number(value: Any) -> bool:
    return isinstance(value, Real) and not isinstance(value, bool)


def merge_into(record: RunRecord, reports: Sequence[pytest.TestReport]) -> None:
    """Add the test's own values to ``record``; the plugin's own keys win on a clash."""
    params: dict[str, str] = {}
    tags: dict[str, str] = {}
    steps: list[list[Any]] = []
    for report in reports:
        logged = getattr(report, LOGGED_VALUES_ATTRIBUTE, None)
        if not isinstance(logged, dict):
            continue
        params.update(logged.get("params") or {})
        tags.update(logged.get("tags") or {})
        steps.extend(logged.get("metrics") or [])
        if logged.get("files_dir"):
            record["files_dir"] = str(logged["files_dir"])
        if logged.get("live_run_id"):
            record["live_run_id"] = str(logged["live_run_id"])
    metrics = record.setdefault("metrics", {})
    for name, value in _properties(reports[-1]) if reports else ():
        if _is_number(value) and name not in metrics:
            number = float(value)
            # JSON has no NaN: such a property is kept as text.
            if math.isfinite(number):
                metrics[name] = number
                continue
        tags[PROPERTY_PREFIX + name] = describe(value)
    if params:
        record["params"] = {**params, **record.get("params", {})}
    if tags:
        record["tags"] = {**tags, **record.get("tags", {})}
    if steps:
        record["metric_steps"] = steps
