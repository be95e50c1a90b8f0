"""What a record says of a failure: the one-line message and the full text of a failed test."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import pytest


def crash_message(report: pytest.TestReport | pytest.CollectReport) -> str:
    """The failure in one line, as pytest's short summary gives it."""
    crash = getattr(report.longrepr, "reprcrash", None)
    message = getattr(crash, "message", None)
    if isinstance(message, str) and message:
        return message
    lines = report.longreprtext.strip().splitlines()
    return lines[-1] if lines else ""


def phases_text(
    heading: str, failed: Sequence[pytest.TestReport], sections: Iterable[tuple[str, str]]
) -> str:
    """``heading`` and the phases that failed, each's traceback, then the captured output."""
    parts = [heading + ", ".join(f"{r.when} failed" for r in failed), ""]
    for report in failed:
        parts += [f"----- traceback ({report.when}) -----", report.longreprtext, ""]
    for title, content in sections:
        parts += [f"----- {title} -----", content, ""]
    return "\n".join(parts)
