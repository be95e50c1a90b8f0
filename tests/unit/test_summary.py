"""The tally of a module or the session: counts, metrics, headline and description."""

from __future__ import annotations

from pytest_mlflow_tree.model.names import COUNTS, METRIC_PREFIX
from pytest_mlflow_tree.model.outcome import OUTCOMES
from pytest_mlflow_tree.model.summary import Tally


def test_counts_add_up_across_tests() -> None:
    tally = Tally()
    tally.add({"passed": 1}, 0.5)
    tally.add({"failed": 1, "error": 1}, 0.25)
    tally.add({"passed": 1})
    assert tally.counts == {"passed": 2, "failed": 1, "error": 1}
    assert tally.test_seconds == 0.75


def test_metrics_name_every_outcome_and_the_pass_rate_counts_only_judged_tests() -> None:
    tally = Tally(tests=6)
    tally.add({"passed": 3, "failed": 1, "skipped": 1, "xfailed": 1}, 2.0)
    assert tally.metrics(5.0) == {
        "pytest/tests": 6.0,
        "pytest/passed": 3.0,
        "pytest/failed": 1.0,
        "pytest/errors": 0.0,
        "pytest/skipped": 1.0,
        "pytest/xfailed": 1.0,
        "pytest/xpassed": 0.0,
        "pytest/pass_rate": 0.75,
        "pytest/duration": 5.0,
        "pytest/test_duration": 2.0,
    }


def test_every_outcome_has_a_count_metric_under_the_plugins_prefix() -> None:
    assert set(COUNTS) == set(OUTCOMES)
    assert all(key.startswith(METRIC_PREFIX) for key in Tally(tests=1).metrics(1.0))


def test_no_pass_rate_when_nothing_passed_or_failed() -> None:
    tally = Tally(tests=2)
    tally.add({"skipped": 2})
    assert "pytest/pass_rate" not in tally.metrics(1.0)


def test_errors_count_against_the_pass_rate() -> None:
    tally = Tally()
    tally.add({"passed": 1, "error": 1})
    assert tally.metrics(0.0)["pytest/pass_rate"] == 0.5


def test_bad_when_anything_failed_or_errored() -> None:
    assert not Tally(counts={"passed": 1, "skipped": 1, "xfailed": 1}).bad
    assert Tally(counts={"failed": 1}).bad
    assert Tally(counts={"error": 1}).bad


def test_the_headline_puts_bad_news_first_in_bold() -> None:
    tally = Tally(counts={"passed": 2, "failed": 1, "error": 2, "skipped": 1, "xpassed": 1})
    assert tally.headline(1.234) == (
        "**1 failed**, **2 errors**, 2 passed, 1 skipped, 1 xpassed in 1.23 s"
    )


def test_one_error_is_singular() -> None:
    assert Tally(counts={"error": 1}).headline(0.0) == "**1 error** in 0.00 s"


def test_an_empty_tally_says_no_tests_ran() -> None:
    assert Tally().headline(0.5) == "no tests ran in 0.50 s"


def test_the_description_lists_failures_first_by_their_first_line() -> None:
    tally = Tally(counts={"failed": 2})
    tally.add_failure("t.py::a", "\n  AssertionError: 1 != 2\n  more\n")
    tally.add_failure("t.py::b", "   ")
    assert tally.markdown("t.py", 1.0).splitlines() == [
        "- `t.py::a`: AssertionError: 1 != 2",
        "- `t.py::b`",
        "",
        "**2 failed** in 1.00 s · t.py",
    ]


def test_the_description_lists_twenty_failures_and_counts_the_rest() -> None:
    tally = Tally(counts={"failed": 25})
    for number in range(25):
        tally.add_failure(f"t.py::test_{number}", "boom")
    lines = tally.markdown("session", 1.0).splitlines()
    assert sum(line.startswith("- `") for line in lines) == 20
    assert lines[20] == "- ... and 5 more"


def test_without_failures_the_description_is_the_headline() -> None:
    assert Tally(counts={"passed": 1}).markdown("m", 0.0) == "1 passed in 0.00 s · m"
