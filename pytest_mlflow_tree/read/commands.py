"""The reading commands of ``pytest-mlflow-tree``: show, diff, flaky.

Exit codes: 0 done; 1 ``diff`` found new failures (or, with ``--fail-on-slower``, slower
tests); 2 usage errors and sessions that cannot be found.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import os
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from pytest_mlflow_tree.model import quiet, sqlitepath, stores
from pytest_mlflow_tree.model.defaults import DEFAULT_TRACKING_URI
from pytest_mlflow_tree.model.settings_table import EXPERIMENT, TRACKING_URI, UI_URL, Setting
from pytest_mlflow_tree.read import project_ini

COMMANDS = ("show", "diff", "flaky")
NOT_FOUND = 2


def _store_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--tracking-uri",
        help="where the sessions are: default $MLFLOW_TRACKING_URI, then the project's pytest ini "
        f"file's mlflow_tree_tracking_uri, then {DEFAULT_TRACKING_URI}",
    )
    parser.add_argument(
        "--experiment",
        help="experiment name (or id) to look in; default: $MLFLOW_EXPERIMENT_NAME, then the "
        "project's pytest ini file's mlflow_tree_experiment, then every experiment",
    )


def add_parsers(commands: Any) -> None:
    _add_show(commands)
    _add_diff(commands)
    _add_flaky(commands)


def _add_show(commands: Any) -> None:
    show = commands.add_parser(
        "show",
        help="print a recorded session as a tree, failures first",
        description="Print a recorded session: modules, tests, outcomes, durations, failures "
        "first. Modules whose tests all passed take one line, and beyond 20 such modules the "
        "rest share one line, unless --all is given.",
    )
    show.add_argument("session", nargs="?", help="session run id (default: --last)")
    show.add_argument("--last", action="store_true", help="the newest session (the default)")
    show.add_argument("--all", action="store_true", help="list every test of every module")
    show.add_argument(
        "--failures",
        type=int,
        default=10,
        metavar="N",
        help="show the failure message of the first N failing tests (default 10)",
    )
    show.add_argument(
        "--slowest", type=int, default=5, metavar="N", help="list the N slowest tests (default 5)"
    )
    _store_options(show)


def _add_diff(commands: Any) -> None:
    diff = commands.add_parser(
        "diff",
        help="compare two sessions: new failures, fixed, added, removed, slower, metrics",
        description="Compare session A (before) with session B (after). Exit code 1 when B has "
        "new failures (failing tests that passed, were skipped or did not exist in A), so CI "
        "can gate on it; 0 otherwise; 2 when a session cannot be found.",
    )
    diff.add_argument("sessions", nargs="*", metavar="A B", help="two session run ids")
    diff.add_argument(
        "--last",
        action="store_true",
        help="compare the two newest sessions (of --experiment)",
    )
    diff.add_argument(
        "--slower",
        default="2x",
        metavar="THRESHOLD",
        help="slower/faster means a ratio (1.5x) or a number of seconds (0.5s); default 2x",
    )
    diff.add_argument(
        "--min-delta",
        type=float,
        default=0.1,
        metavar="SECONDS",
        help="ignore duration changes smaller than this, whatever the ratio (default 0.1)",
    )
    diff.add_argument(
        "--metric-tolerance",
        type=float,
        default=0.0,
        metavar="FRACTION",
        help="ignore relative metric changes up to this fraction (default 0: any change)",
    )
    diff.add_argument(
        "--fail-on-slower", action="store_true", help="exit 1 when a test got slower too"
    )
    diff.add_argument("--limit", type=int, default=50, help="lines per section (default 50)")
    _store_options(diff)


def _add_flaky(commands: Any) -> None:
    flaky = commands.add_parser(
        "flaky",
        help="tests whose outcome changed across the newest N sessions, ranked",
        description="Tests whose outcome flipped between passing and failing across the newest "
        "N sessions, most flips first; flips between sessions of the same git commit are "
        "counted apart.",
    )
    # A count, so not --last: in show and diff, --last is a switch for the newest session(s).
    flaky.add_argument(
        "--sessions",
        type=int,
        default=10,
        metavar="N",
        help="how many of the newest sessions to look at (default 10)",
    )
    flaky.add_argument("--limit", type=int, default=50, help="tests to list (default 50)")
    _store_options(flaky)


def _print(lines: Iterable[str]) -> None:
    for line in lines:
        print(line)


def _fail(message: str, code: int = NOT_FOUND) -> int:
    print(f"pytest-mlflow-tree: {message}", file=sys.stderr)
    return code


def _where(args: argparse.Namespace) -> tuple[str, str]:
    """The tracking URI and where it came from, as ``pytest --mlflow-tree`` would choose it.

    Fills in ``args.experiment`` the same way when it was not given. The environment variables
    and ini keys are the plugin's own, from its table of settings.
    """
    project = project_ini.find(Path.cwd())
    uri_env, uri_ini = _names(TRACKING_URI)
    experiment_env, experiment_ini = _names(EXPERIMENT)
    candidates = (
        (args.tracking_uri, "--tracking-uri"),
        (os.environ.get(uri_env), f"${uri_env}"),
        (project.get(uri_ini), f"{project.path.name}'s {uri_ini}" if project.path else ""),
    )
    if args.experiment is None:
        args.experiment = os.environ.get(experiment_env) or project.get(experiment_ini)
    given = [(value, source) for value, source in candidates if value]
    return given[0] if given else (DEFAULT_TRACKING_URI, "the default")


def _ui_url() -> str | None:
    """The MLflow UI's address as ``pytest --mlflow-tree`` would choose it, if one is set."""
    env, ini = _names(UI_URL)
    return os.environ.get(env) or project_ini.find(Path.cwd()).get(ini)


def _names(setting: Setting) -> tuple[str, str]:
    # The settings the commands read have both in the table.
    assert setting.env is not None, setting.name
    assert setting.ini is not None, setting.name
    return setting.env, setting.ini


def run(args: argparse.Namespace) -> int:
    with _collector_paused():
        return _run(args)


def _run(args: argparse.Namespace) -> int:
    from pytest_mlflow_tree.read import readback

    uri, source = _where(args)
    database = sqlitepath.sqlite_path(uri)
    if database is not None and not database.exists():
        # MLflow would create an empty database here: say what is wrong instead.
        return _fail(f"no MLflow database at {database} ({source}; --tracking-uri sets another)")
    quiet.apply_to_process()
    stores.use_server_for_this_process(uri)
    try:
        reader = readback.Reader(uri, ui_url=_ui_url())
        quiet.silence_loggers()
        if args.command == "show":
            return _show(reader, args)
        if args.command == "diff":
            return _diff(reader, args)
        return _flaky(reader, args)
    except readback.SessionNotFound as exc:
        return _fail(str(exc))
    except ValueError as exc:
        return _fail(str(exc))


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """Python's cyclic garbage collector off while a command reads, and as it was after.

    A command keeps every run it reads (MLflow makes objects for each run, tag, param and metric)
    until it has printed: the collector would go over them again and again and free nothing.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _show(reader: Any, args: argparse.Namespace) -> int:
    from pytest_mlflow_tree.read import terminal_tree

    session = reader.session(args.session) if args.session else reader.last_session(args.experiment)
    _print(terminal_tree.render(session, args.all, args.failures, args.slowest))
    return 0


def _diff(reader: Any, args: argparse.Namespace) -> int:
    from pytest_mlflow_tree.read import session_diff

    threshold = session_diff.Threshold.parse(args.slower)
    if args.last and not args.sessions:
        ids = reader.session_ids(args.experiment, 2)
        if len(ids) < 2:
            return _fail("diff --last needs two sessions; there is only one")
        before_id, after_id = ids[1], ids[0]
    elif len(args.sessions) == 2 and not args.last:
        before_id, after_id = args.sessions
    else:
        return _fail("diff takes two session run ids A B, or --last")
    diff = session_diff.compare(
        reader.session(before_id),
        reader.session(after_id),
        threshold,
        args.min_delta,
        args.metric_tolerance,
    )
    _print(session_diff.render(diff, threshold, args.min_delta, args.limit))
    if diff.new_failures or (args.fail_on_slower and diff.slower):
        return 1
    return 0


def _flaky(reader: Any, args: argparse.Namespace) -> int:
    from pytest_mlflow_tree.read import flaky

    if args.sessions < 2:
        return _fail("flaky --sessions needs at least 2 sessions")
    sessions = reader.sessions(args.experiment, args.sessions)
    _print(flaky.render(sessions, flaky.find(sessions), args.limit))
    return 0
