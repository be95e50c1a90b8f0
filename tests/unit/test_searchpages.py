"""Every run a filter matches, page by page, within a bound on the pages."""

from __future__ import annotations

from typing import Any

import pytest
from paging_client import Page, PagingClient, run

from pytest_mlflow_tree.model.searchpages import PAGE_SIZE, search_all


class Scripted:
    """Answers each request with the next of ``pages``; the last is repeated, 100 pages at most."""

    def __init__(self, *pages: Page) -> None:
        self.pages = list(pages)
        self.tokens: list[str | None] = []

    def search_runs(self, experiment_ids: list[str], **kwargs: Any) -> Page:
        self.tokens.append(kwargs["page_token"])
        # A search without a bound fails here rather than hanging the suite.
        assert len(self.tokens) <= 100, "search_runs asked for page after page"
        return self.pages.pop(0) if len(self.pages) > 1 else self.pages[0]


def test_every_page_is_read_in_order_following_the_tokens() -> None:
    client = PagingClient([run(str(n)) for n in range(25)])
    found = list(search_all(client, ["1"], "tags.x = 'y'", max_pages=100, page_size=10))
    assert [r.info.run_id for r in found] == [str(n) for n in range(25)]
    assert [r.page_token for r in client.requests] == [None, "10", "20"]
    assert {(tuple(r.experiment_ids), r.filter_string) for r in client.requests} == {
        (("1",), "tags.x = 'y'")
    }


def test_pages_hold_the_most_runs_a_store_returns_unless_told() -> None:
    client = PagingClient([run(str(n)) for n in range(PAGE_SIZE + 3)])
    assert len(list(search_all(client, ["1"], "", max_pages=10))) == PAGE_SIZE + 3
    assert [r.max_results for r in client.requests] == [PAGE_SIZE, PAGE_SIZE]
    assert PAGE_SIZE == 1000


def test_a_full_last_page_without_a_token_ends_the_search() -> None:
    client = PagingClient([run(str(n)) for n in range(20)])
    assert len(list(search_all(client, ["1"], "", max_pages=100, page_size=10))) == 20
    assert len(client.requests) == 2


def test_no_runs_is_one_request() -> None:
    client = PagingClient([])
    assert list(search_all(client, ["1"], "", max_pages=100)) == []
    assert len(client.requests) == 1


@pytest.mark.parametrize("token", [None, ""])
def test_no_token_is_the_last_page(token: str | None) -> None:
    client = Scripted(Page([run("a")], token), Page([run("never")], None))
    assert [r.info.run_id for r in search_all(client, ["1"], "", max_pages=10)] == ["a"]
    assert client.tokens == [None]


def test_an_empty_page_with_a_token_is_followed_to_the_end() -> None:
    client = Scripted(Page([run("a")], "t1"), Page([], "t2"), Page([run("b")], None))
    assert [r.info.run_id for r in search_all(client, ["1"], "", max_pages=10)] == ["a", "b"]
    assert client.tokens == [None, "t1", "t2"]


def test_a_store_that_always_answers_with_a_token_is_read_for_max_pages_only() -> None:
    client = Scripted(Page([], "again"))
    assert list(search_all(client, ["1"], "", max_pages=5)) == []
    assert client.tokens == [None, "again", "again", "again", "again"]


def test_the_bound_on_pages_stops_a_search_with_runs_left() -> None:
    client = PagingClient([run(str(n)) for n in range(50)])
    found = list(search_all(client, ["1"], "", max_pages=3, page_size=10))
    assert [r.info.run_id for r in found] == [str(n) for n in range(30)]
    assert len(client.requests) == 3


def test_runs_are_yielded_page_by_page() -> None:
    client = PagingClient([run(str(n)) for n in range(30)])
    found = search_all(client, ["1"], "", max_pages=10, page_size=10)
    next(found)
    assert len(client.requests) == 1


def test_each_request_goes_through_the_callers_wrapper() -> None:
    client = PagingClient([run(str(n)) for n in range(15)])
    wrapped: list[Any] = []

    def call(function: Any, *args: Any, **kwargs: Any) -> Any:
        wrapped.append(function)
        return function(*args, **kwargs)

    assert len(list(search_all(client, ["1"], "", max_pages=9, page_size=10, call=call))) == 15
    assert wrapped == [client.search_runs, client.search_runs]
