"""The journal's record types: the contract between the pytest process and the uploader.

A journal is JSON lines. The first line is a ``journal`` header; then ``open`` records create a
run, ``close`` records finish one, and ``run`` records do both for a test. ``end`` marks a
complete journal. Parents are always opened before their children, so an uploader that applies
records in order can resolve every parent run id. A ``start`` record says a test began; a
journal that ends before the test's ``run`` record (the process died in the test) gets a KILLED
run for it.

Bump ``FORMAT`` on any change an older uploader would misread. Optional fields added later
(``metric_steps``, ``files_dir``, ``live_run_id``, the header's ``parent_run_id``,
``resume_run_id`` and ``ui_url``) keep format 1: older journals lack them and replay as before.
So do ``start`` records: older uploaders skip records of kinds they do not know. So does the
session's close record with ``params``, ``metric_steps`` and ``files_dir`` (what
``mlflow_session`` logged): an older uploader leaves them out.
"""

from __future__ import annotations

import hashlib
from typing import Any, Literal, TypedDict

FORMAT = 1

# The key of the session run; module keys are paths and test keys are nodeids.
SESSION_KEY = "<session>"
# The artifact of a failed test's run: its traceback and captured output.
FAILURE_ARTIFACT = "failure.txt"


def module_of(nodeid: str) -> str:
    """The key of a test's module run."""
    return nodeid.split("::", 1)[0]


def module_run_name(path: str) -> str:
    """A module run's name: its file, then its folder (``test_io.py (tests/unit)``).

    The runs table's name column shows a name's start only: modules of the same name in
    different folders differ there. The path as pytest gives it is the run's nodeid tag.
    """
    folder, slash, file = path.rstrip("/").rpartition("/")
    return f"{file} ({folder})" if slash and folder and file else path


def run_name_of(nodeid: str) -> str:
    """A test run's name: the node id after its file, as pytest prints it there in ``-v`` and
    in its short summary (``test_accuracy[knn-0.93]``, ``TestModel::test_fit[3]``), so that a
    name seen in a CI log finds the run."""
    _file, separator, rest = nodeid.partition("::")
    return rest if separator else nodeid


Level = Literal["session", "module", "test"]


class HeaderOptions(TypedDict, total=False):
    # Attach the session run under this existing run (``--mlflow-tree-parent``).
    parent_run_id: str
    # Record into the experiment of the parent run rather than ``experiment``.
    experiment_from_parent: bool
    # Continue this recorded session (``--mlflow-tree-resume``): re-run tests replace theirs.
    resume_run_id: str
    # The MLflow UI's address for links to runs (``--mlflow-tree-ui-url``), when one is set.
    ui_url: str


class Header(HeaderOptions):
    kind: Literal["journal"]
    format: int
    session_uuid: str
    tracking_uri: str
    experiment: str
    # Tags put on every run of the tree (user, source type): they make runs self-describing in
    # search results without reading their parents.
    common_tags: dict[str, str]
    plugin_version: str


class RunData(TypedDict, total=False):
    params: dict[str, str]
    metrics: dict[str, float]
    tags: dict[str, str]
    # artifact file name -> text content
    artifacts: dict[str, str]
    # Values a test logged itself: [key, value, timestamp ms, step] (value: float or its repr)
    metric_steps: list[list[Any]]
    # Files a test logged, a directory relative to the journal's directory
    files_dir: str
    # The run a live-run test created in its own process, to be completed rather than created
    live_run_id: str


class OpenRecord(RunData):
    kind: Literal["open"]
    level: Level
    key: str
    parent: str | None
    name: str
    start: int


class CloseRecord(RunData):
    kind: Literal["close"]
    key: str
    end: int
    status: str


class RunRecord(RunData):
    """A test: opened and closed in one record, written when its teardown has been reported."""

    kind: Literal["run"]
    level: Level
    key: str
    parent: str | None
    name: str
    start: int
    end: int
    status: str


class StartRecord(TypedDict):
    """A test has started: written before it runs, so that a test that ends the process has
    a run too."""

    kind: Literal["start"]
    key: str
    parent: str
    name: str
    start: int
    tags: dict[str, str]


class EndRecord(TypedDict):
    kind: Literal["end"]
    time: int


Record = Header | OpenRecord | CloseRecord | RunRecord | StartRecord | EndRecord


def run_key(key: str) -> str:
    return hashlib.sha1(key.encode("utf-8", "surrogatepass")).hexdigest()
