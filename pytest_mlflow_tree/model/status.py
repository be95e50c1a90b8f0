"""The uploader's progress, shared with the pytest process through a small JSON file."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, fields
from pathlib import Path


@dataclass
class Progress:
    """How far an upload has come: what the store has, as the uploader counts it."""

    applied: int = 0
    # Tests uploaded by the thread pool rather than inline (see TreeUploader).
    pooled: int = 0
    session_run_id: str | None = None
    experiment_id: str | None = None


@dataclass
class Status(Progress):
    """The upload's progress and how it went, as the status file holds it."""

    # How a SQL store was written: "batched" (see sqlwriter) or "public" (MLflow's client).
    writer: str | None = None
    # The tracking URI the upload went to, credentials removed.
    tracking_uri: str | None = None
    # The MLflow UI's address that links to the runs point to.
    ui_url: str | None = None
    error: str | None = None
    # Wall-clock time the uploader was set up and about to contact the store.
    ready_at: float | None = None
    # True once every record of a complete journal is in the tracking store.
    done: bool = False

    def catch_up(self, progress: Progress) -> None:
        """Take the uploader's progress, as far as the store has it."""
        for progress_field in fields(Progress):
            setattr(self, progress_field.name, getattr(progress, progress_field.name))

    def write(self, path: Path) -> bool:
        """Whether it was written: not while its directory is gone (a test deleted it)."""
        # Write then rename, so a reader never sees half a file.
        temporary = path.with_name(path.name + ".tmp")
        try:
            temporary.write_text(json.dumps(asdict(self)), encoding="utf-8")
            os.replace(temporary, path)
        except FileNotFoundError:
            return False
        return True

    @classmethod
    def read(cls, path: Path) -> Status | None:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})
