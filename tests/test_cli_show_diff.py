"""``pytest-mlflow-tree show``, ``diff`` and ``flaky`` on sessions recorded for real.

``show`` reads sessions uploaded live; the other tests record their many sessions through
journals replayed in this process, the same upload without an uploader process for each.
"""

from __future__ import annotations

import contextlib
import gc
import re
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from types import FrameType
from typing import Any

import pytest
from conftest import BOTH_STORES, Record, Store, Tree
from replaying import command, recorded_by_replay

from pytest_mlflow_tree.read import Reader

SUITE = {
    "tests/test_model.py": """
        import pytest

        @pytest.mark.parametrize("depth", [2, 3])
        def test_accuracy(depth):
            assert depth > 1

        def test_fails():
            assert 0.7 > 0.9, "accuracy too low"
    """,
    "tests/test_data.py": """
        def test_load():
            pass

        def test_columns():
            pass
    """,
}


def where(store: Store) -> tuple[str, ...]:
    args: tuple[str, ...] = ("--tracking-uri", store.uri)
    if store.experiment is not None:
        args += ("--experiment", store.experiment)
    return args


@pytest.fixture
def suite(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makepyfile(**{path.removesuffix(".py"): body for path, body in SUITE.items()})
    return pytester


@BOTH_STORES
def test_show_of_one_recording_and_of_what_is_no_session(
    suite: pytest.Pytester, record: Record, store: Store, tmp_path: Path
) -> None:
    result, tree = record()
    result.assert_outcomes(passed=4, failed=1)

    show_prints_failures_first_and_collapses_passing_modules(tree, store)
    unknown_sessions_and_stores_exit_2_with_a_message(tree, store, tmp_path)


def show_prints_failures_first_and_collapses_passing_modules(tree: Tree, store: Store) -> None:
    code, out, err = command("show", "--last", *where(store))

    assert code == 0, err
    lines = out.splitlines()
    assert "FAILED" in lines[0]
    assert "5 tests: 1 failed, 4 passed" in lines[0]
    assert tree.session.info.run_id in lines[1]
    modules = [line for line in lines if line.startswith(("FAILED ", "ok "))]
    # The failing module first, though it ran second; the passing one is one line.
    assert modules[0].startswith("FAILED  tests/test_model.py  1 failed, 2 passed")
    assert modules[1].startswith("ok      tests/test_data.py  2 passed")
    assert any(line.split()[:2] == ["FAILED", "test_fails"] for line in lines)
    assert re.search(r"^ +E +AssertionError: accuracy too low$", out, re.MULTILINE)
    assert "  + 2 passed (--all lists them)" in lines
    assert "test_load" not in out.split("slowest")[0]

    code, everything, _ = command("show", tree.session.info.run_id, "--all", *where(store))

    assert code == 0
    assert "test_load" in everything.split("slowest")[0]
    assert "test_accuracy[3]" in everything


def test_show_stays_short_for_many_passing_modules(pytester: pytest.Pytester, store: Store) -> None:
    body = "import pytest\n\n@pytest.mark.parametrize('i', range(4))\ndef test_ok(i):\n    pass\n"
    pytester.makepyfile(**{f"test_part{n:02}": body for n in range(15)})
    pytester.makepyfile(test_zz_broken="def test_broken():\n    assert False\n")
    result, _ = recorded_by_replay(pytester, store)
    result.assert_outcomes(passed=60, failed=1)

    with collections_inside(Reader.session) as collections:
        code, out, _ = command("show", *where(store), "--slowest", "0")

    assert code == 0
    # The command keeps every run it reads until it has printed: the collector is paused while
    # it reads, and on again after.
    assert collections == []
    assert gc.isenabled()
    lines = [line for line in out.splitlines() if line.strip()]
    # Header (3), the failing module with its test, failure text and the rest, 15 module lines.
    assert len(lines) <= 3 + 4 + 15, out
    assert lines[3].startswith("FAILED  test_zz_broken.py")
    assert sum(line.startswith("ok      test_part") for line in lines) == 15


def test_diff_reports_every_kind_of_change_and_exits_1_on_new_failures(
    suite: pytest.Pytester, store: Store
) -> None:
    suite.makepyfile(
        **{
            "tests/test_speed": """
                import time

                def test_slow():
                    time.sleep(0.0)

                def test_removed():
                    pass
            """
        }
    )
    _, first = recorded_by_replay(suite, store)
    before_id = first.session.info.run_id
    suite.makepyfile(
        **{
            "tests/test_model": """
                import pytest

                @pytest.mark.parametrize("depth", [2, 3])
                def test_accuracy(depth):
                    assert depth > 2

                def test_fails():
                    pass

                def test_new():
                    pass
            """,
            "tests/test_speed": """
                import time

                def test_slow():
                    time.sleep(0.5)
            """,
        }
    )
    _, both = recorded_by_replay(suite, store)
    after = max(both.level("session"), key=lambda run: run.info.start_time)
    after_id = after.info.run_id
    runs = {
        (r.data.tags["pytest.nodeid"], r.data.tags["mlflow.rootRunId"]): r.info.run_id
        for r in both.level("test")
    }
    # What tests that log their own metrics leave on their runs.
    client = store.client()
    client.log_metric(runs["tests/test_data.py::test_load", before_id], "rows", 1000)
    client.log_metric(runs["tests/test_data.py::test_load", after_id], "rows", 998)

    code, out, err = command(
        "diff", before_id, after_id, "--slower", "1.5x", "--min-delta", "0.2", *where(store)
    )

    assert code == 1, err
    sections = _sections(out)
    assert sections["new failures"] == ["tests/test_model.py::test_accuracy[2]  passed -> failed"]
    assert sections["fixed"] == ["tests/test_model.py::test_fails  failed -> passed"]
    assert sections["added"] == ["tests/test_model.py::test_new  passed"]
    assert sections["removed"] == ["tests/test_speed.py::test_removed  passed"]
    slower = sections["slower (1.5x, at least 0.2s apart)"]
    assert len(slower) == 1
    # How long a sleep of 0 and of 0.5 s took is the machine's business, not a bound.
    assert re.fullmatch(
        r"tests/test_speed.py::test_slow  \d+\.\d\ds -> \d+\.\d\ds \(\d+\.\dx\)", slower[0]
    )
    assert sections["metric changes"] == ["tests/test_data.py::test_load  rows: 1000 -> 998"]
    assert "faster" not in " ".join(sections)

    code, out, _ = command("diff", after_id, after_id, *where(store))
    assert code == 0
    assert "no changes" in out

    # The same comparison by age: --last is the two newest sessions.
    code, out, _ = command("diff", "--last", "--slower", "0.3s", *where(store))
    assert code == 1
    assert (
        "tests/test_speed.py::test_slow" in _sections(out)["slower (0.3s, at least 0.1s apart)"][0]
    )


@contextlib.contextmanager
def collections_inside(function: Callable[..., Any]) -> Iterator[list[int]]:
    """The generations of the garbage collections this process makes inside the block while
    ``function`` runs."""
    collections: list[int] = []

    def count(phase: str, info: dict[str, int]) -> None:
        if phase != "start":
            return
        frame: FrameType | None = sys._getframe(1)
        while frame is not None and frame.f_code is not function.__code__:
            frame = frame.f_back
        if frame is not None:
            collections.append(info["generation"])

    gc.callbacks.append(count)
    try:
        yield collections
    finally:
        gc.callbacks.remove(count)


def _sections(out: str) -> dict[str, list[str]]:
    sections: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in out.splitlines():
        if line.endswith(":") and not line.startswith(" ") and " (" in line:
            current = sections.setdefault(line.rsplit(" (", 1)[0], [])
        elif line.startswith("  ") and current is not None:
            current.append(line.strip())
        else:
            current = None
    return sections


def test_flaky_ranks_tests_by_outcome_flips(pytester: pytest.Pytester, store: Store) -> None:
    pytester.makepyfile(
        test_flaky="""
            from pathlib import Path

            def test_flips():
                assert Path("verdict.txt").read_text() == "pass"

            def test_flips_once():
                assert Path("first").exists()

            def test_stable():
                pass
        """
    )
    verdict = Path(pytester.path, "verdict.txt")
    for outcome in ("pass", "fail", "pass"):
        verdict.write_text(outcome)
        recorded_by_replay(pytester, store)
        Path(pytester.path, "first").touch()

    code, out, err = command("flaky", "--sessions", "3", *where(store))

    assert code == 0, err
    lines = out.splitlines()
    ranked = [line.split() for line in lines if line.strip().endswith(("test_flips", "once"))]
    assert ranked == [
        ["2", "0", "1/3", ".F.", "test_flaky.py::test_flips"],
        ["1", "0", "1/3", "F..", "test_flaky.py::test_flips_once"],
    ]
    assert "test_stable" not in out
    assert "3 sessions, oldest first:" in lines[0]

    # The two newest: test_flips_once passed in both.
    code, out, err = command("flaky", "--sessions", "2", *where(store))
    assert code == 0, err
    assert "2 sessions, oldest first:" in out.splitlines()[0]
    assert "test_flips_once" not in out
    assert "test_flaky.py::test_flips" in out
    # --last is the switch of show and diff for the newest session(s), not a count.
    with pytest.raises(SystemExit) as rejected:
        command("flaky", "--last", "3", *where(store))
    assert rejected.value.code == 2


def unknown_sessions_and_stores_exit_2_with_a_message(
    tree: Tree, store: Store, tmp_path: Path
) -> None:
    module_run = tree.level("module")[0].info.run_id

    code, _, err = command("show", module_run, *where(store))
    assert code == 2
    assert "is not a pytest session run" in err

    code, _, err = command("show", "--tracking-uri", f"sqlite:///{tmp_path}/none.db")
    assert code == 2
    assert "no MLflow database" in err
    assert not (tmp_path / "none.db").exists()

    code, _, err = command("diff", tree.session.info.run_id, *where(store))
    assert code == 2
    assert "two session run ids" in err
