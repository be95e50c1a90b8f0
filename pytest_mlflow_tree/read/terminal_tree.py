"""``pytest-mlflow-tree show``: a recorded session as a terminal tree, failures first.

Readable at thousands of tests: a module whose tests all passed is one line, and a failing
module lists its failures and sums up the rest, unless ``--all`` asks for every test.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable

from pytest_mlflow_tree.model.names import (
    COLLECTION_ERROR,
    COUNTS,
    DURATION,
    GIT_BRANCH,
    SUBTESTS_FAILED,
    TEST_DURATION,
    TESTS,
)
from pytest_mlflow_tree.model.outcome import OUTCOMES
from pytest_mlflow_tree.model.records import run_name_of
from pytest_mlflow_tree.read.readback import Module, Session, Test, outcome_counts

# The order pytest's own summary line uses: bad news first.
_ORDER = ("failed", "error", "passed", "skipped", "xfailed", "xpassed", "killed")
# Lines of a failure shown under the test.
_FAILURE_LINES = 4
# Passing modules listed one per line; the rest share one line (a suite of 5,000 tests in
# 100 modules stays one screen).
PASSING_MODULES = 20


def seconds(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.2f}s" if value < 100 else f"{value:.0f}s"


def counts_text(counts: dict[str, int]) -> str:
    known = [o for o in _ORDER if counts.get(o)]
    others = sorted(o for o in counts if o not in _ORDER)
    return ", ".join(f"{counts[o]} {o}" for o in (*known, *others)) or "no tests"


def summary_counts(metrics: dict[str, float], tests: list[Test]) -> dict[str, int]:
    """pytest's summary line as recorded on a session or module run (a failed subtest is a
    failure there, as in pytest's); from the tests for a run cut off before it was closed."""
    if TESTS not in metrics:
        return outcome_counts(tests)
    counts = {o: int(metrics.get(COUNTS[o], 0)) for o in OUTCOMES}
    killed = sum(1 for test in tests if test.outcome == "killed")
    return {**counts, "killed": killed}


def _failed_subtests(test: Test) -> int:
    return int(test.metrics.get(SUBTESTS_FAILED, 0))


def _worth_listing(test: Test) -> bool:
    # A test pytest counts passed may hold failed subtests (a unittest TestCase's subTest).
    return test.bad or _failed_subtests(test) > 0


def _test_line(test: Test) -> str:
    line = f"  {_label(test.outcome):<8} {name_in_module(test)}  {seconds(test.duration)}"
    failed = _failed_subtests(test)
    return line + (f"  {failed} failed subtest{'s' if failed > 1 else ''}" if failed else "")


def _label(outcome: str) -> str:
    # Failures shout, everything else whispers: easy to spot in a long list.
    return outcome.upper() if outcome in ("failed", "error", "killed", "unknown") else outcome


def failure_excerpt(text: str | None, lines: int = _FAILURE_LINES) -> list[str]:
    """The ``E   ...`` lines of a pytest traceback, or its last line."""
    if not text:
        return []
    found = [line.rstrip() for line in text.splitlines() if line.startswith("E ")]
    if not found:
        tail = [line.rstrip() for line in text.splitlines() if line.strip()]
        found = tail[-1:]
    if len(found) > lines:
        found = [*found[: lines - 1], f"... ({len(found) - lines + 1} more lines)"]
    return found


def local_time(ms: int | None) -> str:
    """A time in milliseconds since the epoch, as the local clock shows it."""
    if ms is None:
        return "?"
    return datetime.datetime.fromtimestamp(ms / 1000).strftime("%Y-%m-%d %H:%M:%S")


def module_seconds(module: Module) -> float | None:
    """The time its tests took, as recorded on the module's run or summed from them."""
    total = module.metrics.get(TEST_DURATION)
    if total is None:
        total = sum(t.duration or 0.0 for t in module.tests)
    return total


def render(
    session: Session,
    show_all: bool = False,
    failures: int = 10,
    slowest: int = 5,
) -> Iterable[str]:
    """Lines of the tree. ``failures``: how many failure texts to fetch and show."""
    tests = session.tests
    yield from _heading(session, tests)
    yield ""
    listed, unlisted = _listed(session.modules, show_all)
    budget = Budget(failures)
    for module in listed:
        yield from _module_lines(module, show_all, budget)
    if unlisted:
        rest: dict[str, int] = {}
        for module in unlisted:
            for outcome, number in summary_counts(module.metrics, module.tests).items():
                rest[outcome] = rest.get(outcome, 0) + number
        yield f"ok      + {len(unlisted)} more modules  {counts_text(rest)} (--all lists them)"
    if slowest and tests:
        yield from _slowest(tests, slowest)


def _heading(session: Session, tests: list[Test]) -> Iterable[str]:
    counts = summary_counts(session.metrics, tests)
    wall = session.metrics.get(DURATION)
    yield (
        f"{session.name}  {session.status}  {len(tests)} tests: {counts_text(counts)}"
        f"  in {seconds(wall)}"
    )
    yield f"session run {session.run_id}  {session.url}"
    details = [f"started {local_time(session.start_ms)}"]
    if session.commit:
        branch = session.tags.get(GIT_BRANCH)
        details.append(f"commit {session.commit[:10]}" + (f" ({branch})" if branch else ""))
    if session.compact:
        details.append("compact mode: only failing, rerun and slow tests have runs")
    yield "  ".join(details)


def _listed(modules: Iterable[Module], show_all: bool) -> tuple[list[Module], list[Module]]:
    """The modules listed one per line, failing first, and the passing ones that are not."""
    listed: list[Module] = []
    unlisted: list[Module] = []
    passing = 0
    for module in sorted(modules, key=lambda m: (not m.bad, m.path)):
        if not (module.bad or show_all):
            if passing >= PASSING_MODULES:
                unlisted.append(module)
                continue
            passing += 1
        listed.append(module)
    return listed, unlisted


class Budget:
    """How many more of something may be shown: failure texts each cost a call to the store,
    and a report of thousands of tests lists only so many."""

    def __init__(self, count: int) -> None:
        self.left = count

    def take(self) -> bool:
        if self.left <= 0:
            return False
        self.left -= 1
        return True


def _module_lines(module: Module, show_all: bool, budget: Budget) -> Iterable[str]:
    module_counts = summary_counts(module.metrics, module.tests)
    if not module.tests and module.metrics.get(COUNTS["error"]):
        module_counts = {"error": 1}
    label = "FAILED" if module.bad else "ok"
    yield (
        f"{label:<7} {module.path}  {counts_text(module_counts)}  {seconds(module_seconds(module))}"
    )
    if module.tags.get(COLLECTION_ERROR):
        yield f"          collection error: {module.tags[COLLECTION_ERROR]}"
    if module.bad or show_all:
        yield from _test_lines(module, show_all, budget)


def _test_lines(module: Module, show_all: bool, budget: Budget) -> Iterable[str]:
    ordered = sorted(module.tests, key=lambda t: (not t.bad, not _worth_listing(t)))
    hidden: dict[str, int] = {}
    for test in ordered:
        if not (_worth_listing(test) or show_all):
            hidden[test.outcome] = hidden.get(test.outcome, 0) + 1
            continue
        yield _test_line(test)
        if test.bad and budget.take():
            for line in failure_excerpt(test.failure()):
                yield f"           {line}"
    if hidden:
        yield f"  + {counts_text(hidden)} (--all lists them)"


def _slowest(tests: list[Test], count: int) -> Iterable[str]:
    timed = sorted((t for t in tests if t.duration is not None), key=lambda t: -(t.duration or 0))
    yield ""
    yield f"slowest {min(count, len(timed))}:"
    for test in timed[:count]:
        yield f"  {seconds(test.duration):>8}  {test.nodeid}"


def name_in_module(test: Test) -> str:
    """The nodeid without its module, shown under the module's line (the test's run name)."""
    return run_name_of(test.nodeid)
