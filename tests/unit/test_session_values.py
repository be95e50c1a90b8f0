"""Merging what each process logged through ``mlflow_session`` into the session run's values."""

from __future__ import annotations

from pathlib import Path

from pytest_mlflow_tree.record.session_fixture import SessionLog
from pytest_mlflow_tree.record.session_values import CONFLICTS_ARTIFACT, SessionValues


def test_one_process_values_go_to_the_session_run_as_they_are(tmp_path: Path) -> None:
    log = SessionLog(tmp_path)
    log.log_params({"model_version": "v3", "rows": 20000})
    log.set_tag("dataset_sha", "abc")
    log.log_metric("auc", 0.97)
    values = SessionValues()
    values.add("", log.drain())

    merged = values.merged(None)

    assert merged.conflicts == []
    assert merged.data["params"] == {"model_version": "v3", "rows": "20000"}
    assert merged.data["tags"] == {"dataset_sha": "abc"}
    assert [step[:2] for step in merged.data["metric_steps"]] == [["auc", 0.97]]
    assert "artifacts" not in merged.data


def test_nothing_logged_is_nothing_to_merge(tmp_path: Path) -> None:
    values = SessionValues()
    values.add("", SessionLog(tmp_path).drain())
    values.add("gw0", None)
    assert values.merged(None).data == {}


def test_workers_merge_in_the_order_of_their_numbers_and_disagreements_are_conflicts() -> None:
    values = SessionValues()
    for worker in ("gw10", "gw2", "gw1"):
        values.add(
            worker,
            {
                "params": {"model_version": "v3", "worker": worker},
                "tags": {"host": worker, "same": "x"},
                "metrics": [["rows", 1.0, 0, 0]],
            },
        )

    merged = values.merged(None)

    assert merged.data["params"] == {"model_version": "v3", "worker": "gw1"}
    assert merged.data["tags"] == {"host": "gw1", "same": "x"}
    assert len(merged.data["metric_steps"]) == 3
    lines = [conflict.line() for conflict in merged.conflicts]
    assert lines == [
        "the session run's param 'worker' was logged with different values: "
        "'gw1' (gw1), 'gw2' (gw2), 'gw10' (gw10); kept 'gw1'",
        "the session run's tag 'host' was logged with different values: "
        "'gw1' (gw1), 'gw2' (gw2), 'gw10' (gw10); kept 'gw1'",
    ]
    assert merged.data["artifacts"] == {CONFLICTS_ARTIFACT: "".join(f"{x}\n" for x in lines)}


def test_a_param_logged_again_in_one_process_keeps_its_first_value(tmp_path: Path) -> None:
    log = SessionLog(tmp_path)
    log.log_param("threshold", 0.9)
    log.log_param("threshold", 0.9)
    log.log_param("threshold", 0.8)
    log.log_param("threshold", 0.8)
    log.set_tag("stage", "start")
    log.set_tag("stage", "done")
    values = SessionValues()
    values.add("", log.drain())

    merged = values.merged(None)

    assert merged.data["params"] == {"threshold": "0.9"}
    assert merged.data["tags"] == {"stage": "done"}
    assert [c.line() for c in merged.conflicts] == [
        "the session run's param 'threshold' was logged with different values: "
        "'0.9', '0.8'; kept '0.9'"
    ]


def test_the_workers_files_end_in_one_directory_the_first_copy_kept(tmp_path: Path) -> None:
    files_root = tmp_path / "journal.files"
    values = SessionValues()
    for worker in ("gw0", "gw1"):
        log = SessionLog(files_root)
        log.log_text("shared", "card.md")
        log.log_text(f"by {worker}", "notes.txt")
        log.log_text(worker, f"workers/{worker}.txt")
        values.add(worker, log.drain())

    merged = values.merged(files_root)

    directory = tmp_path / merged.data["files_dir"]
    assert directory.parent == files_root
    found = {p.relative_to(directory).as_posix(): p.read_text() for p in directory.rglob("*.*")}
    assert found == {
        "card.md": "shared",
        "notes.txt": "by gw0",
        "workers/gw0.txt": "gw0",
        "workers/gw1.txt": "gw1",
    }
    assert [c.line() for c in merged.conflicts] == [
        "the session run's artifact 'notes.txt' was logged with different contents by "
        "gw0, gw1; kept gw0's"
    ]


def test_without_recording_every_value_is_dropped() -> None:
    log = SessionLog(None)
    log.log_params({"model_version": "v3"})
    log.log_param("model_version", "v4")
    log.set_tag("dataset_sha", "abc")
    log.log_metric("auc", 0.97)
    assert log.drain() is None
