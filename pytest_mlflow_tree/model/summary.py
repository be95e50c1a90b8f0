"""Counts, metrics and the markdown description of module and session runs."""

from __future__ import annotations

from dataclasses import dataclass, field

from pytest_mlflow_tree.model.names import COUNTS, DURATION, PASS_RATE, TEST_DURATION, TESTS
from pytest_mlflow_tree.model.outcome import OUTCOMES

# How many failures a description lists before it says "and N more".
_LISTED_FAILURES = 20


@dataclass
class Tally:
    """What a module or the session has seen so far."""

    tests: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    test_seconds: float = 0.0
    failures: list[tuple[str, str]] = field(default_factory=list)

    def add(self, counts: dict[str, int], seconds: float = 0.0) -> None:
        for outcome, number in counts.items():
            self.counts[outcome] = self.counts.get(outcome, 0) + number
        self.test_seconds += seconds

    def add_failure(self, nodeid: str, message: str) -> None:
        self.failures.append((nodeid, message))

    @property
    def bad(self) -> bool:
        return bool(self.counts.get("failed") or self.counts.get("error"))

    def metrics(self, wall_seconds: float) -> dict[str, float]:
        metrics: dict[str, float] = {TESTS: float(self.tests)}
        for outcome in OUTCOMES:
            metrics[COUNTS[outcome]] = float(self.counts.get(outcome, 0))
        judged = sum(self.counts.get(o, 0) for o in ("passed", "failed", "error"))
        if judged:
            metrics[PASS_RATE] = self.counts.get("passed", 0) / judged
        metrics[DURATION] = wall_seconds
        metrics[TEST_DURATION] = self.test_seconds
        return metrics

    def headline(self, wall_seconds: float) -> str:
        # The terminal's order: bad news first.
        order = ("failed", "error", "passed", "skipped", "xfailed", "xpassed")
        parts = []
        for outcome in order:
            number = self.counts.get(outcome, 0)
            if number:
                word = "errors" if outcome == "error" and number != 1 else outcome
                part = f"{number} {word}"
                parts.append(f"**{part}**" if outcome in ("failed", "error") else part)
        return (", ".join(parts) or "no tests ran") + f" in {wall_seconds:.2f} s"

    def markdown(self, title: str, wall_seconds: float) -> str:
        """The failures first, where the UI shows a description before folding it, then the
        headline. ``read.description`` turns each failure into a link to its test run."""
        lines = []
        for nodeid, message in self.failures[:_LISTED_FAILURES]:
            first = message.strip().splitlines()[0] if message.strip() else ""
            lines.append(failure_item(nodeid) + (f": {first}" if first else ""))
        hidden = len(self.failures) - _LISTED_FAILURES
        if hidden > 0:
            lines.append(f"- ... and {hidden} more")
        if lines:
            lines.append("")
        lines.append(f"{self.headline(wall_seconds)} · {title}")
        return "\n".join(lines)


def failure_item(name: str, target: str | None = None) -> str:
    """A failure's list item up to its message: its name, a link when ``target`` is known."""
    return f"- [`{name}`]({target})" if target else f"- `{name}`"


def failure_name(line: str) -> str | None:
    """The name in a line ``failure_item`` wrote without a link, else None."""
    if not line.startswith("- `"):
        return None
    end = line.find("`", 3)
    return line[3:end] if end > 3 else None
