"""Where a user can see a run: the MLflow UI address for a tracking URI."""

from __future__ import annotations

from pytest_mlflow_tree import redact
from pytest_mlflow_tree.options import DEFAULT_TRACKING_URI

LOCAL_UI = "http://127.0.0.1:5000"


def run_url(tracking_uri: str, experiment_id: str, run_id: str) -> str:
    path = f"/#/experiments/{experiment_id}/runs/{run_id}"
    if tracking_uri.startswith(("http://", "https://")):
        return redact.url(tracking_uri.rstrip("/")) + path
    return LOCAL_UI + path


def ui_hint(tracking_uri: str, shown_uri: str) -> str:
    """How to start a UI that shows runs of a local store; empty for a server."""
    if tracking_uri.startswith(("http://", "https://")):
        return ""
    if shown_uri == DEFAULT_TRACKING_URI:
        return "mlflow ui"
    return f"mlflow ui --backend-store-uri {shown_uri}"
