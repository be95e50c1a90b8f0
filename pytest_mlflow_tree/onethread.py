"""Imported first by the upload workers' forkserver: native libraries start no threads there.

A forkserver forks each worker from itself, which is only safe while it runs one thread: a
child forked while another thread holds a lock (an allocator's, say) can wait on it forever.
Importing MLflow imports NumPy and PyArrow, and with their defaults OpenBLAS starts a thread
pool and PyArrow's jemalloc a background thread. These variables, set before those imports,
keep both from starting. The forkserver and its workers only write runs: they need neither.

This module acts when imported, as a forkserver preload can only import; nothing else
imports it, so it changes the environment of the forkserver process and its workers alone.
"""

from __future__ import annotations

import os

# Thread pools of the BLAS builds NumPy ships with (OpenBLAS), or is built against.
for _name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_name] = "1"
# PyArrow's bundled jemalloc reads its settings from here; a user's own settings are kept.
_JEMALLOC = "JE_ARROW_MALLOC_CONF"
os.environ[_JEMALLOC] = ",".join(
    part for part in (os.environ.get(_JEMALLOC), "background_thread:false") if part
)
