"""The MLflow UI with a session larger than its runs table's page of 100, in a real browser.

What a user sees: the experiment's runs table, the session row and its expander, and the links
on the session run's description that open the runs table on this session alone.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import browser
import pytest
import servers
from conftest import Record, Store, missing_service

from pytest_mlflow_tree.model import links

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


@pytest.fixture
def ui(
    pytester: pytest.Pytester, record: Record, store: Store, tmp_path: Path
) -> Iterator[tuple[str, Any]]:
    """A recorded session of 150 tests, and ``mlflow server`` showing its store."""
    reason = browser.unavailable()
    if reason is not None:
        missing_service(reason)
    pytest.importorskip("mlflow.server", reason="the MLflow UI needs the full mlflow package")
    import mlflow

    if int(mlflow.__version__.split(".")[0]) < 3:
        pytest.skip("the runs page URL parameters checked here are MLflow 3.x's")
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
        # showing this session alone, oldest first; the links open a new tab.
        page.goto(f"{url}/#/experiments/{experiment}/runs/{session.info.run_id}")
        link = page.get_by_role("link", name="this session's runs")
        link.wait_for(timeout=30_000)
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
