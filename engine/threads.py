"""One BLAS thread per process on every local entry point, as in a worker.

The worker pool runs one process per core, so each process gets one BLAS thread (see
``worker/__init__.py``): threaded BLAS on top of the pool oversubscribes the cores. A local run
(``python -m engine run``, ``optbench submit --local``, the benches) is one process, but the engine
batches runs along the run axis instead of threading inside a matmul, and its matmuls are small
(a batch's buffers are sized for the cache): OpenBLAS's threads then cost more in wake-ups than
they return (the README example took 15.4 s with the default threads, 5.6 s with one). So local
entry points limit BLAS the same way, through threadpoolctl (which finds the BLAS and OpenMP
pools NumPy and SciPy actually loaded), unless the environment chose a thread count itself.
"""

from __future__ import annotations

import os
from typing import Any

from threadpoolctl import threadpool_limits

#: Variables through which a user picks BLAS threads; any of them set disables the default.
THREAD_ENV = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


def limit_blas_threads() -> Any:
    """A context manager holding the BLAS pools at one thread (or at what the environment says)."""
    chosen = any(os.environ.get(var) for var in THREAD_ENV)
    return threadpool_limits(limits=None if chosen else 1, user_api="blas")
