"""One BLAS thread per process on every local entry point, as in a worker.

The worker pool runs one process per core, so each process gets one BLAS thread (see
``worker/__init__.py``): threaded BLAS on top of the pool oversubscribes the cores. A local run
(``python -m engine run``, ``optbench submit --local``, the benches) is one process, but the engine
batches runs along the run axis instead of threading inside a matmul, and its matmuls are small
(a batch's buffers are sized for the cache): OpenBLAS's threads then cost more in wake-ups than
they return (the README example took 15.4 s with the default threads, 5.6 s with one). So local
entry points limit BLAS the same way, through threadpoolctl (which finds the BLAS and OpenMP
pools NumPy and SciPy actually loaded), unless the environment chose a thread count itself.

A command-line process goes further and starts its pools with one thread
(:func:`one_thread_from_start`), as the worker does: OpenBLAS otherwise starts a thread per core
as each copy of it loads (NumPy's, and SciPy's when numba sets itself up) only for the limit to
idle them; starting them cost ~0.13 s of CPU of the README example's ~2.8 s.
"""

from __future__ import annotations

import contextlib
import os
from typing import Any

#: Variables through which a user picks BLAS threads; any of them set disables the default.
THREAD_ENV = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


def environment_chose() -> bool:
    return any(os.environ.get(var) for var in THREAD_ENV)


def one_thread_from_start() -> None:
    """Before NumPy loads: its BLAS pools (and SciPy's) start with one thread, unless the
    environment chose a count. The variables stay set for the process's children too."""
    if not environment_chose():
        for var in THREAD_ENV:
            os.environ[var] = "1"


def limit_blas_threads() -> Any:
    """A context manager holding the BLAS pools at one thread (or at what the environment says).

    When the environment chose (a command-line process chooses one thread as it starts) there is
    nothing to change: threadpoolctl's limit of ``None`` changes nothing either, but importing
    it and finding the pools cost ~3 ms, so the block then runs as it is. Otherwise threadpoolctl
    is imported here, not with the module: a command-line process imports this module as it
    starts (:func:`one_thread_from_start`), and only its runs need the limit."""
    if environment_chose():
        return contextlib.nullcontext()
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1, user_api="blas")
