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

        @pytest.mark.parametrize("fold", range(11))
        def test_fold(fold, mlflow_run):
            mlflow_run.log_param("folds", 11)
            mlflow_run.log_metric("auc", 0.5, step=0)
            mlflow_run.log_metric("auc", 0.9 + fold / 100, step=1)
    """,
    "tests/test_model.py": """
        import time

        import pytest

        @pytest.mark.parametrize("depth", [2, 4, 8])
        def test_accuracy(depth):
            time.sleep(0.02 * depth)

        def test_recall_malignant(record_property):
            recall = 0.81
            record_property("recall", recall)
            assert recall > 0.9, "recall of the malignant class too low"

        @pytest.mark.skip(reason="needs a GPU")
        def test_gpu_inference():
            pass

        @pytest.mark.xfail(reason="drifts on data before 2020")
        def test_old_data():
            assert False
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
    result.assert_outcomes(passed=19, failed=1, skipped=1, xfailed=1)
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
    the_test_runs_carry_their_place_in_pytests_order((path, tree))


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


def the_test_runs_carry_their_place_in_pytests_order(report: tuple[Path, Tree]) -> None:
    tests = report[1].tests
    data = ["test_class_share[benign]", "test_class_share[malignant]", "test_no_missing_values"]
    data += [f"test_fold[{fold}]" for fold in range(11)]
    model = [*(f"test_accuracy[{d}]" for d in (2, 4, 8)), "test_recall_malignant"]
    model += ["test_gpu_inference", "test_old_data"]
    order = [f"tests/test_data.py::{name}" for name in data]
    order += [f"tests/test_model.py::{name}" for name in model]
    order += ["tests/test_serving.py::test_latency", "tests/test_serving.py::test_batch_predict"]
    assert {nodeid: run.data.tags["pytest.collection_index"] for nodeid, run in tests.items()} == {
        nodeid: str(index) for index, nodeid in enumerate(order)
    }


def test_the_report_in_a_browser(
    report: tuple[Path, Tree, Store], chromium: Any, tmp_path: Path
) -> None:
    path, tree, _ = report
    page = chromium.new_page(viewport={"width": 1100, "height": 900})
    page.goto(path.as_uri())

    modules = page.locator("details.module")
    assert modules.count() == 3
    # Modules in pytest's order; failing ones open, passing ones closed.
    assert modules.nth(0).get_attribute("data-module") == "tests/test_data.py"
    assert modules.nth(0).evaluate("d => d.open") is False
    model = page.locator('details.module[data-module="tests/test_model.py"]')
    assert model.evaluate("d => d.open") is True

    failing = row_of(page, "tests/test_model.py::test_recall_malignant")
    assert failing.is_visible()
    colour = failing.locator("td.name a").evaluate("a => getComputedStyle(a).color")
    assert colour == "rgb(207, 34, 46)"  # red
    badge = failing.locator(".badge").evaluate("b => getComputedStyle(b).backgroundColor")
    assert badge == "rgb(207, 34, 46)"
    # Only the badge is coloured, not the whole row.
    assert failing.evaluate("r => getComputedStyle(r).backgroundColor") == "rgba(0, 0, 0, 0)"
    assert "recall of the malignant class too low" in failing.locator("pre.failure").inner_text()
    passing = row_of(page, "tests/test_model.py::test_accuracy[2]").locator(".badge")
    assert passing.evaluate("b => getComputedStyle(b).backgroundColor") == "rgb(26, 127, 55)"

    serving = page.locator('details.module[data-module="tests/test_serving.py"]')
    latency = row_of(page, "tests/test_serving.py::test_latency")
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
    assert page.locator("#slowest-chart rect.bar").count() == html_report.SLOWEST
    first_label = page.locator("#slowest-chart text").first.evaluate("t => t.firstChild.data")
    durations = {nodeid: run.data.metrics["pytest/duration"] for nodeid, run in tree.tests.items()}
    assert first_label == max(durations, key=lambda nodeid: durations[nodeid])

    page.locator("#collapse-all").click()
    assert not failing.is_visible()
    page.locator("#expand-all").click()
    assert latency.is_visible()

    page.locator("#collapse-all").click()
    model.locator("summary .path").click()
    assert page.url == path.as_uri()
    screenshot = tmp_path / "report.png"
    page.screenshot(path=str(screenshot), full_page=True)
    assert screenshot.read_bytes().startswith(b"\x89PNG")
    if browser.update_screenshots():
        browser.SCREENSHOTS.mkdir(exist_ok=True)
        shutil.copy(screenshot, browser.SCREENSHOTS / "report.png")
    page.close()


def test_what_each_test_logged_in_pytests_order(
    report: tuple[Path, Tree, Store], chromium: Any
) -> None:
    path, _tree, _ = report
    page = chromium.new_page(viewport={"width": 1100, "height": 900})
    page.goto(path.as_uri())
    page.locator("#expand-all").click()

    folds = [f"test_fold[{fold}]" for fold in range(11)]
    data = ["test_class_share[benign]", "test_class_share[malignant]", "test_no_missing_values"]
    assert row_names(page, "tests/test_data.py") == data + folds
    fold = row_of(page, "tests/test_data.py::test_fold[3]")
    # The metric's latest value (by step), the params: the parametrization's and the logged.
    assert fold.locator("td.metrics").inner_text() == "auc 0.93"
    assert fold.locator("td.params").inner_text() == "folds=11, fold=3"
    recall = row_of(page, "tests/test_model.py::test_recall_malignant")
    assert recall.locator("td.metrics").inner_text() == "recall 0.81"
    # The plugin's own durations are not among a test's metrics.
    accuracy = row_of(page, "tests/test_model.py::test_accuracy[2]")
    assert accuracy.locator("td.metrics").inner_text() == ""
    skipped = row_of(page, "tests/test_model.py::test_gpu_inference")
    assert skipped.locator(".reason").inner_text() == "skipped: needs a GPU"
    xfailed = row_of(page, "tests/test_model.py::test_old_data")
    assert xfailed.locator(".reason").inner_text() == "xfail: drifts on data before 2020"
    page.close()


def test_filters_search_and_sorting(report: tuple[Path, Tree, Store], chromium: Any) -> None:
    path, _tree, _ = report
    page = chromium.new_page(viewport={"width": 1100, "height": 900})
    page.goto(path.as_uri())
    failing = row_of(page, "tests/test_model.py::test_recall_malignant")
    latency = row_of(page, "tests/test_serving.py::test_latency")
    serving = page.locator('details.module[data-module="tests/test_serving.py"]')

    # Outcomes: the failures alone; modules without any are hidden.
    for outcome in ("passed", "skipped", "xfailed"):
        page.locator(f'input.outcome[value="{outcome}"]').uncheck()
    assert visible_names(page) == ["test_recall_malignant"]
    assert not serving.is_visible()
    assert page.locator("#shown").inner_text() == "1 shown"
    for outcome in ("passed", "skipped", "xfailed"):
        page.locator(f'input.outcome[value="{outcome}"]').check()
    # Back as it was: failing modules open, passing ones closed.
    assert failing.is_visible()
    assert serving.is_visible()
    assert not latency.is_visible()

    # The search box: names and node ids, any case.
    page.locator("#search").fill("FOLD[1")
    assert visible_names(page) == ["test_fold[1]", "test_fold[10]"]
    page.locator("#search").fill("test_serving.py::")
    assert visible_names(page) == ["test_latency", "test_batch_predict"]
    page.locator("#search").fill("")

    page.locator("#expand-all").click()
    page.locator("#sort").select_option("duration")
    # Slowest first, by the durations the page carries: sleeps alone do not fix the order on a
    # busy machine, and the modules' pytest order is not their order by duration.
    model_rows = 'details.module[data-module="tests/test_model.py"] tbody.test'
    slowest = dict(by_duration(page, model_rows))
    listed = [slowest[name] for name in row_names(page, "tests/test_model.py")]
    assert listed == sorted(listed, reverse=True)
    assert listed[0] > listed[-1]
    modules = by_duration(page, "details.module", "data-module")
    assert module_order(page) == [module for module, _ in modules]
    assert [module for module, _ in modules] != [
        "tests/test_data.py",
        "tests/test_model.py",
        "tests/test_serving.py",
    ]
    page.locator("#sort").select_option("outcome")
    assert row_names(page, "tests/test_model.py")[:3] == [
        "test_recall_malignant",
        "test_old_data",
        "test_gpu_inference",
    ]
    assert module_order(page)[0] == "tests/test_model.py"
    page.locator("#sort").select_option("name")
    names = row_names(page, "tests/test_data.py")
    assert names.index("test_fold[9]") + 1 == names.index("test_fold[10]")
    assert names[0] == "test_class_share[benign]"
    assert module_order(page)[0] == "tests/test_data.py"
    page.locator("#sort").select_option("order")
    assert row_names(page, "tests/test_model.py")[0] == "test_accuracy[2]"
    assert module_order(page) == [
        "tests/test_data.py",
        "tests/test_model.py",
        "tests/test_serving.py",
    ]
    page.close()


def test_a_downloaded_reports_links_open_the_runs(
    report: tuple[Path, Tree, Store], chromium: Any
) -> None:
    """Opened as a file, a test's link goes to its run's page in the MLflow UI."""
    path, tree, _ = report
    page = chromium.new_page()
    # No MLflow UI here: a stand-in page for any address of the default one.
    page.route(
        lambda url: url.startswith("http://127.0.0.1:5000/"),
        lambda route: route.fulfill(body="<p id=ui>the MLflow UI</p>", content_type="text/html"),
    )
    page.goto(path.as_uri())
    run = tree.tests["tests/test_model.py::test_recall_malignant"]
    row_of(page, "tests/test_model.py::test_recall_malignant").locator("td.name a").click()
    page.locator("#ui").wait_for()
    assert page.url == session_run_url(tree, run.info.run_id)
    page.close()


def session_run_url(tree: Tree, run_id: str) -> str:
    experiment = tree.session.info.experiment_id
    return f"http://127.0.0.1:5000/#/experiments/{experiment}/runs/{run_id}"


def row_of(page: Any, nodeid: str) -> Any:
    return page.locator(f'tbody.test[data-nodeid="{nodeid}"]')


def row_names(page: Any, module: str) -> list[str]:
    """The names of a module's tests, as listed."""
    rows = page.locator(f'details.module[data-module="{module}"] tbody.test td.name a')
    return [name.inner_text() for name in rows.all()]


def by_duration(page: Any, selector: str, key: str = "data-name") -> list[tuple[str, float]]:
    """What ``selector`` finds (its ``key`` attribute), slowest first, by the page's data."""
    found = [
        (element.get_attribute(key), float(element.get_attribute("data-duration")))
        for element in page.locator(selector).all()
    ]
    return sorted(found, key=lambda pair: -pair[1])


def module_order(page: Any) -> list[str]:
    return [m.get_attribute("data-module") for m in page.locator("details.module").all()]


def visible_names(page: Any) -> list[str]:
    return [
        name.inner_text()
        for name in page.locator("tbody.test td.name a").all()
        if name.is_visible()
    ]
