"""The Celery worker: thin tasks that claim runs by id, call the engine and store results.

The pool runs one process per core, each stepping one task at a time, so BLAS gets one thread per
process unless the environment says otherwise: threaded BLAS on top of the pool oversubscribes
the cores (a batched MLP evaluation measured ~10× slower on 2 busy cores).
"""

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")
