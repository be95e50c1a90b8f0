"""Imported before MLflow where workers are forked: native libraries start no threads there.

Forking is only safe from a process that runs one thread: a child forked while another thread
holds a lock (an allocator's, say) can wait on it forever. Importing MLflow imports NumPy and
PyArrow, and with their defaults OpenBLAS starts a thread pool and PyArrow's jemalloc a
background thread. These variables, set before those imports, keep both from starting. The
processes that import this module only write runs: they need neither.

It is the first preload of the upload workers' forkserver (a preload can only import, so this
module acts when imported), and the uploader imports it before MLflow when it may fork its
workers itself (see ``uploadprocs``). Nothing else imports it: it changes the environment of
those processes and their workers alone.
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
