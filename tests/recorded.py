"""A suite recorded once for a whole test module, read back by each of its tests.

``pytester`` and the ``record`` fixture belong to one test; a module that asserts many things
about one recording records it here instead: pytest in a subprocess, in a directory and a
SQLite store of the module's own, as a user runs it.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import servers
from conftest import Store

# A bound for a small suite's pytest and upload on a busy machine, not a measurement.
TIMEOUT = 600.0


def record_suite(
    directory: Path, migrated_db: Path, files: dict[str, str], *args: str
) -> tuple[pytest.RunResult, Store]:
    """Write ``files`` (paths relative to the rootdir) into ``directory`` and record them with
    ``args`` into a fresh store there; return pytest's result and the store."""
    path = directory / "store" / "mlflow.db"
    path.parent.mkdir(parents=True)
    shutil.copy(migrated_db, path)
    store = Store(uri=f"sqlite:///{path}", path=path)
    project = directory / "project"
    for name, body in files.items():
        source = project / name
        source.parent.mkdir(parents=True, exist_ok=True)
        source.write_text(textwrap.dedent(body), encoding="utf-8")
    start = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "pytest", *store.args(), *args],
        cwd=project,
        env=servers.clean_env(),
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )
    result = pytest.RunResult(
        done.returncode,
        done.stdout.splitlines(),
        done.stderr.splitlines(),
        time.monotonic() - start,
    )
    return result, store
