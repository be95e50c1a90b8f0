"""Running and measuring subprocesses: wall time, interleaved repetitions, peak RSS by polling."""

from __future__ import annotations

import contextlib
import os
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple, TypeVar

# The throwaway servers live with the tests, which start them too.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
import servers

T = TypeVar("T")


class BenchError(Exception):
    """A measured command failed: the benchmark line cannot be computed."""


class Timing(NamedTuple):
    wall: float
    # User + system time of the process and the descendants it reaped.
    cpu: float


def bench_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment for every measured process: the caller's, without settings that leak in.

    MLFLOW_* and PYTEST_* variables from the calling shell would change what is measured
    (a tracking URI, PYTEST_ADDOPTS, ...). Telemetry is off everywhere: the plugin's uploader
    turns it off for itself, the baselines must not pay for it either, and the benchmark must
    not reach any address but 127.0.0.1.
    """
    return servers.clean_env(extra)


def _tail(path: Path, lines: int = 25) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def timed(
    command: Sequence[str],
    cwd: Path,
    env: dict[str, str],
    log: Path,
    timeout: float,
    ok_codes: tuple[int, ...] = (0,),
) -> Timing:
    """Wall and CPU seconds of one run of ``command``; its output goes to ``log``."""
    with log.open("wb") as output:
        started = time.perf_counter()
        process = subprocess.Popen(
            list(command),
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            # Its own process group: on a timeout, the group is ours to end.
            start_new_session=True,
        )
        # Not wait(timeout=...): with a timeout, CPython polls with sleeps growing to 50 ms,
        # which rounds every wall time up to a 50 ms step. A blocking wait returns at once; a
        # timer ends the process if it overstays.
        expired = threading.Event()

        def expire() -> None:
            expired.set()
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGKILL)

        timer = threading.Timer(timeout, expire)
        timer.start()
        reaped = False
        try:
            # wait4 rather than Popen.wait: it also returns the CPU time of the process and of
            # the children it reaped (pytest reaps its uploader).
            _, status, usage = os.wait4(process.pid, 0)
            reaped = True
        finally:
            timer.cancel()
            if not reaped:
                # Interrupted (Ctrl-C): its own session does not get our SIGINT, so end it.
                expire()
                process.wait()
        elapsed = time.perf_counter() - started
        process.returncode = code = os.waitstatus_to_exitcode(status)
        if expired.is_set():
            raise BenchError(f"timed out after {timeout:g} s: {' '.join(command)}")
    if code not in ok_codes:
        raise BenchError(f"exit code {code}: {' '.join(command)}\n{_tail(log)}")
    return Timing(elapsed, usage.ru_utime + usage.ru_stime)


def interleaved(
    repetitions: int,
    variants: Sequence[tuple[str, Callable[[int], float]]],
    before: Callable[[int], None] | None = None,
) -> dict[str, list[float]]:
    """Run every variant once per repetition, rotating their order.

    Interleaving spreads slow drifts of the machine (other load, thermal, caches) over all
    variants instead of charging them to whichever ran last; rotating the order keeps any
    "runs right after X" effect from always hitting the same variant.
    """
    results: dict[str, list[float]] = {name: [] for name, _ in variants}
    for repetition in range(repetitions):
        if before is not None:
            before(repetition)
        shift = repetition % len(variants)
        for name, action in [*variants[shift:], *variants[:shift]]:
            results[name].append(action(repetition))
    return results


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def _status_kb(pid: int, field_name: str) -> int | None:
    try:
        text = Path(f"/proc/{pid}/status").read_text(encoding="ascii")
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith(field_name + ":"):
            return int(line.split()[1])
    return None


def _cmdline(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return raw.decode(errors="replace").split("\0")


@dataclass
class PeakRss:
    """Polls for processes whose command line contains every one of ``needles``.

    ``peak_kb`` is the largest VmHWM (the kernel's own high-water mark of a process's RSS) of a
    matching process: a running maximum, so polling every ``interval`` misses at most what grows
    in the process's last ``interval``. Once a process matched, only its own status is read: a
    scan of ``/proc`` costs milliseconds, which would add to the wall times measured meanwhile.
    """

    needles: tuple[str, ...]
    interval: float = 0.2
    peak_kb: int = 0
    pids: set[int] = field(default_factory=set)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> PeakRss:
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _matches(self, pid: int) -> bool:
        arguments = _cmdline(pid)
        return all(any(needle in argument for argument in arguments) for needle in self.needles)

    def _poll(self) -> None:
        # Ends when __exit__ sets the event; the measured command has its own timeout.
        while not self._stop.wait(self.interval):
            if not self.pids:
                self.pids = {
                    int(entry.name)
                    for entry in os.scandir("/proc")
                    if entry.name.isdigit() and self._matches(int(entry.name))
                }
            for pid in self.pids:
                self.peak_kb = max(self.peak_kb, _status_kb(pid, "VmHWM") or 0)


# -- other load on the machine -------------------------------------------------------------------
#
# The benchmarks share the machine with whatever else runs on it (on a 2-core machine, another
# test suite doubles a wall time). Each measured run therefore records how much CPU processes
# other than ours used meanwhile, and a repetition waits (bounded) for a quiet machine first.

_TICK = float(os.sysconf("SC_CLK_TCK"))


def _machine_busy_seconds() -> float:
    # /proc/stat's first line: cpu user nice system idle iowait irq softirq steal ...
    fields = Path("/proc/stat").read_text(encoding="ascii").splitlines()[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(x) for x in fields[:8])
    return (user + nice + system + irq + softirq + steal) / _TICK


def _own_seconds() -> float:
    # Ours: this process and every child it has reaped, with their reaped children (pytest
    # reaps its uploader).
    import resource

    total = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        usage = resource.getrusage(who)
        total += usage.ru_utime + usage.ru_stime
    return total


def _stat(pid: int) -> tuple[int, float] | None:
    """(parent pid, CPU seconds of the process and its reaped children)."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text(encoding="ascii", errors="replace")
    except OSError:
        return None
    rest = text.rsplit(")", 1)[1].split()
    # After the command name: state, ppid, ..., utime, stime, cutime, cstime (fields 14-17).
    return int(rest[1]), sum(int(x) for x in rest[11:15]) / _TICK


def tree_cpu_seconds(roots: Sequence[int]) -> float:
    """CPU seconds of the processes ``roots`` and all their live descendants.

    Each process counts its own time plus its reaped children's, so every CPU second is
    counted once: a dead process's time is in its parent's.
    """
    stats = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            stat = _stat(int(entry.name))
            if stat is not None:
                stats[int(entry.name)] = stat
    children: dict[int, list[int]] = {}
    for pid, (parent, _) in stats.items():
        children.setdefault(parent, []).append(pid)
    total, todo, seen = 0.0, [pid for pid in roots if pid in stats], set()
    while todo:
        pid = todo.pop()
        if pid in seen:
            continue
        seen.add(pid)
        total += stats[pid][1]
        todo += children.get(pid, [])
    return total


@dataclass
class Load:
    """Wall seconds measured and CPU seconds other processes used meanwhile."""

    wall: float = 0.0
    other_cpu: float = 0.0
    worst: float = 0.0
    runs: int = 0

    def add(self, wall: float, other_cpu: float) -> None:
        self.wall += wall
        self.other_cpu += max(0.0, other_cpu)
        self.runs += 1
        if wall > 0:
            self.worst = max(self.worst, other_cpu / wall / CPUS)

    @property
    def share(self) -> float:
        """Other processes' average share of the whole machine during the measured runs."""
        return self.other_cpu / self.wall / CPUS if self.wall else 0.0


CPUS = os.cpu_count() or 1


@dataclass
class Machine:
    """Tells our CPU use from the rest of the machine's; ``servers`` lists our servers' pids."""

    servers: list[int] = field(default_factory=list)

    def _others(self) -> float:
        ours = _own_seconds() + (tree_cpu_seconds(self.servers) if self.servers else 0.0)
        return _machine_busy_seconds() - ours

    def measure(self, action: Callable[[], T], load: Load) -> T:
        before = self._others()
        started = time.perf_counter()
        result = action()
        load.add(time.perf_counter() - started, self._others() - before)
        return result

    def wait_for_quiet(self, limit: float = 90.0, threshold: float = 0.15) -> float:
        """Wait until others use less than ``threshold`` of the machine for a second.

        Returns the seconds waited. Bounded by ``limit``: a machine that never calms down is
        measured anyway, and its load shows in the report.
        """
        started = time.monotonic()
        while True:
            before = self._others()
            time.sleep(1.0)
            share = (self._others() - before) / CPUS
            if share < threshold or time.monotonic() - started >= limit:
                return time.monotonic() - started
