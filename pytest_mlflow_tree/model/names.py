"""The names the plugin writes and reads: tag keys, run levels, run statuses."""

from __future__ import annotations

# Statuses of a run that has ended; a run in any other status is still being written.
TERMINAL_STATUSES = frozenset({"FINISHED", "FAILED", "KILLED"})

# The key every session of one sharded CI job shares, on the root run that joins them.
SHARD_KEY = "pytest.shard_key"
# On test runs of a resumed session: the resuming journal's uuid, and the run it replaced.
RESUMED_BY = "pytest.resumed_by"
REPLACED_RUN_ID = "pytest.replaced_run_id"
