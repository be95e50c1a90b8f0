"""Resolve the plugin's settings from the command line, the environment and the ini file.

Precedence, highest first: command line, environment, ini file, default. The environment beats
the ini file because ``MLFLOW_TRACKING_URI`` and ``MLFLOW_EXPERIMENT_NAME`` are how MLflow users
and CI jobs point every MLflow client somewhere; the ini file holds the project's defaults.
Every error names the source of the bad value.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from pytest_mlflow_tree.options import DEFAULT_TRACKING_URI, DEFAULT_WAIT_SECONDS, is_enabled


def _bad(source: str, message: str) -> pytest.UsageError:
    """A usage error that names where the bad value came from."""
    return pytest.UsageError(f"{source}: {message}")


@dataclass(frozen=True)
class Settings:
    enabled: bool
    tracking_uri: str
    tracking_uri_source: str
    experiment: str
    experiment_source: str
    run_name: str | None
    tags: dict[str, str] = field(default_factory=dict)
    journal_dir: Path | None = None
    upload: bool = True
    keep_journal: bool = False
    wait_seconds: float = DEFAULT_WAIT_SECONDS


def _ini(config: pytest.Config, name: str) -> str | None:
    value = config.getini(name)
    return str(value) if value else None


def _first(*candidates: tuple[str | None, str]) -> tuple[str | None, str]:
    for value, source in candidates:
        if value:
            return value, source
    return None, "default"


def _parse_tags(lines: list[str], source: str) -> dict[str, str]:
    tags: dict[str, str] = {}
    for line in lines:
        line = line.strip()
        if not line:
            continue
        key, sep, value = line.partition("=")
        if not sep or not key.strip():
            raise _bad(source, f"tag {line!r} is not KEY=VALUE")
        tags[key.strip()] = value.strip()
    return tags


def _absolute_sqlite(uri: str) -> str:
    """Pin a relative SQLite path to the current directory, as MLflow resolves it.

    The uploader and a later replay may run elsewhere; they must write to the same file.
    """
    prefix = "sqlite:///"
    if not uri.startswith(prefix) or uri.startswith(prefix + "/"):
        return uri
    path, sep, query = uri[len(prefix) :].partition("?")
    if path in ("", ":memory:"):
        return uri
    return prefix + str(Path(path).resolve()) + sep + query


def resolve(config: pytest.Config) -> Settings:
    option = config.option
    enabled = is_enabled(config)

    uri, uri_source = _first(
        (option.mlflow_tree_tracking_uri, "--mlflow-tree-tracking-uri"),
        (os.environ.get("MLFLOW_TRACKING_URI"), "MLFLOW_TRACKING_URI"),
        (_ini(config, "mlflow_tree_tracking_uri"), "mlflow_tree_tracking_uri (ini)"),
    )
    experiment, experiment_source = _first(
        (option.mlflow_tree_experiment, "--mlflow-tree-experiment"),
        (os.environ.get("MLFLOW_EXPERIMENT_NAME"), "MLFLOW_EXPERIMENT_NAME"),
        (_ini(config, "mlflow_tree_experiment"), "mlflow_tree_experiment (ini)"),
    )
    run_name, _ = _first(
        (option.mlflow_tree_run_name, "--mlflow-tree-run-name"),
        (_ini(config, "mlflow_tree_run_name"), "mlflow_tree_run_name (ini)"),
    )

    tags = _parse_tags(config.getini("mlflow_tree_tags"), "mlflow_tree_tags (ini)")
    tags.update(_parse_tags(option.mlflow_tree_tag or [], "--mlflow-tree-tag"))

    journal_dir_text, _ = _first(
        (option.mlflow_tree_journal_dir, "--mlflow-tree-journal-dir"),
        (_ini(config, "mlflow_tree_journal_dir"), "mlflow_tree_journal_dir (ini)"),
    )
    journal_dir = None
    if journal_dir_text:
        journal_dir = Path(journal_dir_text)
        if not journal_dir.is_absolute():
            journal_dir = config.rootpath / journal_dir

    wait_text, wait_source = _first(
        (option.mlflow_tree_wait, "--mlflow-tree-wait"),
        (_ini(config, "mlflow_tree_wait"), "mlflow_tree_wait (ini)"),
    )
    wait_seconds = DEFAULT_WAIT_SECONDS
    if wait_text is not None:
        try:
            wait_seconds = float(wait_text)
        except ValueError:
            wait_seconds = -1.0
        if not wait_seconds >= 0:
            raise _bad(wait_source, f"{wait_text!r} is not a number of seconds >= 0")

    return Settings(
        enabled=enabled,
        tracking_uri=_absolute_sqlite(uri or DEFAULT_TRACKING_URI),
        tracking_uri_source=uri_source,
        experiment=experiment or config.rootpath.name,
        experiment_source=experiment_source,
        run_name=run_name,
        tags=tags,
        journal_dir=journal_dir,
        upload=not option.mlflow_tree_journal_only,
        keep_journal=bool(option.mlflow_tree_keep_journal),
        wait_seconds=wait_seconds,
    )
