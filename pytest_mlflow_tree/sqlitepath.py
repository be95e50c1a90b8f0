"""Where a ``sqlite:///`` tracking URI keeps its database."""

from __future__ import annotations

from pathlib import Path


def sqlite_path(uri: str) -> Path | None:
    prefix = "sqlite:///"
    if not uri.startswith(prefix):
        return None
    path = uri[len(prefix) :].partition("?")[0]
    return None if path in ("", ":memory:") else Path(path)
