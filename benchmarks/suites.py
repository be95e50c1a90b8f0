"""Generated test suites for the benchmarks: written into temporary directories, never kept.

Every suite has its own ``pytest.ini`` so that pytest takes the suite's directory as rootdir and
reads no configuration from the directories around it.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
NAIVE_CONFTEST = HERE / "naive_conftest.py"
PROBE_CONFTEST = HERE / "probe_conftest.py"

# Per module, this many tests come from one parametrized function ("a few parametrized").
_PARAMS_PER_MODULE = 10


def _start(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=False)
    (root / "pytest.ini").write_text("[pytest]\n", encoding="utf-8")
    return root


def quick_suite(root: Path, tests: int, modules: int) -> Path:
    """``tests`` trivial tests spread over ``modules`` modules, a fifth of them parametrized."""
    _start(root)
    per_module, extra = divmod(tests, modules)
    for index in range(modules):
        count = per_module + (1 if index < extra else 0)
        params = min(_PARAMS_PER_MODULE, count // 5)
        lines = ["import pytest", ""]
        for number in range(count - params):
            lines += ["", f"def test_{number:05d}():", f"    assert {number} + 1 > {number}", ""]
        if params:
            lines += [
                "",
                f'@pytest.mark.parametrize("value", range({params}))',
                "def test_param(value):",
                "    assert value >= 0",
                "",
            ]
        (root / f"test_mod{index:03d}.py").write_text("\n".join(lines), encoding="utf-8")
    return root


def tiny_suite(root: Path) -> Path:
    """The smallest realistic suite: what the startup cost is measured on."""
    _start(root)
    (root / "test_tiny.py").write_text(
        "def test_one():\n    assert 1\n\n\ndef test_two():\n    assert 2\n\n\n"
        "def test_three():\n    assert 3\n",
        encoding="utf-8",
    )
    return root


def calibrate_loop(seconds: float) -> int:
    """Iterations of the CPU tests' loop that take about ``seconds`` in this interpreter."""
    iterations = 100_000
    # Bounded: doubling from 1e5 reaches any plausible speed within a few steps.
    for _attempt in range(12):
        started = time.perf_counter()
        _spin(iterations)
        elapsed = time.perf_counter() - started
        if elapsed >= 0.05:
            return max(1, int(iterations * seconds / elapsed))
        iterations *= 2
    return iterations


def _spin(iterations: int) -> int:
    # The same loop as the generated CPU tests run: pure-Python arithmetic, no allocation.
    total = 0
    for number in range(iterations):
        total += number * number % 7
    return total


def cpu_suite(root: Path, tests: int, iterations: int, modules: int = 3) -> Path:
    """``tests`` CPU-bound tests: each spins the calibrated loop once."""
    _start(root)
    per_module, extra = divmod(tests, modules)
    for index in range(modules):
        count = per_module + (1 if index < extra else 0)
        (root / f"test_cpu{index}.py").write_text(
            "import pytest\n\n\n"
            f'@pytest.mark.parametrize("case", range({count}))\n'
            "def test_spin(case):\n"
            "    total = 0\n"
            f"    for number in range({iterations}):\n"
            "        total += number * number % 7\n"
            "    assert total >= 0\n",
            encoding="utf-8",
        )
    return root


def copy_suite(source: Path, target: Path, conftest: Path | None = None) -> Path:
    """A copy of a suite, optionally with one of our conftest files as its ``conftest.py``."""
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__", ".pytest_cache"))
    if conftest is not None:
        shutil.copyfile(conftest, target / "conftest.py")
    return target
