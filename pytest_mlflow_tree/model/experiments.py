"""The experiment a session goes to, found by name or created: for the uploader and for tests
that make their own runs. Takes an MLflow client object; imports no MLflow itself."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


def _direct(function: Callable[..., T], *args: Any) -> T:
    return function(*args)


def experiment_id(
    client: Any,
    name: str,
    call: Callable[..., Any] = _direct,
    lost_race: type[Exception] = Exception,
) -> str:
    """The id of the active experiment ``name``, created when there is none.

    ``call`` makes each request to the store (a ``Patience.call``, say). ``lost_race``: what
    ``create_experiment`` raises when another session created the experiment between the two
    calls (or a retried call whose first answer was lost did): the experiment is looked up again.
    """
    experiment = call(client.get_experiment_by_name, name)
    if experiment is None:
        try:
            return str(call(client.create_experiment, name))
        except lost_race:
            experiment = call(client.get_experiment_by_name, name)
            if experiment is None:
                raise
    if experiment.lifecycle_stage == "deleted":
        raise RuntimeError(
            f"experiment {name!r} is deleted; restore it (mlflow experiments restore) or "
            "choose another name"
        )
    return str(experiment.experiment_id)
