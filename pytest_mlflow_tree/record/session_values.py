"""Merge what each process logged through ``mlflow_session`` into the session run's values.

Runs in the controller. One part per process that ran tests: the pytest process itself, or
each xdist worker (named by its id). Params and tags keep the value of the first part that has
them (workers in the order of their ids, so a rerun merges alike); a different value from
another part, or a param logged again in one process, is a conflict: reported at the end of the
terminal summary and in an artifact of the session run, never an error.
"""

from __future__ import annotations

import filecmp
import re
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pytest_mlflow_tree.model.records import RunData
from pytest_mlflow_tree.record.session_fixture import WORKEROUTPUT_KEY, SessionLogged

# The session run's artifact that lists the conflicts, one per line.
CONFLICTS_ARTIFACT = "session-conflicts.txt"
ARTIFACT = "artifact"


@dataclass
class Conflict:
    kind: str  # param, tag or ARTIFACT
    key: str
    # (where, value) in merge order; the first is the one kept.
    values: list[tuple[str, str]] = field(default_factory=list)

    def line(self) -> str:
        if self.kind == ARTIFACT:
            workers = ", ".join(where for where, _ in self.values)
            return (
                f"the session run's artifact {self.key!r} was logged with different contents "
                f"by {workers}; kept {self.values[0][0]}'s"
            )
        shown = ", ".join(
            repr(value) + (f" ({where})" if where else "") for where, value in self.values
        )
        return (
            f"the session run's {self.kind} {self.key!r} was logged with different values: "
            f"{shown}; kept {self.values[0][1]!r}"
        )


@dataclass
class Merged:
    data: RunData
    conflicts: list[Conflict]


def _order(source: str) -> tuple[Any, ...]:
    """Workers by number (gw2 before gw10), the pytest process itself ("") first."""
    return tuple(int(part) if part.isdigit() else part for part in re.split(r"(\d+)", source))


class SessionValues:
    """The parts logged so far, merged on demand."""

    def __init__(self) -> None:
        self._parts: dict[str, SessionLogged] = {}

    def add(self, source: str, logged: Mapping[str, Any] | None) -> None:
        """What the process ``source`` (a worker id; "" for the pytest process) logged."""
        if isinstance(logged, Mapping) and logged:
            self._parts[source] = logged  # type: ignore[assignment]

    def merged(self, files_root: Path | None) -> Merged:
        """The values for the session run; ``files_root`` is where logged files wait."""
        data: RunData = {}
        conflicts: dict[tuple[str, str], Conflict] = {}
        params: dict[str, tuple[str, str]] = {}
        tags: dict[str, tuple[str, str]] = {}
        files_dirs: list[tuple[str, str]] = []
        for source in sorted(self._parts, key=_order):
            part = self._parts[source]
            for key, value in (part.get("params") or {}).items():
                _keep_first(params, conflicts, "param", key, source, str(value))
            for key, others in (part.get("conflicts") or {}).items():
                for value in others:
                    _keep_first(params, conflicts, "param", key, source, str(value))
            for key, value in (part.get("tags") or {}).items():
                _keep_first(tags, conflicts, "tag", key, source, str(value))
            data.setdefault("metric_steps", []).extend(part.get("metrics") or [])
            if part.get("files_dir"):
                files_dirs.append((source, str(part["files_dir"])))
        if params:
            data["params"] = {key: value for key, (_, value) in params.items()}
        if tags:
            data["tags"] = {key: value for key, (_, value) in tags.items()}
        if not data.get("metric_steps"):
            data.pop("metric_steps", None)
        if files_dirs and files_root is not None:
            data["files_dir"] = _one_files_dir(files_root.parent, files_dirs, conflicts)
        if conflicts:
            text = "".join(f"{conflict.line()}\n" for conflict in conflicts.values())
            data["artifacts"] = {CONFLICTS_ARTIFACT: text}
        return Merged(data, list(conflicts.values()))


def _keep_first(
    kept: dict[str, tuple[str, str]],
    conflicts: dict[tuple[str, str], Conflict],
    kind: str,
    key: str,
    source: str,
    value: str,
) -> None:
    first = kept.setdefault(key, (source, value))
    if first[1] == value:
        return
    conflict = conflicts.get((kind, key))
    if conflict is None:
        conflict = conflicts[(kind, key)] = Conflict(kind, key, [first])
    if value not in (v for _, v in conflict.values):
        conflict.values.append((source, value))


def _one_files_dir(
    base: Path, files_dirs: list[tuple[str, str]], conflicts: dict[tuple[str, str], Conflict]
) -> str:
    """The parts' files in the first part's directory (relative to ``base``): the session
    run has one. A file two parts logged with different contents keeps the first."""
    first_source, first = files_dirs[0]
    target = base / first
    for source, relative in files_dirs[1:]:
        directory = base / relative
        if not directory.is_dir():
            continue
        for path in sorted(p for p in directory.rglob("*") if p.is_file()):
            name = path.relative_to(directory)
            existing = target / name
            if not existing.exists():
                existing.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(path, existing)
            elif not filecmp.cmp(existing, path, shallow=False):
                key = (ARTIFACT, name.as_posix())
                conflict = conflicts.setdefault(
                    key, Conflict(ARTIFACT, name.as_posix(), [(first_source, "")])
                )
                conflict.values.append((source, ""))
    return first


class WorkerSessionValues:
    """On the xdist controller: collects each worker's session values as it finishes."""

    def __init__(self, values: SessionValues) -> None:
        self._values = values

    def pytest_testnodedown(self, node: Any, error: object) -> None:
        """Called by xdist when a worker is down, with what it sent in ``workeroutput``."""
        output: Any = getattr(node, "workeroutput", None) or {}
        workerid = str(getattr(node, "workerinput", {}).get("workerid", "worker"))
        self._values.add(workerid, output.get(WORKEROUTPUT_KEY))
