"""Sharded CI: pytest processes given one shard key join one root run, even when they start
at the same moment."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import servers
from conftest import BOTH_STORES, Store
from replaying import replayed

SHARDS = 3

# Waits for a shared moment, then runs pytest: the shards start (and their uploaders look for
# a root) as nearly together as separate processes can.
LAUNCHER = """
import sys, time
import pytest
time.sleep(max(0.0, float(sys.argv[1]) - time.time()))
sys.exit(pytest.main(sys.argv[2:]))
"""


@BOTH_STORES
def test_shards_started_together_make_one_root_with_every_shard_session_under_it(
    store: Store, tmp_path: Path
) -> None:
    experiment = store.experiment or "sharded"
    start_at = time.time() + 3.0
    processes = []
    for number in range(SHARDS):
        shard = tmp_path / f"shard{number}"
        shard.mkdir()
        failing = number == 1
        (shard / f"test_part{number}.py").write_text(
            f"def test_a():\n    pass\n\ndef test_b():\n    assert {not failing}\n",
            encoding="utf-8",
        )
        args = [
            "--mlflow-tree",
            f"--mlflow-tree-tracking-uri={store.uri}",
            f"--mlflow-tree-experiment={experiment}",
            "-p",
            "no:randomly",
            "-q",
        ]
        env = servers.clean_env()
        if number == 0:
            env["PYTEST_MLFLOW_TREE_SHARD_KEY"] = "nightly-42"  # the environment works too
        else:
            args.append("--mlflow-tree-shard-key=nightly-42")
        processes.append(
            subprocess.Popen(
                [sys.executable, "-c", LAUNCHER, str(start_at), *args],
                cwd=shard,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
            )
        )
    outputs = [p.communicate(timeout=180)[0].decode() for p in processes]
    for number, (process, output) in enumerate(zip(processes, outputs, strict=True)):
        assert process.returncode == (1 if number == 1 else 0), output
        assert "mlflow-tree: WARNING" not in output, output

    client = store.client()
    experiment_id = client.get_experiment_by_name(experiment).experiment_id
    runs = client.search_runs([experiment_id], max_results=1000)
    roots = [r for r in runs if r.data.tags.get("pytest.level") == "root"]
    assert len(roots) == 1, [r.info.run_id for r in roots]
    root = roots[0]
    assert root.data.tags["pytest.shard_key"] == "nightly-42"
    assert "mlflow.parentRunId" not in root.data.tags

    sessions = [r for r in runs if r.data.tags.get("pytest.level") == "session"]
    assert len(sessions) == SHARDS
    for session in sessions:
        assert session.data.tags["mlflow.parentRunId"] == root.info.run_id
        assert session.data.tags["pytest.shard_key"] == "nightly-42"
    others = [r for r in runs if r.info.run_id != root.info.run_id]
    assert len(others) == SHARDS * (1 + 1 + 2)  # session, module, two tests each
    for run in others:
        assert run.data.tags["mlflow.rootRunId"] == root.info.run_id, run.data.tags

    # The root sums up its shards once the last one finished.
    assert root.info.status == "FAILED"
    metrics = root.data.metrics
    assert shard_counts(metrics) == (SHARDS, 2 * SHARDS, 2 * SHARDS - 1, 1)
    assert root.info.end_time >= max(s.info.end_time for s in sessions)


@pytest.mark.parametrize("store", ["sqlite"], indirect=True)
def test_a_later_shard_joins_the_existing_root(pytester: pytest.Pytester, store: Store) -> None:
    pytester.makepyfile(test_one="def test_ok(): pass")
    for key in ("k1", "k1", "k2"):
        result = replayed(pytester, store, f"--mlflow-tree-shard-key={key}")
        result.assert_outcomes(passed=1)
    tree = store.tree()
    roots = {r.data.tags["pytest.shard_key"]: r for r in tree.level("root")}
    assert sorted(roots) == ["k1", "k2"]
    sessions = tree.level("session")
    parents = sorted(
        "k1" if s.data.tags["mlflow.parentRunId"] == roots["k1"].info.run_id else "k2"
        for s in sessions
    )
    assert parents == ["k1", "k1", "k2"]
    assert roots["k1"].data.metrics["pytest/shards"] == 2
    assert roots["k1"].info.status == "FINISHED"


def test_shard_key_ci_needs_a_ci_pipeline(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pytest_mlflow_tree.record import ci

    for name in ci.VARIABLES:
        monkeypatch.delenv(name, raising=False)
    result = pytester.runpytest("--mlflow-tree", "--mlflow-tree-shard-key=ci")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--mlflow-tree-shard-key: 'ci' needs a CI pipeline id*"])


@BOTH_STORES
def test_candidates_proposed_at_once_agree_on_one_root_and_the_losers_go(store: Store) -> None:
    """The race itself, made certain: every shard proposes before any of them chooses."""
    from pytest_mlflow_tree.model.retries import retry_locked
    from pytest_mlflow_tree.upload.shards import Shard

    client = store.client()
    experiment_id = client.create_experiment(store.experiment or "race")
    shards = [Shard(store.client(), experiment_id, "race-1", retry_locked) for _ in range(3)]
    barrier = threading.Barrier(len(shards))
    chosen: list[str] = []
    candidates: list[str] = []

    def shard_main(shard: Shard) -> None:
        barrier.wait(timeout=30)
        candidate = shard.propose({"mlflow.user": "ci"}, "pytest shards race-1")
        candidates.append(candidate)
        # A session that joined its own candidate before the others showed up.
        client.create_run(
            experiment_id,
            tags={
                "pytest.level": "session",
                "mlflow.parentRunId": candidate,
                "mlflow.rootRunId": candidate,
            },
        )
        barrier.wait(timeout=30)
        chosen.append(shard.choose(candidate))

    threads = [threading.Thread(target=shard_main, args=(shard,)) for shard in shards]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(candidates) == 3
    assert len(set(chosen)) == 1, chosen
    winner = chosen[0]
    roots = client.search_runs([experiment_id], "tags.`pytest.level` = 'root'")
    assert [r.info.run_id for r in roots] == [winner]
    for candidate in set(candidates) - {winner}:
        assert client.get_run(candidate).info.lifecycle_stage == "deleted"
    sessions = client.search_runs([experiment_id], "tags.`pytest.level` = 'session'")
    assert len(sessions) == 3
    for session in sessions:
        assert session.data.tags["mlflow.parentRunId"] == winner
        assert session.data.tags["mlflow.rootRunId"] == winner


@pytest.mark.parametrize("store", ["sqlite"], indirect=True)
def test_a_candidate_that_lost_after_the_settle_goes_at_the_shards_finish(store: Store) -> None:
    """An earlier candidate that showed up too late for the settle still wins, at the finish."""
    from pytest_mlflow_tree.model.retries import retry_locked
    from pytest_mlflow_tree.upload.shards import Shard

    client = store.client()
    experiment_id = client.create_experiment("late")
    shard = Shard(client, experiment_id, "late-1", retry_locked, settle_seconds=0.0)
    mine = shard.join({"mlflow.user": "ci"}, "pytest shards late-1")
    session = client.create_run(
        experiment_id,
        tags={
            "pytest.level": "session",
            "pytest.session_uuid": "s1",
            "pytest.shard_key": "late-1",
            "mlflow.parentRunId": mine,
            "mlflow.rootRunId": mine,
        },
    )
    client.set_terminated(session.info.run_id, "FINISHED")
    # Another shard's candidate, stamped before this one's, written only now.
    earlier = client.create_run(
        experiment_id,
        start_time=client.get_run(mine).info.start_time - 1,
        tags={"pytest.shard_key": "late-1", "pytest.level": "root"},
    ).info.run_id

    shard.finish("s1", session.info.run_id)

    roots = client.search_runs([experiment_id], "tags.`pytest.level` = 'root'")
    assert [r.info.run_id for r in roots] == [earlier]
    assert client.get_run(mine).info.lifecycle_stage == "deleted"
    moved = client.get_run(session.info.run_id).data.tags
    assert (moved["mlflow.parentRunId"], moved["mlflow.rootRunId"]) == (earlier, earlier)
    assert roots[0].data.metrics["pytest/shards"] == 1
    assert roots[0].info.status == "FINISHED"


@pytest.mark.parametrize("store", ["sqlite"], indirect=True)
def test_the_root_shows_the_totals_of_every_shard_whatever_the_clocks_say(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A shard on a machine whose clock is ahead finishes first and sums a partial root; the
    last shard's complete totals are still what the root shows."""
    from pytest_mlflow_tree.model.retries import retry_locked
    from pytest_mlflow_tree.upload.shards import Shard

    client = store.client()
    experiment_id = client.create_experiment("clocks")
    first = Shard(client, experiment_id, "clocks-1", retry_locked, settle_seconds=0.0)
    second = Shard(client, experiment_id, "clocks-1", retry_locked, settle_seconds=0.0)
    root = first.join({"mlflow.user": "ci"}, "pytest shards clocks-1")
    assert second.join({"mlflow.user": "ci"}, "pytest shards clocks-1") == root

    def session(uuid: str) -> str:
        tags = {
            "pytest.level": "session",
            "pytest.session_uuid": uuid,
            "pytest.shard_key": "clocks-1",
            "mlflow.parentRunId": root,
            "mlflow.rootRunId": root,
        }
        return str(client.create_run(experiment_id, tags=tags).info.run_id)

    def done(run_id: str, tests: int, failed: int) -> None:
        client.log_metric(run_id, "pytest/tests", tests)
        client.log_metric(run_id, "pytest/passed", tests - failed)
        client.log_metric(run_id, "pytest/failed", failed)
        client.set_terminated(run_id, "FAILED" if failed else "FINISHED")

    ahead, behind = session("a"), session("b")
    done(ahead, tests=5, failed=0)
    real_time = time.time
    with monkeypatch.context() as skewed:
        skewed.setattr(time, "time", lambda: real_time() + 3600.0)
        first.finish("a", ahead)  # the other shard still runs
    done(behind, tests=4, failed=1)
    second.finish("b", behind)

    shown = client.get_run(root)
    metrics = shown.data.metrics
    assert shard_counts(metrics) == (2, 9, 8, 1)
    assert shown.info.status == "FAILED"
    history = client.get_metric_history(root, "pytest/tests")
    assert sorted((m.step, m.value) for m in history) == [(1, 5.0), (2, 9.0)]


def shard_counts(metrics: dict[str, float]) -> tuple[float, ...]:
    """A shards' root run's counts: shards, tests, passed, failed."""
    return tuple(metrics[f"pytest/{name}"] for name in ("shards", "tests", "passed", "failed"))
