"""What a test item knows that its reports do not: params and markers, and when it started.

Computed where the test runs (in-process or on an xdist worker). Params and markers are carried
to the recorder on the setup report as a JSON-safe attribute, which survives xdist's report
serialization; the start stays with the item, for ``mlflow_live_run``.
"""

from __future__ import annotations

from typing import Any, TypedDict

import pytest

from pytest_mlflow_tree.model.values import param_text

# The report attribute that carries the test's params and markers from its setup.
ITEM_INFO_ATTRIBUTE = "mlflow_tree"
# When the test's protocol began, in epoch milliseconds: the start of its run.
TEST_START_KEY: pytest.StashKey[int] = pytest.StashKey()

# Markers that are pytest plumbing rather than something a user classifies tests by.
_PLUMBING_MARKERS = frozenset({"parametrize", "usefixtures", "filterwarnings"})


class ItemInfo(TypedDict):
    params: dict[str, str]
    markers: list[str]


def _callspec_params(item: pytest.Item) -> dict[str, Any]:
    callspec = getattr(item, "callspec", None)
    params = getattr(callspec, "params", None)
    return dict(params) if isinstance(params, dict) else {}


def item_info(item: pytest.Item) -> ItemInfo:
    params = _callspec_params(item)
    markers = sorted({m.name for m in item.iter_markers()} - _PLUMBING_MARKERS)
    return {
        "params": {str(k): param_text(v) for k, v in params.items()},
        "markers": markers,
    }


def take_from(report: pytest.TestReport) -> ItemInfo | None:
    """The item's info, taken off its setup report.

    pytest's terminal reporter keeps every report to the end of the session: left on them, the
    info of tens of thousands of tests would stay alive, and every full garbage collection,
    which lands inside some test's phase, would walk it.
    """
    info = report.__dict__.pop(ITEM_INFO_ATTRIBUTE, None)
    return info if isinstance(info, dict) else None  # type: ignore[return-value]
