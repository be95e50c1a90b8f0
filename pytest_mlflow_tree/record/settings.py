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

from pytest_mlflow_tree.model.compact import DEFAULT_SLOW_SECONDS, MODES, TREE_MODE
from pytest_mlflow_tree.model.defaults import DEFAULT_TRACKING_URI
from pytest_mlflow_tree.model.records import HeaderOptions
from pytest_mlflow_tree.record.options import (
    CAPTURE_CHOICES,
    DEFAULT_STALL_SECONDS,
    DEFAULT_WAIT_SECONDS,
    is_enabled,
)

PARENT_ENV = "MLFLOW_TREE_PARENT_RUN_ID"


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
    mode: str = TREE_MODE
    slow_seconds: float = DEFAULT_SLOW_SECONDS
    parent_run_id: str | None = None
    resume_run_id: str | None = None

    shard_key: str | None = None

    @property
    def experiment_from_parent(self) -> bool:
        """A session attached to a run goes to that run's experiment unless one is named."""
        return self.parent_run_id is not None and self.experiment_source == "default"

    def header_options(self) -> HeaderOptions:
        options: HeaderOptions = {}
        if self.parent_run_id is not None:
            options["parent_run_id"] = self.parent_run_id
            options["experiment_from_parent"] = self.experiment_from_parent
        if self.resume_run_id is not None:
            options["resume_run_id"] = self.resume_run_id
        return options

    stall_seconds: float = DEFAULT_STALL_SECONDS
    strict: bool = False
    # Whether failure.txt carries the test's captured stdout, stderr and log.
    capture: bool = True


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

    wait_seconds = _seconds(config, "wait", DEFAULT_WAIT_SECONDS)
    stall_seconds = _seconds(config, "stall", DEFAULT_STALL_SECONDS)
    strict = option.mlflow_tree_strict
    if strict is None:
        strict = bool(config.getini("mlflow_tree_strict"))
    capture, capture_source = _first(
        (option.mlflow_tree_capture, "--mlflow-tree-capture"),
        (_ini(config, "mlflow_tree_capture"), "mlflow_tree_capture (ini)"),
    )
    if capture is not None and capture not in CAPTURE_CHOICES:
        raise _bad(capture_source, f"{capture!r} is not one of {', '.join(CAPTURE_CHOICES)}")

    mode_text, mode_source = _first(
        (option.mlflow_tree_mode, "--mlflow-tree-mode"),
        (_ini(config, "mlflow_tree_mode"), "mlflow_tree_mode (ini)"),
    )
    mode = (mode_text or TREE_MODE).strip().lower()
    if mode not in MODES:
        raise _bad(mode_source, f"mode {mode_text!r} is not one of {', '.join(MODES)}")
    slow_seconds = _seconds(config, "slow", DEFAULT_SLOW_SECONDS)
    parent, _ = _first(
        (option.mlflow_tree_parent, "--mlflow-tree-parent"),
        (os.environ.get(PARENT_ENV), PARENT_ENV),
    )
    resume = option.mlflow_tree_resume or None
    shard_key, shard_source = _first(
        (option.mlflow_tree_shard_key, "--mlflow-tree-shard-key"),
        (os.environ.get("PYTEST_MLFLOW_TREE_SHARD_KEY"), "PYTEST_MLFLOW_TREE_SHARD_KEY"),
        (_ini(config, "mlflow_tree_shard_key"), "mlflow_tree_shard_key (ini)"),
    )
    if shard_key == "ci":
        from pytest_mlflow_tree.record import ci

        shard_key = ci.pipeline_key(os.environ)
        if shard_key is None:
            raise _bad(shard_source, "'ci' needs a CI pipeline id, and no known CI is running")

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
        mode=mode,
        slow_seconds=slow_seconds,
        # Checked by the uploader, which can ask the store: a bad id must not stop the tests.
        parent_run_id=parent.strip() if parent else None,
        resume_run_id=resume.strip() if resume else None,
        shard_key=shard_key,
        stall_seconds=stall_seconds,
        strict=bool(strict),
        capture=capture != "no",
    )


def _seconds(config: pytest.Config, name: str, default: float) -> float:
    """``--mlflow-tree-NAME`` or the ini key ``mlflow_tree_NAME``: seconds >= 0."""
    text, source = _first(
        (getattr(config.option, f"mlflow_tree_{name}"), f"--mlflow-tree-{name}"),
        (_ini(config, f"mlflow_tree_{name}"), f"mlflow_tree_{name} (ini)"),
    )
    if text is None:
        return default
    try:
        seconds = float(text)
    except ValueError:
        seconds = -1.0
    if not seconds >= 0:
        raise _bad(source, f"{text!r} is not a number of seconds >= 0")
    return seconds
