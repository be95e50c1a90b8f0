"""The session's HTML report: one self-contained file logged as an artifact of the session run.

Inline CSS, a few lines of inline JavaScript and an inline SVG chart, nothing fetched from the
network, so it renders in the MLflow UI's artifact viewer (a sandboxed frame) and as a plain
file. Modules are ``<details>`` elements: they open and close without scripts; failing modules
start open. Every run links to its page in the MLflow UI.
"""

from __future__ import annotations

import html
from collections.abc import Iterable
from typing import Any

from pytest_mlflow_tree.model.names import COLLECTION_ERROR, COUNTS, DURATION
from pytest_mlflow_tree.read.readback import Module, Reader, Session, outcome_counts
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

_CSS = """
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 20px;
       color: #1f2328; background: #fff; }
h1 { font-size: 20px; margin: 0 0 4px; } h2 { font-size: 16px; margin: 24px 0 8px; }
a { color: #0969da; text-decoration: none; } a:hover { text-decoration: underline; }
.meta { color: #59636e; } .meta span { margin-right: 14px; }
.badge { display: inline-block; min-width: 64px; padding: 0 6px; border-radius: 10px;
         font-size: 12px; font-weight: 600; text-align: center; color: #fff; }
.badge.passed, .badge.FINISHED { background: #1a7f37; }
.badge.failed, .badge.error, .badge.killed, .badge.FAILED, .badge.KILLED { background: #cf222e; }
.badge.skipped { background: #8c959f; } .badge.xfailed { background: #bf8700; }
.badge.xpassed { background: #8250df; } .badge.unknown { background: #59636e; }
details.module { border: 1px solid #d1d9e0; border-radius: 6px; margin: 6px 0; }
details.module.bad { border-color: #cf222e; }
details.module > summary { cursor: pointer; padding: 6px 10px; background: #f6f8fa;
                           border-radius: 6px; list-style-position: inside; }
details.module.bad > summary { background: #ffebe9; }
summary .path { font-weight: 600; margin: 0 8px; } summary .info { color: #59636e; }
table { border-collapse: collapse; width: 100%; }
td { padding: 3px 10px; border-top: 1px solid #eef1f4; vertical-align: top; }
td.duration { text-align: right; white-space: nowrap; width: 80px; color: #59636e; }
td.params { color: #59636e; font-size: 12px; }
tr.test.bad td.name a { color: #cf222e; font-weight: 600; }
pre.failure { margin: 2px 0 6px; padding: 6px 8px; background: #fff8f8; color: #82071e;
              white-space: pre-wrap; font-size: 12px; border-left: 3px solid #cf222e; }
.more { color: #59636e; padding: 4px 10px; }
button { font: inherit; margin-right: 6px; padding: 2px 10px; border: 1px solid #d1d9e0;
         border-radius: 6px; background: #f6f8fa; cursor: pointer; }
svg text { font: 12px system-ui, sans-serif; fill: #1f2328; }
"""

_JS = """
document.getElementById("expand-all").addEventListener("click", function () {
  document.querySelectorAll("details.module").forEach(function (d) { d.open = true; });
});
document.getElementById("collapse-all").addEventListener("click", function () {
  document.querySelectorAll("details.module").forEach(function (d) { d.open = false; });
});
"""


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _badge(outcome: str) -> str:
    return f'<span class="badge {_e(outcome)}">{_e(outcome)}</span>'


def _link(session: Session, run_id: str | None, text: str) -> str:
    if run_id is None:
        return _e(text)
    return f'<a href="{_e(session.run_url(run_id))}" data-run-id="{_e(run_id)}">{_e(text)}</a>'


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
            bar = f'<a href="{_e(session.run_url(test.run_id))}">{bar}</a>'
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


def _module(session: Session, module: Module, rows: Budget, failures: Budget) -> str:
    counts = module.counts()
    if not module.tests and module.metrics.get(COUNTS["error"]):
        counts = {"error": 1}
    state = "FAILED" if module.bad else "passed"
    listed, hidden = _test_rows(session, module, rows, failures)
    if module.tags.get(COLLECTION_ERROR):
        listed.append(
            f'<tr class="failure-row"><td></td><td colspan="3"><pre class="failure">'
            f"collection error: {_e(module.tags[COLLECTION_ERROR])}</pre></td></tr>"
        )
    more = f'<div class="more">{hidden} passing tests not listed</div>' if hidden else ""
    open_attribute = " open" if module.bad else ""
    run_link = _link(session, module.run_id, "run") if module.run_id else ""
    return (
        f'<details class="module{" bad" if module.bad else ""}" '
        f'data-module="{_e(module.path)}"{open_attribute}>'
        f'<summary>{_badge(state)}<span class="path">{_e(module.path)}</span>'
        f'<span class="info">{_e(counts_text(counts))} &middot; '
        f"{_e(seconds(module_seconds(module)))}</span> "
        f"{run_link}</summary>"
        f"<table>{''.join(listed)}</table>{more}</details>"
    )


def _test_rows(
    session: Session, module: Module, rows: Budget, failures: Budget
) -> tuple[list[str], int]:
    """The rows of the module's tests, failing first, and how many passing ones are left out.

    Every failing test is listed; passing ones while ``rows`` lasts."""
    listed: list[str] = []
    hidden = 0
    for test in sorted(module.tests, key=lambda t: not t.bad):
        if not test.bad and rows.left <= 0:
            hidden += 1
            continue
        rows.left -= 1
        params = ", ".join(f"{k}={v}" for k, v in test.params.items())
        listed.append(
            f'<tr class="test{" bad" if test.bad else ""}" data-outcome="{_e(test.outcome)}" '
            f'data-nodeid="{_e(test.nodeid)}"><td class="outcome">{_badge(test.outcome)}</td>'
            f'<td class="name">{_link(session, test.run_id, name_in_module(test))}</td>'
            f'<td class="params">{_e(params)}</td>'
            f'<td class="duration">{_e(seconds(test.duration))}</td></tr>'
        )
        excerpt = failure_excerpt(test.failure(), lines=8) if test.bad and failures.take() else []
        if excerpt:
            listed.append(
                f'<tr class="failure-row"><td></td><td colspan="3">'
                f'<pre class="failure">{_e(chr(10).join(excerpt))}</pre></td></tr>'
            )
    return listed, hidden


def render(session: Session) -> str:
    tests = session.tests
    counts = outcome_counts(tests)
    rows, failures = Budget(MAX_ROWS), Budget(MAX_FAILURE_TEXTS)
    modules = sorted(session.modules, key=lambda m: (not m.bad, m.path))
    meta = [
        f"{len(tests)} tests: {counts_text(counts)}",
        f"in {seconds(session.metrics.get(DURATION))}",
        f"started {local_time(session.start_ms)}",
    ]
    if session.commit:
        meta.append(f"commit {session.commit[:10]}")
    if session.compact:
        meta.append("compact mode: only failing, rerun and slow tests have runs")
    body: Iterable[str] = (_module(session, m, rows, failures) for m in modules)
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(session.name)}</title><style>{_CSS}</style></head><body>"
        f'<h1>{_e(session.name)} <span class="badge {_e(session.status)}">'
        f"{_e(session.status)}</span></h1>"
        f'<div class="meta">{"".join(f"<span>{_e(m)}</span>" for m in meta)}'
        f"{_link(session, session.run_id, 'session run in MLflow')}</div>"
        f"<h2>Slowest tests</h2>{chart(session)}"
        '<h2>Tests <button id="expand-all">Expand all</button>'
        '<button id="collapse-all">Collapse all</button></h2>'
        f'<div id="tree">{"".join(body)}</div>'
        f"<script>{_JS}</script></body></html>"
    )


def read_back(client: Any, tracking_uri: str, session_run_id: str) -> Session | None:
    """The session as stored, or None when it cannot be read. Never raises."""
    try:
        return Reader(tracking_uri, client=client).session(session_run_id)
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
