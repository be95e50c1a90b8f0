"""A real headless browser for the tests: Debian's chromium driven by Playwright.

No downloaded browser: Playwright drives the system's ``/usr/bin/chromium``
(``apt-get install chromium``; ``.ci/run`` installs it). Without it, or without the
``playwright`` package, browser tests skip (and fail in CI, see ``missing_service``).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

CHROMIUM = os.environ.get("PYTEST_MLFLOW_TREE_CHROMIUM", "/usr/bin/chromium")
# Nothing but the pages we open: no sync, updates, component downloads or QUIC probes.
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# Regenerate the README's screenshots: UPDATE_SCREENSHOTS=1 pytest tests/test_html_report.py
SCREENSHOTS = Path(__file__).resolve().parent.parent / "docs"


def unavailable() -> str | None:
    """Why no browser can be started here, or None."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the browser tests need Playwright: pip install playwright"
    if not (Path(CHROMIUM).exists() or shutil.which(CHROMIUM)):
        return f"the browser tests need chromium at {CHROMIUM}: apt-get install chromium"
    return None


@contextmanager
def chromium() -> Iterator[Any]:
    """A headless chromium browser (Playwright's ``Browser``)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()


def update_screenshots() -> bool:
    return os.environ.get("UPDATE_SCREENSHOTS") == "1"
