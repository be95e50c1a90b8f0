"""Command-line options and ini keys.

Loaded with pytest on every run, enabled or not: it imports nothing but pytest, and everything
else of the plugin loads only when ``--mlflow-tree`` is on.
"""

from __future__ import annotations

import pytest

from pytest_mlflow_tree.model.defaults import DEFAULT_TRACKING_URI

DEFAULT_WAIT_SECONDS = 300.0
# Keep in step with upload.DEFAULT_GIVE_UP (not imported: this module loads with every pytest).
DEFAULT_STALL_SECONDS = 4.0
CAPTURE_CHOICES = ("all", "no")


def is_enabled(config: pytest.Config) -> bool:
    return bool(config.option.mlflow_tree) or bool(config.getini("mlflow_tree"))


def add_options(parser: pytest.Parser) -> None:
    group = parser.getgroup("mlflow-tree", "record the session as an MLflow run tree")
    group.addoption(
        "--mlflow-tree",
        action="store_true",
        default=False,
        help="record this session as an MLflow run tree (session > modules > tests).",
    )
    group.addoption(
        "--mlflow-tree-tracking-uri",
        metavar="URI",
        help="MLflow tracking URI. Default: $MLFLOW_TRACKING_URI, then the ini value, "
        f"then {DEFAULT_TRACKING_URI}.",
    )
    group.addoption(
        "--mlflow-tree-experiment",
        metavar="NAME",
        help="experiment to record into, created if missing. Default: $MLFLOW_EXPERIMENT_NAME, "
        "then the ini value, then the rootdir's name.",
    )
    group.addoption("--mlflow-tree-run-name", metavar="NAME", help="name of the session run.")
    group.addoption(
        "--mlflow-tree-tag",
        metavar="KEY=VALUE",
        action="append",
        help="extra tag on the session run (repeatable); overrides mlflow_tree_tags.",
    )
    group.addoption(
        "--mlflow-tree-journal-dir",
        metavar="DIR",
        help="where journals are written. Default: .pytest_cache/d/mlflow-tree.",
    )
    group.addoption(
        "--mlflow-tree-wait",
        metavar="SECONDS",
        help="longest wait for the upload after the last test; what is not uploaded by then "
        f"stays in the journal for replay. Default: {DEFAULT_WAIT_SECONDS:g}.",
    )
    group.addoption(
        "--mlflow-tree-stall",
        metavar="SECONDS",
        help="give up on a tracking server that has not answered for this long (after the "
        "last test; what is not uploaded stays in the journal for replay). "
        f"Default: {DEFAULT_STALL_SECONDS:g}.",
    )
    group.addoption(
        "--mlflow-tree-strict",
        action="store_true",
        default=None,
        help="fail the session (non-zero exit code) when the recording could not be uploaded.",
    )
    group.addoption(
        "--mlflow-tree-capture",
        choices=CAPTURE_CHOICES,
        help="attach the captured stdout, stderr and log to failure.txt (all) or not (no). "
        "Default: all.",
    )
    group.addoption(
        "--mlflow-tree-journal-only",
        action="store_true",
        default=False,
        help="write the journal but do not upload it (upload later with "
        "`pytest-mlflow-tree replay`).",
    )
    group.addoption(
        "--mlflow-tree-keep-journal",
        action="store_true",
        default=False,
        help="keep the journal after a complete upload.",
    )
    group.addoption(
        "--mlflow-tree-mode",
        metavar="MODE",
        help="tree: one run per test (default); compact: for very large suites, every test in "
        "a table artifact per module, runs only for failing, rerun and slow tests.",
    )
    group.addoption(
        "--mlflow-tree-slow",
        metavar="SECONDS",
        help="compact mode: tests at least this slow get a run of their own. Default: 1.",
    )
    group.addoption(
        "--mlflow-tree-parent",
        metavar="RUN_ID",
        help="record the session run as a child of this existing run (for example the "
        "training run of the model under test). Default: $MLFLOW_TREE_PARENT_RUN_ID.",
    )
    group.addoption(
        "--mlflow-tree-resume",
        metavar="SESSION_RUN_ID",
        help="continue this recorded session: the tests run now replace their runs in it, "
        "the others are kept, and module and session counts are recomputed.",
    )
    group.addoption(
        "--mlflow-tree-shard-key",
        metavar="KEY",
        help="join every session given the same KEY under one root run (sharded CI jobs); "
        "'ci' uses the CI pipeline's id. Default: $PYTEST_MLFLOW_TREE_SHARD_KEY, then the ini "
        "value, then none.",
    )
    parser.addini("mlflow_tree", "record sessions as an MLflow run tree", type="bool")
    parser.addini("mlflow_tree_tracking_uri", "MLflow tracking URI")
    parser.addini("mlflow_tree_experiment", "MLflow experiment name")
    parser.addini("mlflow_tree_run_name", "name of the session run")
    parser.addini("mlflow_tree_tags", "extra session tags, one KEY=VALUE a line", type="linelist")
    parser.addini("mlflow_tree_journal_dir", "where journals are written")
    parser.addini("mlflow_tree_wait", "longest wait in seconds for the upload at the end")
    parser.addini("mlflow_tree_mode", "tree (one run per test) or compact")
    parser.addini("mlflow_tree_slow", "compact mode: seconds from which a test gets a run")
    parser.addini("mlflow_tree_shard_key", "join sessions with this key under one root run")
    parser.addini("mlflow_tree_stall", "give up on a server silent for this many seconds")
    parser.addini("mlflow_tree_strict", "fail the session when the upload fails", type="bool")
    parser.addini("mlflow_tree_capture", "captured output in failure.txt: all or no")
