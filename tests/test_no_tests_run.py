"""pytest runs that run no test record nothing and leave no file behind."""

from __future__ import annotations

import pytest

SUITE = "def test_ok(mlflow_run):\n    mlflow_run.log_metric('accuracy', 0.9)\n"


@pytest.mark.parametrize(
    "args",
    [
        ("--mlflow-tree", "--collect-only"),
        ("--mlflow-tree", "--co", "-q"),
        ("--mlflow-tree", "--fixtures"),
        ("--mlflow-tree", "--markers"),
        ("--mlflow-tree", "--setup-plan"),
        ("-o", "mlflow_tree=true", "--help"),
    ],
    ids=lambda args: " ".join(args),
)
def test_nothing_is_recorded_or_created(pytester: pytest.Pytester, args: tuple[str, ...]) -> None:
    pytester.makepyfile(test_a=SUITE)
    before = {path.name for path in pytester.path.iterdir()}

    result = pytester.runpytest(*args)

    assert result.ret == 0
    created = {path.name for path in pytester.path.iterdir()} - before
    # No mlflow.db (nor its -wal/-shm), no mlruns/, no journal under .pytest_cache.
    assert not {name for name in created if name.startswith(("mlflow", "mlruns"))}
    assert not (pytester.path / ".pytest_cache" / "d" / "mlflow-tree").exists()


def test_the_tests_run_as_usual_record_as_usual(pytester: pytest.Pytester) -> None:
    """The same suite, run: recorded into the default store (the check above can fail)."""
    pytester.makepyfile(test_a=SUITE)

    result = pytester.runpytest("--mlflow-tree")

    result.assert_outcomes(passed=1)
    assert (pytester.path / "mlflow.db").exists()
