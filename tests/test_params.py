"""Parametrization as MLflow params: one per argument, names as pytest's, and awkward values."""

from __future__ import annotations

import json
from typing import Any

import pytest
from conftest import Record, Tree

FULL_VALUES = "pytest-mlflow-tree/full-values.json"
LONG_LENGTH = 10_000
# MLflow's limit on a param value (mlflow.utils.validation.MAX_PARAM_VAL_LENGTH).
PARAM_LIMIT = 6000
TEXT = "café ✓ 模型\nline2"
# pytest's own id for b"\x00\xffabc": the bytes escaped.
BYTES_NODEID = r"test_awkward.py::test_bytes[\x00\xffabc]"


SUITE = {
    "test_grid.py": """
        import pytest

        @pytest.mark.parametrize("depth", [3])
        def test_depth(depth):
            assert depth == 3

        @pytest.mark.parametrize("lr, batch, optimizer", [(0.01, 32, "adam")])
        def test_several(lr, batch, optimizer):
            assert batch == 32

        @pytest.mark.parametrize("seed", [7])
        @pytest.mark.parametrize("width", [64])
        def test_stacked(width, seed):
            pass

        @pytest.fixture
        def dataset(request):
            return request.param.upper()

        @pytest.mark.parametrize("dataset", ["mnist"], indirect=True)
        def test_indirect(dataset):
            assert dataset == "MNIST"

        @pytest.mark.parametrize("n", [1, 2], ids=["small", "large"])
        def test_ids(n):
            assert n in (1, 2)

        @pytest.mark.parametrize("path", ["data/" + "deeply/" * 20 + "nested.csv"])
        def test_long_path(path):
            pass
    """,
    "test_awkward.py": """
        import math

        import pytest

        LONG = "".join(chr(ord("a") + i % 26) for i in range(10_000))

        class BrokenRepr:
            def __repr__(self):
                raise ValueError("no repr for you")

        class Opaque:
            pass

        @pytest.mark.parametrize("text", [LONG])
        def test_long(text):
            assert len(text) == 10_000

        @pytest.mark.parametrize("text", ["café ✓ 模型\\nline2"])
        def test_text(text):
            assert text.endswith("line2")

        @pytest.mark.parametrize("blob", [b"\\x00\\xffabc"])
        def test_bytes(blob):
            assert blob[1] == 255

        @pytest.mark.parametrize("x", [float("nan"), float("inf")], ids=["nan", "inf"])
        def test_special_floats(x):
            assert math.isnan(x) or math.isinf(x)

        @pytest.mark.parametrize(
            "config", [{"layers": [64, 32], "opt": {"name": "adam", "betas": (0.9, 0.99)}}]
        )
        def test_nested(config):
            assert config["layers"] == [64, 32]

        @pytest.mark.parametrize("thing", [BrokenRepr()])
        def test_broken_repr(thing):
            assert isinstance(thing, BrokenRepr)

        @pytest.mark.parametrize("thing", [BrokenRepr()])
        def test_broken_repr_fails(thing):
            assert False, "fails on its own"

        @pytest.mark.parametrize("thing", [Opaque()])
        def test_opaque(thing):
            assert isinstance(thing, Opaque)
    """,
}


@pytest.fixture
def suite(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makepyfile(**{path.removesuffix(".py"): body for path, body in SUITE.items()})
    return pytester


def by_prefix(tree: Tree, prefix: str) -> Any:
    """The one test run whose nodeid starts with ``prefix`` (long nodeids are truncated)."""
    found = [run for nodeid, run in tree.tests.items() if nodeid.startswith(prefix)]
    assert len(found) == 1, (prefix, sorted(tree.tests))
    return found[0]


def own_id(run: Any) -> str:
    """pytest's own name for a test: its nodeid after the module."""
    return str(run.data.tags["pytest.nodeid"]).split("::", 1)[1]


def long_text() -> str:
    return "".join(chr(ord("a") + i % 26) for i in range(LONG_LENGTH))


def test_one_recording_has_params_and_names_as_pytest_gives_them(
    suite: pytest.Pytester, record: Record
) -> None:
    result, tree = record()
    result.assert_outcomes(passed=15, failed=1)

    one_param_per_argument_and_names_as_pytest_prints_them(result, tree)
    awkward_values_are_recorded_faithfully(tree)
    run_names_are_single_lines(tree)


def one_param_per_argument_and_names_as_pytest_prints_them(
    result: pytest.RunResult, tree: Tree
) -> None:
    tests = tree.tests

    # Named as pytest names the test, the params spelled out in params: the name of the
    # failing test is the one pytest's short summary prints.
    assert tests["test_grid.py::test_depth[3]"].info.run_name == "test_depth[3]"
    failing = tests["test_awkward.py::test_broken_repr_fails[thing0]"].info.run_name
    assert failing == "test_broken_repr_fails[thing0]"
    assert f"FAILED test_awkward.py::{failing} - " in result.stdout.str()
    for nodeid, run in tests.items():
        if len(nodeid) < 250:  # longer ones are cut to fit MLflow's limit on names
            assert run.info.run_name == own_id(run), nodeid

    depth = tests["test_grid.py::test_depth[3]"]
    assert depth.data.params == {"depth": "3"}

    several = tests["test_grid.py::test_several[0.01-32-adam]"]
    assert several.data.params == {"lr": "0.01", "batch": "32", "optimizer": "adam"}

    stacked = tests["test_grid.py::test_stacked[64-7]"]
    assert stacked.data.params == {"width": "64", "seed": "7"}

    # Indirect: the parametrize value, not what the fixture made of it.
    indirect = tests["test_grid.py::test_indirect[mnist]"]
    assert indirect.data.params == {"dataset": "mnist"}

    # Custom ids: the nodeid and the name keep the user's id; the params keep the value.
    for test_id, value in (("small", "1"), ("large", "2")):
        run = tests[f"test_grid.py::test_ids[{test_id}]"]
        assert run.data.params == {"n": value}
        assert run.info.run_name == f"test_ids[{test_id}]"
        assert run.info.status == "FINISHED"

    long_path = by_prefix(tree, "test_grid.py::test_long_path[")
    assert long_path.data.params["path"] == "data/" + "deeply/" * 20 + "nested.csv"
    long = by_prefix(tree, "test_awkward.py::test_long[")
    assert long.info.run_name.startswith("test_long[")
    assert len(long.info.run_name) <= 250

    # Parametrization is plumbing, not a marker users classify tests by.
    assert "pytest.markers" not in depth.data.tags


def awkward_values_are_recorded_faithfully(tree: Tree) -> None:
    tests = tree.tests

    # 10,000 characters: cut to MLflow's limit with a marker, kept whole in an artifact.
    long = by_prefix(tree, "test_awkward.py::test_long[")
    assert long.info.status == "FINISHED"
    assert long.data.tags["pytest.outcome"] == "passed"
    value = long.data.params["text"]
    assert len(value) <= PARAM_LIMIT
    assert value.startswith(long_text()[:1000])
    assert f"[{LONG_LENGTH} chars, full value in {FULL_VALUES}]" in value
    assert FULL_VALUES in {
        a.path for a in tree.client.list_artifacts(long.info.run_id, "pytest-mlflow-tree")
    }
    full = json.loads(tree.artifact(long, FULL_VALUES))
    assert full["params"]["text"] == long_text()
    # Runs whose values fit have no such artifact.
    assert tree.artifacts(tests["test_grid.py::test_depth[3]"]) == []

    # Multi-line, non-ASCII text: exactly as given.
    text = by_prefix(tree, "test_awkward.py::test_text[")
    assert text.data.params["text"] == TEXT
    assert text.info.status == "FINISHED"

    blob = tests[BYTES_NODEID]
    assert blob.data.params["blob"] == repr(b"\x00\xffabc")

    nan = tests["test_awkward.py::test_special_floats[nan]"]
    inf = tests["test_awkward.py::test_special_floats[inf]"]
    assert nan.data.params["x"] == "nan"
    assert inf.data.params["x"] == "inf"
    assert nan.info.status == inf.info.status == "FINISHED"

    nested = tests["test_awkward.py::test_nested[config0]"]
    assert nested.data.params["config"] == repr(
        {"layers": [64, 32], "opt": {"name": "adam", "betas": (0.9, 0.99)}}
    )

    # A __repr__ that raises: a placeholder saying so; the run and the outcome are intact.
    broken = tests["test_awkward.py::test_broken_repr[thing0]"]
    assert broken.info.status == "FINISHED"
    assert broken.data.tags["pytest.outcome"] == "passed"
    placeholder = broken.data.params["thing"]
    assert "BrokenRepr" in placeholder
    assert "ValueError" in placeholder
    broken_fails = tests["test_awkward.py::test_broken_repr_fails[thing0]"]
    assert broken_fails.info.status == "FAILED"
    assert broken_fails.data.tags["pytest.outcome"] == "failed"
    assert broken_fails.data.params["thing"] == placeholder
    assert "fails on its own" in tree.artifact(broken_fails, "failure.txt")

    # A default repr: no memory address.
    opaque = tests["test_awkward.py::test_opaque[thing0]"].data.params["thing"]
    assert "Opaque object" in opaque
    assert "0x" not in opaque

    assert tree.modules["test_grid.py"].info.status == "FINISHED"
    assert tree.modules["test_awkward.py"].data.metrics["pytest/passed"] == 8
    assert tree.modules["test_awkward.py"].data.metrics["pytest/failed"] == 1


def run_names_are_single_lines(tree: Tree) -> None:
    # A run name is a one-line label (the runs table, the rename box, search by name); pytest's
    # own ids escape control characters for the same reason. The text param stays exact.
    names = {nodeid: run.info.run_name for nodeid, run in tree.tests.items()}
    assert [name for name in names.values() if "\n" in name or "\r" in name] == []
    text = by_prefix(tree, "test_awkward.py::test_text[")
    assert text.info.run_name.startswith("test_text[")


def test_default_repr_is_the_same_in_every_session(
    pytester: pytest.Pytester, record: Record
) -> None:
    pytester.makepyfile(
        test_objects="""
            import pytest

            class Opaque:
                pass

            @pytest.mark.parametrize("thing", [Opaque(), object()])
            def test_opaque(thing):
                pass
        """
    )
    record()
    result, tree = record()
    result.assert_outcomes(passed=2)

    values: dict[str, list[str]] = {}
    sessions = set()
    for run in tree.level("test"):
        sessions.add(run.data.tags["pytest.session_uuid"])
        values.setdefault(run.data.tags["pytest.nodeid"], []).append(run.data.params["thing"])
    assert len(sessions) == 2
    assert sorted(values) == [
        "test_objects.py::test_opaque[thing0]",
        "test_objects.py::test_opaque[thing1]",
    ]
    for nodeid, seen in values.items():
        assert len(seen) == 2, nodeid
        assert seen[0] == seen[1], nodeid
        assert "0x" not in seen[0], nodeid
    assert values["test_objects.py::test_opaque[thing1]"][0] == "<object object>"


def test_params_tell_a_value_from_a_string_spelled_like_it(
    pytester: pytest.Pytester, record: Record
) -> None:
    pytester.makepyfile(
        test_values="""
            import pytest

            VALUES = [None, "None", True, "True", 1, "1", "", "adam"]

            @pytest.mark.parametrize("value", VALUES, ids=[f"v{i}" for i in range(len(VALUES))])
            def test_value(value):
                pass
        """
    )
    result, tree = record()
    result.assert_outcomes(passed=8)

    params = {run.info.run_name: run.data.params["value"] for run in tree.level("test")}
    assert params == {
        "test_value[v0]": "None",
        "test_value[v1]": "'None'",
        "test_value[v2]": "True",
        "test_value[v3]": "'True'",
        "test_value[v4]": "1",
        "test_value[v5]": "'1'",
        "test_value[v6]": "''",
        "test_value[v7]": "adam",
    }
    # A search by the param's text finds the one run.
    found = tree.client.search_runs([tree.session.info.experiment_id], "params.value = \"'None'\"")
    assert [run.info.run_name for run in found] == ["test_value[v1]"]
