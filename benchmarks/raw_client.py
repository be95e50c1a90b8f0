"""The raw client floor: the journal's runs made with plain MlflowClient calls and nothing else.

Run as its own process (``python raw_client.py JOURNAL --tracking-uri URI --experiment NAME
--threads N``) so it pays the same fixed costs as ``pytest-mlflow-tree replay``: interpreter
start, ``import mlflow``, opening the store. Per run exactly three calls, the same payloads as the
uploader sends: ``create_run`` with the run's tags, ``log_batch`` with its metrics, params and
closing tags, ``set_terminated``. Parents are created before their children, as they must be.

It reads the journal with ``json`` only (the plugin's code must not be part of the floor).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# Same as the uploader's own process: no telemetry, no URL printing (set before importing mlflow).
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")

from mlflow.entities import Metric, Param, RunTag
from mlflow.tracking import MlflowClient


@dataclass
class Run:
    key: str
    parent: str | None
    level: str
    name: str
    start: int
    end: int = 0
    status: str = "FINISHED"
    tags: dict[str, str] = field(default_factory=dict)
    close_tags: dict[str, str] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    run_id: str = ""


def read_journal(path: Path) -> tuple[dict[str, Any], list[Run]]:
    header: dict[str, Any] = {}
    runs: dict[str, Run] = {}
    with path.open(encoding="utf-8") as file:
        for line in file:
            if not line.strip():
                continue
            record = json.loads(line)
            kind = record["kind"]
            if kind == "journal":
                header = record
            elif kind in ("open", "run"):
                runs[record["key"]] = Run(
                    key=record["key"],
                    parent=record["parent"],
                    level=record["level"],
                    name=record["name"],
                    start=record["start"],
                    tags=dict(record.get("tags", {})),
                    params=dict(record.get("params", {})),
                )
            if kind in ("close", "run"):
                run = runs[record["key"]]
                run.end = record["end"]
                run.status = record["status"]
                run.metrics = {k: float(v) for k, v in record.get("metrics", {}).items()}
                if kind == "close":
                    run.close_tags = dict(record.get("tags", {}))
    if not header:
        raise SystemExit(f"{path}: no journal header")
    return header, list(runs.values())


class Floor:
    def __init__(self, client: MlflowClient, experiment_id: str, header: dict[str, Any]) -> None:
        self.client = client
        self.experiment_id = experiment_id
        self.header = header
        self.ids: dict[str, str] = {}
        self.session_id = ""

    def create(self, run: Run) -> None:
        tags = {
            **self.header.get("common_tags", {}),
            **run.tags,
            "pytest.level": run.level,
            "pytest.session_uuid": self.header["session_uuid"],
            "pytest.run_key": hashlib.sha1(run.key.encode()).hexdigest(),
        }
        if run.parent is not None:
            tags["mlflow.parentRunId"] = self.ids[run.parent]
            tags["mlflow.rootRunId"] = self.session_id
        created = self.client.create_run(
            self.experiment_id, start_time=run.start, tags=tags, run_name=run.name
        )
        run.run_id = created.info.run_id
        self.ids[run.key] = run.run_id
        if run.parent is None:
            self.session_id = run.run_id

    def finish(self, run: Run) -> None:
        self.client.log_batch(
            run.run_id,
            metrics=[Metric(k, v, run.end, 0) for k, v in run.metrics.items()],
            params=[Param(k, str(v)) for k, v in run.params.items()],
            tags=[RunTag(k, v) for k, v in run.close_tags.items()],
        )
        self.client.set_terminated(run.run_id, run.status, end_time=run.end)

    def whole(self, run: Run) -> None:
        self.create(run)
        self.finish(run)


def _each(
    pool: ThreadPoolExecutor | None, action: Callable[[Run], None], runs: Iterable[Run]
) -> None:
    if pool is None:
        for run in runs:
            action(run)
    else:
        # list(): wait for all, and raise the first error.
        list(pool.map(action, runs))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("journal", type=Path)
    parser.add_argument("--tracking-uri", required=True)
    parser.add_argument("--experiment", required=True)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    started = time.perf_counter()
    header, runs = read_journal(args.journal)
    client = MlflowClient(tracking_uri=args.tracking_uri)
    floor = Floor(client, client.create_experiment(args.experiment), header)
    session = [r for r in runs if r.level == "session"]
    modules = [r for r in runs if r.level == "module"]
    tests = [r for r in runs if r.level == "test"]
    # Threads are used only where the parents exist already: the session, then the modules
    # (created first, finished last), then every test in one go.
    pool = ThreadPoolExecutor(args.threads) if args.threads > 1 else None
    try:
        _each(None, floor.create, session)
        _each(pool, floor.create, modules)
        _each(pool, floor.whole, tests)
        _each(pool, floor.finish, modules)
        _each(None, floor.finish, session)
    finally:
        if pool is not None:
            pool.shutdown()
    calls = 3 * len(runs)
    print(f"{len(runs)} runs, {calls} calls in {time.perf_counter() - started:.2f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
