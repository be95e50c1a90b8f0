"""``pytest-mlflow-tree diff A B``: what changed between two recorded sessions.

New failures, fixed tests, added and removed tests, tests slower or faster beyond a threshold
(ignoring changes below an absolute minimum, which are noise), and changes of the metrics the
tests logged themselves.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from pytest_mlflow_tree.read.readback import Session, Test
from pytest_mlflow_tree.read.terminal_tree import seconds


@dataclass(frozen=True)
class Threshold:
    """Slower means ``after >= before * ratio`` or ``after - before >= seconds``."""

    ratio: float | None = None
    seconds: float | None = None

    @classmethod
    def parse(cls, text: str) -> Threshold:
        """``1.5x`` (a ratio) or ``0.5``/``0.5s`` (seconds)."""
        match = re.fullmatch(r"\s*(\d+(?:\.\d*)?|\.\d+)\s*([xXs]?)\s*", text)
        if not match:
            raise ValueError(f"{text!r} is neither a ratio like 1.5x nor seconds like 0.5s")
        value = float(match.group(1))
        if match.group(2).lower() == "x":
            if value <= 1:
                raise ValueError(f"a ratio must be above 1, not {text!r}")
            return cls(ratio=value)
        if value <= 0:
            raise ValueError(f"seconds must be above 0, not {text!r}")
        return cls(seconds=value)

    def exceeded(self, before: float, after: float) -> bool:
        if self.ratio is not None:
            return after >= before * self.ratio
        assert self.seconds is not None
        return after - before >= self.seconds

    def __str__(self) -> str:
        return f"{self.ratio:g}x" if self.ratio is not None else f"{self.seconds:g}s"


@dataclass(frozen=True)
class MetricChange:
    nodeid: str
    key: str
    before: float | None
    after: float | None


@dataclass
class SessionDiff:
    before: Session
    after: Session
    new_failures: list[tuple[Test | None, Test]] = field(default_factory=list)
    fixed: list[tuple[Test, Test]] = field(default_factory=list)
    still_failing: list[Test] = field(default_factory=list)
    added: list[Test] = field(default_factory=list)
    removed: list[Test] = field(default_factory=list)
    slower: list[tuple[Test, Test]] = field(default_factory=list)
    faster: list[tuple[Test, Test]] = field(default_factory=list)
    metric_changes: list[MetricChange] = field(default_factory=list)


def _metric_changed(before: float | None, after: float | None, tolerance: float) -> bool:
    if before is None or after is None:
        return before is not after
    if math.isnan(before) or math.isnan(after):
        return math.isnan(before) != math.isnan(after)
    return abs(after - before) > tolerance * max(abs(before), abs(after))


def compare(
    before: Session,
    after: Session,
    slower: Threshold,
    min_delta: float,
    metric_tolerance: float = 0.0,
) -> SessionDiff:
    diff = SessionDiff(before, after)
    old = {t.nodeid: t for t in before.tests}
    new = {t.nodeid: t for t in after.tests}
    for nodeid, test in new.items():
        previous = old.get(nodeid)
        if previous is None:
            diff.added.append(test)
            if test.bad:
                diff.new_failures.append((None, test))
            continue
        if test.bad and not previous.bad:
            diff.new_failures.append((previous, test))
        elif previous.bad and not test.bad:
            diff.fixed.append((previous, test))
        elif test.bad:
            diff.still_failing.append(test)
        a, b = previous.duration, test.duration
        if a is not None and b is not None and abs(b - a) >= min_delta:
            if slower.exceeded(a, b):
                diff.slower.append((previous, test))
            elif slower.exceeded(b, a):
                diff.faster.append((previous, test))
        old_metrics, new_metrics = previous.user_metrics, test.user_metrics
        for key in sorted({*old_metrics, *new_metrics}):
            x, y = old_metrics.get(key), new_metrics.get(key)
            if _metric_changed(x, y, metric_tolerance):
                diff.metric_changes.append(MetricChange(nodeid, key, x, y))
    diff.removed = [t for nodeid, t in old.items() if nodeid not in new]
    diff.slower.sort(key=lambda pair: -((pair[1].duration or 0) - (pair[0].duration or 0)))
    diff.faster.sort(key=lambda pair: (pair[1].duration or 0) - (pair[0].duration or 0))
    return diff


def _value(value: float | None) -> str:
    return "-" if value is None else f"{value:.6g}"


def _section(title: str, lines: list[str], limit: int) -> Iterable[str]:
    if not lines:
        return
    yield ""
    yield f"{title} ({len(lines)}):"
    for line in lines[:limit]:
        yield f"  {line}"
    if len(lines) > limit:
        yield f"  ... and {len(lines) - limit} more (--limit)"


def _duration(pair: tuple[Test, Test]) -> str:
    x, y = pair[0].duration or 0.0, pair[1].duration or 0.0
    factor = f" ({y / x:.1f}x)" if x > 0 else ""
    return f"{pair[1].nodeid}  {seconds(x)} -> {seconds(y)}{factor}"


def _sections(diff: SessionDiff, ratio: str) -> list[tuple[str, list[str]]]:
    """Each section's title and lines, in the order shown."""
    new_failures = diff.new_failures
    return [
        ("new failures", [f"{t.nodeid}  {_before(p)} -> {t.outcome}" for p, t in new_failures]),
        ("fixed", [f"{t.nodeid}  {p.outcome} -> {t.outcome}" for p, t in diff.fixed]),
        ("still failing", [t.nodeid for t in diff.still_failing]),
        ("added", [f"{t.nodeid}  {t.outcome}" for t in diff.added]),
        ("removed", [f"{t.nodeid}  {t.outcome}" for t in diff.removed]),
        (f"slower ({ratio})", [_duration(p) for p in diff.slower]),
        (f"faster ({ratio})", [_duration(p) for p in diff.faster]),
        (
            "metric changes",
            [
                f"{c.nodeid}  {c.key}: {_value(c.before)} -> {_value(c.after)}"
                for c in diff.metric_changes
            ],
        ),
    ]


def _before(test: Test | None) -> str:
    return test.outcome if test else "new test"


def render(diff: SessionDiff, slower: Threshold, min_delta: float, limit: int) -> Iterable[str]:
    a, b = diff.before, diff.after
    yield f"A: {a.name}  {a.status}  {len(a.tests)} tests  ({a.run_id})"
    yield f"B: {b.name}  {b.status}  {len(b.tests)} tests  ({b.run_id})"
    ratio = f"{slower}, at least {min_delta:g}s apart"
    for title, lines in _sections(diff, ratio):
        yield from _section(title, lines, limit)
    if not any(
        (
            diff.new_failures,
            diff.fixed,
            diff.added,
            diff.removed,
            diff.slower,
            diff.faster,
            diff.metric_changes,
        )
    ):
        yield ""
        yield "no changes"
    yield ""
    yield (
        f"{len(diff.new_failures)} new failures, {len(diff.fixed)} fixed, "
        f"{len(diff.added)} added, {len(diff.removed)} removed, {len(diff.slower)} slower, "
        f"{len(diff.faster)} faster, {len(diff.metric_changes)} metric changes"
    )
