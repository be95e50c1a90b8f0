"""Every setting of the plugin, once: its flag, ini key, environment variable, type and default.

The pytest options and ini keys are registered from this table, the settings are resolved from
it, the uploader takes its defaults from it, and a test checks the documented options tables
against it. Loaded with pytest on every run, enabled or not: it imports nothing but the
standard library's dataclasses and the default tracking URI.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pytest_mlflow_tree.model.defaults import DEFAULT_TRACKING_URI, LOCAL_UI

# How a setting's value is written and read:
# text: one string; seconds: a number of seconds >= 0 (a number in the ini file); switch: a flag
# without value (a bool in the ini file); tags: KEY=VALUE pairs, the flag repeatable, one pair a
# line in the ini file; choice: one of ``choices``.
SettingType = Literal["text", "seconds", "switch", "tags", "choice"]


@dataclass(frozen=True)
class Setting:
    name: str
    flag: str | None
    ini: str | None
    env: str | None
    type: SettingType
    default: str | float | bool | None
    help: str
    metavar: str | None = None
    ini_help: str | None = None
    choices: tuple[str, ...] = ()
    # How the documentation shows the default, where it is not the value itself.
    shown: str | None = None

    @property
    def dest(self) -> str:
        """The attribute of ``config.option`` that holds the flag's value."""
        if self.flag is None:
            raise ValueError(f"{self.name} has no command-line flag")
        return self.flag.lstrip("-").replace("-", "_")

    @property
    def shown_default(self) -> str:
        """The default as the options tables show it."""
        if self.shown is not None:
            return self.shown
        if self.default is None:
            return "none"
        if isinstance(self.default, bool):
            return "on" if self.default else "off"
        if isinstance(self.default, float):
            return f"`{self.default:g}`"
        return f"`{self.default}`"


DEFAULT_UPLOAD_WAIT_SECONDS = 300.0
# Also the uploader's bound for a store that does not answer.
DEFAULT_GIVE_UP_SECONDS = 4.0
CAPTURE_CHOICES = ("all", "no")
TREE_MODE = "tree"
COMPACT_MODE = "compact"
DEFAULT_COMPACT_SLOW_SECONDS = 1.0
SQL_WRITER_ENV = "PYTEST_MLFLOW_TREE_SQL_WRITER"

ENABLED = Setting(
    name="enabled",
    flag="--mlflow-tree",
    ini="mlflow_tree",
    env=None,
    type="switch",
    default=False,
    help="record this session as an MLflow run tree (session > modules > tests).",
    ini_help="record sessions as an MLflow run tree",
)
DISABLED = Setting(
    name="disabled",
    flag="--no-mlflow-tree",
    ini=None,
    env=None,
    type="switch",
    default=False,
    help="do not record this session, whatever --mlflow-tree or mlflow_tree = true say; "
    "the fixtures still work, and what they log goes nowhere.",
)
TRACKING_URI = Setting(
    name="tracking_uri",
    flag="--mlflow-tree-tracking-uri",
    ini="mlflow_tree_tracking_uri",
    env="MLFLOW_TRACKING_URI",
    type="text",
    default=DEFAULT_TRACKING_URI,
    metavar="URI",
    help="MLflow tracking URI. Default: $MLFLOW_TRACKING_URI, then the ini value, "
    f"then {DEFAULT_TRACKING_URI}.",
    ini_help="MLflow tracking URI",
)
EXPERIMENT = Setting(
    name="experiment",
    flag="--mlflow-tree-experiment",
    ini="mlflow_tree_experiment",
    env="MLFLOW_EXPERIMENT_NAME",
    type="text",
    default=None,
    metavar="NAME",
    help="experiment to record into, created if missing. Default: $MLFLOW_EXPERIMENT_NAME, "
    "then the ini value, then the rootdir's name.",
    ini_help="MLflow experiment name",
    shown="the rootdir's name",
)
RUN_NAME = Setting(
    name="run_name",
    flag="--mlflow-tree-run-name",
    ini="mlflow_tree_run_name",
    env=None,
    type="text",
    default=None,
    metavar="NAME",
    help="name of the session run.",
    ini_help="name of the session run",
    shown="`pytest <date time>`",
)
TAGS = Setting(
    name="tags",
    flag="--mlflow-tree-tag",
    ini="mlflow_tree_tags",
    env=None,
    type="tags",
    default=None,
    metavar="KEY=VALUE",
    help="extra tag on the session run (repeatable); overrides mlflow_tree_tags.",
    ini_help="extra session tags, one KEY=VALUE a line",
)
JOURNAL_DIR = Setting(
    name="journal_dir",
    flag="--mlflow-tree-journal-dir",
    ini="mlflow_tree_journal_dir",
    env=None,
    type="text",
    default=None,
    metavar="DIR",
    help="where journals are written. Default: .pytest_cache/d/mlflow-tree.",
    ini_help="where journals are written",
    shown="`.pytest_cache/d/mlflow-tree`",
)
UPLOAD_WAIT = Setting(
    name="upload_wait_seconds",
    flag="--mlflow-tree-upload-wait",
    ini="mlflow_tree_upload_wait",
    env=None,
    type="seconds",
    default=DEFAULT_UPLOAD_WAIT_SECONDS,
    metavar="SECONDS",
    help="longest wait for the upload after the last test; what is not uploaded by then "
    f"stays in the journal for replay. Default: {DEFAULT_UPLOAD_WAIT_SECONDS:g}.",
    ini_help="longest wait in seconds for the upload after the last test",
)
GIVE_UP_AFTER = Setting(
    name="give_up_seconds",
    flag="--mlflow-tree-give-up-after",
    ini="mlflow_tree_give_up_after",
    env=None,
    type="seconds",
    default=DEFAULT_GIVE_UP_SECONDS,
    metavar="SECONDS",
    help="after the last test, give up on a tracking server that has not answered for this "
    "long; what is not uploaded stays in the journal for replay. "
    f"Default: {DEFAULT_GIVE_UP_SECONDS:g}.",
    ini_help="give up on a tracking server silent for this many seconds",
)
STRICT = Setting(
    name="strict",
    flag="--mlflow-tree-strict",
    ini="mlflow_tree_strict",
    env=None,
    type="switch",
    default=False,
    help="fail the session (non-zero exit code) when the recording could not be uploaded.",
    ini_help="fail the session when the upload fails",
)
CAPTURE = Setting(
    name="capture",
    flag="--mlflow-tree-capture",
    ini="mlflow_tree_capture",
    env=None,
    type="choice",
    default="all",
    choices=CAPTURE_CHOICES,
    help="attach the captured stdout, stderr and log to failure.txt (all) or not (no). "
    "Default: all.",
    ini_help="captured output in failure.txt: all or no",
)
JOURNAL_ONLY = Setting(
    name="journal_only",
    flag="--mlflow-tree-journal-only",
    ini="mlflow_tree_journal_only",
    env=None,
    type="switch",
    default=False,
    help="write the journal but do not upload it (upload later with `pytest-mlflow-tree replay`).",
    ini_help="write the journal, do not upload it",
)
KEEP_JOURNAL = Setting(
    name="keep_journal",
    flag="--mlflow-tree-keep-journal",
    ini="mlflow_tree_keep_journal",
    env=None,
    type="switch",
    default=False,
    help="keep the journal after a complete upload.",
    ini_help="keep the journal after a complete upload",
)
MODE = Setting(
    name="mode",
    flag="--mlflow-tree-mode",
    ini="mlflow_tree_mode",
    env=None,
    type="text",
    default=TREE_MODE,
    metavar="MODE",
    help="tree: one run per test (default); compact: for very large suites, every test in "
    "a table artifact per module, runs only for failing, rerun and slow tests.",
    ini_help="tree (one run per test) or compact",
)
COMPACT_SLOW = Setting(
    name="slow_seconds",
    flag="--mlflow-tree-compact-slow",
    ini="mlflow_tree_compact_slow",
    env=None,
    type="seconds",
    default=DEFAULT_COMPACT_SLOW_SECONDS,
    metavar="SECONDS",
    help="compact mode: tests at least this slow get a run of their own. Default: 1.",
    ini_help="compact mode: seconds from which a test gets a run",
)
PARENT = Setting(
    name="parent_run_id",
    flag="--mlflow-tree-parent",
    ini=None,
    env="PYTEST_MLFLOW_TREE_PARENT_RUN_ID",
    type="text",
    default=None,
    metavar="RUN_ID",
    help="record the session run as a child of this existing run (for example the "
    "training run of the model under test). Default: $PYTEST_MLFLOW_TREE_PARENT_RUN_ID.",
)
RESUME = Setting(
    name="resume_run_id",
    flag="--mlflow-tree-resume",
    ini=None,
    env=None,
    type="text",
    default=None,
    metavar="SESSION_RUN_ID",
    help="continue this recorded session: the tests run now replace their runs in it, "
    "the others are kept, and module and session counts are recomputed.",
)
SHARD_KEY = Setting(
    name="shard_key",
    flag="--mlflow-tree-shard-key",
    ini="mlflow_tree_shard_key",
    env="PYTEST_MLFLOW_TREE_SHARD_KEY",
    type="text",
    default=None,
    metavar="KEY",
    help="join every session given the same KEY under one root run (sharded CI jobs); "
    "'ci' uses the CI pipeline's id. Default: $PYTEST_MLFLOW_TREE_SHARD_KEY, then the ini "
    "value, then none.",
    ini_help="join sessions with this key under one root run",
)
UI_URL = Setting(
    name="ui_url",
    flag="--mlflow-tree-ui-url",
    ini="mlflow_tree_ui_url",
    env="PYTEST_MLFLOW_TREE_UI_URL",
    type="text",
    default=None,
    metavar="URL",
    help="address of the MLflow UI that links to runs point to (the terminal's link, the HTML "
    "report). Default: $PYTEST_MLFLOW_TREE_UI_URL, then the ini value, then the tracking URI "
    f"when it is http(s)://, else {LOCAL_UI}.",
    ini_help="address of the MLflow UI for links to runs",
    shown=f"the tracking URI when `http(s)://`, else `{LOCAL_UI}`",
)
# Read by the uploader only; no flag, no ini key.
SQL_WRITER = Setting(
    name="sql_writer",
    flag=None,
    ini=None,
    env=SQL_WRITER_ENV,
    type="choice",
    default=None,
    choices=("public",),
    help="SQL stores: public writes with MLflow's public client, one run at a time, "
    "instead of in batches.",
    shown="batched",
)

SETTINGS: tuple[Setting, ...] = (
    ENABLED,
    DISABLED,
    TRACKING_URI,
    EXPERIMENT,
    RUN_NAME,
    TAGS,
    JOURNAL_DIR,
    UPLOAD_WAIT,
    GIVE_UP_AFTER,
    STRICT,
    CAPTURE,
    JOURNAL_ONLY,
    KEEP_JOURNAL,
    MODE,
    COMPACT_SLOW,
    PARENT,
    RESUME,
    SHARD_KEY,
    UI_URL,
    SQL_WRITER,
)
