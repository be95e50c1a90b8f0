"""The "naive" recorder: what a user writes from MLflow's docs, copied in as ``conftest.py``.

A session run at session start, a module run at each module's first test, and per test a child
run made synchronously, inside the test process, with a default ``MlflowClient``:
``create_run`` (parent tags), ``log_batch`` (durations, params), ``set_terminated``. The tracking
URI and the experiment come from ``MLFLOW_TRACKING_URI`` and ``MLFLOW_EXPERIMENT_NAME``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Generator
from dataclasses import dataclass, field

import pytest
from mlflow import MlflowClient
from mlflow.entities import Metric, Param


@dataclass
class _State:
    client: MlflowClient = field(default_factory=MlflowClient)
    experiment_id: str = ""
    session_run_id: str = ""
    module_runs: dict[str, str] = field(default_factory=dict)
    failed: set[str] = field(default_factory=set)


_state = _State()
_reports = pytest.StashKey[list[pytest.TestReport]]()


def _ms(seconds: float) -> int:
    return int(seconds * 1000)


def pytest_sessionstart(session: pytest.Session) -> None:
    client = _state.client
    name = os.environ["MLFLOW_EXPERIMENT_NAME"]
    experiment = client.get_experiment_by_name(name)
    if experiment is None:
        _state.experiment_id = client.create_experiment(name)
    else:
        _state.experiment_id = experiment.experiment_id
    run = client.create_run(
        _state.experiment_id, run_name="pytest session", tags={"pytest.level": "session"}
    )
    _state.session_run_id = run.info.run_id


def _module_run(module: str) -> str:
    run_id = _state.module_runs.get(module)
    if run_id is None:
        run = _state.client.create_run(
            _state.experiment_id,
            run_name=module,
            tags={"mlflow.parentRunId": _state.session_run_id, "pytest.level": "module"},
        )
        run_id = _state.module_runs[module] = run.info.run_id
    return run_id


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    reports = item.stash.setdefault(_reports, [])
    reports.append(report)
    if call.when == "teardown":
        _record(item, reports)
    return report


def _record(item: pytest.Item, reports: list[pytest.TestReport]) -> None:
    client = _state.client
    module = item.nodeid.split("::", 1)[0]
    parent = _module_run(module)
    failed = any(r.failed for r in reports)
    outcome = "failed" if failed else ("skipped" if any(r.skipped for r in reports) else "passed")
    run = client.create_run(
        _state.experiment_id,
        start_time=_ms(reports[0].start),
        run_name=item.name,
        tags={
            "mlflow.parentRunId": parent,
            "mlflow.rootRunId": _state.session_run_id,
            "pytest.level": "test",
            "pytest.nodeid": item.nodeid,
            "pytest.outcome": outcome,
        },
    )
    now = _ms(time.time())
    metrics = [Metric(f"{r.when}_duration", r.duration, now, 0) for r in reports]
    metrics.append(Metric("duration", sum(r.duration for r in reports), now, 0))
    callspec = getattr(item, "callspec", None)
    params = [Param(k, str(v)) for k, v in callspec.params.items()] if callspec else []
    client.log_batch(run.info.run_id, metrics=metrics, params=params)
    if failed:
        _state.failed.add(module)
    client.set_terminated(
        run.info.run_id, "FAILED" if failed else "FINISHED", end_time=_ms(reports[-1].stop)
    )


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    client = _state.client
    for module, run_id in _state.module_runs.items():
        client.set_terminated(run_id, "FAILED" if module in _state.failed else "FINISHED")
    client.set_terminated(_state.session_run_id, "FAILED" if exitstatus else "FINISHED")
