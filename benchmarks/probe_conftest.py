"""Benchmark probe, copied into a generated suite as its ``conftest.py``.

It measures from inside the pytest process, the same way with and without the plugin, and writes
one JSON file (path in ``BENCH_PROBE_OUT``) when the process exits:

- ``call_durations``: each test's ``call`` phase as pytest measured it;
- ``duration_sum``: the sum of every phase's duration (setup, call, teardown) pytest reported,
  what ``--durations`` and ``--junitxml`` show; the plugin's own hooks in those phases count in it;
- ``mlflow_modules``: how many ``mlflow`` modules were imported at ``pytest_unconfigure``;
- ``gc_in_phases``: the seconds of Python's garbage collections that ran inside test phases, so
  inside the durations above (a full collection of a large heap takes a tenth of a second or
  more, and where it lands is chance);
- ``sum_without_full``: ``duration_sum`` over the phases that held no full collection, and
  ``full_in_phases``: how many phases held one. A full collection also leaves the caches cold
  for the rest of its phase, which taking out its own seconds does not take out;
- ``peak_rss_kb``: this process's own peak RSS. Not ``RUSAGE_CHILDREN`` from the outside: that
  folds in every process pytest waited for, the plugin's uploader included.
"""

from __future__ import annotations

import atexit
import gc
import json
import os
import resource
import sys
import time
from collections.abc import Generator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

_data: dict[str, object] = {"call_durations": [], "mlflow_modules": None}
_duration_sum = [0.0]
_gc = {"started": 0.0, "total": 0.0, "in_phases": 0.0}


@dataclass
class _FullCollections:
    """Full (generation 2) collections, and the durations of the phases that held none."""

    count: int = 0
    last_phase_held_one: bool = False
    phases: int = 0
    sum_without: float = 0.0


_full = _FullCollections()


def _gc_timer(phase: str, info: dict[str, int]) -> None:
    if phase == "start":
        _gc["started"] = time.perf_counter()
    else:
        _gc["total"] += time.perf_counter() - _gc["started"]
        if info["generation"] == 2:
            _full.count += 1


gc.callbacks.append(_gc_timer)


def _timed_phase() -> Any:
    """A wrapper of one test phase hook that adds the collections inside it to ``in_phases``."""

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def phase(item: pytest.Item) -> Generator[None, object, object]:
        before, fulls = _gc["total"], _full.count
        try:
            return (yield)
        finally:
            _gc["in_phases"] += _gc["total"] - before
            _full.last_phase_held_one = _full.count != fulls

    return phase


pytest_runtest_setup = _timed_phase()
pytest_runtest_call = _timed_phase()
pytest_runtest_teardown = _timed_phase()


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    _duration_sum[0] += report.duration
    # The report of the phase that just ran: pytest reports each phase right after it.
    if _full.last_phase_held_one:
        _full.phases += 1
    else:
        _full.sum_without += report.duration
    if report.when == "call":
        durations = _data["call_durations"]
        assert isinstance(durations, list)
        durations.append(report.duration)


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    # trylast: after the plugin's own unconfigure, so a late import would be seen too.
    _data["mlflow_modules"] = sum(
        1 for name in sys.modules if name == "mlflow" or name.startswith("mlflow.")
    )


def _peak_rss_kb() -> int:
    # VmHWM is the high-water mark of this process alone; ru_maxrss is the same number in KiB.
    try:
        for line in Path("/proc/self/status").read_text(encoding="ascii").splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


def _write() -> None:
    out = os.environ.get("BENCH_PROBE_OUT")
    if out:
        _data["peak_rss_kb"] = _peak_rss_kb()
        _data["duration_sum"] = _duration_sum[0]
        _data["gc_in_phases"] = _gc["in_phases"]
        _data["sum_without_full"] = _full.sum_without
        _data["full_in_phases"] = _full.phases
        Path(out).write_text(json.dumps(_data), encoding="utf-8")


atexit.register(_write)
