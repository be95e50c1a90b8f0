"""The session's HTML report: one self-contained file logged as an artifact of the session run.

Inline CSS and JavaScript (``report_page``) and an inline SVG chart, nothing fetched from the
network, so it renders in the MLflow UI's artifact viewer (a sandboxed frame) and as a plain
file. Modules are ``<details>`` elements in pytest's order, their tests too: they open and
close without scripts; failing modules start open. Each test shows its params, the metrics it
logged and its skip or xfail reason; the page filters tests by outcome, searches their names
and node ids, and sorts them by name, outcome or duration. Every run links to its page in the
MLflow UI.
"""

from __future__ import annotations

import html
from typing import Any

from pytest_mlflow_tree.model.names import (
    COLLECTION_ERROR,
    COUNTS,
    DURATION,
    SKIP_REASON,
    XFAIL_REASON,
)
from pytest_mlflow_tree.read import report_page
from pytest_mlflow_tree.read.readback import Module, Reader, Session, Test, outcome_counts
from pytest_mlflow_tree.read.terminal_tree import (
    Budget,
    counts_text,
    failure_excerpt,
    local_time,
    module_seconds,
    name_in_module,
    seconds,
)

REPORT_ARTIFACT = "report.html"
# Failure texts fetched for the report (one artifact download each).
MAX_FAILURE_TEXTS = 20
# Passing tests listed in full; beyond this a module shows its counts only (bad tests always).
MAX_ROWS = 5000
SLOWEST = 15
# Sorting by outcome: the tests to look at first.
_RANKS = {"failed": 0, "error": 0, "killed": 1, "xpassed": 2, "xfailed": 3, "skipped": 4}
_OTHER_RANK = 5
_SORTS = (
    ("order", "pytest's order"),
    ("name", "name"),
    ("outcome", "outcome"),
    ("duration", "duration"),
)


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _badge(outcome: str) -> str:
    return f'<span class="badge {_e(outcome)}">{_e(outcome)}</span>'


def _link(session: Session, run_id: str | None, text: str) -> str:
    if run_id is None:
        return _e(text)
    return f'<a href="{_e(session.run_url(run_id))}" data-run-id="{_e(run_id)}">{_e(text)}</a>'


def _number(value: float) -> str:
    return f"{value:.6g}"


def chart(session: Session, count: int = SLOWEST) -> str:
    """A horizontal bar chart of the slowest tests, as inline SVG."""
    timed = [t for t in session.tests if t.duration is not None]
    timed.sort(key=lambda t: -(t.duration or 0.0))
    timed = timed[:count]
    if not timed:
        return '<p class="meta">No test durations recorded.</p>'
    label_width, bar_width, row, value_width = 360, 420, 22, 70
    longest = max(t.duration or 0.0 for t in timed) or 1.0
    height = row * len(timed) + 4
    width = label_width + bar_width + value_width
    parts = [
        f'<svg id="slowest-chart" xmlns="http://www.w3.org/2000/svg" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}" role="img" '
        'aria-label="slowest tests">'
    ]
    for index, test in enumerate(timed):
        y = index * row + 2
        length = max(1.0, bar_width * (test.duration or 0.0) / longest)
        label = test.nodeid if len(test.nodeid) <= 52 else "..." + test.nodeid[-49:]
        bar = (
            f'<rect class="bar" x="{label_width}" y="{y}" width="{length:.1f}" height="{row - 6}"'
            f' rx="3" fill="{_colour(test.outcome)}"><title>{_e(test.nodeid)}</title></rect>'
        )
        if test.run_id is not None:
            bar = (
                f'<a href="{_e(session.run_url(test.run_id))}" '
                f'data-run-id="{_e(test.run_id)}">{bar}</a>'
            )
        parts.append(
            f'<text x="{label_width - 8}" y="{y + row - 10}" text-anchor="end">{_e(label)}'
            f"<title>{_e(test.nodeid)}</title></text>{bar}"
            f'<text x="{label_width + length + 6:.1f}" y="{y + row - 10}">'
            f"{_e(seconds(test.duration))}</text>"
        )
    parts.append("</svg>")
    return "".join(parts)


def _colour(outcome: str) -> str:
    return {
        "passed": "#1a7f37",
        "failed": "#cf222e",
        "error": "#cf222e",
        "skipped": "#8c959f",
        "xfailed": "#bf8700",
        "xpassed": "#8250df",
    }.get(outcome, "#59636e")


def _sort_data(index: int, name: str, rank: int, duration: float | None) -> str:
    """The attributes the page's script sorts by."""
    return (
        f'data-index="{index}" data-name="{_e(name)}" data-rank="{rank}" '
        f'data-duration="{duration or 0.0:.6f}"'
    )


def _module(session: Session, module: Module, index: int, rows: Budget, failures: Budget) -> str:
    counts = module.counts()
    if not module.tests and module.metrics.get(COUNTS["error"]):
        counts = {"error": 1}
    state = "FAILED" if module.bad else "passed"
    listed, hidden = _test_rows(session, module, rows, failures)
    if module.tags.get(COLLECTION_ERROR):
        listed.append(_collection_error(module, len(listed)))
    more = f'<div class="more">{hidden} passing tests not listed</div>' if hidden else ""
    open_attribute = " open" if module.bad else ""
    run_link = _link(session, module.run_id, "run") if module.run_id else ""
    duration = module_seconds(module)
    rank = 0 if module.bad else _OTHER_RANK
    return (
        f'<details class="module{" bad" if module.bad else ""}" '
        f'data-module="{_e(module.path)}" {_sort_data(index, module.path, rank, duration)}'
        f"{open_attribute}>"
        f'<summary>{_badge(state)}<span class="path">{_e(module.path)}</span>'
        f'<span class="info">{_e(counts_text(counts))} &middot; '
        f"{_e(seconds(duration))}</span> "
        f"{run_link}</summary>"
        f"<table>{''.join(listed)}</table>{more}</details>"
    )


def _collection_error(module: Module, index: int) -> str:
    return (
        f'<tbody class="collection-error" data-outcome="error" data-nodeid="{_e(module.path)}" '
        f"{_sort_data(index, module.path, 0, None)}>"
        f'<tr><td class="outcome">{_badge("error")}</td><td colspan="4"><pre class="failure">'
        f"collection error: {_e(module.tags[COLLECTION_ERROR])}</pre></td></tr></tbody>"
    )


def _test_rows(
    session: Session, module: Module, rows: Budget, failures: Budget
) -> tuple[list[str], int]:
    """The module's tests in pytest's order, and how many passing ones are left out.

    Every failing test is listed; passing ones while ``rows`` lasts."""
    listed: list[str] = []
    hidden = 0
    for index, test in enumerate(module.tests):
        if not test.bad and rows.left <= 0:
            hidden += 1
            continue
        rows.left -= 1
        excerpt = failure_excerpt(test.failure(), lines=8) if test.bad and failures.take() else []
        listed.append(_test(session, test, index, excerpt))
    return listed, hidden


def _test(session: Session, test: Test, index: int, excerpt: list[str]) -> str:
    """A test's rows: its line, and under it the excerpt of its failure."""
    name = name_in_module(test)
    rank = _RANKS.get(test.outcome, _OTHER_RANK)
    failure = (
        f'<tr class="failure-row"><td></td><td colspan="4">'
        f'<pre class="failure">{_e(chr(10).join(excerpt))}</pre></td></tr>'
        if excerpt
        else ""
    )
    return (
        f'<tbody class="test{" bad" if test.bad else ""}" data-outcome="{_e(test.outcome)}" '
        f'data-nodeid="{_e(test.nodeid)}" {_sort_data(index, name, rank, test.duration)}>'
        f'<tr><td class="outcome">{_badge(test.outcome)}</td>'
        f'<td class="name">{_link(session, test.run_id, name)}{_reason(test)}</td>'
        f'<td class="params">{_params(test)}</td>'
        f'<td class="metrics">{_metrics(test)}</td>'
        f'<td class="duration">{_e(seconds(test.duration))}</td></tr>{failure}</tbody>'
    )


def _reason(test: Test) -> str:
    for tag, label in ((SKIP_REASON, "skipped"), (XFAIL_REASON, "xfail")):
        reason = test.tags.get(tag)
        if reason:
            return f'<div class="reason">{label}: {_e(reason)}</div>'
    return ""


def _params(test: Test) -> str:
    return _e(", ".join(f"{k}={v}" for k, v in test.params.items()))


def _metrics(test: Test) -> str:
    """The metrics the test logged itself, at their latest values."""
    return "".join(
        f'<span class="metric">{_e(key)} <b>{_e(_number(value))}</b></span>'
        for key, value in sorted(test.user_metrics.items())
    )


def _controls(counts: dict[str, int]) -> str:
    """Filters by outcome, the search box and the sort order."""
    boxes = "".join(
        f'<label><input type="checkbox" class="outcome" value="{_e(outcome)}" checked> '
        f"{_e(outcome)} ({count})</label>"
        for outcome, count in _by_rank(counts)
    )
    options = "".join(f'<option value="{key}">{label}</option>' for key, label in _SORTS)
    return (
        f'<div class="controls">{boxes}'
        '<input id="search" type="search" placeholder="search names and node ids" '
        'aria-label="search tests">'
        f'<label>sort by <select id="sort">{options}</select></label>'
        '<span><button id="expand-all" type="button">Expand all</button>'
        '<button id="collapse-all" type="button">Collapse all</button></span>'
        '<span id="shown"></span></div>'
    )


def _by_rank(counts: dict[str, int]) -> list[tuple[str, int]]:
    return sorted(counts.items(), key=lambda item: (_RANKS.get(item[0], _OTHER_RANK), item[0]))


def render(session: Session) -> str:
    tests = session.tests
    counts = outcome_counts(tests)
    # Modules that failed to collect are listed, and filtered, as errors.
    errors = sum(1 for module in session.modules if module.tags.get(COLLECTION_ERROR))
    if errors:
        counts["error"] = counts.get("error", 0) + errors
    rows, failures = Budget(MAX_ROWS), Budget(MAX_FAILURE_TEXTS)
    meta = [
        f"{len(tests)} tests: {counts_text(outcome_counts(tests))}",
        f"in {seconds(session.metrics.get(DURATION))}",
        f"started {local_time(session.start_ms)}",
    ]
    if session.commit:
        meta.append(f"commit {session.commit[:10]}")
    if session.compact:
        meta.append("compact mode: only failing, rerun and slow tests have runs")
    body = "".join(
        _module(session, module, index, rows, failures)
        for index, module in enumerate(session.modules)
    )
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(session.name)}</title><style>{report_page.CSS}</style></head><body>"
        f'<h1>{_e(session.name)} <span class="badge {_e(session.status)}">'
        f"{_e(session.status)}</span></h1>"
        f'<div class="meta">{"".join(f"<span>{_e(m)}</span>" for m in meta)}'
        f"{_link(session, session.run_id, 'session run in MLflow')}</div>"
        f"<h2>Slowest tests</h2>{chart(session)}"
        f"<h2>Tests</h2>{_controls(counts)}"
        f'<div id="tree">{body}</div>{report_page.LINK_NOTE}'
        f"<script>{report_page.SCRIPT}</script></body></html>"
    )


def read_back(
    client: Any, tracking_uri: str, session_run_id: str, ui_url: str | None = None
) -> Session | None:
    """The session as stored, or None when it cannot be read. Never raises."""
    try:
        return Reader(tracking_uri, client=client, ui_url=ui_url).session(session_run_id)
    except Exception:
        return None


def attach(client: Any, session: Session | None) -> str | None:
    """Log the report of ``session`` on its session run; return an error text or None.

    Never raises: the report is an extra, the upload it follows is what matters.
    """
    if session is None:
        return None
    try:
        client.log_text(session.run_id, render(session), REPORT_ARTIFACT)
    except Exception as exc:
        return f"the HTML report was not written: {type(exc).__name__}: {exc}"
    return None
