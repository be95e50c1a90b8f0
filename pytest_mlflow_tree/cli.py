"""``pytest-mlflow-tree``: commands around recorded sessions."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from pytest_mlflow_tree import __version__
from pytest_mlflow_tree.model import links
from pytest_mlflow_tree.model.settings_table import SQL_WRITER_ENV
from pytest_mlflow_tree.model.status import Progress
from pytest_mlflow_tree.read import commands
from pytest_mlflow_tree.upload import process


def _replay(args: argparse.Namespace) -> int:
    def show(progress: Progress) -> None:
        if progress.applied % 500 == 0:
            print(f"\r{progress.applied} records applied", end="", file=sys.stderr, flush=True)

    options = process.Options(
        tracking_uri=args.tracking_uri,
        experiment=args.experiment,
        on_progress=show,
        parent=args.parent,
        sql_writer="public" if args.public_client else "auto",
        # Run on purpose: a store that still answers is waited for.
        slow_give_up=process.REPLAY_SLOW_GIVE_UP,
    )
    status = process.run(args.journal, options)
    print("\r", end="", file=sys.stderr)
    if not status.done:
        print(f"pytest-mlflow-tree replay: failed: {status.error}", file=sys.stderr)
        return 1
    line = f"replayed {args.journal}: {status.applied} records"
    if status.session_run_id and status.experiment_id and status.tracking_uri:
        line += "; session run: " + links.run_url(
            status.tracking_uri, status.experiment_id, status.session_run_id
        )
    print(line)
    return 0


def main(argv: list[str] | None = None) -> int:
    try:
        return _run(argv)
    except BrokenPipeError:
        # The reader went away (`show | head`): stop without a traceback, as Python's
        # documentation advises, and keep the interpreter's last flush from failing again.
        _stdout_to_devnull()
        return 1


def _stdout_to_devnull() -> None:
    try:
        fileno = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):
        return  # not a real file (output captured in-process): nothing is flushed at exit
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, fileno)
    os.close(devnull)


def _run(argv: list[str] | None) -> int:
    parser = argparse.ArgumentParser(
        prog="pytest-mlflow-tree",
        description="Work with pytest sessions recorded as MLflow run trees.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    subparsers = parser.add_subparsers(dest="command", required=True)
    replay = subparsers.add_parser(
        "replay",
        help="upload a journal (again): runs already uploaded are not duplicated",
        description="Upload a journal written by `pytest --mlflow-tree`. Safe to repeat: runs "
        "an earlier upload created are found by their tags and completed, not duplicated.",
    )
    replay.add_argument("journal", type=Path, help="the journal file (.jsonl)")
    replay.add_argument(
        "--tracking-uri",
        help="upload here instead of the journal's tracking URI ($MLFLOW_TRACKING_URI also "
        "overrides it)",
    )
    replay.add_argument("--experiment", help="upload into this experiment instead")
    replay.add_argument(
        "--parent",
        metavar="RUN_ID",
        help="attach the session run under this run instead of the one recorded "
        "(--mlflow-tree-parent); an empty value attaches it to none",
    )
    replay.add_argument(
        "--public-client",
        action="store_true",
        help="write to a SQL store with MLflow's public client, one run at a time, instead of "
        f"in batches (also ${SQL_WRITER_ENV}=public)",
    )
    commands.add_parsers(subparsers)
    args = parser.parse_args(argv)
    if args.command == "replay":
        return _replay(args)
    if args.command in commands.COMMANDS:
        return commands.run(args)
    return 2  # pragma: no cover - argparse rejects unknown commands


if __name__ == "__main__":
    sys.exit(main())
