"""The names the plugin writes and reads: tag keys, run levels, run statuses.

Import them by name (``from pytest_mlflow_tree.model.names import SESSION_UUID``); a module
alias such as ``tags`` would collide with the many local variables of that name.
"""

from __future__ import annotations

from typing import Final

# -- MLflow's own tags ------------------------------------------------------------------------

RUN_NAME: Final = "mlflow.runName"
PARENT_RUN_ID: Final = "mlflow.parentRunId"
ROOT_RUN_ID: Final = "mlflow.rootRunId"
# The run's description, shown on its page in the UI.
NOTE: Final = "mlflow.note.content"
USER: Final = "mlflow.user"
SOURCE_NAME: Final = "mlflow.source.name"
SOURCE_TYPE: Final = "mlflow.source.type"
SOURCE_PREFIX: Final = "mlflow.source."
GIT_COMMIT: Final = "mlflow.source.git.commit"
GIT_BRANCH: Final = "mlflow.source.git.branch"
GIT_REPO_URL: Final = "mlflow.source.git.repoURL"
# The tag MlflowClient.log_table sets: the UI lists the run's tables from it.
LOGGED_ARTIFACTS: Final = "mlflow.loggedArtifacts"

# -- The plugin's tags ------------------------------------------------------------------------

# Every run of a session carries the session's uuid and its own key in the tree: an upload
# finds the runs an earlier upload of the same journal made by these two.
SESSION_UUID: Final = "pytest.session_uuid"
RUN_KEY: Final = "pytest.run_key"
# One of the levels below.
LEVEL: Final = "pytest.level"
NODEID: Final = "pytest.nodeid"
OUTCOME: Final = "pytest.outcome"
FILE: Final = "pytest.file"
LINE: Final = "pytest.line"
SKIP_REASON: Final = "pytest.skip_reason"
XFAIL_REASON: Final = "pytest.xfail_reason"
# A test's place in pytest's order (the collected items, as plugins reordered them), from 0.
COLLECTION_INDEX: Final = "pytest.collection_index"
# The xdist worker that ran the test.
WORKER: Final = "pytest.worker"
FLAKY: Final = "pytest.flaky"
# The test's markers, comma-separated.
MARKERS: Final = "pytest.markers"
# Tags a test may carry about its reruns all begin with this.
RERUN_PREFIX: Final = "pytest.rerun"
COLLECTION_ERROR: Final = "pytest.collection_error"
EXIT_STATUS: Final = "pytest.exitstatus"
COMMAND: Final = "pytest.command"
ROOTDIR: Final = "pytest.rootdir"
PYTHON_VERSION: Final = "pytest.python_version"
PYTEST_VERSION: Final = "pytest.pytest_version"
MLFLOW_VERSION: Final = "pytest.mlflow_version"
PLUGIN_VERSION: Final = "pytest.plugin_version"
PLATFORM: Final = "pytest.platform"
GIT_DIRTY: Final = "pytest.git.dirty"
# Compact mode: on the session run, the mode and the slow-test threshold it was recorded with.
MODE: Final = "pytest.mode"
SLOW_SECONDS: Final = "pytest.slow_seconds"
# The CI job's metadata: one tag per detected field, all under this prefix.
CI_PREFIX: Final = "pytest.ci."
CI_JOB_ID: Final = "pytest.ci.job_id"
CI_JOB_URL: Final = "pytest.ci.job_url"
# A test's user properties (``record_property``), one tag each under this prefix.
PROPERTY_PREFIX: Final = "pytest.property."
# The key every session of one sharded CI job shares, on the root run that joins them.
SHARD_KEY: Final = "pytest.shard_key"
# On test runs of a resumed session: the resuming journal's uuid, and the run it replaced.
RESUMED_BY: Final = "pytest.resumed_by"
REPLACED_RUN_ID: Final = "pytest.replaced_run_id"

# -- Run levels (the values of LEVEL) ---------------------------------------------------------

# The run that joins the sessions of one sharded CI job.
ROOT_LEVEL: Final = "root"
SESSION_LEVEL: Final = "session"
MODULE_LEVEL: Final = "module"
TEST_LEVEL: Final = "test"

# -- Run statuses -----------------------------------------------------------------------------

RUNNING: Final = "RUNNING"
FINISHED: Final = "FINISHED"
FAILED: Final = "FAILED"
KILLED: Final = "KILLED"
# Statuses of a run that has ended; a run in any other status is still being written.
TERMINAL_STATUSES: Final = frozenset({FINISHED, FAILED, KILLED})

# -- The plugin's metrics on test runs ---------------------------------------------------------

# Seconds of each phase of a test, and of all of them.
SETUP_DURATION: Final = "setup_duration"
CALL_DURATION: Final = "call_duration"
TEARDOWN_DURATION: Final = "teardown_duration"
DURATION: Final = "duration"
