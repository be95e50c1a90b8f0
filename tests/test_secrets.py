"""Secrets never reach what the plugin writes: canaries planted everywhere, everything scanned.

Credentials in the tracking URI, MLflow's token and password variables and any environment
variable whose name looks secret carry canary values; a test prints, logs, parametrizes with and
fails on them. Then every run's tags, params, metrics and artifacts on the tracking server, the
journal, the uploader's log and status file, and pytest's output lines of the plugin are
searched for them.
"""

from __future__ import annotations

import tempfile
import urllib.parse
from pathlib import Path
from typing import Any

import pytest
from conftest import Store

CANARIES = {
    "MLFLOW_TRACKING_TOKEN": "canary-token-5b7e2",
    "MLFLOW_TRACKING_PASSWORD": "canary-mlflow-password-9d1c4",
    "BILLING_SERVICE_SECRET": "canary-service-secret-3f8a0",
    "OPENAI_API_KEY": "canary-api-key-6e2b9",
    "DATABASE_PASSWORD": "canary-db-password-1a4d7",
    "RELEASE_SIGNING_KEY": "canary-signing-key-8c3f5",
    "GCP_CREDENTIALS": "canary-credentials-2e6a1",
}
URI_PASSWORD = "canary-uri-pass-4d9b3"
# Printed, logged, used as a parameter, a skip reason and in a failing assertion.
LEAKY_SUITE = """
    import logging
    import os
    import sys

    import pytest

    @pytest.mark.parametrize("key", [os.environ["OPENAI_API_KEY"]])
    def test_parametrized_with_a_key(key):
        assert key

    @pytest.mark.skip(reason="needs " + os.environ["GCP_CREDENTIALS"])
    def test_skipped():
        pass

    def test_leaks_everything():
        print("token:", os.environ["BILLING_SERVICE_SECRET"])
        sys.stderr.write("password: " + os.environ["DATABASE_PASSWORD"] + "\\n")
        logging.getLogger("app").warning("signing with %s", os.environ["RELEASE_SIGNING_KEY"])
        secret = os.environ["BILLING_SERVICE_SECRET"]
        assert secret == "expected", os.environ["OPENAI_API_KEY"]
"""


def everything_recorded(store: Store) -> str:
    """All text of every run of the experiment: tags, params, metric names, artifacts."""
    tree = store.tree()
    client = tree.client
    parts: list[str] = []
    for run in tree.runs:
        parts += [run.info.run_name, repr(run.data.tags), repr(run.data.params)]
        parts += list(run.data.metrics)
        if not client.list_artifacts(run.info.run_id):
            # Nothing to scan; MLflow 2 fails to download the empty root of such a run.
            continue
        with tempfile.TemporaryDirectory() as directory:
            local = Path(client.download_artifacts(run.info.run_id, "", directory))
            for path in sorted(local.rglob("*")):
                if path.is_file():
                    parts += [str(path.relative_to(local)), path.read_text(encoding="utf-8")]
    return "\n".join(parts)


def with_credentials(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    return parts._replace(netloc=f"ci-user:{URI_PASSWORD}@{parts.netloc}").geturl()


@pytest.mark.parametrize("store", ["server"], indirect=True)
def test_no_secret_reaches_the_store_the_journal_the_logs_or_the_terminal(
    pytester: pytest.Pytester, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in CANARIES.items():
        monkeypatch.setenv(name, value)
    pytester.makepyfile(test_leaky=LEAKY_SUITE)
    journals = pytester.path / "journals"
    result = pytester.runpytest(
        "--mlflow-tree",
        f"--mlflow-tree-tracking-uri={with_credentials(store.uri)}",
        f"--mlflow-tree-experiment={store.experiment}",
        "--mlflow-tree-keep-journal",
        f"--mlflow-tree-journal-dir={journals}",
    )
    result.assert_outcomes(passed=1, failed=1, skipped=1)
    canaries = [*CANARIES.values(), URI_PASSWORD]

    recorded = everything_recorded(store)
    # The recording is there (so the scan means something), with the secrets masked.
    tree = store.tree()
    failed = tree.tests["test_leaky.py::test_leaks_everything"]
    failure = tree.artifact(failed, "failure.txt")
    assert "Captured stdout call" in failure
    assert "token: ***" in failure
    assert "password: ***" in failure
    assert "signing with ***" in failure
    assert tree.level("test")[0].data.tags["pytest.session_uuid"]
    key_run = next(r for r in tree.level("test") if "parametrized" in r.data.tags["pytest.nodeid"])
    assert key_run.data.params == {"key": "***"}

    files = sorted(journals.iterdir())
    assert sorted(f.name.split(".", 1)[1] for f in files) == [
        "jsonl",
        "status.json",
        "upload.log",
    ]
    written = {f.name: f.read_text(encoding="utf-8", errors="replace") for f in files}
    plugin_lines = "\n".join(line for line in result.outlines if "mlflow-tree" in line)
    assert "session run" in plugin_lines
    places: dict[str, Any] = {"tracking store": recorded, "terminal": plugin_lines, **written}
    for place, text in places.items():
        for canary in canaries:
            assert canary not in text, f"{canary} found in {place}"
    # What the tests never printed appears nowhere in pytest's output either.
    output = result.stdout.str() + result.stderr.str()
    for name in ("MLFLOW_TRACKING_TOKEN", "MLFLOW_TRACKING_PASSWORD"):
        assert CANARIES[name] not in output
    assert URI_PASSWORD not in output


def test_captured_output_can_be_left_out_of_failure_artifacts(
    pytester: pytest.Pytester, store: Store
) -> None:
    pytester.makepyfile(
        test_quiet="""
            def test_fails():
                print("private", "output".upper())
                assert 1 == 2
        """
    )
    result = pytester.runpytest(*store.args(), "--mlflow-tree-capture=no")
    result.assert_outcomes(failed=1)
    tree = store.tree()
    failure = tree.artifact(tree.tests["test_quiet.py::test_fails"], "failure.txt")
    assert "assert 1 == 2" in failure
    assert "private OUTPUT" not in failure
    assert "Captured" not in failure

    pytester.makeini("[pytest]\nmlflow_tree_capture = sometimes\n")
    bad = pytester.runpytest(*store.args())
    assert bad.ret == pytest.ExitCode.USAGE_ERROR
    assert "mlflow_tree_capture (ini): 'sometimes' is not one of all, no" in bad.stderr.str()
