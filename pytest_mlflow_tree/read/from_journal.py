"""The session as the uploader sent it: read-back objects built from journal records.

The HTML report needs the tree, the outcomes, durations and run ids of a session the uploader
has just written. Reading it back with ``search_runs`` would cost time per test at the end of
pytest; the records and the run ids the uploader created or found hold the same facts, so the
report is built from them, live and on replay alike.

Memory: a small ``Test`` per test (no failure texts, only their ``E`` lines; no tags but a skip or
xfail reason; of the metrics only those the test logged), freed with the builder when the upload
is done.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterable, Iterator
from typing import Any, cast

from pytest_mlflow_tree.model.names import (
    DURATION,
    FINISHED,
    KILLED,
    METRIC_PREFIX,
    MODULE_LEVEL,
    NODEID,
    OUTCOME,
    RUNNING,
    SESSION_LEVEL,
    SKIP_REASON,
    XFAIL_REASON,
)
from pytest_mlflow_tree.model.records import (
    FAILURE_ARTIFACT,
    SESSION_KEY,
    CloseRecord,
    Header,
    OpenRecord,
    Record,
    RunRecord,
    module_of,
)
from pytest_mlflow_tree.read.readback import (
    Module,
    Session,
    Test,
    collection_index,
    in_order,
)

# ``E`` lines of a failure kept for the report (a traceback's assertion lines, not its output).
_FAILURE_LINES = 200


def _own_metrics(metrics: dict[str, float], steps: Iterable[list[Any]]) -> dict[str, float]:
    """The metrics a test logged itself, each at its latest value as MLflow picks it (by
    step, then time, then value); the plugin's own keys win on a clash, as in the upload."""
    own = {sys.intern(k): v for k, v in metrics.items() if not k.startswith(METRIC_PREFIX)}
    latest: dict[str, tuple[int, int, float]] = {}
    for entry in steps:
        try:
            key, value, timestamp, step = entry
            order = (int(step), int(timestamp), float(value))
        except (TypeError, ValueError):
            continue  # the uploader drops it too
        if key not in metrics and (key not in latest or order > latest[key]):
            latest[key] = order
    own.update({sys.intern(str(k)): order[2] for k, order in latest.items()})
    return own


def failure_lines(text: str) -> str:
    """What ``treeview.failure_excerpt`` shows of a failure text, without the rest of it."""
    lines = [line.rstrip() for line in text.splitlines()]
    found = [line for line in lines if line.startswith("E ")]
    if not found:
        found = [line for line in lines if line.strip()][-1:]
    return "\n".join(found[:_FAILURE_LINES])


class SessionBuilder:
    """Watches the records on their way to the uploader and the run ids it reports back.

    ``watch`` sees every test, also those compact mode keeps only in a table; ``ran`` is the
    uploader's callback with the run id of each record it applied (from its upload threads too).
    """

    def __init__(self, header: Header, tracking_uri: str, ui_url: str | None = None) -> None:
        self._header = header
        self._tracking_uri = tracking_uri
        self._ui_url = ui_url
        # A test logged into its live run, in its own process: the journal lacks those values.
        self.live_runs = False
        self._session: Session | None = None
        self._modules: dict[str, Module] = {}
        self._tests: dict[str, Test] = {}
        self._run_ids: dict[str, str] = {}
        self._lock = threading.Lock()
        # Shared by the tests that have no params, metrics of their own or reasons: the report
        # reads a test's duration, outcome, params, own metrics and skip or xfail reason only.
        self._nothing: dict[str, Any] = {}

    def watch(self, records: Iterable[Record]) -> Iterator[Record]:
        for record in records:
            kind = record["kind"]
            if kind == "open":
                self._open(cast(OpenRecord, record))
            elif kind == "close":
                self._close(cast(CloseRecord, record))
            elif kind == "run":
                self._test(cast(RunRecord, record))
            yield record

    def ran(self, key: str, run_id: str) -> None:
        with self._lock:
            test = self._tests.get(key)
            if test is None:
                self._run_ids[key] = run_id
            else:
                test.run_id = run_id

    def session(self, experiment_id: str | None, killed: bool = False) -> Session | None:
        """The session seen, with run ids; None when the journal opened no session."""
        session = self._session
        run_id = self._run_ids.get(SESSION_KEY)
        if session is None or run_id is None:
            return None
        session.run_id = run_id
        session.experiment_id = experiment_id or ""
        if session.status == RUNNING or killed:
            # The uploader marks runs the journal never closed KILLED.
            session.status = KILLED
        for key, module in self._modules.items():
            module.run_id = self._run_ids.get(key)
            if module.status == RUNNING:
                module.status = KILLED
        session.modules = in_order(self._modules.values())
        return session

    # -- records -------------------------------------------------------------------------------

    def _open(self, record: OpenRecord) -> None:
        tags = {**self._header["common_tags"], **record.get("tags", {})}
        if record["level"] == SESSION_LEVEL:
            self._session = Session(
                run_id="",
                experiment_id="",
                name=record["name"],
                status=RUNNING,
                start_ms=record["start"],
                end_ms=None,
                tracking_uri=self._tracking_uri,
                tags=tags,
                ui_url=self._ui_url,
            )
        elif record["level"] == MODULE_LEVEL:
            self._modules[record["key"]] = Module(
                path=tags.get(NODEID) or record["name"],
                run_id=None,
                status=RUNNING,
                tags=tags,
            )

    def _close(self, record: CloseRecord) -> None:
        target: Session | Module | None
        if record["key"] == SESSION_KEY:
            target = self._session
            if target is not None:
                target.end_ms = record["end"]
                target.params.update(record.get("params", {}))
        else:
            target = self._modules.get(record["key"])
        if target is None:
            return
        target.status = record["status"]
        target.metrics.update(record.get("metrics", {}))
        target.tags.update(record.get("tags", {}))

    def _test(self, record: RunRecord) -> None:
        # Lean: one string shared wherever the same text recurs, no dict per test it can do
        # without. A session may have tens of thousands of tests.
        tags = record.get("tags", {})
        metrics = record.get("metrics", {})
        key = record["key"]
        params = record.get("params")
        nodeid = tags.get(NODEID, key)
        nodeid = key if nodeid == key else nodeid
        failure = record.get("artifacts", {}).get(FAILURE_ARTIFACT)
        excerpt = failure_lines(failure) if failure else None
        parent = record["parent"]
        module = self._modules.get(parent) if parent else None
        path = module_of(nodeid)
        if module is None:
            module = self._modules.setdefault(path, Module(path, None, FINISHED))
        if record.get("live_run_id"):
            self.live_runs = True
        own = _own_metrics(metrics, record.get("metric_steps", ()))
        reasons: dict[str, str] = {
            k: sys.intern(tags[k]) for k in (SKIP_REASON, XFAIL_REASON) if k in tags
        }
        test = Test(
            nodeid=nodeid,
            name=record["name"],
            module=module.path if module.path == path else path,
            outcome=sys.intern(tags.get(OUTCOME, "unknown")),
            status=sys.intern(record["status"]),
            duration=metrics.get(DURATION),
            start_ms=record["start"],
            end_ms=record["end"],
            index=collection_index(tags),
            params={sys.intern(k): v for k, v in params.items()} if params else self._nothing,
            metrics=own or self._nothing,
            tags=reasons or self._nothing,
            _load_failure=(lambda _run_id: excerpt) if excerpt else None,
        )
        self._tests[key] = test
        module.tests.append(test)
