"""The uploader imports MLflow with the garbage collector paused, then freezes what it imported.

In its own process only, and in its worker processes: frozen objects are never collected, so a
process that goes on with other work (these tests, calling the uploader in-process) must keep
collecting as before. Each check that needs a fresh process runs one.
"""

from __future__ import annotations

import gc
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import Store
from replaying import journal_only, replay

from pytest_mlflow_tree import frozenimports, uploadprocs

# Importing MLflow creates several hundred thousand objects; a process that froze none has 0.
MANY = 100_000
TIMEOUT = 300


def _journal(pytester: pytest.Pytester, store: Store) -> Path:
    pytester.makepyfile(test_few="def test_one(): pass\ndef test_two(): assert False")
    result, journal = journal_only(pytester, store)
    result.assert_outcomes(passed=1, failed=1)
    return journal


def _in_new_process(script: str, *args: str) -> Any:
    """Run ``script`` in a fresh interpreter; what it printed last, as JSON."""
    done = subprocess.run(
        [sys.executable, "-c", script, *args], capture_output=True, text=True, timeout=TIMEOUT
    )
    assert done.returncode == 0, done.stderr[-5000:]
    return json.loads(done.stdout.splitlines()[-1])


_UPLOAD = """
import gc, json, sys
from pathlib import Path
from pytest_mlflow_tree import upload

status = upload.run(Path(sys.argv[1]), own_process=True)
print(json.dumps({"done": status.done, "error": status.error,
                  "collecting": gc.isenabled(), "frozen": gc.get_freeze_count()}))
"""


def test_the_uploaders_own_process_freezes_mlflow_and_collects_again_after(
    pytester: pytest.Pytester, store: Store
) -> None:
    journal = _journal(pytester, store)
    after = _in_new_process(_UPLOAD, str(journal))
    assert after["done"], after
    assert after["collecting"], after
    assert after["frozen"] > MANY, after
    tree = store.tree()
    assert sorted(run.info.status for run in tree.level("test")) == ["FAILED", "FINISHED"]


_WORKER = """
import gc, json, os, sys, time
from pathlib import Path
from pytest_mlflow_tree import uploadprocs

setup = uploadprocs.WorkerSetup(sys.argv[1], "the store", 4.0, None, os.getpid())
pool = uploadprocs.WorkerPool(setup, uploadprocs.Backlog(Path(sys.argv[2])))
pool.start()
deadline = time.monotonic() + 240
while pool.executor is None and pool.error is None and time.monotonic() < deadline:
    time.sleep(0.05)
assert pool.executor is not None, pool.error
frozen = pool.executor.submit(gc.get_freeze_count).result(timeout=60)
collecting = pool.executor.submit(gc.isenabled).result(timeout=60)
pool.shutdown()
print(json.dumps({"frozen": frozen, "collecting": collecting}))
"""


@pytest.mark.skipif(not uploadprocs.available(), reason="needs the forkserver start method")
def test_workers_from_the_forkserver_freeze_what_it_imported(store: Store, tmp_path: Path) -> None:
    worker = _in_new_process(_WORKER, store.uri, str(tmp_path / "journal.jsonl"))
    assert worker["collecting"], worker
    assert worker["frozen"] > MANY, worker


def test_an_upload_in_a_process_that_goes_on_freezes_nothing(
    pytester: pytest.Pytester, store: Store
) -> None:
    journal = _journal(pytester, store)
    frozen = gc.get_freeze_count()
    code, _, err = replay(str(journal))
    assert code == 0, err
    assert gc.isenabled()
    assert gc.get_freeze_count() == frozen


def test_collection_resumes_when_an_import_fails() -> None:
    collecting: list[bool] = []

    def import_missing() -> None:
        with frozenimports.frozen_imports():
            collecting.append(gc.isenabled())
            import pytest_mlflow_tree_no_such_module  # type: ignore[import-not-found]  # noqa: F401

    try:
        with pytest.raises(ModuleNotFoundError):
            import_missing()
        assert collecting == [False]
        assert gc.isenabled()
    finally:
        # This process goes on with other tests: collect what was frozen here.
        gc.unfreeze()
