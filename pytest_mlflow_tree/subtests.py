"""Subtests (pytest 9's ``subtests`` fixture, or the pytest-subtests plugin before it).

Each ``with subtests.test(msg, **kwargs):`` block is reported as an extra call-phase report
carrying a ``context`` (msg, kwargs). We keep them as structured data on their test's run
rather than as runs of their own: counts as metrics and every subtest in ``subtests.json``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import pytest

ARTIFACT = "subtests.json"
OUTCOMES = ("passed", "failed", "skipped")


def is_subtest(report: pytest.TestReport) -> bool:
    context = getattr(report, "context", None)
    return context is not None and hasattr(context, "kwargs") and hasattr(context, "msg")


def _outcome(report: pytest.TestReport) -> str:
    if hasattr(report, "wasxfail"):
        return "xfailed" if report.skipped else "xpassed"
    return str(report.outcome)


def description(report: pytest.TestReport) -> str:
    context: Any = getattr(report, "context", None)
    parts = []
    if getattr(context, "msg", None) is not None:
        parts.append(f"[{context.msg}]")
    kwargs = getattr(context, "kwargs", None) or {}
    if kwargs:
        parts.append("(" + ", ".join(f"{k}={v}" for k, v in kwargs.items()) + ")")
    return " ".join(parts) or "(<subtest>)"


def failed(reports: Sequence[pytest.TestReport]) -> int:
    return sum(1 for r in reports if r.failed)


def summary_counts(reports: Sequence[pytest.TestReport]) -> dict[str, int]:
    """What pytest's summary line adds for these subtests whatever the verbosity: failures.

    (It counts passed and skipped subtests only with ``-v``/``-q``-dependent verbosity.)
    """
    number = failed(reports)
    return {"failed": number} if number else {}


def metrics(reports: Sequence[pytest.TestReport]) -> dict[str, float]:
    values = {"subtests": float(len(reports))}
    for outcome in OUTCOMES:
        values[f"subtests_{outcome}"] = float(sum(1 for r in reports if r.outcome == outcome))
    return values


def artifact(reports: Sequence[pytest.TestReport]) -> str:
    entries = []
    for report in reports:
        context: Any = getattr(report, "context", None)
        entry: dict[str, Any] = {
            "msg": getattr(context, "msg", None),
            "kwargs": {str(k): str(v) for k, v in (getattr(context, "kwargs", None) or {}).items()},
            "outcome": _outcome(report),
            "duration": float(report.duration),
        }
        if report.failed:
            crash = getattr(report.longrepr, "reprcrash", None)
            lines = report.longreprtext.strip().splitlines()
            entry["message"] = getattr(crash, "message", None) or (lines[-1] if lines else "")
        entries.append(entry)
    return json.dumps(entries, indent=1, ensure_ascii=False)


def failure_text(reports: Sequence[pytest.TestReport]) -> str:
    parts: list[str] = []
    for report in reports:
        if report.failed:
            parts += [f"----- subtest {description(report)} failed -----", report.longreprtext, ""]
    return "\n".join(parts)
