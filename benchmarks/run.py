"""Benchmarks of pytest-mlflow-tree against its baselines, side by side in one run.

    python benchmarks/run.py [--quick] [--only NAME ...] [--json PATH]

Prints one table (what, baseline, plugin, ratio, target, result) and exits 1 when a target is
missed or a measurement failed. benchmarks/README.md says what each line means.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import measure
import suites
from measure import BenchError, Load, Machine, PeakRss, interleaved, median, servers

PYTHON = sys.executable
PYTEST = [PYTHON, "-m", "pytest", "-q"]
NAMES = ("startup", "sqlite", "server", "throughput", "cpu", "memory")
HERE = Path(__file__).resolve().parent

# Every measured command is bounded; the longest (the naive recorder against the server, 1,000
# tests) takes a few minutes on a 2-core machine.
TIMEOUT = 1800.0
# The plugin waits this long for its upload at the end (default 300 s): long enough that no
# benchmark here cuts an upload short, which would make the plugin look faster than it is.
PLUGIN_WAIT = ["--mlflow-tree-wait", "1500"]

SUITE_TESTS = 1000
MODULES = 20
SERVER_THREADS = 8
CPU_TESTS = 30


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


def _replay_command() -> list[str]:
    script = Path(PYTHON).parent / "pytest-mlflow-tree"
    if script.exists():
        return [str(script), "replay"]
    return [PYTHON, "-m", "pytest_mlflow_tree.cli", "replay"]


def _experiment(kind: str, repetition: int) -> str:
    return f"{kind}-{repetition}-{uuid.uuid4().hex[:8]}"


def _s(seconds: float) -> str:
    return f"{seconds:.3f} s" if seconds < 10 else f"{seconds:.1f} s"


def _mb(kb: float) -> str:
    return f"{kb / 1024:.1f} MB"


class Bench:
    """State shared by the benchmarks: work directory, template store, server, load records."""

    def __init__(self, quick: bool, work: Path, stack: contextlib.ExitStack) -> None:
        self.quick = quick
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
        self._suites: dict[str, Path] = {}
        self._counter = 0

    @property
    def reps(self) -> int:
        """Repetitions of the long benchmarks; medians are taken over them."""
        return 2 if self.quick else 3

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

    def server(self) -> servers.TrackingServer:
        if self._server is None:
            log("   starting PostgreSQL and mlflow server on 127.0.0.1 ...")
            workdir = self.work / "server"
            workdir.mkdir()
            self._server = self._stack.enter_context(servers.tracking_server(workdir))
            # The server's CPU is ours, not other load.
            self.machine.servers = list(self._server.pids)
            log(f"   mlflow server at {self._server.url}")
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
        self, suite: Path, uri: str, experiment: str, env: dict[str, str] | None = None
    ) -> tuple[float, str]:
        args = ["--mlflow-tree", "--mlflow-tree-tracking-uri", uri]
        args += ["--mlflow-tree-experiment", experiment, *PLUGIN_WAIT]
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
        code = (
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
        out = subprocess.run(
            [PYTHON, "-c", code, uri, experiment],
            env=measure.bench_env(),
            capture_output=True,
            text=True,
            timeout=300,
            check=True,
        )
        return int(out.stdout.split()[-1])


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
        run("without", ["-p", "no:mlflow_tree"])
        run("installed", [])
    for values in cpu.values():
        values.clear()
    times = interleaved(
        reps,
        [
            ("without", lambda _rep: run("without", ["-p", "no:mlflow_tree"])),
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
            note="baseline: the same with -p no:mlflow_tree; CPU time (user+sys) medians "
            f"{_s(cpu_base)} vs {_s(cpu_plugin)} (ratio {cpu_plugin / cpu_base:.3f})",
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
    bench: Bench, label: str, tests: int, store: Callable[[], str], target: float
) -> list[Line]:
    suite = bench.quick_suite(tests, MODULES)
    naive_suite = bench.quick_suite(tests, MODULES, naive=True)
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
        log(f"   {label} plugin: {seconds:.1f} s")
        return seconds

    # Warm-up: bytecode of the generated modules, in both copies. Collecting the naive copy
    # loads its conftest, which opens a session run: it gets a store of its own.
    plain(0)
    warm_up = {"MLFLOW_TRACKING_URI": bench.fresh_db(), "MLFLOW_EXPERIMENT_NAME": "warm-up"}
    bench.pytest(naive_suite, ["--collect-only"], measure.bench_env(warm_up))
    times = interleaved(
        bench.reps, [("plain", plain), ("naive", naive), ("plugin", plugin)], before=bench.quiet
    )
    base, mine = median(times["naive"]), median(times["plugin"])
    runs = f"runs recorded: naive {counted.get('naive')}, plugin {counted.get('plugin')}"
    same = counted.get("naive") == counted.get("plugin")
    quick = " [--quick: 200, not 1000]" if bench.quick and tests != SUITE_TESTS else ""
    return [
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
    return _recording(bench, "sqlite", SUITE_TESTS, bench.fresh_db, 0.5)


def bench_server(bench: Bench) -> list[Line]:
    url = bench.server().url
    # The naive recorder needs minutes for 1,000 tests against a server.
    tests = 200 if bench.quick else SUITE_TESTS
    return _recording(bench, "server", tests, lambda: url, 0.15)


# -- 4. throughput: the uploader alone vs the raw client floor -----------------------------------


def _journal(bench: Bench) -> Path:
    suite = bench.quick_suite(SUITE_TESTS, MODULES)
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
    bench: Bench, journal: Path, label: str, store: Callable[[], str], threads: int
) -> Line:
    counted: dict[str, int] = {}

    def replay(rep: int) -> float:
        uri, experiment = store(), _experiment("replay", rep)
        command = [*_replay_command(), str(journal), "--tracking-uri", uri]
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
        f"throughput {label}: {SUITE_TESTS}-test journal, raw client ({threads} thread{plural})"
        f" vs replay; ratio = raw/replay, higher is better (median of {bench.reps})",
        _s(floor),
        _s(mine),
        f"{floor / mine:.3f}",
        ">= 0.9",
        floor / mine >= 0.9 and same,
        note=runs if same else f"MISMATCH: {runs}",
    )


def bench_throughput(bench: Bench) -> list[Line]:
    journal = _journal(bench)
    lines = [_throughput(bench, journal, "sqlite", bench.fresh_db, 1)]
    url = bench.server().url
    lines.append(_throughput(bench, journal, "server", lambda: url, SERVER_THREADS))
    return lines


# -- 5. cpu: recorded durations of CPU-bound tests -----------------------------------------------


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
            seconds = bench.pytest(suite, ["-p", "no:mlflow_tree"], env)
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


# -- 6. memory -----------------------------------------------------------------------------------


@dataclass
class _Memory:
    pytest_kb: int
    uploader_kb: int = 0
    uploader_tree_kb: int = 0
    uploader_tree_pss_kb: int = 0
    child_kb: int = 0
    workers: int = 0


def bench_memory(bench: Bench) -> list[Line]:
    def suite(tests: int) -> Path:
        made = suites.quick_suite(bench.path(f"memory-{tests}"), tests, tests // 50)
        return suites.copy_suite(made, made.with_name(made.name + "-probe"), suites.PROBE_CONFTEST)

    def probe_run(directory: Path, plugin: bool) -> _Memory:
        out = bench.path("memory.json")
        env = measure.bench_env({"BENCH_PROBE_OUT": str(out)})
        # A journal directory of its own: it tells this run's uploader from any other in `ps`.
        journal_dir = bench.path("journals")
        with PeakRss(("pytest_mlflow_tree.upload", str(journal_dir))) as uploader:
            if plugin:
                args = ["--mlflow-tree-journal-dir", str(journal_dir)]
                args += ["--mlflow-tree", "--mlflow-tree-tracking-uri", bench.fresh_db()]
                seconds = bench.pytest(
                    directory, [*args, "--mlflow-tree-experiment", "memory", *PLUGIN_WAIT], env
                )
            else:
                seconds = bench.pytest(directory, ["-p", "no:mlflow_tree"], env)
        log(f"   memory {directory.name}, plugin={plugin}: {seconds:.1f} s")
        if plugin and not uploader.pids:
            raise BenchError("the uploader process (pytest_mlflow_tree.upload) was never seen")
        return _Memory(
            int(json.loads(out.read_text())["peak_rss_kb"]),
            uploader.peak_kb,
            uploader.tree_peak_kb,
            uploader.tree_peak_pss_kb,
            uploader.child_peak_kb,
            len(uploader.descendants),
        )

    big, small = suite(10_000), suite(2_000)
    for directory in (big, small):
        bench.pytest(directory, ["--collect-only", "-p", "no:mlflow_tree"])  # warm-up
    bench.quiet(0)
    plain = probe_run(big, plugin=False)
    recorded = probe_run(big, plugin=True)
    bench.quiet(1)
    smaller = probe_run(small, plugin=True)
    extra = (recorded.pytest_kb - plain.pytest_kb) / 1024
    growth = (recorded.uploader_kb - smaller.uploader_kb) / 1024

    def grown(kb: Callable[[_Memory], int]) -> str:
        return f"{(kb(recorded) - kb(smaller)) / 1024:+.1f} MB"

    return [
        Line(
            "memory: peak RSS of the pytest process, 10,000 tests, plain vs --mlflow-tree",
            _mb(plain.pytest_kb),
            _mb(recorded.pytest_kb),
            f"{extra:+.1f} MB",
            "<= +30 MB",
            extra <= 30,
        ),
        Line(
            "memory: peak RSS of the uploader process, 2,000 vs 10,000 tests",
            _mb(smaller.uploader_kb),
            _mb(recorded.uploader_kb),
            f"{growth:+.1f} MB",
            "<= +20 MB",
            growth <= 20,
        ),
        # For reference: whether the uploader starts worker processes depends on the session
        # (how far pytest gets ahead of one writer), not only on its size.
        Line(
            "memory: the uploader's child processes, largest peak RSS of one, "
            "2,000 vs 10,000 tests (reference)",
            _mb(smaller.child_kb),
            _mb(recorded.child_kb),
            grown(lambda m: m.child_kb),
            "-",
            None,
            note=f"child processes of the uploader seen: {smaller.workers} (2,000 tests), "
            f"{recorded.workers} (10,000 tests)",
        ),
        Line(
            "memory: uploader and its child processes, peak of their summed RSS, shared pages "
            "counted in each (sampled every 0.2 s), 2,000 vs 10,000 tests (reference)",
            _mb(smaller.uploader_tree_kb),
            _mb(recorded.uploader_tree_kb),
            grown(lambda m: m.uploader_tree_kb),
            "-",
            None,
        ),
        Line(
            "memory: uploader and its child processes, peak of their summed PSS, shared pages "
            "split (sampled every 0.2 s), 2,000 vs 10,000 tests (reference)",
            _mb(smaller.uploader_tree_pss_kb),
            _mb(recorded.uploader_tree_pss_kb),
            grown(lambda m: m.uploader_tree_pss_kb),
            "-",
            None,
        ),
    ]


BENCHMARKS: dict[str, Callable[[Bench], list[Line]]] = {
    "startup": bench_startup,
    "sqlite": bench_sqlite,
    "server": bench_server,
    "throughput": bench_throughput,
    "cpu": bench_cpu,
    "memory": bench_memory,
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
        "--quick", action="store_true", help="fewer repetitions; 200 tests for the server case"
    )
    parser.add_argument(
        "--only", nargs="+", choices=NAMES, metavar="NAME", help=f"run only these: {NAMES}"
    )
    parser.add_argument("--json", type=Path, help="also write the results as JSON here")
    args = parser.parse_args(argv)
    chosen = [name for name in NAMES if not args.only or name in args.only]
    started = time.monotonic()
    measured = _plugin_version()
    log(f"benchmarks: {', '.join(chosen)}{' (--quick)' if args.quick else ''}; {measured}")
    lines: list[Line] = []
    with _workdir() as work, contextlib.ExitStack() as stack:
        bench = Bench(args.quick, work, stack)
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
    mode = "--quick" if args.quick else "full"
    print(f"{measured}; {mode} run on {os.cpu_count()} CPUs, {elapsed:.0f} s in all\n")
    print(table(lines))
    print("\n" + "\n".join(f"- {note}" for note in notes))
    if args.json:
        result = {"measured": measured, "quick": args.quick, "seconds": round(elapsed)}
        result["lines"] = [asdict(line) | {"result": line.result} for line in lines]
        result["notes"] = notes
        args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return 0 if all(line.ok for line in lines if line.target != "-") else 1


if __name__ == "__main__":
    sys.exit(main())
