"""The ``mlflow_run`` fixture: a test logs metrics, params, tags and files into its own run.

Nothing here talks to MLflow. Calls are buffered in the test's process (an append to a list, a
file copy for artifacts) and handed to the controller on each phase's report as a JSON-safe
attribute, which survives xdist's report serialization; the recorder puts them in the test's
journal record and the uploader sends them. What a test logged before a failing assertion is in
the call report like everything else.
"""

from __future__ import annotations

import json
import math
import operator
import shutil
import time
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path, PurePosixPath
from typing import Any, TypedDict

import pytest

from pytest_mlflow_tree.model.values import describe

# The report attribute that carries what the test logged through ``mlflow_run``.
LOGGED_VALUES_ATTRIBUTE = "mlflow_tree_log"
RUNLOG_KEY: pytest.StashKey[RunLog] = pytest.StashKey()

_OPERATORS: dict[str, Callable[[float, float], bool]] = {
    ">=": operator.ge,
    ">": operator.gt,
    "<=": operator.le,
    "<": operator.lt,
    "==": operator.eq,
    "!=": operator.ne,
}


class Logged(TypedDict, total=False):
    params: dict[str, str]
    tags: dict[str, str]
    # [key, value, timestamp in ms, step]; a value that is not finite is its repr (JSON has none)
    metrics: list[list[Any]]
    # This test's files, relative to the journal's directory.
    files_dir: str
    live_run_id: str


def _number(value: Any) -> float | str:
    number = float(value)
    return number if math.isfinite(number) else repr(number)


def _artifact_path(path: str) -> PurePosixPath:
    """A relative artifact path that stays inside the run's artifacts (MLflow's own rule)."""
    pure = PurePosixPath(str(path).replace("\\", "/"))
    if not pure.parts or pure.is_absolute() or ".." in pure.parts:
        raise ValueError(f"artifact path {path!r} must be relative and stay inside the run")
    return pure


class RunLog:
    """This test's run in the recorded tree. Calls mirror ``MlflowClient``/``mlflow`` logging.

    Without recording the calls are accepted, their values checked as when recording, and
    dropped (``check`` still checks), so a suite runs the same with and without recording.
    """

    def __init__(self, files_root: Path | None, nodeid: str) -> None:
        self._files_root = files_root
        self._dir_name = f"{uuid.uuid4().hex[:16]}"
        self._nodeid = nodeid
        self._params: dict[str, str] = {}
        self._tags: dict[str, str] = {}
        self._metrics: list[list[Any]] = []
        self._has_files = False
        self.live_run_id: str | None = None

    @property
    def recording(self) -> bool:
        """Whether what is logged here reaches MLflow (the session runs with --mlflow-tree)."""
        return self._files_root is not None

    # -- values --------------------------------------------------------------------------------

    def log_metric(self, key: str, value: float, step: int | None = None) -> None:
        """One value of metric ``key``; log it again with growing ``step`` for a history."""
        metric = [str(key), _number(value), int(time.time() * 1000), int(step or 0)]
        if self.recording:
            self._metrics.append(metric)

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        for key, value in metrics.items():
            self.log_metric(key, value, step)

    def log_param(self, key: str, value: Any) -> None:
        text = describe(value)
        if self.recording:
            self._params[str(key)] = text

    def log_params(self, params: Mapping[str, Any]) -> None:
        for key, value in params.items():
            self.log_param(key, value)

    def set_tag(self, key: str, value: Any) -> None:
        text = describe(value)
        if self.recording:
            self._tags[str(key)] = text

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        for key, value in tags.items():
            self.set_tag(key, value)

    # -- files ---------------------------------------------------------------------------------

    def _target(self, artifact_file: str) -> Path | None:
        relative = _artifact_path(artifact_file)
        if self._files_root is None:
            return None
        target = self._files_root / self._dir_name / Path(*relative.parts)
        target.parent.mkdir(parents=True, exist_ok=True)
        self._has_files = True
        return target

    def log_text(self, text: str, artifact_file: str) -> None:
        """Save ``text`` as the artifact ``artifact_file`` (e.g. ``"reports/slice.md"``)."""
        target = self._target(artifact_file)
        if target is not None:
            target.write_text(text, encoding="utf-8")

    def log_dict(self, dictionary: Mapping[str, Any], artifact_file: str) -> None:
        """Save ``dictionary`` as JSON, or YAML when ``artifact_file`` ends in .yaml/.yml."""
        if artifact_file.endswith((".yaml", ".yml")):
            import yaml  # type: ignore[import-untyped,unused-ignore]

            text = yaml.safe_dump(dict(dictionary), sort_keys=False)
        else:
            text = json.dumps(dictionary, indent=2, default=str)
        self.log_text(text, artifact_file)

    def log_artifact(self, local_path: str | Path, artifact_path: str | None = None) -> None:
        """Copy a local file (now: later changes are not seen) into the run's artifacts."""
        source = Path(local_path)
        if not source.is_file():
            raise FileNotFoundError(f"no such file: {source}")
        name = source.name if artifact_path is None else f"{artifact_path}/{source.name}"
        target = self._target(name)
        if target is not None:
            shutil.copyfile(source, target)

    def log_figure(self, figure: Any, artifact_file: str) -> None:
        """Save a matplotlib figure (``savefig``) or a plotly one (``write_html``)."""
        target = self._target(artifact_file)
        if target is None:
            return
        if hasattr(figure, "savefig"):
            figure.savefig(target)
        elif hasattr(figure, "write_html") and artifact_file.endswith(".html"):
            figure.write_html(target)
        elif hasattr(figure, "write_image"):
            figure.write_image(target)
        else:
            raise TypeError(f"cannot save a {type(figure).__name__} as a figure")

    # -- checks --------------------------------------------------------------------------------

    def check(self, name: str, value: float, op: str, threshold: float) -> None:
        """Assert ``value op threshold`` and record it: metric ``name``, metric
        ``name.threshold`` and tag ``name.verdict`` (``pass`` or ``fail``).

        Fails the test with a readable message when the check does not hold.
        """
        __tracebackhide__ = True
        compare = _OPERATORS.get(op)
        if compare is None:
            raise ValueError(f"unknown comparison {op!r}: use one of {', '.join(_OPERATORS)}")
        holds = compare(float(value), float(threshold))
        self.log_metric(name, value)
        self.log_metric(f"{name}.threshold", threshold)
        self.set_tag(f"{name}.verdict", "pass" if holds else "fail")
        if not holds:
            raise AssertionError(f"{name} = {value:.6g}, expected {op} {threshold:.6g}")

    # -- hand-over -----------------------------------------------------------------------------

    def drain(self) -> Logged | None:
        """What was logged since the last call, for the current phase's report."""
        logged: Logged = {}
        if self._params:
            logged["params"], self._params = self._params, {}
        if self._tags:
            logged["tags"], self._tags = self._tags, {}
        if self._metrics:
            logged["metrics"], self._metrics = self._metrics, []
        if self._has_files and self._files_root is not None:
            logged["files_dir"] = f"{self._files_root.name}/{self._dir_name}"
        if self.live_run_id is not None:
            logged["live_run_id"] = self.live_run_id
        return logged or None


def for_item(item: pytest.Item, files_root: str | None) -> RunLog:
    """The item's run log, created on first use."""
    runlog = item.stash.get(RUNLOG_KEY, None)
    if runlog is None:
        root = Path(files_root) if files_root else None
        runlog = item.stash[RUNLOG_KEY] = RunLog(root, item.nodeid)
    return runlog


def attach(item: pytest.Item, report: pytest.TestReport) -> None:
    """Move what the test logged during this phase onto its report."""
    runlog = item.stash.get(RUNLOG_KEY, None)
    if runlog is None:
        return
    logged = runlog.drain()
    if logged is not None:
        setattr(report, LOGGED_VALUES_ATTRIBUTE, logged)
