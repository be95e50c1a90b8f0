"""Every run a ``search_runs`` filter matches, page by page, in a bounded number of pages."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

# Runs per page: the most MLflow's stores return at once without complaint.
PAGE_SIZE = 1000

Call = Callable[..., Any]


def _direct(function: Call, *args: Any, **kwargs: Any) -> Any:
    return function(*args, **kwargs)


def search_all(
    client: Any,
    experiment_ids: list[str],
    filter_string: str,
    *,
    max_pages: int,
    page_size: int = PAGE_SIZE,
    call: Call = _direct,
) -> Iterator[Any]:
    """The matching runs of ``client.search_runs``, following ``page_token``.

    ``max_pages`` bounds the loop (a store that kept answering with a token would otherwise
    keep it going); callers pick it well above what they can meet. ``call`` wraps each request,
    for the uploader's retries.
    """
    page_token = None
    for _page in range(max_pages):
        page = call(
            client.search_runs,
            experiment_ids,
            filter_string=filter_string,
            max_results=page_size,
            page_token=page_token,
        )
        yield from page
        page_token = page.token
        if not page_token:
            return
