"""Journal now, upload later: ``pytest-mlflow-tree replay`` rebuilds the tree a live run makes."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import Store, Tree
from replaying import journal_only as journal_only_of
from replaying import replay

from pytest_mlflow_tree.read import html_report, readback

SUITE = {
    "tests/test_data.py": """
        def test_load():
            pass

        class TestSchema:
            def test_columns(self):
                pass
    """,
    "tests/test_model.py": """
        import pytest

        @pytest.mark.parametrize("depth", [2, 3])
        def test_accuracy(depth):
            assert depth > 1

        def test_fails():
            assert 0.7 > 0.9, "accuracy too low"

        @pytest.mark.skip(reason="no gpu here")
        def test_gpu():
            pass
    """,
}
NODEIDS = [
    "tests/test_data.py::TestSchema::test_columns",
    "tests/test_data.py::test_load",
    "tests/test_model.py::test_accuracy[2]",
    "tests/test_model.py::test_accuracy[3]",
    "tests/test_model.py::test_fails",
    "tests/test_model.py::test_gpu",
]
ALL_RUNS = 1 + 2 + len(NODEIDS)
# Where the journals cut short below end: after this test, in the middle of its module.
LAST_KEPT = "tests/test_model.py::test_accuracy[3]"
# Tags that identify one upload or one command line, not the tree.
VOLATILE_TAGS = frozenset(
    {"mlflow.parentRunId", "mlflow.rootRunId", "pytest.session_uuid", "pytest.command"}
)


@pytest.fixture
def suite(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makepyfile(**{path.removesuffix(".py"): body for path, body in SUITE.items()})
    return pytester


def another_store(tmp_path: Path, migrated_db: Path, name: str) -> Store:
    path = tmp_path / name / "mlflow.db"
    path.parent.mkdir()
    shutil.copy(migrated_db, path)
    return Store(uri=f"sqlite:///{path}", path=path)


def replay_command(*args: str) -> subprocess.CompletedProcess[str]:
    """The ``pytest-mlflow-tree`` console script, as a user runs it."""
    script = Path(sys.executable).with_name("pytest-mlflow-tree")
    assert script.exists(), f"console script not installed next to {sys.executable}"
    return subprocess.run(
        [str(script), "replay", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def experiments(store: Store) -> list[str]:
    return [e.name for e in store.client().search_experiments() if e.name != "Default"]


def run_ids(tree: Tree) -> set[str]:
    return {run.info.run_id for run in tree.runs}


def journal_only(pytester: pytest.Pytester, store: Store, *args: str) -> Path:
    """Run the suite journal-only (journal kept) into a fresh journal dir; return the journal."""
    directory = pytester.path / "journals"
    result = pytester.runpytest(
        "--mlflow-tree",
        f"--mlflow-tree-tracking-uri={store.uri}",
        "--mlflow-tree-journal-only",
        "--mlflow-tree-keep-journal",
        f"--mlflow-tree-journal-dir={directory}",
        *args,
    )
    result.assert_outcomes(passed=4, failed=1, skipped=1)
    journals = sorted(directory.glob("*.jsonl"))
    assert len(journals) == 1, journals
    return journals[0]


def lines_of(journal: Path) -> list[str]:
    return journal.read_text(encoding="utf-8").splitlines(keepends=True)


def cut_after(lines: list[str], key: str) -> int:
    """How many lines to keep so that the journal ends with the run record of test ``key``."""
    runs = [(r.get("kind"), r.get("key")) for r in map(json.loads, lines)]
    return runs.index(("run", key)) + 1


def _stable(key: str, value: str) -> str:
    if key == "mlflow.note.content":
        # "**1 failed**, 4 passed in 0.03 s": the seconds differ from run to run, and the links
        # to the runs table name the session's uuid.
        value = re.sub(r"(%27|\b)[0-9a-f]{32}(%27|\b)", r"\1<id>\2", value)
        return re.sub(r"\d+\.\d+ s\b", "<seconds> s", value)
    return value


def shape(tree: Tree) -> dict[str, dict[str, Any]]:
    """What a user sees of a tree, without run ids and timings, by place in the tree."""
    by_id = {run.info.run_id: run for run in tree.runs}

    def place(run: Any) -> str:
        tags = run.data.tags
        if tags["pytest.level"] == "session":
            return "<session>"
        return f"{tags['pytest.level']}:{tags['pytest.nodeid']}"

    shapes: dict[str, dict[str, Any]] = {}
    for run in tree.runs:
        tags = run.data.tags
        parent = tags.get("mlflow.parentRunId")
        root = tags.get("mlflow.rootRunId")
        assert "pytest.command" in tags or tags["pytest.level"] != "session"
        shapes[place(run)] = {
            "name": run.info.run_name,
            "parent": place(by_id[parent]) if parent else None,
            "root": place(by_id[root]) if root else None,
            "status": run.info.status,
            "params": dict(run.data.params),
            # Durations are measured anew by each run: compare that they are there.
            "metrics": {
                k: (None if k.endswith("duration") else v) for k, v in run.data.metrics.items()
            },
            "tags": {k: _stable(k, v) for k, v in tags.items() if k not in VOLATILE_TAGS},
            "artifacts": sorted(tree.artifacts(run)),
        }
    assert len(shapes) == len(tree.runs), "two runs in the same place of the tree"
    return shapes


def test_journal_only_writes_the_named_journal_and_uploads_nothing(
    suite: pytest.Pytester, store: Store
) -> None:
    result = suite.runpytest(
        "--mlflow-tree", f"--mlflow-tree-tracking-uri={store.uri}", "--mlflow-tree-journal-only"
    )
    result.assert_outcomes(passed=4, failed=1, skipped=1)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    assert experiments(store) == []

    output = result.stdout.str()
    named = re.findall(r"mlflow-tree: journal written to (\S+)", output)
    assert len(named) == 1, output
    assert "WARNING" not in output
    journal = suite.path / named[0]
    assert journal.is_file(), f"the terminal names {named[0]}, which does not exist"
    records = [json.loads(line) for line in lines_of(journal)]
    assert records[0]["kind"] == "journal"
    assert records[-1]["kind"] == "end"

    # The journal remembers where it was meant to go: replay needs no --tracking-uri.
    code, out, err = replay(str(journal))
    assert code == 0, err
    assert f"replayed {journal}" in out
    tree = store.tree()
    assert sorted(tree.tests) == NODEIDS
    assert len(tree.runs) == ALL_RUNS


def test_replay_builds_the_same_tree_as_a_live_run(
    suite: pytest.Pytester, store: Store, migrated_db: Path, tmp_path: Path
) -> None:
    journal = journal_only(suite, store, "--mlflow-tree-run-name=nightly")
    assert experiments(store) == []

    live = another_store(tmp_path, migrated_db, "live")
    result = suite.runpytest(
        "--mlflow-tree", f"--mlflow-tree-tracking-uri={live.uri}", "--mlflow-tree-run-name=nightly"
    )
    result.assert_outcomes(passed=4, failed=1, skipped=1)
    expected = shape(live.tree())
    assert len(expected) == ALL_RUNS

    # In this process...
    code, out, err = replay(str(journal), "--tracking-uri", store.uri)
    assert code == 0, err
    assert "Traceback" not in err
    assert f"replayed {journal}" in out
    assert shape(store.tree()) == expected

    # ...and as a user runs it, into a third store.
    console = another_store(tmp_path, migrated_db, "console")
    done = replay_command(str(journal), "--tracking-uri", console.uri)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    tree = console.tree()
    assert shape(tree) == expected
    session = tree.session
    assert f"/experiments/{session.info.experiment_id}/runs/{session.info.run_id}" in done.stdout
    assert session.info.run_name == "nightly"


def test_replaying_a_journal_twice_creates_no_duplicates(
    suite: pytest.Pytester, store: Store
) -> None:
    journal = journal_only(suite, store)
    code, _, err = replay(str(journal))
    assert code == 0, err
    first = store.tree()
    assert len(first.runs) == ALL_RUNS

    code, out, err = replay(str(journal))
    assert code == 0, err
    assert f"runs/{first.session.info.run_id}" in out
    second = store.tree()
    assert len(second.runs) == ALL_RUNS
    assert run_ids(second) == run_ids(first)
    assert shape(second) == shape(first)
    for run in second.runs:
        assert run.info.end_time == next(
            r.info.end_time for r in first.runs if r.info.run_id == run.info.run_id
        )


def test_replaying_a_kept_journal_of_a_live_run_changes_nothing(
    suite: pytest.Pytester, store: Store
) -> None:
    directory = suite.path / "kept"
    result = suite.runpytest(
        "--mlflow-tree",
        f"--mlflow-tree-tracking-uri={store.uri}",
        "--mlflow-tree-keep-journal",
        f"--mlflow-tree-journal-dir={directory}",
    )
    result.assert_outcomes(passed=4, failed=1, skipped=1)
    journals = sorted(directory.glob("*.jsonl"))
    assert len(journals) == 1, journals
    before = store.tree()
    assert len(before.runs) == ALL_RUNS
    model = before.modules["tests/test_model.py"]
    report = before.artifact(before.session, html_report.REPORT_ARTIFACT)

    code, out, err = replay(str(journals[0]))
    assert code == 0, err
    assert f"runs/{before.session.info.run_id}" in out
    after = store.tree()
    assert len(after.runs) == ALL_RUNS
    assert run_ids(after) == run_ids(before)
    assert shape(after) == shape(before)
    again = after.modules["tests/test_model.py"]
    assert again.data.metrics == model.data.metrics
    assert again.info.end_time == model.info.end_time
    # Metrics were not logged a second time: one value per key in the history.
    history = after.client.get_metric_history(again.info.run_id, "pytest/tests")
    assert [m.value for m in history] == [4.0]
    # Built from the journal and the runs the replay found: the same report.
    assert after.artifact(after.session, html_report.REPORT_ARTIFACT) == report


def test_a_journal_cut_short_replays_with_its_unfinished_runs_killed(
    suite: pytest.Pytester, store: Store, tmp_path: Path
) -> None:
    lines = lines_of(journal_only(suite, store))
    kept = cut_after(lines, LAST_KEPT)
    assert kept < len(lines) - 3, "the cut should fall in the middle of the session"
    cut = tmp_path / "killed.jsonl"
    cut.write_text("".join(lines[:kept]), encoding="utf-8")
    # The tests whose teardown was reported before the kill.
    completed = [r["key"] for r in map(json.loads, lines[:kept]) if r["kind"] == "run"]

    code, _, err = replay(str(cut))
    assert code == 0, err
    tree = store.tree()
    assert sorted(tree.tests) == sorted(completed)
    assert sorted(tree.tests) == [
        "tests/test_data.py::TestSchema::test_columns",
        "tests/test_data.py::test_load",
        "tests/test_model.py::test_accuracy[2]",
        "tests/test_model.py::test_accuracy[3]",
    ]
    for test in tree.tests.values():
        assert test.info.status == "FINISHED"
    assert tree.session.info.status == "KILLED"
    assert tree.modules["tests/test_model.py"].info.status == "KILLED"
    # The module that had finished before the kill is complete.
    data = tree.modules["tests/test_data.py"]
    assert data.info.status == "FINISHED"
    assert data.data.metrics["pytest/passed"] == 2
    last_end = max(test.info.end_time for test in tree.tests.values())
    for run in (tree.session, tree.modules["tests/test_model.py"]):
        assert run.info.end_time == last_end
    assert len(tree.runs) == 1 + 2 + 4
    # The report shows the cut session as it is stored: what reading it back shows.
    session = readback.Reader(store.uri).session(tree.session.info.run_id)
    assert session.status == "KILLED"
    assert tree.artifact(tree.session, html_report.REPORT_ARTIFACT) == html_report.render(session)


def test_a_half_written_last_line_is_ignored_and_the_rest_replays(
    suite: pytest.Pytester, store: Store, tmp_path: Path
) -> None:
    lines = lines_of(journal_only(suite, store))
    kept = cut_after(lines, LAST_KEPT)
    half = lines[kept]
    assert json.loads(half)["key"] == "tests/test_model.py::test_fails"
    torn = tmp_path / "torn.jsonl"
    torn.write_text("".join(lines[:kept]) + half[: len(half) // 2], encoding="utf-8")
    assert not torn.read_text(encoding="utf-8").endswith("\n")

    code, _, err = replay(str(torn))
    assert code == 0, err
    assert "Traceback" not in err
    tree = store.tree()
    assert "tests/test_model.py::test_fails" not in tree.tests
    assert len(tree.tests) == 4
    assert tree.session.info.status == "KILLED"
    assert tree.modules["tests/test_model.py"].info.status == "KILLED"


NAMES = """
    import pytest

    @pytest.mark.parametrize("name", ["café", "naïve", "模型"])
    def test_name(name):
        assert name
"""


def test_a_journal_cut_inside_a_character_replays_what_precedes_the_cut(
    pytester: pytest.Pytester, store: Store, tmp_path: Path
) -> None:
    pytester.makepyfile(test_names=NAMES)
    _, written = journal_only_of(pytester, store)
    lines = written.read_bytes().splitlines(keepends=True)
    runs = [i for i, line in enumerate(lines) if json.loads(line)["kind"] == "run"]
    assert len(runs) == 3
    # The disk filled up in the middle of the second test's record, inside a character.
    second = lines[runs[1]]
    cut_at = next(i for i, byte in enumerate(second) if byte >= 0xC0) + 1
    cut = tmp_path / "cut.jsonl"
    cut.write_bytes(b"".join(lines[: runs[1]]) + second[:cut_at])
    with pytest.raises(UnicodeDecodeError):
        cut.read_bytes().decode("utf-8")

    code, _, err = replay(str(cut))
    assert code == 0, err
    tree = store.tree()
    first, torn = (json.loads(lines[i]) for i in runs[:2])
    assert sorted(tree.tests) == sorted([first["key"], torn["key"]])
    before = tree.tests[first["key"]]
    assert before.info.status == "FINISHED"
    assert before.data.params == first["params"]
    assert not before.data.params["name"].isascii()
    cut_off = tree.tests[torn["key"]]
    # Its start was journaled whole: the test cut off has a run, KILLED, as have its parents.
    assert cut_off.info.status == "KILLED"
    assert cut_off.data.tags["pytest.outcome"] == "killed"
    assert tree.modules["test_names.py"].info.status == "KILLED"
    assert tree.session.info.status == "KILLED"


NOT_JOURNALS = {
    # "not a pytest-mlflow-tree journal", or which line "is not a record".
    "not-json": ("this is not a journal\n", "is not a "),
    "no-header": (
        '{"kind":"open","level":"session","key":"<session>","parent":null,"name":"x","start":1}\n',
        "not a pytest-mlflow-tree journal",
    ),
    "newer-format": (
        '{"kind":"journal","format":99,"session_uuid":"0","tracking_uri":"sqlite:///x.db",'
        '"experiment":"x","common_tags":{},"plugin_version":"9.0"}\n',
        "format 99",
    ),
    "empty": ("", "empty"),
}


@pytest.mark.parametrize("case", [*NOT_JOURNALS, "missing"])
def test_replaying_something_else_fails_with_one_clear_message(
    case: str, store: Store, tmp_path: Path
) -> None:
    path = tmp_path / f"{case}.jsonl"
    if case == "missing":
        expected = "no such file"
    else:
        text, expected = NOT_JOURNALS[case]
        path.write_text(text, encoding="utf-8")

    code, out, err = replay(str(path), "--tracking-uri", store.uri)

    assert code != 0
    assert "Traceback" not in err, err
    messages = [line for line in (out + err).replace("\r", "\n").splitlines() if line.strip()]
    assert len(messages) == 1, messages
    message = messages[0]
    assert message.startswith("pytest-mlflow-tree replay:"), message
    assert str(path) in message, message
    assert expected in message.lower(), message
    assert experiments(store) == []


def test_the_journal_holds_no_credentials_of_the_tracking_uri(
    suite: pytest.Pytester, tmp_path: Path
) -> None:
    directory = tmp_path / "journals"
    result = suite.runpytest(
        "--mlflow-tree",
        "--mlflow-tree-tracking-uri",
        "http://user:s3cret@127.0.0.1:9/",
        "--mlflow-tree-journal-only",
        "--mlflow-tree-keep-journal",
        f"--mlflow-tree-journal-dir={directory}",
    )
    result.assert_outcomes(passed=4, failed=1, skipped=1)
    files = list(directory.iterdir())
    assert [f.suffix for f in files] == [".jsonl"], files
    text = files[0].read_text(encoding="utf-8")
    assert "s3cret" not in text
    assert "user:" not in text
    header = json.loads(text.splitlines()[0])
    assert header["tracking_uri"] == "http://***@127.0.0.1:9/"
    assert "127.0.0.1:9" in json.loads(text.splitlines()[1])["tags"]["pytest.command"]
    assert "s3cret" not in result.stdout.str() + result.stderr.str()
