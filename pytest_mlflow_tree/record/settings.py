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

from pytest_mlflow_tree.model import settings_table as table
from pytest_mlflow_tree.model import sqlitepath
from pytest_mlflow_tree.model.compact import MODES
from pytest_mlflow_tree.model.defaults import DEFAULT_TRACKING_URI
from pytest_mlflow_tree.model.records import HeaderOptions
from pytest_mlflow_tree.model.settings_table import (
    DEFAULT_COMPACT_SLOW_SECONDS,
    DEFAULT_GIVE_UP_SECONDS,
    DEFAULT_UPLOAD_WAIT_SECONDS,
    TREE_MODE,
    Setting,
)
from pytest_mlflow_tree.record.options import ini_value, is_enabled


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
    upload_wait_seconds: float = DEFAULT_UPLOAD_WAIT_SECONDS
    mode: str = TREE_MODE
    slow_seconds: float = DEFAULT_COMPACT_SLOW_SECONDS
    parent_run_id: str | None = None
    resume_run_id: str | None = None

    shard_key: str | None = None
    # The MLflow UI's address for links to runs; None: derived from the tracking URI.
    ui_url: str | None = None

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
        if self.ui_url is not None:
            options["ui_url"] = self.ui_url
        return options

    give_up_seconds: float = DEFAULT_GIVE_UP_SECONDS
    strict: bool = False
    # Whether failure.txt carries the test's captured stdout, stderr and log.
    capture: bool = True


def _given(config: pytest.Config, setting: Setting) -> tuple[str | None, str]:
    """The setting's text from the highest source that gives one, and the source's name.

    An empty value counts as not given, so that ``VAR=`` does not hide the ini file.
    """
    if setting.flag is not None:
        value = getattr(config.option, setting.dest)
        if value:
            return str(value), setting.flag
    if setting.env is not None:
        value = os.environ.get(setting.env)
        if value:
            return value, setting.env
    if setting.ini is not None:
        value = ini_value(config, setting)
        if value is not None:
            return _text(value), f"{setting.ini} (ini)"
    return None, "default"


def _text(value: object) -> str:
    """An ini value as its text: a whole number pytest read as a float shows as written."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _switch(config: pytest.Config, setting: Setting) -> bool:
    """A flag turns a switch on; without it, the ini file may."""
    if getattr(config.option, setting.dest):
        return True
    return setting.ini is not None and bool(ini_value(config, setting))


def _seconds(config: pytest.Config, setting: Setting) -> float:
    """A number of seconds >= 0, or the setting's default."""
    text, source = _given(config, setting)
    if text is None:
        return float(setting.default or 0)
    try:
        seconds = float(text)
    except ValueError:
        seconds = -1.0
    if not seconds >= 0:
        raise _bad(source, f"{text!r} is not a number of seconds >= 0")
    return seconds


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


def resolve(config: pytest.Config) -> Settings:
    uri, uri_source = _given(config, table.TRACKING_URI)
    experiment, experiment_source = _given(config, table.EXPERIMENT)
    parent = _given(config, table.PARENT)[0]
    resume = _given(config, table.RESUME)[0]
    return Settings(
        enabled=is_enabled(config),
        # The uploader and a later replay may run elsewhere: they must write to the same file.
        tracking_uri=sqlitepath.absolute_uri(uri or DEFAULT_TRACKING_URI),
        tracking_uri_source=uri_source,
        experiment=experiment or config.rootpath.name,
        experiment_source=experiment_source,
        run_name=_given(config, table.RUN_NAME)[0],
        tags=_tags(config),
        journal_dir=_journal_dir(config),
        upload=not _switch(config, table.JOURNAL_ONLY),
        keep_journal=_switch(config, table.KEEP_JOURNAL),
        # In this order, the first bad value is the one reported.
        upload_wait_seconds=_seconds(config, table.UPLOAD_WAIT),
        give_up_seconds=_seconds(config, table.GIVE_UP_AFTER),
        strict=_switch(config, table.STRICT),
        capture=_capture(config) != "no",
        mode=_mode(config),
        slow_seconds=_seconds(config, table.COMPACT_SLOW),
        # Checked by the uploader, which can ask the store: a bad id must not stop the tests.
        parent_run_id=parent.strip() if parent else None,
        resume_run_id=resume.strip() if resume else None,
        shard_key=_shard_key(config),
        ui_url=_ui_url(config),
    )


def _tags(config: pytest.Config) -> dict[str, str]:
    """The ini file's tags, overridden per key by the command line's."""
    setting = table.TAGS
    assert setting.ini is not None
    tags = _parse_tags(config.getini(setting.ini), f"{setting.ini} (ini)")
    flag_tags = getattr(config.option, setting.dest) or []
    tags.update(_parse_tags(flag_tags, str(setting.flag)))
    return tags


def _journal_dir(config: pytest.Config) -> Path | None:
    """Relative to the rootdir, so that it does not move with the current directory."""
    text = _given(config, table.JOURNAL_DIR)[0]
    if not text:
        return None
    journal_dir = Path(text)
    return journal_dir if journal_dir.is_absolute() else config.rootpath / journal_dir


def _capture(config: pytest.Config) -> str | None:
    """Checked here for the ini file; argparse checks the flag's choices."""
    capture, source = _given(config, table.CAPTURE)
    if capture is not None and capture not in table.CAPTURE.choices:
        raise _bad(source, f"{capture!r} is not one of {', '.join(table.CAPTURE.choices)}")
    return capture


def _mode(config: pytest.Config) -> str:
    text, source = _given(config, table.MODE)
    mode = (text or TREE_MODE).strip().lower()
    if mode not in MODES:
        raise _bad(source, f"mode {text!r} is not one of {', '.join(MODES)}")
    return mode


def _ui_url(config: pytest.Config) -> str | None:
    text, source = _given(config, table.UI_URL)
    if text is None:
        return None
    address = text.strip()
    if not address.startswith(("http://", "https://")):
        raise _bad(source, f"{text!r} is not an http:// or https:// address")
    return address


def _shard_key(config: pytest.Config) -> str | None:
    """The key as given, or for ``ci`` the running CI pipeline's id."""
    shard_key, source = _given(config, table.SHARD_KEY)
    if shard_key != "ci":
        return shard_key
    from pytest_mlflow_tree.record import ci

    shard_key = ci.pipeline_key(os.environ)
    if shard_key is None:
        raise _bad(source, "'ci' needs a CI pipeline id, and no known CI is running")
    return shard_key
