"""Benchmarks of pytest-mlflow-tree against its baselines, side by side in one run.

    python benchmarks/run.py [--quick] [--only NAME ...] [--scale FACTOR] [--json PATH]

Prints one table (what, baseline, plugin, ratio, target, result) and exits 1 when a target is
missed or a measurement failed. benchmarks/README.md says what each line means.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import re
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import measure
import suites
from measure import BenchError, Load, Machine, PeakRss, interleaved, median, servers

PYTHON = sys.executable
PYTEST = [PYTHON, "-m", "pytest", "-q"]
# `memory` after `scale60k`: it reuses that benchmark's uploader peaks instead of running
# 60,000 tests again.
NAMES = (
    "startup",
    "sqlite",
    "server",
    "throughput",
    "replay",
    "scale10k",
    "scale60k",
    "cpu",
    "memory",
    "faults",
    "read",
)
HERE = Path(__file__).resolve().parent

# Every measured command is bounded; the longest (the naive recorder against the server, 1,000
# tests) takes a few minutes on a 2-core machine.
TIMEOUT = 1800.0
# The plugin waits this long for its upload at the end (default 300 s): long enough that no
# benchmark here cuts an upload short, which would make the plugin look faster than it is.
PLUGIN_WAIT = ["--mlflow-tree-upload-wait", "1500"]
# The baseline, plain pytest: the recorder and the plugin with its options and fixtures blocked.
WITHOUT_PLUGIN = ["-p", "no:mlflow_tree", "-p", "no:mlflow_tree_interface"]

SUITE_TESTS = 1000
MODULES = 20
SERVER_THREADS = 8
CPU_TESTS = 30
# The large suites are modules of this many tests each: 10,000 tests are 50 modules, 60,000
# are 300, and the 2,000 they are compared with are 10, so only the number of modules grows.
PER_MODULE = 200
# The session `read` reads back: large enough that reading it takes seconds.
READ_TESTS = 20_000


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@dataclass
class Line:
    what: str
    baseline: str
    plugin: str
    ratio: str
    target: str
    # None: no verdict (a reference line, or an error).
    ok: bool | None
    note: str = ""

    @property
    def result(self) -> str:
        if self.ok is None:
            return "info" if self.target == "-" else "ERROR"
        return "OK" if self.ok else "MISSED"


def _cli_command(name: str) -> list[str]:
    """``pytest-mlflow-tree NAME``, as a user runs it."""
    script = Path(PYTHON).parent / "pytest-mlflow-tree"
    if script.exists():
        return [str(script), name]
    return [PYTHON, "-m", "pytest_mlflow_tree.cli", name]


# Every run of an experiment through MLflow's client, page by page, as a user lists them; prints
# how many. Arguments: tracking URI, experiment name.
_LIST_RUNS = (
    "import sys\nfrom mlflow.tracking import MlflowClient\n"
    "client = MlflowClient(tracking_uri=sys.argv[1])\n"
    "experiment_id = client.get_experiment_by_name(sys.argv[2]).experiment_id\n"
    "runs, token = 0, None\n"
    "for _ in range(1000):\n"
    "    page = client.search_runs([experiment_id], max_results=1000, page_token=token)\n"
    "    runs += len(page)\n"
    "    token = page.token\n"
    "    if not token:\n"
    "        break\n"
    "print(runs)\n"
)


def _experiment(kind: str, repetition: int) -> str:
    return f"{kind}-{repetition}-{uuid.uuid4().hex[:8]}"


def _s(seconds: float) -> str:
    return f"{seconds:.3f} s" if seconds < 10 else f"{seconds:.1f} s"


def _count(number: int, noun: str) -> str:
    return f"{number:,} {noun}{'' if number == 1 else 's'}"


def _mb(kb: float) -> str:
    return f"{kb / 1024:.1f} MB"


class Bench:
    """State shared by the benchmarks: work directory, template store, server, load records."""

    def __init__(
        self, quick: bool, work: Path, stack: contextlib.ExitStack, scale: float = 1.0
    ) -> None:
        self.quick = quick
        self.scale = scale
        self.work = work
        self.machine = Machine()
        self.loads: dict[str, Load] = {}
        self.waited: dict[str, float] = {}
        self.current = ""
        # CPU seconds of the last measured command (and the children it reaped).
        self.last_cpu = 0.0
        self._stack = stack
        self._template: Path | None = None
        self._server: servers.TrackingServer | None = None
        # How many benchmarks asked for the server: the first finds it as freshly started.
        self.server_uses = 0
        self._suites: dict[str, Path] = {}
        self._counter = 0
        # Peak RSS (kB) of the uploader in each plugin run of a suite, by its number of tests:
        # `memory` reuses those of `scale60k`.
        self.uploader_peaks: dict[int, list[int]] = {}

    @property
    def reps(self) -> int:
        """Repetitions of the long benchmarks; medians are taken over them."""
        return 2 if self.quick else 3

    def sized(self, tests: int, modules: int) -> tuple[int, int]:
        """A suite's (tests, modules), shrunk by ``--scale`` (for trying the benchmark out)."""
        if self.scale == 1:
            return tests, modules
        modules = max(1, round(modules * self.scale))
        return max(modules, round(tests * self.scale)), modules

    @property
    def scaled(self) -> str:
        """Said in a line's label when its suite was shrunk."""
        return f" [--scale {self.scale:g}]" if self.scale != 1 else ""

    # -- resources -----------------------------------------------------------------------------

    def path(self, name: str) -> Path:
        """A new, unique path under the work directory."""
        self._counter += 1
        return self.work / f"{self._counter:04d}-{name}"

    def template_db(self) -> Path:
        """An empty, migrated MLflow SQLite store, made once by one process and copied per run.

        Every run (naive and plugin alike) starts from a copy, so none of them pays for the
        schema migration, which takes seconds and is no part of recording; and no run sees
        another's data or file settings (the uploader switches its store to WAL mode).
        """
        if self._template is None:
            path = self.work / "template" / "mlflow.db"
            path.parent.mkdir()
            code = (
                "import sys\nfrom mlflow.tracking import MlflowClient\n"
                "MlflowClient(tracking_uri=sys.argv[1]).search_experiments()\n"
            )
            measure.timed(
                [PYTHON, "-c", code, f"sqlite:///{path}"],
                self.work,
                measure.bench_env(),
                path.parent / "create.log",
                timeout=300,
            )
            self._template = path
        return self._template

    def fresh_db(self) -> str:
        directory = self.path("store")
        directory.mkdir()
        shutil.copyfile(self.template_db(), directory / "mlflow.db")
        return f"sqlite:///{directory / 'mlflow.db'}"

    @staticmethod
    def drop_db(uri: str) -> None:
        """Delete a store from ``fresh_db`` once counted: one of 60,000 runs is large."""
        shutil.rmtree(Path(uri.removeprefix("sqlite:///")).parent, ignore_errors=True)

    def server(self) -> servers.TrackingServer:
        """A default ``mlflow server`` on PostgreSQL, as a user starts it: not warmed up."""
        if self._server is None:
            log("   starting PostgreSQL and mlflow server on 127.0.0.1 ...")
            workdir = self.work / "server"
            self._server = self._stack.enter_context(
                servers.tracking_server(workdir, warm=False, proxied=True, jobs=True)
            )
            # The server's CPU is ours, not other load.
            self.machine.servers = list(self._server.pids)
            log(f"   mlflow server at {self._server.url}")
        self.server_uses += 1
        return self._server

    def quick_suite(self, tests: int, modules: int, naive: bool = False) -> Path:
        """A generated suite of quick tests, or its copy with the naive conftest."""
        key = f"quick-{tests}-{modules}"
        if key not in self._suites:
            suite = suites.quick_suite(self.work / key, tests, modules)
            self._suites[key] = suite
            self._suites[key + "-naive"] = suites.copy_suite(
                suite, self.work / (key + "-naive"), suites.NAIVE_CONFTEST
            )
        return self._suites[key + "-naive" if naive else key]

    def probe_suite(self, tests: int, modules: int) -> Path:
        """A generated suite of quick tests with the probe as its conftest (both variants)."""
        key = f"probe-{tests}-{modules}"
        if key not in self._suites:
            made = suites.quick_suite(self.work / f"quick-{key}", tests, modules)
            self._suites[key] = suites.copy_suite(made, self.work / key, suites.PROBE_CONFTEST)
        return self._suites[key]

    # -- measured runs -------------------------------------------------------------------------

    def quiet(self, _repetition: int) -> None:
        """Before each repetition: wait (bounded) until other processes calm down."""
        waited = self.machine.wait_for_quiet()
        self.waited[self.current] = self.waited.get(self.current, 0.0) + waited

    def timed(
        self,
        command: Sequence[str],
        cwd: Path,
        env: dict[str, str] | None = None,
        name: str = "run",
        ok_codes: tuple[int, ...] = (0,),
    ) -> tuple[float, Path]:
        """Wall seconds of one command, and its log; other processes' CPU use is recorded."""
        log_path = self.path(name + ".log")
        load = self.loads.setdefault(self.current, Load())
        timing = self.machine.measure(
            lambda: measure.timed(
                command, cwd, env or measure.bench_env(), log_path, TIMEOUT, ok_codes
            ),
            load,
        )
        self.last_cpu = timing.cpu
        return timing.wall, log_path

    def pytest_with_log(
        self, suite: Path, args: list[str], env: dict[str, str] | None = None
    ) -> tuple[float, str]:
        seconds, log_path = self.timed([*PYTEST, *args], suite, env, "pytest")
        text = log_path.read_text(encoding="utf-8", errors="replace")
        # A failed or cut-short upload would make the plugin's time meaningless.
        if "mlflow-tree: WARNING" in text:
            raise BenchError(f"the plugin reported a problem ({log_path}):\n{text[-2000:]}")
        return seconds, text

    def pytest(self, suite: Path, args: list[str], env: dict[str, str] | None = None) -> float:
        return self.pytest_with_log(suite, args, env)[0]

    def plugin_with_log(
        self,
        suite: Path,
        uri: str,
        experiment: str,
        env: dict[str, str] | None = None,
        extra: Sequence[str] = (),
    ) -> tuple[float, str]:
        args = ["--mlflow-tree", "--mlflow-tree-tracking-uri", uri]
        args += ["--mlflow-tree-experiment", experiment, *PLUGIN_WAIT, *extra]
        return self.pytest_with_log(suite, args, env)

    def plugin(
        self, suite: Path, uri: str, experiment: str, env: dict[str, str] | None = None
    ) -> float:
        return self.plugin_with_log(suite, uri, experiment, env)[0]

    def naive(self, suite: Path, uri: str, experiment: str) -> float:
        env = measure.bench_env({"MLFLOW_TRACKING_URI": uri, "MLFLOW_EXPERIMENT_NAME": experiment})
        return self.pytest(suite, [], env)

    def count_runs(self, uri: str, experiment: str) -> int:
        """How many runs an experiment holds: both sides of a comparison must record as many."""
        if uri.startswith("sqlite:///"):
            # Straight from the file: search_runs would load every run's tags, params, metrics.
            return _count_sqlite_runs(uri.removeprefix("sqlite:///"), experiment)
        out = subprocess.run(
            [PYTHON, "-c", _LIST_RUNS, uri, experiment],
            env=measure.bench_env(),
            capture_output=True,
            text=True,
            timeout=300,
            check=True,
        )
        return int(out.stdout.split()[-1])


def _count_sqlite_runs(path: str, experiment: str) -> int:
    """The active runs of an experiment, as ``search_runs`` would find them."""
    query = (
        "SELECT COUNT(*) FROM runs JOIN experiments USING (experiment_id) "
        "WHERE experiments.name = ? AND runs.lifecycle_stage = 'active'"
    )
    with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as connection:
        (count,) = connection.execute(query, (experiment,)).fetchone()
    return int(count)


# -- 1. startup ----------------------------------------------------------------------------------


def bench_startup(bench: Bench) -> list[Line]:
    reps = 11 if bench.quick else 31
    tiny = suites.tiny_suite(bench.path("tiny"))
    cpu: dict[str, list[float]] = {"without": [], "installed": []}

    def run(name: str, args: list[str]) -> float:
        seconds = bench.pytest(tiny, args)
        cpu[name].append(bench.last_cpu)
        return seconds

    # One wait for a quiet machine, then warm-up runs (bytecode and page caches), then the
    # measured runs back to back: a run right after an idle pause is slower (CPU frequency,
    # a virtual machine's idle vCPU), which a wait before each repetition would add to them.
    bench.quiet(0)
    for _ in range(2):
        run("without", WITHOUT_PLUGIN)
        run("installed", [])
    for values in cpu.values():
        values.clear()
    times = interleaved(
        reps,
        [
            ("without", lambda _rep: run("without", WITHOUT_PLUGIN)),
            ("installed", lambda _rep: run("installed", [])),
        ],
    )
    base, plugin = median(times["without"]), median(times["installed"])
    cpu_base, cpu_plugin = median(cpu["without"]), median(cpu["installed"])
    lines = [
        Line(
            f"startup: pytest -q, 3 tests, plugin installed, not enabled (median of {reps})",
            _s(base),
            _s(plugin),
            f"{plugin / base:.3f}",
            "<= 1.02",
            plugin / base <= 1.02,
            note="baseline: the same without the plugin (-p no:mlflow_tree "
            f"-p no:mlflow_tree_interface); CPU time (user+sys) medians {_s(cpu_base)} "
            f"vs {_s(cpu_plugin)} (ratio {cpu_plugin / cpu_base:.3f})",
        )
    ]
    probe = suites.copy_suite(tiny, bench.path("tiny-probe"), suites.PROBE_CONFTEST)
    out = bench.path("probe.json")
    bench.pytest(probe, [], measure.bench_env({"BENCH_PROBE_OUT": str(out)}))
    imported = json.loads(out.read_text())["mlflow_modules"]
    lines.append(
        Line(
            "startup: mlflow modules imported by pytest, plugin not enabled",
            "-",
            str(imported),
            "-",
            "0",
            imported == 0,
        )
    )
    return lines


# -- 2. and 3. recording a suite: naive conftest vs plugin ---------------------------------------


def _recording(
    bench: Bench,
    label: str,
    tests: int,
    store: Callable[[], str],
    target: float,
    cold_store: bool = False,
) -> list[Line]:
    """Plain pytest, the naive conftest and the plugin, interleaved; with ``cold_store``, the
    plugin's first session, on the store as freshly started, comes first and gets a line."""
    quick = " [--quick: 200, not 1000]" if bench.quick and tests != SUITE_TESTS else ""
    tests, modules = bench.sized(tests, MODULES)
    quick += bench.scaled
    suite = bench.quick_suite(tests, modules)
    naive_suite = bench.quick_suite(tests, modules, naive=True)
    counted: dict[str, int] = {}
    waits: list[str] = []

    def plain(_rep: int) -> float:
        return bench.pytest(suite, [])

    def naive(rep: int) -> float:
        uri, experiment = store(), _experiment("naive", rep)
        seconds = bench.naive(naive_suite, uri, experiment)
        if rep == 0:
            counted["naive"] = bench.count_runs(uri, experiment)
        log(f"   {label} naive: {seconds:.1f} s")
        return seconds

    def plugin(rep: int) -> float:
        uri, experiment = store(), _experiment("plugin", rep)
        seconds, output = bench.plugin_with_log(suite, uri, experiment)
        if rep == 0:
            counted["plugin"] = bench.count_runs(uri, experiment)
            waits.append(_upload_progress(output))
        first = " (first session on the fresh store)" if rep < 0 else ""
        log(f"   {label} plugin{first}: {seconds:.1f} s")
        return seconds

    # Warm-up: bytecode of the generated modules, in both copies. Collecting the naive copy
    # loads its conftest, which opens a session run: it gets a store of its own.
    plain(0)
    warm_up = {"MLFLOW_TRACKING_URI": bench.fresh_db(), "MLFLOW_EXPERIMENT_NAME": "warm-up"}
    bench.pytest(naive_suite, ["--collect-only"], measure.bench_env(warm_up))
    cold = plugin(-1) if cold_store else None
    times = interleaved(
        bench.reps, [("plain", plain), ("naive", naive), ("plugin", plugin)], before=bench.quiet
    )
    base, mine = median(times["naive"]), median(times["plugin"])
    runs = f"runs recorded: naive {counted.get('naive')}, plugin {counted.get('plugin')}"
    same = counted.get("naive") == counted.get("plugin")
    lines = [] if cold is None else [_cold_line(label, tests, quick, base, cold, target)]
    return [
        *lines,
        Line(
            f"{label}: {tests} tests{quick}, wall, naive conftest vs plugin "
            f"(median of {bench.reps})",
            _s(base),
            _s(mine),
            f"{mine / base:.3f}",
            f"<= {target:g}",
            mine / base <= target and same,
            note=(runs if same else f"MISMATCH: {runs}") + "; " + "; ".join(waits),
        ),
        Line(
            f"{label}: {tests} tests{quick}, wall, plain pytest, no recording (reference)",
            _s(median(times["plain"])),
            "-",
            "-",
            "-",
            None,
        ),
    ]


def _cold_line(
    label: str, tests: int, quick: str, naive: float, cold: float, target: float
) -> Line:
    return Line(
        f"{label}: {tests} tests{quick}, wall, naive conftest (median) vs the plugin's first "
        "session on the freshly started store",
        _s(naive),
        _s(cold),
        f"{cold / naive:.3f}",
        f"<= {target:g}",
        cold / naive <= target,
        note="the store's first calls are slow (its workers import what they serve); "
        "the naive runs come later and find it warm",
    )


def _upload_progress(output: str) -> str:
    """What the plugin's own progress lines say about its wait for the upload at the end.

    It prints one after 2 s of waiting and every 2 s after: how far the upload was when the
    tests had finished tells how much of the wall time is waiting.
    """
    found = re.findall(r"mlflow-tree: uploading (\d+)/(\d+) records \((\d+)/s\)", output)
    if not found:
        return "plugin waited < 2 s for its upload after the tests"
    done, total, rate = found[0]
    return (
        f"plugin still uploading after the tests: {done}/{total} records at 2 s into its wait "
        f"({rate}/s), {len(found)} progress lines (~{2 * len(found)} s of waiting)"
    )


def bench_sqlite(bench: Bench) -> list[Line]:
    return _recording(bench, "sqlite", SUITE_TESTS, bench.fresh_db, 0.2)


def bench_server(bench: Bench) -> list[Line]:
    url = bench.server().url
    # The naive recorder needs minutes for 1,000 tests against a server.
    tests = 200 if bench.quick else SUITE_TESTS
    fresh = bench.server_uses == 1
    return _recording(bench, "server", tests, lambda: url, 0.15, cold_store=fresh)


# -- 4. throughput: the uploader alone vs the raw client floor -----------------------------------


def _journal(bench: Bench, tests: int, modules: int) -> Path:
    """A journal of a run of ``tests`` quick tests, written without any upload."""
    suite = bench.quick_suite(tests, modules)
    directory = bench.path("journal")
    bench.pytest(
        suite,
        [
            "--mlflow-tree",
            "--mlflow-tree-journal-only",
            "--mlflow-tree-journal-dir",
            str(directory),
            "--mlflow-tree-experiment",
            "journal",
        ],
    )
    journals = sorted(directory.glob("*.jsonl"))
    if len(journals) != 1:
        raise BenchError(f"expected one journal in {directory}, found {len(journals)}")
    return journals[0]


def _throughput(
    bench: Bench, journal: Path, tests: int, label: str, store: Callable[[], str], threads: int
) -> Line:
    counted: dict[str, int] = {}

    def replay(rep: int) -> float:
        uri, experiment = store(), _experiment("replay", rep)
        command = [*_cli_command("replay"), str(journal), "--tracking-uri", uri]
        seconds, _ = bench.timed([*command, "--experiment", experiment], bench.work)
        if rep == 0:
            counted["replay"] = bench.count_runs(uri, experiment)
        log(f"   throughput {label} replay: {seconds:.1f} s")
        return seconds

    def raw(rep: int) -> float:
        uri, experiment = store(), _experiment("raw", rep)
        command = [PYTHON, str(HERE / "raw_client.py"), str(journal), "--tracking-uri", uri]
        command += ["--experiment", experiment, "--threads", str(threads)]
        seconds, _ = bench.timed(command, bench.work)
        if rep == 0:
            counted["raw"] = bench.count_runs(uri, experiment)
        log(f"   throughput {label} raw: {seconds:.1f} s")
        return seconds

    times = interleaved(bench.reps, [("raw", raw), ("replay", replay)], before=bench.quiet)
    floor, mine = median(times["raw"]), median(times["replay"])
    runs = f"runs: raw {counted.get('raw')}, replay {counted.get('replay')}"
    same = counted.get("raw") == counted.get("replay")
    plural = "s" if threads > 1 else ""
    return Line(
        f"throughput {label}: {tests}-test journal{bench.scaled}, raw client ({threads} "
        f"thread{plural}) vs replay; ratio = raw/replay, higher is better "
        f"(median of {bench.reps})",
        _s(floor),
        _s(mine),
        f"{floor / mine:.3f}",
        ">= 0.9",
        floor / mine >= 0.9 and same,
        note=runs if same else f"MISMATCH: {runs}",
    )


def bench_throughput(bench: Bench) -> list[Line]:
    tests, modules = bench.sized(SUITE_TESTS, MODULES)
    journal = _journal(bench, tests, modules)
    lines = [_throughput(bench, journal, tests, "sqlite", bench.fresh_db, 1)]
    url = bench.server().url
    lines.append(_throughput(bench, journal, tests, "server", lambda: url, SERVER_THREADS))
    return lines


# -- 5. replay: the batched SQL writer vs MLflow's public client ---------------------------------


def bench_replay(bench: Bench) -> list[Line]:
    tests, modules = bench.sized(2000, 2000 // PER_MODULE)
    journals = {"full": _journal(bench, tests, modules), "one test": _journal(bench, 1, 1)}
    expected = 1 + modules + tests
    counted: dict[str, int] = {}

    def replay(name: str, journal: str, rep: int) -> float:
        uri, experiment = bench.fresh_db(), _experiment(name.replace(" ", "-"), rep)
        command = [*_cli_command("replay"), str(journals[journal]), "--tracking-uri", uri]
        command += ["--experiment", experiment]
        if name == "public":
            command.append("--public-client")
        seconds, _ = bench.timed(command, bench.work)
        if rep == 0 and journal == "full":
            counted[name] = bench.count_runs(uri, experiment)
        bench.drop_db(uri)
        log(f"   replay {name}: {seconds:.1f} s")
        return seconds

    times = interleaved(
        bench.reps,
        [
            ("public", lambda rep: replay("public", "full", rep)),
            ("batched", lambda rep: replay("batched", "full", rep)),
            ("fixed", lambda rep: replay("one test", "one test", rep)),
        ],
        before=bench.quiet,
    )
    public, batched = median(times["public"]), median(times["batched"])
    # What a replay costs before and after it writes (start, imports, opening the store) is
    # the same on both paths and bounds the ratio of whole processes; the reference line
    # leaves it out.
    fixed = median(times["fixed"])
    runs = f"runs: public {counted.get('public')}, batched {counted.get('batched')}"
    same = counted.get("public") == counted.get("batched") == expected
    label = f"replay sqlite: {tests:,}-test journal{bench.scaled}"
    ratio = (public - fixed) / (batched - fixed) if batched > fixed else None
    lines = [
        Line(
            f"{label}, public client vs batched writer, writing only (less a 1-test journal's "
            f"replay, {_s(fixed)}); ratio = public/batched, higher is better "
            f"(median of {bench.reps})",
            _s(public - fixed),
            _s(batched - fixed),
            "-" if ratio is None else f"{ratio:.1f}",
            ">= 20",
            ratio is not None and ratio >= 20 and same,
            note=runs if same else f"MISMATCH (expected {expected}): {runs}",
        ),
        Line(
            f"{label}, the same as whole processes, start and imports included (reference)",
            _s(public),
            _s(batched),
            f"{public / batched:.1f}",
            "-",
            None,
        ),
    ]
    return lines


# -- 6. scale: large suites, plugin vs plain pytest ----------------------------------------------


@dataclass
class _Probed:
    """What one run of a probe suite measured."""

    wall: float
    duration_sum: float
    pytest_kb: int
    uploader_kb: int = 0
    # Garbage collections inside test phases: part of duration_sum.
    gc_in_phases: float = 0.0
    # duration_sum over the phases that held no full collection, and how many held one.
    sum_without_full: float = 0.0
    full_in_phases: int = 0

    @classmethod
    def read(cls, wall: float, out: Path, uploader_kb: int = 0) -> _Probed:
        data = _probe_out(out)
        return cls(
            wall,
            float(data["duration_sum"]),
            int(data["peak_rss_kb"]),
            uploader_kb,
            float(data["gc_in_phases"]),
            float(data["sum_without_full"]),
            int(data["full_in_phases"]),
        )

    @property
    def without_gc(self) -> float:
        return self.duration_sum - self.gc_in_phases


def _probe_out(out: Path) -> dict[str, Any]:
    """What ``probe_conftest.py`` wrote when its pytest process ended."""
    data: dict[str, Any] = json.loads(out.read_text(encoding="utf-8"))
    return data


def _plugin_probed(
    bench: Bench, suite: Path, tests: int, modules: int, rep: int, notes: list[str]
) -> _Probed:
    """One ``--mlflow-tree`` run of a probe suite; the uploader's peak RSS is polled meanwhile.

    On the first repetition it checks that every test became a run.
    """
    out = bench.path("probe.json")
    env = measure.bench_env({"BENCH_PROBE_OUT": str(out)})
    uri, experiment = bench.fresh_db(), _experiment("scale", rep)
    # A journal directory of its own: it tells this run's uploader from any other in `ps`.
    journals = bench.path("journals")
    with PeakRss(("pytest_mlflow_tree.upload", str(journals))) as uploader:
        seconds, output = bench.plugin_with_log(
            suite, uri, experiment, env, ["--mlflow-tree-journal-dir", str(journals)]
        )
    if not uploader.pids:
        raise BenchError("the uploader process (pytest_mlflow_tree.upload) was never seen")
    if rep == 0:
        expected, counted = 1 + modules + tests, bench.count_runs(uri, experiment)
        parts = f"1 session, {_count(modules, 'module')}, {_count(tests, 'test')}"
        if counted != expected:
            raise BenchError(f"the plugin recorded {counted} runs, not {expected} ({parts})")
        notes.append(f"runs recorded: {counted} ({parts})")
        notes.append(_upload_progress(output))
    bench.drop_db(uri)
    shutil.rmtree(journals, ignore_errors=True)
    bench.uploader_peaks.setdefault(tests, []).append(uploader.peak_kb)
    return _Probed.read(seconds, out, uploader.peak_kb)


def _scale(
    bench: Bench,
    name: str,
    tests: int,
    modules: int,
    reps: int,
    wall_target: float,
    durations: bool,
) -> list[Line]:
    suite = bench.probe_suite(tests, modules)
    runs: dict[str, list[_Probed]] = {"plain": [], "plugin": []}
    notes: list[str] = []

    def plain(_rep: int) -> float:
        out = bench.path("probe.json")
        seconds = bench.pytest(suite, [], measure.bench_env({"BENCH_PROBE_OUT": str(out)}))
        runs["plain"].append(_Probed.read(seconds, out))
        log(f"   {name} plain: {seconds:.1f} s")
        return seconds

    def plugin(rep: int) -> float:
        probed = _plugin_probed(bench, suite, tests, modules, rep, notes)
        runs["plugin"].append(probed)
        log(f"   {name} plugin: {probed.wall:.1f} s")
        return probed.wall

    # Warm-up: the generated modules' bytecode.
    bench.pytest(suite, ["--collect-only"])
    times = interleaved(reps, [("plain", plain), ("plugin", plugin)], before=bench.quiet)
    base, mine = median(times["plain"]), median(times["plugin"])
    peak = max(probed.uploader_kb for probed in runs["plugin"])
    notes.append(f"uploader's peak RSS {_mb(peak)} (the largest of {_count(reps, 'run')})")
    label = f"{name}: {_count(tests, 'test')}, {_count(modules, 'module')}{bench.scaled}"
    lines = [
        Line(
            f"{label}, wall, plain pytest vs --mlflow-tree (median of {reps})",
            _s(base),
            _s(mine),
            f"{mine / base:.3f}",
            f"<= {wall_target:g}",
            mine / base <= wall_target,
            note="; ".join(notes),
        )
    ]
    if durations:
        lines += _duration_lines(label, reps, runs)
    return lines


def _duration_lines(label: str, reps: int, runs: dict[str, list[_Probed]]) -> list[Line]:
    """The durations as reported, and the same less the garbage collections inside them.

    pytest's own full collections of a 60,000-test heap land inside some test phases and not
    others, by chance; the second line shows what is left when they are taken out.
    """
    off = median([probed.duration_sum for probed in runs["plain"]])
    on = median([probed.duration_sum for probed in runs["plugin"]])
    bare_off = median([probed.without_gc for probed in runs["plain"]])
    bare_on = median([probed.without_gc for probed in runs["plugin"]])
    gc_off = ", ".join(_s(probed.gc_in_phases) for probed in runs["plain"])
    gc_on = ", ".join(_s(probed.gc_in_phases) for probed in runs["plugin"])
    clean_off = median([probed.sum_without_full for probed in runs["plain"]])
    clean_on = median([probed.sum_without_full for probed in runs["plugin"]])
    full_off = ", ".join(str(probed.full_in_phases) for probed in runs["plain"])
    full_on = ", ".join(str(probed.full_in_phases) for probed in runs["plugin"])
    return [
        Line(
            f"{label}, sum of reported test durations, plain pytest vs --mlflow-tree "
            f"(median of {reps})",
            _s(off),
            _s(on),
            f"{on / off:.3f}",
            "<= 1.05",
            on / off <= 1.05,
            note=f"garbage collection inside test phases: plain {gc_off}; plugin {gc_on}",
        ),
        Line(
            f"{label}, the same less the garbage collections inside test phases (median of {reps})",
            _s(bare_off),
            _s(bare_on),
            f"{bare_on / bare_off:.3f}",
            "<= 1.05",
            bare_on / bare_off <= 1.05,
        ),
        Line(
            f"{label}, the same over the phases that held no full garbage collection "
            f"(median of {reps})",
            _s(clean_off),
            _s(clean_on),
            f"{clean_on / clean_off:.3f}",
            "-",
            None,
            note=f"phases that held a full collection: plain {full_off}; plugin {full_on}",
        ),
    ]


def bench_scale10k(bench: Bench) -> list[Line]:
    tests, modules = bench.sized(10_000, 10_000 // PER_MODULE)
    return _scale(bench, "scale 10000", tests, modules, bench.reps, 1.3, durations=False)


def _scale60k_reps(bench: Bench) -> int:
    # 60,000 tests take minutes a run.
    return 1 if bench.quick else 3


def bench_scale60k(bench: Bench) -> list[Line]:
    tests, modules = bench.sized(60_000, 60_000 // PER_MODULE)
    reps = _scale60k_reps(bench)
    return _scale(bench, "scale 60000", tests, modules, reps, 1.5, durations=True)


# -- 7. cpu: recorded durations of CPU-bound tests -----------------------------------------------


def bench_cpu(bench: Bench) -> list[Line]:
    iterations = suites.calibrate_loop(0.2)
    made = suites.cpu_suite(bench.path("cpu"), CPU_TESTS, iterations)
    # Both variants run the same suite with the same probe: the durations are measured alike.
    suite = suites.copy_suite(made, made.with_name(made.name + "-probe"), suites.PROBE_CONFTEST)
    calls: dict[str, list[list[float]]] = {"without": [], "plugin": []}

    def run(name: str) -> float:
        out = bench.path("cpu.json")
        env = measure.bench_env({"BENCH_PROBE_OUT": str(out)})
        if name == "plugin":
            seconds = bench.plugin(suite, bench.fresh_db(), _experiment("cpu", 0), env)
        else:
            seconds = bench.pytest(suite, WITHOUT_PLUGIN, env)
        durations = json.loads(out.read_text())["call_durations"]
        if len(durations) != CPU_TESTS:
            raise BenchError(f"expected {CPU_TESTS} call durations, got {len(durations)}")
        calls[name].append(durations)
        return seconds

    run("without")  # warm-up
    calls["without"].clear()
    interleaved(
        bench.reps,
        [("without", lambda _rep: run("without")), ("plugin", lambda _rep: run("plugin"))],
        before=bench.quiet,
    )

    def med(name: str, part: slice = slice(None)) -> float:
        return median([value for durations in calls[name] for value in durations[part]])

    base, mine = med("without"), med("plugin")
    first, last = slice(0, 10), slice(CPU_TESTS - 10, CPU_TESTS)
    return [
        Line(
            f"cpu: {CPU_TESTS} CPU-bound tests, median recorded call duration, without vs with "
            f"--mlflow-tree ({bench.reps} runs each)",
            _s(base),
            _s(mine),
            f"{mine / base:.3f}",
            "<= 1.05",
            mine / base <= 1.05,
            note=f"first 10 tests: {_s(med('without', first))} vs {_s(med('plugin', first))}; "
            f"last 10: {_s(med('without', last))} vs {_s(med('plugin', last))}",
        )
    ]


# -- 8. memory -----------------------------------------------------------------------------------


def bench_memory(bench: Bench) -> list[Line]:
    tests, modules = bench.sized(10_000, 10_000 // 50)
    small_tests, small_modules = bench.sized(2000, 2000 // PER_MODULE)
    large_tests, large_modules = bench.sized(60_000, 60_000 // PER_MODULE)
    suite, small = bench.probe_suite(tests, modules), bench.probe_suite(small_tests, small_modules)
    for directory in (suite, small):
        bench.pytest(directory, ["--collect-only", *WITHOUT_PLUGIN])  # warm-up
    # The runs' counts are checked all the same (a mismatch raises); the table keeps this
    # benchmark's notes to where the 60,000-test peak comes from.
    notes: list[str] = []
    bench.quiet(0)
    out = bench.path("memory.json")
    bench.pytest(suite, WITHOUT_PLUGIN, measure.bench_env({"BENCH_PROBE_OUT": str(out)}))
    plain = int(_probe_out(out)["peak_rss_kb"])
    recorded = _plugin_probed(bench, suite, tests, modules, 0, notes).pytest_kb
    bench.quiet(1)
    smaller = _plugin_probed(bench, small, small_tests, small_modules, 0, notes).uploader_kb
    peaks = bench.uploader_peaks.get(large_tests, [])
    if peaks:
        where = f"{large_tests:,} tests: the largest of scale60k's {_count(len(peaks), 'run')}"
    else:
        large = bench.probe_suite(large_tests, large_modules)
        bench.pytest(large, ["--collect-only", *WITHOUT_PLUGIN])  # warm-up
        bench.quiet(2)
        peaks = [_plugin_probed(bench, large, large_tests, large_modules, 0, notes).uploader_kb]
        where = f"{large_tests:,} tests: one run (scale60k was not run)"
    larger = max(peaks)
    extra = (recorded - plain) / 1024
    growth = (larger - smaller) / 1024
    return [
        Line(
            f"memory: peak RSS of the pytest process, {tests:,} tests{bench.scaled}, "
            "plain vs --mlflow-tree",
            _mb(plain),
            _mb(recorded),
            f"{extra:+.1f} MB",
            "<= +30 MB",
            extra <= 30,
        ),
        Line(
            f"memory: peak RSS of the uploader process, {small_tests:,} vs {large_tests:,} "
            f"tests{bench.scaled}",
            _mb(smaller),
            _mb(larger),
            f"{growth:+.1f} MB",
            "<= +50 MB",
            growth <= 50,
            note=where,
        ),
    ]


# -- 9. faults: what a store that is down or silent adds to pytest's wall time -------------------

FAULT_TESTS = 20


def _fault_stores(bench: Bench) -> Iterator[tuple[str, str, float | None]]:
    """(what, tracking URI, target in added seconds or None) of stores that cannot be used."""
    with servers.refused_port() as refused, socket.socket() as silent:
        # Listening, never accepting: connections are made, requests never answered.
        silent.bind(("127.0.0.1", 0))
        silent.listen(64)
        garbage = bench.path("garbage") / "mlflow.db"
        garbage.parent.mkdir()
        garbage.write_bytes(random.Random(0).randbytes(64 * 1024))
        yield "tracking server refusing connections", f"http://127.0.0.1:{refused}", 5.0
        yield (
            "PostgreSQL refusing connections",
            (f"postgresql+psycopg2://mlflow@127.0.0.1:{refused}/mlflow"),
            5.0,
        )
        yield "SQLite file of random bytes", f"sqlite:///{garbage}", 5.0
        yield (
            "tracking server that accepts and never answers",
            (f"http://127.0.0.1:{silent.getsockname()[1]}"),
            None,
        )


def bench_faults(bench: Bench) -> list[Line]:
    suite = bench.quick_suite(FAULT_TESTS, 2)
    lines = []
    for what, uri, target in _fault_stores(bench):

        def plain(_rep: int) -> float:
            return bench.pytest(suite, [])

        def plugin(rep: int, uri: str = uri) -> float:
            args = ["--mlflow-tree", "--mlflow-tree-tracking-uri", uri]
            args += ["--mlflow-tree-experiment", _experiment("fault", rep)]
            seconds, log_path = bench.timed([*PYTEST, *args], suite, name="fault")
            if "mlflow-tree: WARNING" not in log_path.read_text(errors="replace"):
                raise BenchError(f"no warning about the store ({log_path})")
            return seconds

        times = interleaved(bench.reps, [("plain", plain), ("plugin", plugin)], before=bench.quiet)
        base, mine = median(times["plain"]), median(times["plugin"])
        added = mine - base
        lines.append(
            Line(
                f"faults: {FAULT_TESTS} tests, {what}: wall, plain pytest vs --mlflow-tree "
                f"(median of {bench.reps}); ratio = seconds added",
                _s(base),
                _s(mine),
                f"+{added:.1f} s",
                "-" if target is None else f"<= +{target:g} s",
                None if target is None else added <= target,
            )
        )
    return lines


# -- 10. read: a recorded session read back ------------------------------------------------------


def bench_read(bench: Bench) -> list[Line]:
    tests, modules = bench.sized(READ_TESTS, READ_TESTS // PER_MODULE)
    uri, experiment = bench.fresh_db(), _experiment("read", 0)
    where = ["--tracking-uri", uri, "--experiment", experiment]
    journal = _journal(bench, tests, modules)
    bench.timed([*_cli_command("replay"), str(journal), *where], bench.work)
    counted, expected = bench.count_runs(uri, experiment), 1 + modules + tests

    def listed(_rep: int) -> float:
        return bench.timed([PYTHON, "-c", _LIST_RUNS, uri, experiment], bench.work, name="list")[0]

    def shown(_rep: int) -> float:
        return bench.timed([*_cli_command("show"), *where], bench.work, name="show")[0]

    times = interleaved(bench.reps, [("list", listed), ("show", shown)], before=bench.quiet)
    bench.drop_db(uri)
    base, mine = median(times["list"]), median(times["show"])
    return [
        Line(
            f"read sqlite: a {tests:,}-test session{bench.scaled}, its runs listed with "
            f"MlflowClient.search_runs vs pytest-mlflow-tree show (median of {bench.reps})",
            _s(base),
            _s(mine),
            f"{mine / base:.3f}",
            "<= 1",
            mine / base <= 1 and counted == expected,
            note=f"runs: {counted}" + ("" if counted == expected else f" (expected {expected})"),
        )
    ]


BENCHMARKS: dict[str, Callable[[Bench], list[Line]]] = {
    "startup": bench_startup,
    "sqlite": bench_sqlite,
    "server": bench_server,
    "throughput": bench_throughput,
    "replay": bench_replay,
    "scale10k": bench_scale10k,
    "scale60k": bench_scale60k,
    "cpu": bench_cpu,
    "memory": bench_memory,
    "faults": bench_faults,
    "read": bench_read,
}


# -- report --------------------------------------------------------------------------------------


def table(lines: list[Line]) -> str:
    header = ("what", "baseline", "plugin", "ratio", "target", "result")
    rows = [header] + [
        (line.what, line.baseline, line.plugin, line.ratio, line.target, line.result)
        for line in lines
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]

    def fmt(row: tuple[str, ...]) -> str:
        return "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))

    out = [fmt(header), "  ".join("-" * width for width in widths)]
    return "\n".join(out + [fmt(row).rstrip() for row in rows[1:]])


def _plugin_version() -> str:
    try:
        text = f"pytest-mlflow-tree {version('pytest-mlflow-tree')}"
    except PackageNotFoundError:
        return "pytest-mlflow-tree (not installed)"
    # A checkout: say which commit was measured, since the numbers change with it.
    git = ["git", "-C", str(HERE.parent)]
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        commit = subprocess.run(
            [*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            [*git, "status", "--porcelain", "--", "pytest_mlflow_tree"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        text += f" at commit {commit}" + (" with uncommitted changes" if dirty else "")
    return text


def _load_notes(bench: Bench) -> list[str]:
    notes = []
    for name, load in bench.loads.items():
        waited = bench.waited.get(name, 0.0)
        notes.append(
            f"{name}: other processes used {load.share:.0%} of the machine during its "
            f"{load.runs} measured runs (worst run {load.worst:.0%}); waited {waited:.0f} s "
            "for a quiet machine"
        )
    return notes


@contextlib.contextmanager
def _workdir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="bench-mlflow-tree-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Benchmarks of pytest-mlflow-tree.")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="fewer repetitions (1 of 60,000 tests); 200 tests for the server case",
    )
    parser.add_argument(
        "--only", nargs="+", choices=NAMES, metavar="NAME", help=f"run only these: {NAMES}"
    )
    parser.add_argument(
        "--scale",
        type=float,
        default=1.0,
        metavar="FACTOR",
        help="multiply the suites' sizes (not startup's or cpu's) by this, e.g. 0.02 to try "
        "the benchmarks out; the lines say so, and their targets mean little then",
    )
    parser.add_argument("--json", type=Path, help="also write the results as JSON here")
    args = parser.parse_args(argv)
    if not 0 < args.scale <= 1:
        parser.error("--scale must be in (0, 1]")
    chosen = [name for name in NAMES if not args.only or name in args.only]
    started = time.monotonic()
    measured = _plugin_version()
    mode = ("--quick" if args.quick else "full") + (
        f" --scale {args.scale:g}" if args.scale != 1 else ""
    )
    log(f"benchmarks: {', '.join(chosen)} ({mode}); {measured}")
    lines: list[Line] = []
    with _workdir() as work, contextlib.ExitStack() as stack:
        bench = Bench(args.quick, work, stack, args.scale)
        for name in chosen:
            log(f"== {name}")
            bench.current = name
            begun = time.monotonic()
            try:
                lines += BENCHMARKS[name](bench)
            except Exception as exc:
                # One broken measurement must not hide the others: it becomes an ERROR line.
                message = f"{type(exc).__name__}: {exc}"[:3000]
                lines.append(Line(name, "-", "-", "-", "error", None, note=message))
            log(f"   {name} took {time.monotonic() - begun:.0f} s")
        notes = [f"{line.what.split(':')[0]}: {line.note}" for line in lines if line.note]
        notes += _load_notes(bench)
    elapsed = time.monotonic() - started
    print(f"{measured}; {mode} run on {os.cpu_count()} CPUs, {elapsed:.0f} s in all\n")
    print(table(lines))
    print("\n" + "\n".join(f"- {note}" for note in notes))
    if args.json:
        result = {"measured": measured, "quick": args.quick, "seconds": round(elapsed)}
        result["scale"] = args.scale
        result["lines"] = [asdict(line) | {"result": line.result} for line in lines]
        result["notes"] = notes
        args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return 0 if all(line.ok for line in lines if line.target != "-") else 1


if __name__ == "__main__":
    sys.exit(main())
