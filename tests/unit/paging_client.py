"""A fake ``MlflowClient.search_runs`` that pages as MLflow's stores do: our paging, tested."""

from __future__ import annotations

from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any


class Page(list[Any]):
    """MLflow's ``PagedList``: the runs of one page and the token of the next (None: last)."""

    def __init__(self, runs: list[Any], token: str | None) -> None:
        super().__init__(runs)
        self.token = token


@dataclass
class Request:
    experiment_ids: list[str]
    filter_string: str
    max_results: int
    page_token: str | None


@dataclass
class PagingClient:
    """Serves ``runs`` in pages of the size asked for, the offset as the token."""

    runs: list[Any] = field(default_factory=list)
    requests: list[Request] = field(default_factory=list)

    def search_runs(
        self,
        experiment_ids: list[str],
        filter_string: str = "",
        max_results: int = 1000,
        page_token: str | None = None,
        **ignored: Any,
    ) -> Page:
        self.requests.append(Request(experiment_ids, filter_string, max_results, page_token))
        start = int(page_token or 0)
        end = start + max_results
        return Page(self.runs[start:end], str(end) if end < len(self.runs) else None)


def run(run_id: str, status: str = "FINISHED", **tags: str) -> Any:
    """A run as ``search_runs`` returns it, with the attributes our code reads."""
    info = SimpleNamespace(
        run_id=run_id,
        run_name=tags.get("mlflow.runName"),
        status=status,
        experiment_id="1",
        start_time=None,
        end_time=None,
    )
    data = SimpleNamespace(tags=dict(tags), params={}, metrics={})
    return SimpleNamespace(info=info, data=data)
