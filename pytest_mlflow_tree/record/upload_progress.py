"""The upload's progress while pytest waits for it: one line, updated in place on a terminal."""

from __future__ import annotations

from typing import Any

# Seconds between two updates.
INTERVAL = 2.0


class UploadProgress:
    """``mlflow-tree: uploading 3542/62472 records (31/s)``, the rate over the last interval.

    ``terminal`` is pytest's terminal reporter, or None when there is none (``-p no:terminal``).
    """

    def __init__(self, terminal: Any, total: int, started: float) -> None:
        self._terminal = terminal
        self._total = total
        self._shown_at = started
        self._shown_done = 0
        self._lines = 0

    def due(self, now: float) -> bool:
        return self._terminal is not None and now - self._shown_at >= INTERVAL

    def show(self, done: int, now: float) -> None:
        rate = (done - self._shown_done) / max(now - self._shown_at, 1e-9)
        self._shown_at, self._shown_done = now, done
        line = f"mlflow-tree: uploading {done}/{self._total} records ({rate:.0f}/s)"
        # pytest ends its progress line ("... [100%]") only after the wait: end it here.
        if getattr(self._terminal, "isatty", False):
            if self._lines == 0:
                self._terminal.write("\n")
            self._terminal.rewrite(line, erase=True)
            self._terminal.flush()
        else:
            self._terminal.write("\n" + line, flush=True)
        self._lines += 1
