"""A database store that cannot be used fails the upload at once, with its reason in one line:
the tests' outcome and exit code stay as they are, the journal is kept, and a replay into a
store that works records everything."""

from __future__ import annotations

from pathlib import Path

import pytest
import servers
import sqlalchemy
from conftest import Store
from replaying import assert_recorded_once, replay

SUITE = """
def test_a():
    pass

def test_b():
    pass
"""


def _journal(pytester: pytest.Pytester) -> Path:
    (journal,) = (pytester.path / ".pytest_cache").rglob("*.jsonl")
    return journal


def _uploader_log(pytester: pytest.Pytester) -> str:
    (log,) = (pytester.path / ".pytest_cache").rglob("*.upload.log")
    return log.read_text(encoding="utf-8", errors="replace")


def _recorded_into(pytester: pytest.Pytester, uri: str) -> pytest.RunResult:
    pytester.makepyfile(test_suite=SUITE)
    result = pytester.runpytest("--mlflow-tree", f"--mlflow-tree-tracking-uri={uri}")
    result.assert_outcomes(passed=2)
    assert result.ret == 0
    return result


def test_a_file_that_is_not_a_database_is_named_and_replay_records_elsewhere(
    pytester: pytest.Pytester, store: Store
) -> None:
    broken = pytester.path / "broken.db"
    broken.write_bytes(bytes(range(256)) * 64)
    result = _recorded_into(pytester, f"sqlite:///{broken}")
    result.stdout.fnmatch_lines(
        ["*WARNING: the upload failed: *broken.db cannot be used: file is not a database*"]
    )
    # Said once, by the check: MLflow's own attempts to open the file never started.
    assert "SQLAlchemy engine could not be created" not in _uploader_log(pytester)

    code, _, err = replay(str(_journal(pytester)), "--tracking-uri", store.uri)
    assert code == 0, err
    assert_recorded_once(store.tree().runs, ["test_suite.py::test_a", "test_suite.py::test_b"])


def test_a_database_server_that_refuses_connections_is_given_up_on(
    pytester: pytest.Pytester,
) -> None:
    with servers.refused_port() as port:
        result = _recorded_into(pytester, f"postgresql+psycopg2://mlflow@127.0.0.1:{port}/x")
    result.stdout.fnmatch_lines(
        ["*WARNING: the upload failed: *did not answer for * s (connection refused)*"]
    )
    assert "SQLAlchemy engine could not be created" not in _uploader_log(pytester)
    assert _journal(pytester).exists()


def test_a_database_that_does_not_exist_is_named(
    pytester: pytest.Pytester, postgres_database: servers.Database
) -> None:
    uri = sqlalchemy.make_url(postgres_database.uri).set(database="no_such_database")
    result = _recorded_into(pytester, uri.render_as_string(hide_password=False))
    result.stdout.fnmatch_lines(
        ['*WARNING: the upload failed: *cannot be used: *"no_such_database" does not exist*']
    )
    assert _journal(pytester).exists()
