"""The SQLite store is whole in its one file once pytest ends: a CI job that archives
``mlflow.db`` right after the run archives every run."""

from __future__ import annotations

import shutil
import sqlite3

import pytest
from conftest import Store

from pytest_mlflow_tree.model import sqlitepath


def test_a_copy_of_the_database_file_alone_holds_every_run(
    pytester: pytest.Pytester, store: Store
) -> None:
    assert store.path is not None
    # As another program (or an earlier version of the plugin) may have left it.
    with sqlite3.connect(store.path) as connection:
        assert connection.execute("PRAGMA journal_mode=WAL").fetchone() == ("wal",)
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.parametrize("case", range(50))
        def test_case(case):
            pass
        """
    )
    result = pytester.runpytest(*store.args())
    result.assert_outcomes(passed=50)
    # The copy, taken without the -wal file, is opened on its own.
    copy = pytester.path / "archived" / "mlflow.db"
    copy.parent.mkdir()
    shutil.copy(store.path, copy)
    archived = Store(uri=f"sqlite:///{copy}", path=copy)
    assert len(archived.tree().runs) == 1 + 1 + 50


def test_folding_in_leaves_a_database_in_the_default_mode_as_it_is(store: Store) -> None:
    assert store.path is not None
    sqlitepath.fold_in_wal(store.path)
    with sqlite3.connect(store.path) as connection:
        assert connection.execute("PRAGMA journal_mode").fetchone() == ("delete",)
