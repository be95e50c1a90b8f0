"""``pytest-mlflow-tree flaky``: tests whose outcome flips across recent sessions.

A flip is a change between passing (passed, xfailed, xpassed) and failing (failed, error) from
one session to the next that ran the test; skips say nothing and are left out. Flips between
sessions of the same git commit are counted apart: the code did not change, the outcome did.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from pytest_mlflow_tree.read.readback import Session

_PASSING = frozenset({"passed", "xfailed", "xpassed"})
_FAILING = frozenset({"failed", "error"})
_SYMBOLS = {
    "passed": ".",
    "failed": "F",
    "error": "E",
    "skipped": "s",
    "xfailed": "x",
    "xpassed": "X",
    "killed": "K",
}


@dataclass(frozen=True)
class FlakyTest:
    nodeid: str
    # One outcome per session, oldest first; None where the session did not run the test.
    outcomes: tuple[str | None, ...]
    flips: int
    flips_same_commit: int
    failures: int

    @property
    def strip(self) -> str:
        return "".join(_SYMBOLS.get(o, "?") if o else "-" for o in self.outcomes)


def _verdict(outcome: str | None) -> bool | None:
    if outcome in _PASSING:
        return True
    if outcome in _FAILING:
        return False
    return None


def find(sessions: list[Session]) -> list[FlakyTest]:
    """Tests with at least one flip in ``sessions`` (oldest first), most flips first."""
    by_session = [{t.nodeid: t.outcome for t in s.tests} for s in sessions]
    nodeids = sorted({nodeid for outcomes in by_session for nodeid in outcomes})
    found = []
    for nodeid in nodeids:
        outcomes = tuple(outcomes.get(nodeid) for outcomes in by_session)
        flips = same = 0
        previous: tuple[bool, str | None] | None = None
        for outcome, session in zip(outcomes, sessions, strict=True):
            verdict = _verdict(outcome)
            if verdict is None:
                continue
            if previous is not None and previous[0] != verdict:
                flips += 1
                if session.commit is not None and previous[1] == session.commit:
                    same += 1
            previous = (verdict, session.commit)
        if flips:
            failures = sum(1 for o in outcomes if o in _FAILING)
            found.append(FlakyTest(nodeid, outcomes, flips, same, failures))
    found.sort(key=lambda f: (-f.flips, -f.flips_same_commit, -f.failures, f.nodeid))
    return found


def render(sessions: list[Session], flaky: list[FlakyTest], limit: int) -> Iterable[str]:
    yield f"{len(sessions)} sessions, oldest first:"
    for number, session in enumerate(sessions, 1):
        commit = f"  commit {session.commit[:10]}" if session.commit else ""
        yield f"  {number}. {session.name}  {session.status}  {session.run_id}{commit}"
    yield ""
    if not flaky:
        yield "no test changed its outcome"
        return
    yield (
        f"{len(flaky)} tests changed their outcome "
        "(. passed  F failed  E error  s skipped  - absent):"
    )
    yield f"{'flips':>5} {'same commit':>11} {'failed':>6}  outcomes  test"
    for test in flaky[:limit]:
        yield (
            f"{test.flips:>5} {test.flips_same_commit:>11} "
            f"{f'{test.failures}/{len(test.outcomes)}':>6}  {test.strip:<8}  {test.nodeid}"
        )
    if len(flaky) > limit:
        yield f"... and {len(flaky) - limit} more (--limit)"
