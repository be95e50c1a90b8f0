"""The HTML report on the session run, checked in a real headless browser."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import browser
import pytest
from conftest import Store, Tree, missing_service
from recorded import record_suite

from pytest_mlflow_tree.model import links
from pytest_mlflow_tree.read import html_report, readback

REPORT = "report.html"

SUITE = {
    "tests/test_data.py": """
        import pytest

        @pytest.mark.parametrize("label", ["benign", "malignant"])
        def test_class_share(label):
            assert label

        def test_no_missing_values():
            pass
    """,
    "tests/test_model.py": """
        import time

        import pytest

        @pytest.mark.parametrize("depth", [2, 4, 8])
        def test_accuracy(depth):
            time.sleep(0.02 * depth)

        def test_recall_malignant():
            recall = 0.81
            assert recall > 0.9, "recall of the malignant class too low"

        @pytest.mark.skip(reason="needs a GPU")
        def test_gpu_inference():
            pass
    """,
    "tests/test_serving.py": """
        import time

        def test_latency():
            time.sleep(0.25)

        def test_batch_predict():
            pass
    """,
}


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory, migrated_db: Path) -> tuple[Path, Tree, Store]:
    """The suite recorded once for this module; its session's report downloaded to a file."""
    directory = tmp_path_factory.mktemp("report")
    result, store = record_suite(directory, migrated_db, SUITE)
    result.assert_outcomes(passed=8, failed=1, skipped=1)
    tree = store.tree()
    path = directory / REPORT
    path.write_text(tree.artifact(tree.session, REPORT), encoding="utf-8")
    return path, tree, store


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    reason = browser.unavailable()
    if reason is not None:
        missing_service(reason)
    with browser.chromium() as instance:
        yield instance


def test_one_recordings_report_and_description(report: tuple[Path, Tree, Store]) -> None:
    path, tree, store = report
    the_report_is_one_self_contained_file_linking_every_run((path, tree))
    the_report_shows_what_reading_the_session_back_shows((path, tree), store)
    the_session_description_links_to_the_session_in_the_runs_table((path, tree))


def the_report_is_one_self_contained_file_linking_every_run(report: tuple[Path, Tree]) -> None:
    path, tree = report
    text = path.read_text(encoding="utf-8")

    assert REPORT in tree.artifacts(tree.session)
    # Nothing loaded from elsewhere: no external scripts, styles, images or fonts.
    assert not re.search(r"<(script|img|link|iframe)[^>]+(src|href)=", text)
    assert "@import" not in text
    assert "url(" not in text
    for run in tree.runs:
        assert f"/runs/{run.info.run_id}" in text


def the_report_shows_what_reading_the_session_back_shows(
    report: tuple[Path, Tree], store: Store
) -> None:
    """Built from what the uploader sent, without reading back: the same report."""
    path, tree = report
    session = readback.Reader(store.uri).session(tree.session.info.run_id)

    assert path.read_text(encoding="utf-8") == html_report.render(session)


def the_session_description_links_to_the_session_in_the_runs_table(
    report: tuple[Path, Tree],
) -> None:
    session = report[1].session
    experiment = session.info.experiment_id
    uuid = session.data.tags["pytest.session_uuid"]
    note = session.data.tags["mlflow.note.content"]

    assert note.startswith("- [`tests/test_model.py::")  # the failures come first
    assert f"[this session's runs]({links.session_runs_path(experiment, uuid)})" in note
    failing = links.session_runs_path(experiment, uuid, failing=True)
    assert f"[failing runs only]({failing})" in note
    assert "attributes.status%20%21%3D%20%27FINISHED%27" in failing


def test_the_report_in_a_browser(
    report: tuple[Path, Tree, Store], chromium: Any, tmp_path: Path
) -> None:
    path, tree, _ = report
    page = chromium.new_page(viewport={"width": 1100, "height": 900})
    page.goto(path.as_uri())

    modules = page.locator("details.module")
    assert modules.count() == 3
    # Failures first, and open; passing modules closed.
    assert modules.nth(0).get_attribute("data-module") == "tests/test_model.py"
    assert modules.nth(0).evaluate("d => d.open") is True
    assert modules.nth(1).evaluate("d => d.open") is False

    failing = page.locator('tr.test[data-nodeid="tests/test_model.py::test_recall_malignant"]')
    assert failing.is_visible()
    colour = failing.locator("td.name a").evaluate("a => getComputedStyle(a).color")
    assert colour == "rgb(207, 34, 46)"  # red
    badge = failing.locator(".badge").evaluate("b => getComputedStyle(b).backgroundColor")
    assert badge == "rgb(207, 34, 46)"
    # Only the badge is coloured, not the whole row.
    assert failing.evaluate("r => getComputedStyle(r).backgroundColor") == "rgba(0, 0, 0, 0)"
    assert "recall of the malignant class too low" in page.locator("pre.failure").inner_text()
    passing = page.locator('tr.test[data-nodeid="tests/test_model.py::test_accuracy[2]"] .badge')
    assert passing.evaluate("b => getComputedStyle(b).backgroundColor") == "rgb(26, 127, 55)"

    serving = page.locator('details.module[data-module="tests/test_serving.py"]')
    latency = serving.locator('tr.test[data-nodeid="tests/test_serving.py::test_latency"]')
    assert not latency.is_visible()
    serving.locator("summary .path").click()
    assert latency.is_visible()
    assert serving.evaluate("d => d.open") is True

    links = {
        a.get_attribute("data-run-id"): a.get_attribute("href")
        for a in page.locator("a[data-run-id]").all()
    }
    experiment = tree.session.info.experiment_id
    for run in tree.runs:
        run_id = run.info.run_id
        assert links[run_id] == f"http://127.0.0.1:5000/#/experiments/{experiment}/runs/{run_id}"

    # The chart: one bar per test with a duration, the slowest first.
    assert page.locator("#slowest-chart rect.bar").count() == 10
    first_label = page.locator("#slowest-chart text").first.evaluate("t => t.firstChild.data")
    assert first_label == "tests/test_serving.py::test_latency"

    page.locator("#collapse-all").click()
    assert not failing.is_visible()
    page.locator("#expand-all").click()
    assert latency.is_visible()

    page.locator("#collapse-all").click()
    modules.nth(0).locator("summary .path").click()
    assert page.url == path.as_uri()
    screenshot = tmp_path / "report.png"
    page.screenshot(path=str(screenshot), full_page=True)
    assert screenshot.read_bytes().startswith(b"\x89PNG")
    if browser.update_screenshots():
        browser.SCREENSHOTS.mkdir(exist_ok=True)
        shutil.copy(screenshot, browser.SCREENSHOTS / "report.png")
    page.close()
