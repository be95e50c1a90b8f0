"""Keep MLflow's console output (URL prints, INFO logs, migrations, telemetry) to itself."""

from __future__ import annotations

import logging
import os

# MLflow's HTTP client defaults to a 120 s timeout; this bound applies unless the user set one.
HTTP_BOUNDS = {
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "30",
}

# Always, whatever the user set: MLflow's own retries (7, with up to 120 s backoff) repeat every
# request, create_run included, so a create_run whose answer was lost would make a second run,
# and one call to a dead server would hang for minutes. The uploader retries itself, within its
# own time bound and without duplicates (see ``retries``).
FORCED_ENV = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0",
}

QUIET_ENV = {
    "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "true",
    # A test reporter sends no usage telemetry of its own unless the user asked for it.
    "MLFLOW_DISABLE_TELEMETRY": "true",
    **HTTP_BOUNDS,
}

_NOISY_LOGGERS = ("mlflow", "alembic", "sqlalchemy", "urllib3")


def environment(base: dict[str, str]) -> dict[str, str]:
    """``base`` plus our defaults, the user's own settings winning."""
    return {**QUIET_ENV, **base, **FORCED_ENV}


def apply_to_process() -> None:
    """Call before importing mlflow: set the environment defaults for this process."""
    for key, value in QUIET_ENV.items():
        os.environ.setdefault(key, value)
    os.environ.update(FORCED_ENV)


def silence_loggers() -> None:
    """Call after importing mlflow, which installs its own INFO handler on its logger."""
    for name in _NOISY_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    # MLflow 2.x runs its database migrations through alembic's fileConfig(), which resets the
    # levels set above and prints every step: only a process-wide floor holds for all versions.
    # This process is ours (the uploader or the replay command), so the floor harms nobody.
    logging.disable(logging.INFO)
