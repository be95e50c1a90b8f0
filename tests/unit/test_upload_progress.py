"""The progress line shown while pytest waits for the upload."""

from __future__ import annotations

from pytest_mlflow_tree.record.upload_progress import INTERVAL, UploadProgress


class Terminal:
    """What the progress writes to pytest's terminal reporter, call by call."""

    def __init__(self, isatty: bool) -> None:
        self.isatty = isatty
        self.calls: list[tuple[str, str]] = []

    def write(self, content: str, *, flush: bool = False) -> None:
        self.calls.append(("write", content))

    def rewrite(self, line: str, *, erase: bool = False) -> None:
        assert erase
        self.calls.append(("rewrite", line))

    def flush(self) -> None:
        pass


def test_on_a_terminal_one_line_is_updated_in_place() -> None:
    terminal = Terminal(isatty=True)
    progress = UploadProgress(terminal, total=100, started=0.0)

    assert not progress.due(INTERVAL / 2)
    progress.show(40, 2.0)
    progress.show(50, 4.0)

    assert terminal.calls == [
        # pytest's "... [100%]" line is ended once, then the same line is rewritten.
        ("write", "\n"),
        ("rewrite", "mlflow-tree: uploading 40/100 records (20/s)"),
        ("rewrite", "mlflow-tree: uploading 50/100 records (5/s)"),
    ]


def test_in_a_log_each_update_is_a_line_of_its_own() -> None:
    terminal = Terminal(isatty=False)
    progress = UploadProgress(terminal, total=62472, started=10.0)

    progress.show(3542, 12.0)
    progress.show(3602, 14.0)

    assert terminal.calls == [
        ("write", "\nmlflow-tree: uploading 3542/62472 records (1771/s)"),
        # The rate of the last interval, not the average since the wait began.
        ("write", "\nmlflow-tree: uploading 3602/62472 records (30/s)"),
    ]


def test_without_a_terminal_reporter_nothing_is_due() -> None:
    assert not UploadProgress(None, total=1, started=0.0).due(INTERVAL * 10)
