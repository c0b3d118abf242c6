"""Batched vs one-run-at-a-time: a 64-run learning-rate sweep, stepped along the run axis or alone.

Prints the wall time of both paths and the speed-up, measured in the same process. Targets:
≥ 2× on mlp-digits (SGD with momentum); the batch-norm + Adam variant is printed for reference.
2-D Rosenbrock runs step in the compiled loop (:mod:`engine.compiled`) batched or alone, so its
speed-up is what batching adds to that loop (it was ≥ 20× over a per-run Python loop). Also
checks that both paths produce the same curves.
"""

from __future__ import annotations

import os

# One BLAS thread, as in a worker process (see worker/__init__.py); set before numpy loads.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import time  # noqa: E402
from collections.abc import Callable  # noqa: E402

import numpy as np  # noqa: E402

from engine.runner import run_batch, run_one  # noqa: E402
from engine.spec import expand, parse_experiment  # noqa: E402

SWEEPS = {
    "rosenbrock-2d": {
        "name": "bench-rosenbrock",
        "problems": [{"name": "rosenbrock", "dim": 2, "init": [-1.5, 2.0]}],
        "optimizers": [{"name": "adam", "lr": np.geomspace(1e-4, 1e-1, 64).tolist()}],
        "steps": 2000,
    },
    "mlp-digits": {
        "name": "bench-mlp",
        "problems": [{"name": "mlp", "dataset": "digits", "hidden": [64], "batch_size": 64}],
        "optimizers": [
            {"name": "sgd", "lr": np.geomspace(1e-3, 1.0, 64).tolist(), "momentum": 0.9}
        ],
        "steps": 200,
        "eval_every": 50,
    },
    "mlp-digits-bn": {
        "name": "bench-mlp-bn",
        "problems": [
            {
                "name": "mlp",
                "dataset": "digits",
                "hidden": [64],
                "batchnorm": True,
                "batch_size": 64,
            },
        ],
        "optimizers": [{"name": "adam", "lr": np.geomspace(1e-4, 1e-1, 64).tolist()}],
        "steps": 200,
        "eval_every": 50,
    },
}


def _curves_equal(a: list[dict], b: list[dict]) -> bool:
    return all(
        np.allclose(
            np.array(x["losses"], dtype=float),
            np.array(y["losses"], dtype=float),
            rtol=1e-12,
            atol=0,
            equal_nan=True,
        )
        for x, y in zip(a, b, strict=True)
    )


def best_of(repeats: int, fn: Callable[[], list[dict]]) -> tuple[float, list[dict]]:
    """The fastest of ``repeats`` calls (seconds) and the results of the last one."""
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        results = fn()
        times.append(time.perf_counter() - t0)
    return min(times), results


def main(repeats: int = 3) -> None:
    print(f"best of {repeats}; one BLAS thread")
    print(
        f"{'sweep':<16}{'runs':>6}{'steps':>7}{'batched s':>11}{'alone s':>10}"
        f"{'speed-up':>10}  same"
    )
    for label, doc in SWEEPS.items():
        runs = expand(parse_experiment(doc))
        t_batched, batched = best_of(repeats, lambda runs=runs: run_batch(runs))
        t_alone, alone = best_of(repeats, lambda runs=runs: [run_one(r) for r in runs])
        same = _curves_equal(batched, alone)
        print(
            f"{label:<16}{len(runs):>6}{runs[0].steps:>7}{t_batched:>11.3f}{t_alone:>10.3f}"
            f"{t_alone / t_batched:>9.1f}×  {same}"
        )


if __name__ == "__main__":
    main()
