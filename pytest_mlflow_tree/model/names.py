"""The names the plugin writes and reads: tag keys, metric keys, run levels, run statuses.

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
# The seed pytest-randomly ordered the session with: ``--randomly-seed`` repeats the order.
RANDOMLY_SEED: Final = "pytest.randomly_seed"

# -- The plugin's metrics ---------------------------------------------------------------------

# Every metric the plugin writes starts with this. MLflow's charts give the metrics whose keys
# share the part before "/" a section of their own (as its own "system/" metrics), so the
# plugin's stay apart from the metrics a test logs, and a test may log "duration" itself.
METRIC_PREFIX: Final = "pytest/"
# Test runs: seconds in each phase and in all three; module and session runs: wall seconds.
DURATION: Final = "pytest/duration"
SETUP_DURATION: Final = "pytest/setup_duration"
CALL_DURATION: Final = "pytest/call_duration"
TEARDOWN_DURATION: Final = "pytest/teardown_duration"
# A test pytest-rerunfailures ran more than once: how many times it ran.
ATTEMPTS: Final = "pytest/attempts"
# A test with subtests: how many ran, and how many of them had each outcome.
SUBTESTS: Final = "pytest/subtests"
SUBTESTS_PASSED: Final = "pytest/subtests_passed"
SUBTESTS_FAILED: Final = "pytest/subtests_failed"
SUBTESTS_SKIPPED: Final = "pytest/subtests_skipped"
# Module, session and shard root runs: tests run, tests per outcome (outcome -> key; "errors"
# reads better than "error" as a count), the pass rate and the sum of the tests' durations.
TESTS: Final = "pytest/tests"
COUNTS: Final = {
    "passed": "pytest/passed",
    "failed": "pytest/failed",
    "error": "pytest/errors",
    "skipped": "pytest/skipped",
    "xfailed": "pytest/xfailed",
    "xpassed": "pytest/xpassed",
}
PASS_RATE: Final = "pytest/pass_rate"
TEST_DURATION: Final = "pytest/test_duration"
# The root run of sharded sessions: how many shard sessions its totals add up.
SHARDS: Final = "pytest/shards"

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
