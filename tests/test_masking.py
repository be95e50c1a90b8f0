"""Masking secrets rewrites values only: never a record's keys, structure or its own fields.

Sessions recorded into a real SQLite store with secrets that are common words, numbers, key
names and parts of test ids, read back as a user would. The rules themselves (which names and
values are secrets, how text and records are masked) are unit tests in ``unit/test_redact.py``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from conftest import Record, Store
from replaying import command, replay

from pytest_mlflow_tree.model import journal, redact
from pytest_mlflow_tree.record import ci

MASK = redact.MASK


@pytest.fixture
def no_ci(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """No CI variables: the machine running these tests may itself be a CI job."""
    for name in (*ci.VARIABLES, "CI"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def kept_journal(directory: Path) -> list[dict[str, Any]]:
    (path,) = directory.glob("*.jsonl")
    return [dict(record) for record in journal.read(path)]


WEAK_SUITE = """
    import pytest

    @pytest.mark.parametrize("rows", [123456])
    def test_pytest_session_mlflow(rows, record_property):
        record_property("rows", rows)
        print("pytest session mlflow", rows)

    def test_fails():
        assert "mlflow" == "session"
"""
WEAK_NODEIDS = ["test_weak.py::test_fails", "test_weak.py::test_pytest_session_mlflow[123456]"]


# A number that is a param and a metric, and a word in the store's own path: which values are
# too weak and that weak ones are left alone everywhere is for the rules; this shows a session
# recorded whole beside such secrets.
WEAK_SECRETS = {"API_TOKEN": "123456", "POSTGRES_PASSWORD": "mlflow"}


def test_secrets_too_weak_to_mask_are_named_and_the_session_recorded_whole(
    pytester: pytest.Pytester, record: Record, store: Store, no_ci: pytest.MonkeyPatch
) -> None:
    for variable, value in WEAK_SECRETS.items():
        no_ci.setenv(variable, value)
    pytester.makepyfile(test_weak=WEAK_SUITE)
    journals = pytester.path / "journals"
    result, tree = record(
        "--mlflow-tree-keep-journal", f"--mlflow-tree-journal-dir={journals}", live=True
    )
    result.assert_outcomes(passed=1, failed=1)

    # Every run is there with its own tags, values and store: nothing was rewritten.
    assert sorted(tree.tests) == WEAK_NODEIDS
    passed = tree.tests["test_weak.py::test_pytest_session_mlflow[123456]"]
    assert passed.data.tags["pytest.outcome"] == "passed"
    assert passed.data.params == {"rows": "123456"}
    assert passed.data.metrics["rows"] == 123456.0
    assert passed.data.tags["mlflow.source.name"] == "test_weak.py"
    assert passed.data.tags["mlflow.user"] == tree.session.data.tags["mlflow.user"] != "***"
    failed = tree.tests["test_weak.py::test_fails"]
    assert failed.data.tags["pytest.outcome"] == "failed"
    assert "assert 'mlflow' == 'session'" in tree.artifact(failed, "failure.txt")
    records = kept_journal(journals)
    assert records[0]["tracking_uri"] == store.uri
    assert records[-1]["kind"] == "end"

    # Left as they are, named once, by the variable, never by the value.
    (warning,) = [line for line in result.outlines if "too common to mask" in line]
    names = warning.rsplit(": ", 1)[1].split(", ")
    for variable, value in WEAK_SECRETS.items():
        assert variable in names
        assert value not in names
    assert "WARNING" not in result.stdout.str()  # the upload went through

    code, out, err = command("show", "--last", "--tracking-uri", store.uri)
    assert code == 0, err
    assert "2 tests: 1 failed, 1 passed" in out.splitlines()[0]
    assert "unknown" not in out.lower()
    # The journal replays where it was meant to go, onto the same runs.
    (path,) = journals.glob("*.jsonl")
    code, _, err = replay(str(path))
    assert code == 0, err
    assert len(store.tree().runs) == len(tree.runs)
    assert store.path is not None
    for directory in (store.path.parent, pytester.path):
        assert [p for p in directory.rglob("*.db") if MASK in p.name] == []


STRONG_SUITE = """
    import os

    import pytest

    @pytest.mark.parametrize("key", [os.environ["FIRST_API_KEY"], os.environ["SECOND_API_KEY"]])
    def test_key(key, record_property):
        record_property("ratio", 0.12345678901234568)

    def test_uses_the_mode():
        assert os.environ["SERVICE_AUTH_MODE"] == "other"
"""


def test_strong_secrets_are_masked_in_values_only_and_tests_stay_apart(
    pytester: pytest.Pytester, record: Record, no_ci: pytest.MonkeyPatch
) -> None:
    # Secrets that are also a record's key, the digits of a number, and test ids' parts.
    no_ci.setenv("SERVICE_AUTH_MODE", "session_uuid")
    no_ci.setenv("NUMERIC_TOKEN", "12345678901234568")
    no_ci.setenv("FIRST_API_KEY", "key-one-5d8e1")
    no_ci.setenv("SECOND_API_KEY", "key-two-7c2a9")
    pytester.makepyfile(test_strong=STRONG_SUITE)
    result, tree = record()
    result.assert_outcomes(passed=2, failed=1)
    assert not [line for line in result.outlines if "too common to mask" in line]

    tests = tree.level("test")
    assert len(tests) == 3
    assert sorted(t.data.tags["pytest.nodeid"] for t in tests) == [
        "test_strong.py::test_key[***]",
        "test_strong.py::test_key[***]#2",
        "test_strong.py::test_uses_the_mode",
    ]
    for test in tests:
        assert (
            test.data.tags["pytest.session_uuid"] == tree.session.data.tags["pytest.session_uuid"]
        )
        assert test.data.tags["mlflow.parentRunId"] == tree.modules["test_strong.py"].info.run_id
        if "test_key" in test.data.tags["pytest.nodeid"]:
            assert test.data.params == {"key": "***"}
            assert test.data.metrics["ratio"] == 0.12345678901234568
    failure = tree.artifact(tree.tests["test_strong.py::test_uses_the_mode"], "failure.txt")
    assert "session_uuid" not in failure
    assert "assert '***' == 'other'" in failure


def test_everything_that_leaves_the_process_is_masked_in_one_pass(
    pytester: pytest.Pytester, store: Store, no_ci: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    secrets = {
        "GITHUB_TOKEN": "ghp_canary7Hx2kQ9w",
        "option --token": "tok-9f3k2x7q",
        "option --api-key": "key-4m8n1b6v",
        "GITHUB_SERVER_URL's password": "srv-pass-8k2j",
        "printed URL's password": "Sup3r-pw",
    }
    summary = tmp_path / "step-summary.md"
    for name, value in {
        "GITHUB_ACTIONS": "true",
        "GITHUB_SERVER_URL": "https://ci-bot:srv-pass-8k2j@github.example.com",
        "GITHUB_REPOSITORY": "acme/models",
        "GITHUB_RUN_ID": "1658821493",
        "GITHUB_STEP_SUMMARY": str(summary),
        "GITHUB_TOKEN": secrets["GITHUB_TOKEN"],
    }.items():
        no_ci.setenv(name, value)
    pytester.makeconftest(
        """
        def pytest_addoption(parser):
            parser.addoption("--token")
            parser.addoption("--api-key")
            parser.addoption("--skip-auth", action="store_true")
        """
    )
    pytester.makepyfile(
        test_leaks="""
            import os

            def test_token():
                assert os.environ["GITHUB_TOKEN"] == "expected"

            def test_options(request):
                print("using postgresql://app:Sup3r-pw@db:5432/x")
                token = request.config.getoption("token")
                assert token == "expected", request.config.getoption("api_key")
        """
    )
    journals = pytester.path / "journals"
    result = pytester.runpytest(
        *store.args(),
        "--mlflow-tree-keep-journal",
        f"--mlflow-tree-journal-dir={journals}",
        "--token",
        secrets["option --token"],
        f"--api-key={secrets['option --api-key']}",
        # A flag: the path after it is no secret.
        "--skip-auth",
        "test_leaks.py",
    )
    result.assert_outcomes(failed=2)
    tree = store.tree()
    assert sorted(tree.tests) == ["test_leaks.py::test_options", "test_leaks.py::test_token"]
    session, module = tree.session, tree.modules["test_leaks.py"]
    failures = {n: tree.artifact(run, "failure.txt") for n, run in tree.tests.items()}
    places = {
        "step summary": summary.read_text(encoding="utf-8"),
        "job URL": session.data.tags["pytest.ci.job_url"],
        "command": session.data.tags["pytest.command"],
        "session description": session.data.tags["mlflow.note.content"],
        "module description": module.data.tags["mlflow.note.content"],
        "report": tree.artifact(session, "report.html"),
        "journal": "\n".join(json.dumps(r) for r in kept_journal(journals)),
        **failures,
    }
    # What the user would look for is there, masked.
    assert "assert '***' == 'expected'" in places["step summary"]
    assert places["job URL"] == "https://***@github.example.com/acme/models/actions/runs/1658821493"
    assert "--token '***' '--api-key=***'" in places["command"]
    assert "postgresql://***@db:5432/x" in failures["test_leaks.py::test_options"]
    assert "AssertionError: ***" in failures["test_leaks.py::test_options"]
    for place, text in places.items():
        for what, secret in secrets.items():
            assert secret not in text, f"the {what} is in the {place}"
