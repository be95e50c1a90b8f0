"""``duplicates.resolve``: one run per key, the tree whole, on a real store."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from conftest import Store

from pytest_mlflow_tree.upload import duplicates

SESSION = "a" * 32


def _call(function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    return function(*args, **kwargs)


def test_copies_of_a_module_and_of_its_tests_leave_one_run_each_under_the_kept_module(
    store: Store,
) -> None:
    """Runs come newest first, so a test's copies are settled before its module's: the copy
    of a test that is deleted takes no tag after it (MLflow refuses tags on a deleted run)."""
    client = store.client()
    experiment_id = client.create_experiment("copies")
    started = iter(range(1_000, 2_000, 10))

    def run(key: str, parent: str | None, finished: bool) -> str:
        tags = {"pytest.session_uuid": SESSION, "pytest.run_key": key}
        if parent is not None:
            tags |= {"mlflow.parentRunId": parent, "mlflow.rootRunId": "root"}
        made = client.create_run(experiment_id, start_time=next(started), tags=tags)
        if finished:
            client.set_terminated(made.info.run_id, "FINISHED")
        return str(made.info.run_id)

    # Two copies of one module, two tests each with a copy under each module copy.
    kept_module = run("module", None, finished=True)
    other_module = run("module", None, finished=False)
    kept_a = run("a", other_module, finished=True)
    run("a", kept_module, finished=False)
    kept_b = run("b", kept_module, finished=True)
    run("b", other_module, finished=False)

    runs = duplicates.session_runs(client, experiment_id, SESSION, _call)
    kept = duplicates.resolve(client, runs, _call)

    assert sorted(r.info.run_id for r in kept) == sorted([kept_module, kept_a, kept_b])
    left = duplicates.session_runs(client, experiment_id, SESSION, _call)
    assert sorted(r.info.run_id for r in left) == sorted([kept_module, kept_a, kept_b])
    for test in (kept_a, kept_b):
        assert client.get_run(test).data.tags["mlflow.parentRunId"] == kept_module
