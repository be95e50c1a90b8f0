"""Where a user can see a run: the MLflow UI address for a tracking URI."""

from __future__ import annotations

from urllib.parse import quote, urlencode

from pytest_mlflow_tree.model import redact
from pytest_mlflow_tree.model.defaults import DEFAULT_TRACKING_URI, LOCAL_UI
from pytest_mlflow_tree.model.names import FINISHED, NODEID, SESSION_UUID


def ui_address(tracking_uri: str, ui_url: str | None = None) -> str:
    """The MLflow UI's address: ``ui_url`` when set (``--mlflow-tree-ui-url``), else the
    tracking server itself, else where ``mlflow ui`` serves a local store by default."""
    if ui_url:
        return redact.url(ui_url.strip().rstrip("/"))
    if tracking_uri.startswith(("http://", "https://")):
        return redact.url(tracking_uri.rstrip("/"))
    return LOCAL_UI


def run_url(tracking_uri: str, experiment_id: str, run_id: str, ui_url: str | None = None) -> str:
    return f"{ui_address(tracking_uri, ui_url)}/#/experiments/{experiment_id}/runs/{run_id}"


def session_runs_path(experiment_id: str, session_uuid: str, failing: bool = False) -> str:
    """The experiment's runs table showing one session only, oldest run first.

    The UI nests a run under its parent only among the runs it has loaded (pages of 100, newest
    first), so a large session scatters. Filtered to the session and in run order, the session
    run comes first with its modules and tests nested below it, and *Load more* continues the
    same tree. ``searchFilter``, ``orderByKey`` and ``orderByAsc`` are the runs page's URL
    parameters (MLflow 3.x UI, ``#/experiments/<id>/runs``). ``failing`` keeps only runs that
    did not finish well: the failing tests with their modules and the session.
    """
    search = f"tags.{SESSION_UUID} = '{session_uuid}'"
    if failing:
        search += f" and attributes.status != '{FINISHED}'"
    query = {"searchFilter": search, "orderByKey": "attributes.start_time", "orderByAsc": "true"}
    return f"#/experiments/{experiment_id}/runs?{urlencode(query, quote_via=quote)}"


def artifact_path(experiment_id: str, run_id: str, path: str) -> str:
    """A run's page on its Artifacts tab with ``path`` selected and shown (MLflow 3.x UI)."""
    return f"#/experiments/{experiment_id}/runs/{run_id}/artifacts/{quote(path)}"


def nodeid_filter(nodeid: str) -> str:
    """A search filter matching the runs of one test, in MLflow's search syntax.

    MLflow's filter strings have no escape for a quote inside a quoted value: a node id with
    ``'`` is quoted with ``"``; one with both quotes is matched with ``LIKE``, each ``'`` a
    one-character wildcard.
    """
    if "'" not in nodeid:
        return f"tags.{NODEID} = '{nodeid}'"
    if '"' not in nodeid:
        return f'tags.{NODEID} = "{nodeid}"'
    pattern = nodeid.replace("'", "_")
    return f"tags.{NODEID} LIKE '{pattern}'"


def history_path(experiment_id: str, nodeid: str) -> str:
    """The experiment's runs table showing one test in every session, newest first, as charts.

    Sorted on anything but the start time, the UI lists the runs flat rather than nested
    under their modules, so each session's run of the test is a row (and a bar in each chart)
    of its own. ``compareRunsMode=CHART`` opens the chart view.
    """
    query = {
        "searchFilter": nodeid_filter(nodeid),
        "orderByKey": "attributes.end_time",
        "orderByAsc": "false",
        "compareRunsMode": "CHART",
    }
    # A node id may hold lone surrogates, which have no UTF-8 form.
    encoded = urlencode(query, quote_via=quote, errors="replace")
    return f"#/experiments/{experiment_id}/runs?{encoded}"


def ui_hint(tracking_uri: str, shown_uri: str) -> str:
    """How to start a UI that shows runs of a local store; empty for a server."""
    if tracking_uri.startswith(("http://", "https://")):
        return ""
    if shown_uri == DEFAULT_TRACKING_URI:
        return "mlflow ui"
    return f"mlflow ui --backend-store-uri {shown_uri}"
