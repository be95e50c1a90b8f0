"""What a suite and its configuration refer to: the options, the ini keys and the fixtures
``mlflow_run``, ``mlflow_live_run`` and ``mlflow_session``. A pytest plugin of its own (entry point
``mlflow_tree_interface``).

``-p no:mlflow_tree`` disables the recorder (``plugin.py``) and leaves this one: a suite that
uses the fixtures still runs, and an ini file with ``mlflow_tree = true`` or ``addopts =
--mlflow-tree`` is still valid (an unknown ini key is a warning, an error under
``filterwarnings = error``; an unknown flag stops pytest). Loaded with pytest on every run: it
imports nothing but pytest and the table of settings until a test asks for a fixture.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import TYPE_CHECKING, Any

import pytest

from pytest_mlflow_tree.record.options import OFF_NOTICE, add_options

if TYPE_CHECKING:
    from pytest_mlflow_tree.record.run_fixture import RunLog
    from pytest_mlflow_tree.record.session_fixture import SessionLog


def pytest_addoption(parser: pytest.Parser) -> None:
    add_options(parser)


@pytest.fixture
def mlflow_run(request: pytest.FixtureRequest) -> RunLog:
    """This test's own run in the recorded tree: ``log_metric``, ``log_param``, ``set_tag``,
    ``log_text``, ``log_dict``, ``log_artifact``, ``log_figure`` and ``check``.

    Buffered: MLflow is not imported in the test's process; the uploader sends the values.
    Without recording the values go nowhere and ``check`` still checks.
    """
    from pytest_mlflow_tree.record import context, run_fixture

    found = context.get(request.config)
    if found is None:
        from pytest_mlflow_tree.record import recording_off

        recording_off.note(request.node)
    return run_fixture.for_item(request.node, found["files_dir"] if found else None)


@pytest.fixture
def mlflow_live_run(request: pytest.FixtureRequest) -> Generator[Any, None, None]:
    """This test's own run, active in MLflow's fluent API during the test
    (``mlflow.log_metric``, ``mlflow.sklearn.log_model``, ``mlflow.evaluate`` land in it).

    Imports MLflow in the test's process; the user's active run, tracking URI and experiment
    are as before once the test is over. Without recording the run is in a throwaway store,
    deleted after the test.
    """
    from pytest_mlflow_tree.record import context, live_run, run_fixture

    found = context.get(request.config)
    if found is None:
        from pytest_mlflow_tree.record import recording_off

        recording_off.note(request.node)
    log = run_fixture.for_item(request.node, found["files_dir"] if found else None)
    with live_run.live_run(request.node, found, log) as run:
        yield run


@pytest.fixture(scope="session")
def mlflow_session(request: pytest.FixtureRequest) -> SessionLog:
    """The session run of the recorded tree, for facts about the whole session (the model
    version under test, a dataset's hash): the logging calls of ``mlflow_run``.

    Buffered like ``mlflow_run``; under pytest-xdist each worker's values are merged on the
    one session run. Without ``--mlflow-tree`` the values are dropped.
    """
    from pytest_mlflow_tree.record import context, session_fixture

    found = context.get(request.config)
    return session_fixture.for_config(request.config, found["files_dir"] if found else None)


def pytest_sessionstart(session: pytest.Session) -> None:
    """Under xdist the fixtures run on the workers: the controller hears from their reports
    whether they were used in a session that is not recorded.

    At session start, not at configure: by then xdist has decided whether it runs workers
    (its ``dsession`` plugin), and the recording plugin has made the session's context, or not.
    """
    config = session.config
    if not config.pluginmanager.has_plugin("dsession"):
        return
    from pytest_mlflow_tree.record import context

    if context.get(config) is None:
        from pytest_mlflow_tree.record import recording_off

        recording_off.register(config)


def pytest_unconfigure(config: pytest.Config) -> None:
    notice = config.pluginmanager.get_plugin(OFF_NOTICE)
    if notice is not None:
        config.pluginmanager.unregister(notice)
