"""The uploader's side of what tests logged themselves: metric histories and staged files.

The values come from user code, so nothing is trusted: keys are made valid the way ``limits``
does it (originals kept in the full-values artifact), values that are not numbers are dropped
with a note there, never an error that would stop the upload.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pytest_mlflow_tree.model.limits import Limits, safe_key


def step_metrics(
    limits: Limits, steps: list[list[Any]], changed: dict[str, dict[str, str]]
) -> list[tuple[str, float, int, int]]:
    """``[key, value, timestamp, step]`` entries as valid (key, value, timestamp, step)."""
    valid = []
    for entry in steps:
        try:
            key, value, timestamp, step = entry
            number = float(value)
            timestamp, step = int(timestamp), int(step)
        except (TypeError, ValueError):
            changed.setdefault("dropped metrics", {})[repr(entry)[:200]] = "not a metric value"
            continue
        new_key = safe_key(str(key), limits.key_length)
        if new_key != key:
            changed.setdefault("metrics", {})[str(key)] = new_key
        valid.append((new_key, number, timestamp, step))
    return valid


def files_to_upload(root: Path | None, files_dir: str | None) -> Path | None:
    """The directory of a test's staged files, if it is there and inside ``root``."""
    if root is None or not files_dir:
        return None
    directory = (root / files_dir).resolve()
    if root.resolve() not in directory.parents or not directory.is_dir():
        return None
    return directory
