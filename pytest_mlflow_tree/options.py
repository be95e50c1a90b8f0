"""Command-line options and ini keys.

Loaded with pytest on every run, enabled or not: it imports nothing but pytest, and everything
else of the plugin loads only when ``--mlflow-tree`` is on.
"""

from __future__ import annotations

import pytest

DEFAULT_TRACKING_URI = "sqlite:///mlflow.db"
DEFAULT_WAIT_SECONDS = 300.0


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
    parser.addini("mlflow_tree", "record sessions as an MLflow run tree", type="bool")
    parser.addini("mlflow_tree_tracking_uri", "MLflow tracking URI")
    parser.addini("mlflow_tree_experiment", "MLflow experiment name")
    parser.addini("mlflow_tree_run_name", "name of the session run")
    parser.addini("mlflow_tree_tags", "extra session tags, one KEY=VALUE a line", type="linelist")
    parser.addini("mlflow_tree_journal_dir", "where journals are written")
    parser.addini("mlflow_tree_wait", "longest wait in seconds for the upload at the end")
