"""The MLflow UI, in a real browser, with what the plugin recorded.

What a user sees: the experiment's runs table with a session larger than its page of 100, the
session row and its expander, and the links on the session run's description that open the
runs table on this session alone; from pytest's link to a failing test's traceback, counting
the clicks; from a test run to that test in every session.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import browser
import pytest
import servers
from conftest import Record, Store, missing_service

from pytest_mlflow_tree.model import links
from pytest_mlflow_tree.model.defaults import LOCAL_UI

# More tests than the UI loads at once (100 runs), in two modules; one fails.
PER_MODULE = 75
MODULE = """
import pytest

@pytest.mark.parametrize("i", range({count}))
def test_{name}(i):
    assert i != {failing}
"""
RUN_NAME = '[role="gridcell"][col-id="attributes.`Run Name`"]'
EXPANDER = 'button[data-component-id*="runnamecellrenderer"]'


def needs_ui(checked: str = "the UI's routes and runs page URL parameters") -> None:
    """Skip (or fail in CI) without a browser, the full mlflow package or MLflow 3."""
    reason = browser.unavailable()
    if reason is not None:
        missing_service(reason)
    pytest.importorskip("mlflow.server", reason="the MLflow UI needs the full mlflow package")
    import mlflow

    if int(mlflow.__version__.split(".")[0]) < 3:
        pytest.skip(f"{checked} checked here are MLflow 3.x's")


@pytest.fixture
def ui(
    pytester: pytest.Pytester, record: Record, store: Store, tmp_path: Path
) -> Iterator[tuple[str, Any]]:
    """A recorded session of 150 tests, and ``mlflow server`` showing its store."""
    needs_ui()
    pytester.makepyfile(
        test_first=MODULE.format(name="a", count=PER_MODULE, failing=40),
        test_second=MODULE.format(name="b", count=PER_MODULE, failing=-1),
    )
    result, tree = record()
    result.assert_outcomes(passed=2 * PER_MODULE - 1, failed=1)
    # One worker: four take half a minute to start on a busy machine, and one user needs one.
    server_dir = tmp_path / "server"
    with servers.mlflow_server(store.uri, server_dir, extra_args=("--workers", "1")) as server:
        yield server.url, tree


def run_names(page: Any) -> list[str]:
    # A name cell holds the run's colour label, then its name.
    return [cell.inner_text().strip().split("\n")[-1] for cell in page.locator(RUN_NAME).all()]


def expand(page: Any, name: str, child: str) -> None:
    """Open row ``name`` unless ``child`` shows already (the UI remembers expanded rows)."""
    if child not in run_names(page):
        page.locator(RUN_NAME).nth(run_names(page).index(name)).locator(EXPANDER).click()


def wait_for_row(page: Any, name: str) -> list[str]:
    """The run names shown once row ``name`` shows, or after 10 s."""
    names = run_names(page)
    for _ in range(50):
        if name in names:
            break
        page.wait_for_timeout(200)
        names = run_names(page)
    return names


def test_a_session_larger_than_a_page_in_the_mlflow_ui(ui: tuple[str, Any]) -> None:
    url, tree = ui
    session = tree.session
    name = session.info.run_name
    experiment = session.info.experiment_id
    uuid = session.data.tags["pytest.session_uuid"]
    with browser.chromium() as chromium:
        page = chromium.new_page(viewport={"width": 1400, "height": 2400})

        # The runs table as it opens: newest first, 100 runs loaded.
        page.goto(f"{url}/#/experiments/{experiment}/runs")
        page.get_by_text("matching runs").wait_for(timeout=30_000)
        page.locator(RUN_NAME).first.wait_for()
        # One row: the session, which the UI fetched as the parent of the tests it loaded.
        assert run_names(page) == [name]
        assert page.get_by_text("Load more").is_visible()
        expand(page, name, "test_first.py")
        assert wait_for_row(page, "test_first.py")[1:3] == ["test_second.py", "test_first.py"]
        # The newest 100 tests: the first module has only its last 25 so far.
        expand(page, "test_first.py", "test_a[74]")
        shown = wait_for_row(page, "test_a[74]")
        assert "test_a[74]" in shown
        assert "test_a[49]" not in shown
        assert "test_a[0]" not in shown

        # The session run's page (pytest's link): its description links to the runs table
        # showing this session alone, oldest first; the links open a new tab. They follow the
        # failures, in the part the UI folds away until *Show more*.
        page.goto(f"{url}/#/experiments/{experiment}/runs/{session.info.run_id}")
        link = page.get_by_role("link", name="this session's runs")
        link.wait_for(timeout=30_000)
        page.get_by_role("button", name="Expand description").click()
        assert link.get_attribute("href") == links.session_runs_path(experiment, uuid)
        with page.context.expect_page() as opened:
            link.click()
        runs = opened.value
        runs.locator(RUN_NAME).first.wait_for(timeout=30_000)
        assert runs.locator(f"input[value*='{uuid}']").count() == 1  # the search box
        assert run_names(runs)[0] == name
        expand(runs, name, "test_first.py")
        assert "test_second.py" in wait_for_row(runs, "test_first.py")
        # In run order the first 100 runs hold the whole first module.
        expand(runs, "test_first.py", "test_a[0]")
        assert "test_a[0]" in wait_for_row(runs, "test_a[0]")
        runs.close()

        failing = page.get_by_role("link", name="failing runs only")
        with page.context.expect_page() as opened:
            failing.click()
        bad = opened.value
        bad.get_by_text("3 matching runs").wait_for(timeout=30_000)
        assert "Load more" not in bad.inner_text("body")
        bad.locator(RUN_NAME).first.wait_for()
        expand(bad, name, "test_first.py")
        wait_for_row(bad, "test_first.py")
        expand(bad, "test_first.py", "test_a[40]")
        assert wait_for_row(bad, "test_a[40]") == [name, "test_first.py", "test_a[40]"]
        page.close()


FAILING = {
    "tests/test_model.py": """
        import pytest

        @pytest.mark.parametrize("threshold", [0.5, 0.9])
        def test_accuracy(threshold):
            assert 0.8 > threshold, "accuracy 0.8 below the threshold"

        def test_loads():
            pass
    """,
    "tests/test_data.py": """
        def test_rows():
            pass
    """,
}
FAILING_TEST = "tests/test_model.py::test_accuracy[0.9]"
SESSION_LINK = "mlflow-tree: session run "


@pytest.fixture
def failing_ui(
    pytester: pytest.Pytester, record: Record, store: Store, tmp_path: Path
) -> Iterator[tuple[str, str, Any]]:
    """Two recorded sessions with one failing test, ``mlflow server`` showing them, and the
    session link pytest printed for the second."""
    needs_ui()
    pytester.makepyfile(**FAILING)
    record("--mlflow-tree-experiment=model-validation")
    result, tree = record("--mlflow-tree-experiment=model-validation", live=True)
    result.assert_outcomes(passed=3, failed=1)
    printed = next(line for line in result.outlines if SESSION_LINK in line)
    link = printed.split(SESSION_LINK, 1)[1].split(" ", 1)[0]
    with servers.mlflow_server(
        store.uri, tmp_path / "server", extra_args=("--workers", "1")
    ) as server:
        yield link.replace(LOCAL_UI, server.url), server.url, tree


def test_from_pytests_link_to_the_traceback_and_to_the_tests_history(
    failing_ui: tuple[str, str, Any], tmp_path: Path
) -> None:
    link, url, tree = failing_ui
    assert link.startswith(url)
    clicks = []

    def click(locator: Any) -> None:
        clicks.append(locator)
        locator.click()

    with browser.chromium() as chromium:
        page = chromium.new_page(viewport={"width": 1280, "height": 900})
        page.goto(link)
        # The session run's description starts with the failures, above the UI's fold.
        failure = page.get_by_role("link", name=FAILING_TEST)
        failure.wait_for(timeout=30_000)
        failure.evaluate("link => link.scrollIntoView({block: 'center'})")
        screenshot = tmp_path / "ui-failures.png"
        page.screenshot(path=str(screenshot))
        # Opening pytest's link is no click in the UI; from there, one to the traceback.
        with page.context.expect_page() as opened:
            click(failure)
        run = opened.value
        # The test's run, its failure.txt selected and shown.
        run.get_by_text("AssertionError: accuracy 0.8 below the threshold").wait_for(timeout=30_000)
        assert "def test_accuracy(threshold):" in run.inner_text("body")
        assert len(clicks) <= 3

        # From the test's run to the same test in every session: its description links there.
        clicks.clear()
        click(run.get_by_role("tab", name="Overview"))
        history = run.get_by_role("link", name="This test in every session")
        history.wait_for(timeout=30_000)
        with run.context.expect_page() as opened:
            click(history)
        runs = opened.value
        # Both sessions' runs of the test, flat (not under their modules), as charts.
        runs.get_by_text("2 matching runs").wait_for(timeout=30_000)
        # Each session's run of the test is a row, linked to its run.
        run_ids = [
            r.info.run_id for r in tree.runs if r.data.tags.get("pytest.nodeid") == FAILING_TEST
        ]
        assert len(run_ids) == 2
        for run_id in run_ids:
            assert runs.locator(f'a[href*="/runs/{run_id}"]').count() == 1, run_id
        assert len(clicks) == 2

    assert screenshot.read_bytes().startswith(b"\x89PNG")
    if browser.update_screenshots():
        shutil.copy(screenshot, browser.SCREENSHOTS / "ui-failures.png")


REPORTED = """
import pytest

def test_recall():
    assert 0.81 > 0.9, "recall too low"

@pytest.mark.parametrize("depth", [2, 4])
def test_accuracy(depth):
    pass
"""


@pytest.fixture
def report_ui(
    pytester: pytest.Pytester, record: Record, store: Store, tmp_path: Path
) -> Iterator[tuple[str, Any]]:
    """``mlflow server`` on a store, and a session recorded there with the UI's address set."""
    needs_ui("the artifact viewer and its sandbox")
    pytester.makepyfile(test_model=REPORTED)
    with servers.mlflow_server(
        store.uri, tmp_path / "server", extra_args=("--workers", "1")
    ) as server:
        result, tree = record(f"--mlflow-tree-ui-url={server.url}")
        result.assert_outcomes(passed=2, failed=1)
        yield server.url, tree


def test_the_reports_links_inside_the_mlflow_ui_and_downloaded(
    report_ui: tuple[str, Any], tmp_path: Path
) -> None:
    url, tree = report_ui
    session = tree.session
    experiment = session.info.experiment_id
    failing = tree.tests["test_model.py::test_recall"]
    run_url = f"{url}/#/experiments/{experiment}/runs/{failing.info.run_id}"
    report = tmp_path / "report.html"
    report.write_text(tree.artifact(session, "report.html"), encoding="utf-8")
    with browser.chromium() as chromium:
        page = chromium.new_page(viewport={"width": 1400, "height": 1200})
        # The session run's report in the run's Artifacts tab: the UI shows it in a frame.
        artifacts = f"{url}/#/experiments/{experiment}/runs/{session.info.run_id}/artifacts"
        page.goto(f"{artifacts}/report.html")
        viewer = page.frame_locator("iframe#html")
        link = viewer.locator('tbody.test[data-nodeid="test_model.py::test_recall"] td.name a')
        link.wait_for(timeout=30_000)
        assert link.get_attribute("href") == run_url

        link.click()
        # The viewer's frame may open no tab and leave for no page: the report stays, and
        # says where the run is.
        note = viewer.locator("#link-note")
        note.wait_for(timeout=10_000)
        assert viewer.locator("#link-url").input_value() == run_url
        assert "download the report" in note.inner_text()
        assert viewer.locator("h1").is_visible()
        assert len(page.context.pages) == 1
        assert page.url == f"{artifacts}/report.html"
        viewer.locator("#link-close").click()
        assert not note.is_visible()

        # Downloaded and opened as a file, the same link opens the run in the UI.
        page.goto(report.as_uri())
        page.locator('tbody.test[data-nodeid="test_model.py::test_recall"] td.name a').click()
        page.wait_for_url(run_url, timeout=30_000)
        page.get_by_text(failing.info.run_name).first.wait_for(timeout=30_000)
        page.close()
