"""Where links to runs point: the MLflow UI's address."""

from __future__ import annotations

from pytest_mlflow_tree.model import links

RUN = "/#/experiments/3/runs/abc"


def test_a_local_store_links_to_where_mlflow_ui_serves_by_default() -> None:
    assert links.run_url("sqlite:///mlflow.db", "3", "abc") == "http://127.0.0.1:5000" + RUN


def test_a_tracking_server_is_its_own_ui_without_its_credentials() -> None:
    uri = "https://user:secret@mlflow.example/"
    assert links.run_url(uri, "3", "abc") == "https://***@mlflow.example" + RUN


def test_a_ui_address_set_wins_over_both() -> None:
    for uri in ("sqlite:///mlflow.db", "http://mlflow.example:8080"):
        url = links.run_url(uri, "3", "abc", " http://127.0.0.1:5001/ ")
        assert url == "http://127.0.0.1:5001" + RUN
    assert links.ui_address("http://server:8080", "") == "http://server:8080"
