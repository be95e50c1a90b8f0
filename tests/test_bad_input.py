"""Awkward values, names and ids: recorded (made valid, the original kept) and never a crash.

The corpus runs against SQLite and against a tracking server with PostgreSQL behind it, which
rejects what SQLite accepts (NUL characters, for one). Each value is recorded or made valid with
the original kept in ``pytest-mlflow-tree/full-values.json``; a second session records the same.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
from conftest import BOTH_STORES, Record, Store, Tree
from replaying import assert_recorded_once, plugin_lines, replay

from pytest_mlflow_tree.model import journal
from pytest_mlflow_tree.model.limits import FULL_VALUES_ARTIFACT
from pytest_mlflow_tree.upload import mlflow_limits

MANY = 1500
LONG_ID = "x" * 300
VALUES = """
    import pytest

    class BrokenRepr:
        def __repr__(self):
            raise RuntimeError("no repr")

    class Opaque:
        pass

    def function():
        pass

    VALUES = {
        "huge": "h" * 300_000,
        "multiline": "line 1\\nline 2\\r\\n\\ttabbed",
        "unicode": "模型 ✓ café 🚀",
        "bytes": b"\\x00\\xff\\xfe",
        "nul": "before\\x00after",
        "surrogate": "lone \\udcff surrogate",
        "nan": float("nan"),
        "inf": float("inf"),
        "neg_inf": float("-inf"),
        "nested": {"layers": [64, {"deep": (1, 2)}], "set": frozenset({3})},
        "broken_repr": BrokenRepr(),
        "opaque": Opaque(),
        "function": function,
        "lambda": lambda x: x,
        "type": Opaque,
    }

    @pytest.mark.parametrize("value", list(VALUES.values()), ids=list(VALUES))
    def test_value(value):
        pass

    @pytest.mark.parametrize(
        "n", [1, 2, 3], ids=["brackets[0]/and/slashes", "ünïcødé ✓", "LONG_ID"]
    )
    def test_ids(n):
        pass

    @pytest.mark.skip(reason="skipped: " + "r" * 20_000 + " nul\\x00 and \\udcff")
    def test_huge_reason():
        pass

    def test_ünïcode_name():
        pass

    class TestClass:
        def test_in_class(self):
            assert False, "fails with \\x00 and ✓ in its message"
""".replace("LONG_ID", LONG_ID)
MANY_PARAMS = (
    "import pytest\n\n"
    f"@pytest.mark.parametrize({','.join(f'p{i}' for i in range(MANY))!r}, "
    f"[tuple(range({MANY}))])\n"
    f"def test_many({', '.join(f'p{i}' for i in range(MANY))}):\n"
    "    pass\n"
)
MODULE = "test_corpus.py"
UNICODE_MODULE = "test_mödülé.py"


@pytest.fixture
def corpus(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makepyfile(**{MODULE[:-3]: VALUES, UNICODE_MODULE[:-3]: MANY_PARAMS})
    return pytester


def full_values(tree: Tree, run: Any) -> dict[str, dict[str, str]]:
    loaded: dict[str, dict[str, str]] = json.loads(tree.artifact(run, FULL_VALUES_ARTIFACT))
    return loaded


def seen_by_user(tree: Tree) -> dict[str, Any]:
    """What must be the same in every session: names, params, statuses, value tags."""
    return {
        run.data.tags["pytest.nodeid"]: (
            run.info.run_name,
            run.info.status,
            dict(run.data.params),
            {k: v for k, v in run.data.tags.items() if k.endswith("_reason")},
        )
        for run in tree.level("test")
    }


@BOTH_STORES
def test_an_awkward_corpus_is_recorded_valid_whole_and_the_same_every_time(
    corpus: pytest.Pytester, record: Record, store: Store
) -> None:
    result, tree = record(live=True)
    result.assert_outcomes(passed=20, failed=1, skipped=1)
    lines = plugin_lines(result.outlines)
    assert len(lines) == 1, lines
    assert "session run" in lines[0], lines
    nodeids = [r.data.tags["pytest.nodeid"] for r in tree.level("test")]
    assert len(nodeids) == 22
    assert_recorded_once(tree.runs, nodeids)
    tests = tree.tests
    value = {
        nodeid.split("[", 1)[1][:-1]: run
        for nodeid, run in tests.items()
        if "::test_value[" in nodeid
    }

    huge = value["huge"]
    assert len(huge.data.params["value"]) <= 6000
    assert FULL_VALUES_ARTIFACT in huge.data.params["value"]
    assert full_values(tree, huge)["params"]["value"].startswith("h" * 100_000)
    assert value["multiline"].data.params["value"] == "line 1\nline 2\r\n\ttabbed"
    assert value["unicode"].data.params["value"] == "模型 ✓ café 🚀"
    assert value["bytes"].data.params["value"] == repr(b"\x00\xff\xfe")
    # PostgreSQL takes no NUL: written escaped, the original kept.
    assert value["nul"].data.params["value"] == "before\\x00after"
    assert full_values(tree, value["nul"])["params"]["value"] == "before\x00after"
    assert value["surrogate"].data.params["value"] == "lone \\udcff surrogate"
    assert [value[k].data.params["value"] for k in ("nan", "inf", "neg_inf")] == [
        "nan",
        "inf",
        "-inf",
    ]
    assert value["nested"].data.params["value"] == repr(
        {"layers": [64, {"deep": (1, 2)}], "set": frozenset({3})}
    )
    assert "RuntimeError" in value["broken_repr"].data.params["value"]
    for key in ("opaque", "function", "lambda", "type"):
        assert "0x" not in value[key].data.params["value"], key
    for run in value.values():
        assert run.info.status == "FINISHED"

    long_id = next(run for nodeid, run in tests.items() if LONG_ID in nodeid)
    assert len(long_id.data.tags["pytest.nodeid"]) > 250
    assert len(long_id.info.run_name) <= 250
    assert f"{MODULE}::test_ids[brackets[0]/and/slashes]" in tests
    assert f"{MODULE}::test_ünïcode_name" in tests

    skipped = tests[f"{MODULE}::test_huge_reason"]
    reason = skipped.data.tags["pytest.skip_reason"]
    assert len(reason) <= 8000
    assert "\x00" not in reason
    assert "nul\x00 and \\udcff" in full_values(tree, skipped)["tags"]["pytest.skip_reason"]

    failed = tests[f"{MODULE}::TestClass::test_in_class"]
    assert failed.info.status == "FAILED"
    assert "fails with" in tree.artifact(failed, "failure.txt")

    many_nodeid = f"{UNICODE_MODULE}::test_many[{'-'.join(str(i) for i in range(MANY))}]"
    (many,) = [run for nodeid, run in tests.items() if nodeid.startswith(many_nodeid[:40])]
    # Longer than a tag value may be on MLflow 2 (5000 characters; 8000 on MLflow 3): then
    # the tag is cut and the full-values artifact keeps the whole nodeid.
    if len(many_nodeid) > mlflow_limits.installed().tag_value_length:
        assert many.data.tags["pytest.nodeid"] != many_nodeid
        assert full_values(tree, many)["tags"]["pytest.nodeid"] == many_nodeid
    else:
        assert many.data.tags["pytest.nodeid"] == many_nodeid
    assert many.data.params == {f"p{i}": str(i) for i in range(MANY)}
    assert UNICODE_MODULE in tree.modules

    if store.path is None:
        return  # what a session records does not depend on the store: SQLite shows it
    # A second session: the same names, params and reasons (no addresses, no randomness).
    again, _ = record()
    again.assert_outcomes(passed=20, failed=1, skipped=1)
    second = store.tree()
    sessions = sorted(second.level("session"), key=lambda run: run.info.start_time)
    assert len(sessions) == 2
    by_session = [
        Tree(
            second.client,
            [
                r
                for r in second.runs
                if r.data.tags["pytest.session_uuid"] == s.data.tags["pytest.session_uuid"]
            ],
        )
        for s in sessions
    ]
    assert seen_by_user(by_session[0]) == seen_by_user(by_session[1])


@BOTH_STORES
def test_metric_and_param_names_mlflow_rejects_are_made_valid_and_kept_apart(
    store: Store, tmp_path: Path
) -> None:
    """Names from a journal (a newer plugin, a hand-edited file) that MLflow would refuse."""
    records: list[dict[str, Any]] = [
        {
            "kind": "journal",
            "format": 1,
            "session_uuid": "0" * 32,
            "tracking_uri": store.uri,
            "experiment": store.experiment or "awkward-names",
            "common_tags": {},
            "plugin_version": "0",
        },
        {
            "kind": "open",
            "level": "session",
            "key": "<session>",
            "parent": None,
            "name": "s",
            "start": 1_000,
        },
        {
            "kind": "open",
            "level": "module",
            "key": "m.py",
            "parent": "<session>",
            "name": "m.py",
            "start": 1_000,
        },
        {
            "kind": "run",
            "level": "test",
            "key": "m.py::t",
            "parent": "m.py",
            "name": "t",
            "start": 1_000,
            "end": 2_000,
            "status": "FINISHED",
            "tags": {"pytest.nodeid": "m.py::t", "bad tag [x]": "v"},
            "params": {"a[1]": "one", "a]1[": "two", "nul\x00key": "three", "../up": "four"},
            "metrics": {
                "accuracy[top-1]": 0.9,
                "loss//train": 1.5,
                "ratio ✓": math.nan,
                "": 2.0,
                "big": math.inf,
            },
        },
        {"kind": "close", "key": "m.py", "end": 2_000, "status": "FINISHED"},
        {"kind": "close", "key": "<session>", "end": 2_000, "status": "FINISHED"},
        {"kind": "end", "time": 2_000},
    ]
    path = tmp_path / "awkward.jsonl"
    path.write_text("".join(journal.encode(r) + "\n" for r in records), encoding="utf-8")  # type: ignore[arg-type]

    code, _, err = replay(str(path))
    assert code == 0, err
    tree = store.tree(records[0]["experiment"])
    test = tree.tests["m.py::t"]
    params, metrics = test.data.params, test.data.metrics
    assert sorted(params.values()) == ["four", "one", "three", "two"]
    assert len(metrics) == 5
    assert math.isnan(next(v for k, v in metrics.items() if k.startswith("ratio")))
    assert max(metrics.values()) > 1e300  # inf, as MLflow stores it
    full = full_values(tree, test)
    assert sorted(full["params"]) == sorted(records[3]["params"])
    assert sorted(full["metrics"]) == ["", "accuracy[top-1]", "loss//train", "ratio ✓"]
    assert full["tags"]["bad tag [x]"] == "v"
