"""One upload of a journal at a time.

Two uploads of one journal at once (a replay started while the live upload still runs, or two
replays) would each look for the session's runs before the other made them, and each make its
own: a tracking server gives every new run an id of its own, so nothing there stops the second
copy. An upload holds an exclusive lock on the journal file while it runs; a second upload waits
for the first to end and then finds every run it made. The operating system releases the lock
when the process ends, however it ends, so a dead upload never leaves one behind.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO


@contextlib.contextmanager
def held(path: Path, on_wait: Callable[[], None], source: BinaryIO | None = None) -> Iterator[None]:
    """Hold ``path``'s upload lock; ``on_wait`` is called once if another upload holds it.

    ``source``: the journal already open (a test may have deleted its path meanwhile).
    """
    if sys.platform == "win32":
        # No flock: concurrent uploads are left to duplicates.resolve, which keeps one copy.
        yield
        return
    import fcntl

    with contextlib.ExitStack() as opened:
        file = source if source is not None else opened.enter_context(path.open("rb"))
        try:
            fcntl.flock(file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            on_wait()
            # Until the other upload ends: a live one is bounded by pytest's wait, a replay by
            # its user (Ctrl-C interrupts this wait).
            fcntl.flock(file.fileno(), fcntl.LOCK_EX)
        yield
