"""Runnable specs for the contract tests that iterate over every registered optimizer.

Most optimizers run at their defaults on any row. The exceptions, and why:
``partition`` and ``chain`` have no defaults (their groups / transforms are the spec); ``lbfgs``
at its defaults takes several evaluations per step, so tests that step from a given gradient use
one iteration per step (its ``update_`` form); ``muon`` steps weight matrices only, so it gets a
layout of one matrix; ``schedule_free_sgd``'s default ``lr = 1`` (the package's) is meant for
normalised networks and diverges on the test problems.
"""

from __future__ import annotations

from typing import Any

from engine.layout import Layout

EXAMPLES: dict[str, dict[str, Any]] = {
    "partition": {
        "name": "partition",
        "groups": [
            {"kinds": ["matrix"], "optimizer": {"name": "adam"}},
            {"optimizer": {"name": "sgd", "momentum": 0.9, "weight_decay": 0.1}},
        ],
        "no_weight_decay": ["bias"],
    },
    "chain": {
        "name": "chain",
        "transforms": [
            {"name": "clip_by_global_norm", "max_norm": 10.0},
            {"name": "scale_by_adam"},
            {"name": "trace", "momentum": 0.5},
            {"name": "scale_by_learning_rate", "lr": 1e-3},
        ],
    },
    "lbfgs": {"name": "lbfgs", "max_iter": 1},
    "schedule_free_sgd": {"name": "schedule_free_sgd", "lr": 0.01},
}

#: Optimizers whose step stays NumPy expressions, with temporaries, and has no fused kernel:
#: ``lbfgs`` (dot products and scalar line-search logic between one-op passes) and ``muon``
#: (Newton–Schulz matrix products, NumPy's BLAS); the reasons are in their docstrings.
NUMPY_ONLY = frozenset({"lbfgs", "muon"})
#: Fused, but allocating per step: ``partition`` gathers each group's columns into copies. (A
#: ``chain`` allocates only in its per-tensor transforms, trust ratio and orthogonalisation, which
#: run the reference's code; the example has none.)
GATHERS = frozenset({"partition"})


def example(name: str) -> dict[str, Any]:
    return EXAMPLES.get(name, {"name": name})


def layout_for(spec: dict[str, Any], cols: int) -> Layout | None:
    """A layout the spec can step ``cols`` columns with: Muon gets one ``cols × 1`` matrix;
    routing gets a matrix and a bias when there is room, so that both of its groups work."""
    if spec["name"] == "muon":
        return Layout.build([("w", (cols, 1), "matrix")])
    if spec["name"] == "partition" and cols > 1:
        return Layout.build([("w", (cols - 1, 1), "matrix"), ("b", (1,), "bias")])
    return None
